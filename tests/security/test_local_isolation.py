"""Local mode isolation: a model runtime under ``modelport up``'s local deployer gets none of the
API's secrets (real runtime processes under a live API on PostgreSQL and S3).

The attacker here controls what a runtime runs: a model whose loading runs code the scanner
missed, say. The probe below stands in for that code. It is the runtime command the live API
starts (through the same launcher, environment and user as any runtime); it tries what such code
would try, writes down what happened in its own folder, then becomes the real runtime, which
must go on to serve the model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelport.api.settings import ApiSettings
from modelport.api.up import secret_file
from modelport.core.keys import new_master_key_entry
from pydantic import ValidationError

from testing.payloads import onnx_add_one
from tests.api.conftest import LiveApi, MakeApi, User

PROBE = r"""
import json, os, sys, time
from pathlib import Path

folder = Path(os.environ["MODELPORT_RUNTIME_KEY_FILE"]).parent
data_dir = folder.parent.parent
targets = {name: data_dir / name for name in ("master.key", "jwt.secret")}
targets["own data key"] = folder / "data-key"
others = Path(__file__).with_name("others.json")  # folders of the models started before
for other in json.loads(others.read_text()) if others.exists() else []:
    targets["data key of " + Path(other).name] = Path(other) / "data-key"
api = os.getppid()
targets["api environ"] = Path(f"/proc/{api}/environ")
targets["api memory"] = Path(f"/proc/{api}/mem")
found = {}
for name, path in targets.items():
    try:
        with open(path, "rb") as f:
            f.read(1)
        found[name] = "read"
    except OSError as exc:
        found[name] = exc.strerror
try:
    os.kill(api, 0)
    found["signal api"] = "sent"
except OSError as exc:
    found["signal api"] = exc.strerror
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines())
report = {
    "found": found,
    "uid": os.getuid(),
    "gid": os.getgid(),
    "cap_eff": status["CapEff"].strip(),
    "cwd": os.getcwd(),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "env": sorted(os.environ),
}
(folder / "probe.json").write_text(json.dumps(report))
if sys.argv[1:]:
    os.execv(sys.argv[1], sys.argv[1:])
time.sleep(600)
"""

#: What the API process holds in its environment, as a real deployment sets it.
API_ENVIRONMENT = {
    "MODELPORT_API_MASTER_KEYS": new_master_key_entry("envkey"),
    "MODELPORT_API_JWT_SECRET": "jwt-secret-from-the-environment-" + "x" * 16,
    "MODELPORT_API_DATABASE_URL": "postgresql+psycopg2://modelport:hunter2@db/modelport",
    "DATABASE_URL": "postgresql://modelport:hunter2@db/modelport",
    "MODELPORT_API_OIDC_CLIENT_SECRET": "oidc-client-secret",
}


@pytest.fixture
def probe_dir() -> Iterator[Path]:
    """A folder any user may read, holding the probe."""
    folder = Path(tempfile.mkdtemp(prefix="modelport-probe-"))
    folder.chmod(0o755)
    (folder / "probe.py").write_text(PROBE)
    (folder / "probe.py").chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _up_data_dir(parent: Path) -> tuple[Path, str, str]:
    """A data folder laid out as ``modelport up`` lays it out, with its secret files."""
    data_dir = parent / "data"
    data_dir.mkdir(mode=0o700)
    master = secret_file(data_dir / "master.key", lambda: new_master_key_entry("local1"))
    jwt_secret = secret_file(data_dir / "jwt.secret", lambda: "j" * 48)
    return data_dir, master, jwt_secret


def _landlock_abi() -> int:
    from modelport.api.deployers.local import sandbox

    try:
        return sandbox.abi_version()
    except sandbox.Unavailable:
        return 0


def _upload(api: LiveApi, user: User, name: str) -> str:
    r = api.upload(user, onnx_add_one(padding=len(name)), name=name)
    assert r.status_code == 201, r.text
    return str(r.json()["modelId"])


def _report(data_dir: Path, model_id: str, timeout: float = 60) -> dict[str, Any]:
    path = data_dir / "run" / model_id / "probe.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, "the runtime never ran the probe"
        time.sleep(0.2)
    time.sleep(0.2)  # written in one call; let it land
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def _wait_ready(api: LiveApi, user: User, model_id: str, timeout: float = 120) -> None:
    if not user.key:
        r = api.client.post("/api/v1/keys", headers=user.headers, json={"name": "probe"})
        assert r.status_code == 201, r.text
        user.key = str(r.json()["key"])
    deadline = time.monotonic() + timeout
    body = {"inputData": [[1.0, 2.0]]}
    headers = {"Authorization": f"Bearer {user.key}"}
    while True:
        r = api.client.post(f"/models/{model_id}/predict", headers=headers, json=body)
        if r.status_code == 200:
            assert r.json()["predictions"] == [[2.0, 3.0]]
            return
        assert time.monotonic() < deadline, f"the runtime never served: {r.status_code} {r.text}"
        time.sleep(0.5)


def _runtime_pid(api: LiveApi, model_id: str) -> int:
    supervisor = api.ctx.deployer._supervisor  # type: ignore[attr-defined]
    pid: int = supervisor._models[model_id].current.popen.pid
    return pid


def test_runtime_env_has_no_api_secrets(
    make_api: MakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in API_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    api = make_api(local_runtimes=True, data_dir=tmp_path / "data")
    user = api.user()
    model_id = _upload(api, user, "env")
    _wait_ready(api, user, model_id)

    pid = _runtime_pid(api, model_id)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = {entry.partition(b"=")[0].decode() for entry in environ if entry}
    assert not names & set(API_ENVIRONMENT)
    assert not {n for n in names if n.startswith("MODELPORT_API_")}
    text = b"\0".join(environ).decode(errors="replace")
    settings = api.ctx.settings
    secrets = [*API_ENVIRONMENT.values(), settings.jwt_secret.get_secret_value()]
    secrets.append((settings.master_keys or settings.jwt_secret).get_secret_value())
    for secret in secrets:
        assert secret not in text
    # What it does get: its own settings, home and temporary folder in its private folder.
    folder = tmp_path / "data" / "run" / model_id
    assert f"MODELPORT_RUNTIME_MODEL_NAME={model_id}" in text
    assert f"HOME={folder}" in text
    assert Path(f"/proc/{pid}/cwd").resolve() == folder.resolve()


def test_runtime_cannot_read_master_key(make_api: MakeApi, probe_dir: Path, tmp_path: Path) -> None:
    data_dir, master, jwt_secret = _up_data_dir(tmp_path)
    runtime = [sys.executable, "-m", "modelport.runtime.main"]
    api = make_api(
        local_runtimes=True,
        data_dir=data_dir,
        master_keys=master,
        jwt_secret=jwt_secret,
        runtime_command=[sys.executable, str(probe_dir / "probe.py"), *runtime],
    )
    user = api.user()
    first = _upload(api, user, "first")
    others = probe_dir / "others.json"
    others.write_text(json.dumps([str(data_dir / "run" / first)]))
    others.chmod(0o644)
    second = _upload(api, user, "second")
    _wait_ready(api, user, second)  # the probe became the real runtime

    report = _report(data_dir, second)
    found = report["found"]
    assert found["own data key"] == "read"
    for secret in ("master.key", "jwt.secret", f"data key of {first}"):
        assert found[secret] == "Permission denied", (secret, report)
    assert found["api environ"] == "Permission denied"
    assert found["api memory"] == "Permission denied"
    if _landlock_abi() >= 6 or os.geteuid() == 0:  # signals are scoped from Landlock ABI 6
        assert found["signal api"] != "sent"
    if os.geteuid() == 0:  # root's overrides are gone: another user, or no capability at all
        assert report["uid"] != 0 or int(report["cap_eff"], 16) == 0, report
    # A private working folder, and nothing of the API's open but stdin, stdout and stderr
    # (the last number is the listing's own descriptor).
    assert Path(report["cwd"]).resolve() == (data_dir / "run" / second).resolve()
    assert report["fds"][:3] == [0, 1, 2] and len(report["fds"]) == 4, report


@pytest.mark.skipif(os.geteuid() != 0, reason="a separate user needs an API that runs as root")
def test_runtime_runs_as_its_own_user_when_api_is_root(make_api: MakeApi, probe_dir: Path) -> None:
    interpreter = shutil.which("python3", path="/usr/bin:/bin")
    if interpreter is None:
        pytest.skip("no system python3 that another user can run")
    parent = Path(tempfile.mkdtemp(prefix="modelport-up-"))
    try:
        parent.chmod(0o711)
        data_dir, master, jwt_secret = _up_data_dir(parent)
        data_dir.chmod(0o711)  # passable, not listable: the secrets stay 0600
        api = make_api(
            local_runtimes=True,
            data_dir=data_dir,
            master_keys=master,
            jwt_secret=jwt_secret,
            runtime_command=[interpreter, str(probe_dir / "probe.py")],
        )
        user = api.user()
        model_id = _upload(api, user, "own user")
        report = _report(data_dir, model_id)
        assert (report["uid"], report["gid"]) == (65534, 65534)
        assert report["found"]["own data key"] == "read"
        assert report["found"]["master.key"] == "Permission denied"
        # The file permissions alone (no sandbox) keep that user out: read as it, from outside.
        for name in ("master.key", "jwt.secret"):
            assert (data_dir / name).stat().st_uid == os.geteuid()
            read = subprocess.run(
                [interpreter, "-c", f"open({str(data_dir / name)!r}).read()"],
                user=65534,
                group=65534,
                extra_groups=[],
                capture_output=True,
                text=True,
                check=False,
            )
            assert read.returncode != 0 and "PermissionError" in read.stderr, read
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_production_refuses_local_deployer() -> None:
    real: dict[str, Any] = {
        "environment": "production",
        "database_url": "postgresql+psycopg2://u@db/modelport",
        "jwt_secret": "s" * 48,
        "master_keys": new_master_key_entry("k1"),
        "artifact_uri": "s3://bucket/prefix",
        "allowed_hosts": ["api.example.com"],
    }
    cases: list[dict[str, Any]] = [{"deployer": "local"}, {}]  # named, or the default
    for deployer in cases:
        with pytest.raises(ValidationError, match="deployer is local"):
            ApiSettings(**real, **deployer)
    assert ApiSettings(**real, deployer="kubernetes").deployer == "kubernetes"
