"""``modelport up``: one command, no cluster, no external services; upload and call within a
minute. Runs the real command as a process (SQLite, local artifact folder, local runtimes)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from testing.payloads import onnx_add_one
from testing.ports import free_port
from testing.up import wait_for

pytestmark = [pytest.mark.slow]


def test_modelport_up_serves_an_uploaded_model(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "second.onnx").write_bytes(onnx_add_one(padding=1024))
    port = free_port()
    log = (tmp_path / "up.log").open("w+")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
    command = [
        sys.executable,
        "-c",
        "from modelport.api.cli import main; main()",
        "up",
        "--data-dir",
        str(data),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, timeout=90, what="the API")
        log.seek(0)
        printed = log.read()
        account = re.search(r"Account key \(control API, [^)]*\): (mp_\S+)", printed)
        inference = re.search(r"Inference key \(calls models\): (mp_\S+)", printed)
        assert account and inference, "the first admin's two keys are printed"
        key = account.group(1)

        for name in ("master.key", "jwt.secret", "modelport.db"):
            mode = stat.S_IMODE((data / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))

        auth = {"Authorization": f"Bearer {key}"}
        r = httpx.post(
            f"{url}/api/v1/models",
            headers=auth,
            files={"file": ("model.onnx", onnx_add_one())},
            data={"modelName": "demo"},
            timeout=60,
        )
        assert r.status_code == 201, r.text
        endpoint = r.json()["endpointUrl"]
        assert endpoint.startswith(url)

        calls = {"Authorization": f"Bearer {inference.group(1)}"}

        def predicted() -> bool:
            p = httpx.post(f"{endpoint}/predict", json={"inputData": [[1.0, 2.0]]}, headers=calls)
            return p.status_code == 200 and p.json()["predictions"] == [[2.0, 3.0]]

        wait_for(predicted, timeout=60, what="the first prediction")
        assert _processes_using(data), "the model runs as a local runtime process"

        # `modelport upload` prints the new model's id and endpoint URL.
        cli = subprocess.run(
            [
                sys.executable,
                "-c",
                "from modelport.api.cli import main; main()",
                "upload",
                str(tmp_path / "second.onnx"),
                "--name",
                "second",
            ],
            env={**env, "MODELPORT_URL": url, "MODELPORT_API_KEY": key},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 0, cli.stderr
        assert re.search(r"model id:\s+m[0-9a-f]{16}", cli.stdout)
        assert f"endpoint URL: {url}/models/" in cli.stdout
        stored = list((data / "artifacts").rglob("*.mpa"))
        assert len(stored) == 2
        assert all(onnx_add_one() not in path.read_bytes() for path in stored)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    # Stopping `modelport up` stops the runtimes it started.
    wait_for(lambda: not _processes_using(data), timeout=30, what="the runtimes to stop")

    # Started again on the same folder: no new admin, the models serve again with the same key.
    log = (tmp_path / "up2.log").open("w+")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(
            lambda: httpx.get(f"{url}/readyz").status_code == 200, timeout=90, what="the API again"
        )
        wait_for(predicted, timeout=90, what="a prediction after the restart")
        log.seek(0)
        assert "Account key" not in log.read()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    wait_for(lambda: not _processes_using(data), timeout=30, what="the runtimes to stop again")


def _processes_using(data: Path) -> list[int]:
    """Processes whose environment names the data folder (the runtimes' key-file paths)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if str(data).encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found
