"""The README's first command, exactly as written, on stock Debian 12 and Ubuntu 24.04.

Each runs in a fresh root file system of that release (testing/firstrun.py: the distribution's
own ``python3``, externally managed, no ``venv`` or ``pip``), as a newcomer would type it in a
checkout: it must install Modelport and start ``modelport up``, which then scans, stores and
serves an uploaded ONNX model. Only the port is changed (other tests use 8000's neighbours), and
pip's cache folder is kept between runs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from testing import firstrun
from testing.harness.binaries import modelport_cache
from testing.models import ModelFile
from testing.ports import free_port
from testing.up import wait_for

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHECKOUT = "/home/newcomer/modelport"


def readme_run_command() -> str:
    """The one command line of the README's first code block."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Two commands.*?```sh\n(.*?)```", text, re.S)
    assert block, "README.md has a 'Two commands' section with a sh block"
    lines = [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 1, lines
    return lines[0]


def test_the_readme_command_installs_into_a_virtual_environment() -> None:
    """Stock Debian and Ubuntu refuse a system-wide `pip install` (PEP 668)."""
    command = readme_run_command()
    assert "python3 -m venv" in command and command.endswith("modelport up")
    assert "--break-system-packages" not in command


def _copy_checkout(target: Path) -> None:
    """The checkout as a newcomer has it: tracked and untracked files, nothing git ignores."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture(params=firstrun.DISTROS, ids=lambda d: d.name)
def distro(request: pytest.FixtureRequest) -> firstrun.Distro:
    missing = firstrun.missing_host_tools()
    if missing and os.environ.get("CI"):
        pytest.fail(f"scripts/test.sh installs {missing}; it did not")
    if missing or os.geteuid() != 0:
        pytest.skip("needs root and debootstrap (scripts/test.sh installs it)")
    distro: firstrun.Distro = request.param
    return distro


def test_readme_command_runs_modelport_on_a_fresh_machine(
    distro: firstrun.Distro,
    tmp_path: Path,
    onnx_model_files: dict[str, ModelFile],
) -> None:
    root = firstrun.unpack(distro, tmp_path / "root")
    _copy_checkout(root / CHECKOUT.lstrip("/"))
    port = free_port()
    command = readme_run_command() + f" --port {port}"
    pip_cache = modelport_cache() / "firstrun" / f"pip-{distro.name}"
    pip_cache.mkdir(parents=True, exist_ok=True)
    # pip must trust this machine's HTTPS proxy (its CA is in the system bundle): the one
    # setting a real fresh machine does not need.
    env = {
        "HOME": "/root",
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
        "PIP_DEFAULT_TIMEOUT": "180",
    }
    log_path = tmp_path / "first-run.log"
    with log_path.open("wb") as log:
        proc = firstrun.run_in(
            root, command, cwd=CHECKOUT, env=env, binds={pip_cache: "/root/.cache/pip"}, out=log
        )
    url = f"http://127.0.0.1:{port}"

    def banner() -> str:
        return log_path.read_text(errors="replace")

    try:

        def started() -> bool:
            assert proc.poll() is None, (
                f"the command ended ({proc.returncode}):\n{banner()[-5000:]}"
            )
            return "Inference key" in banner() and _ready(url)

        wait_for(started, timeout=900, what=f"modelport up on {distro.name}")
        account = re.search(r"Account key \([^)]*\): (mp_\S+)", banner())
        inference = re.search(r"Inference key \(calls models\): (mp_\S+)", banner())
        assert account and inference, banner()
        assert f"Web UI: {url}/ui/" in banner()
        model = onnx_model_files["onnx_sklearn_logreg"]
        uploaded = httpx.post(
            f"{url}/api/v1/models",
            headers={"Authorization": f"Bearer {account.group(1)}"},
            files={"file": ("churn.onnx", model.path.read_bytes())},
            data={"modelName": "churn"},
            timeout=120,
        )
        assert uploaded.status_code == 201, uploaded.text
        endpoint = uploaded.json()["endpointUrl"]
        assert model.sample_input is not None and model.expected_output is not None
        rows = model.sample_input.tolist()
        expected = np.asarray(model.expected_output).tolist()

        def predicted() -> bool:
            answer = httpx.post(
                f"{endpoint}/predict",
                json={"inputData": rows},
                headers={"Authorization": f"Bearer {inference.group(1)}"},
                timeout=30,
            )
            if answer.status_code != 200:
                return False
            assert answer.json()["predictions"] == expected
            return True

        wait_for(predicted, timeout=120, what=f"the first prediction on {distro.name}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
