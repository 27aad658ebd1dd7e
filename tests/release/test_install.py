"""The wheel installed into clean virtual environments, used from outside the repository with no
PYTHONPATH: its commands, its data files, and docs/api.md's quick start serving a model."""

from __future__ import annotations

import json
import pickle
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

from testing.payloads import onnx_add_one
from testing.ports import free_port
from testing.up import stop, wait_for
from tests.release.conftest import Dists
from tests.release.dist import REPO_ROOT, SUBPACKAGES, Venv, install, package_sources

pytestmark = [pytest.mark.slow]

#: Frameworks the clean installs must not pull in (each is hundreds of megabytes).
FRAMEWORKS = {"torch", "tensorflow", "tf-keras", "keras"}


def test_the_modules_come_from_the_environment_not_the_repository(clean_install: Venv) -> None:
    code = (
        "import json, sys, sysconfig, importlib\n"
        f"subs = {list(SUBPACKAGES)!r}\n"
        "import modelport\n"
        "print(json.dumps({\n"
        "  'purelib': sysconfig.get_paths()['purelib'],\n"
        "  'namespace': list(modelport.__path__),\n"
        "  'files': [importlib.import_module('modelport.' + s).__file__ for s in subs],\n"
        "  'sys_path': sys.path,\n"
        "}))\n"
    )
    found = json.loads(clean_install.run("python", "-c", code))
    site = Path(found["purelib"])
    assert site.is_relative_to(clean_install.root)
    assert found["namespace"] == [str(site / "modelport")]
    assert all(Path(f).is_relative_to(site / "modelport") for f in found["files"])
    assert not [p for p in found["sys_path"] if p and Path(p).resolve().is_relative_to(REPO_ROOT)]
    assert not clean_install.workdir.resolve().is_relative_to(REPO_ROOT)


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["modelport", "up", "--help"], "--data-dir"),
        (["modelport", "scan", "--help"], "Scan model files"),
        (["modelport-api", "--help"], "migrate"),
        (["modelport-operator", "--help"], "modelport-operator"),
        (["modelport-runtime", "--help"], "MODELPORT_RUNTIME_"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, list) else None,
)
def test_the_console_scripts_run(clean_install: Venv, command: list[str], says: str) -> None:
    assert says in clean_install.run(*command)


def test_the_clean_install_pulls_no_framework(clean_install: Venv) -> None:
    names = clean_install.distributions()
    assert {"modelport", "fastapi", "sqlalchemy", "kopf", "onnxruntime"} <= names
    assert not names & FRAMEWORKS


def test_the_scanner_reads_its_allowlist_from_the_wheel(clean_install: Venv) -> None:
    safe = clean_install.workdir / "weights.pkl"
    safe.write_bytes(pickle.dumps({"weights": [0.5, 1.5], "bias": 2}, protocol=4))
    # Written by hand, never loaded: GLOBAL posix.system, then REDUCE calls it.
    evil = clean_install.workdir / "evil.pkl"
    evil.write_bytes(b"\x80\x04cposix\nsystem\n\x8c\x04true\x85R.")
    assert "SAFE" in clean_install.run("modelport", "scan", str(safe))
    result = subprocess.run(
        [clean_install.bin / "modelport", "scan", str(evil)],
        cwd=clean_install.workdir,
        env=clean_install.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "posix.system is not allowlisted" in result.stdout


def test_the_migrations_run_from_the_wheel(clean_install: Venv) -> None:
    database = clean_install.workdir / "migrated.db"
    env = {**clean_install.env(), "MODELPORT_API_DATABASE_URL": f"sqlite:///{database}"}
    result = subprocess.run(
        [clean_install.bin / "modelport-api", "migrate"],
        cwd=clean_install.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    migrations = REPO_ROOT / "control-api" / "modelport" / "api" / "migrations"
    head = ScriptDirectory(str(migrations)).get_current_head()
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]


def test_the_runtime_extra_alone_has_no_database_or_operator(tmp_path: Path, dists: Dists) -> None:
    runtime = install(tmp_path, f"{dists.wheel}[runtime]")
    names = runtime.distributions()
    assert {"modelport", "starlette", "uvicorn", "boto3"} <= names
    assert not names & {"sqlalchemy", "alembic", "psycopg2-binary", "kopf", "fastapi", *FRAMEWORKS}
    assert "MODELPORT_RUNTIME_" in runtime.run("modelport-runtime", "--help")


# --- docs/api.md's quick start: `modelport up`, upload, predict ------------------------------


@pytest.fixture
def modelport_up(clean_install: Venv) -> Iterator[tuple[str, Path]]:
    """``modelport up`` from the clean environment; its URL and its log."""
    port, log = free_port(), clean_install.workdir / "up.log"
    env = {k: v for k, v in clean_install.env().items() if not k.startswith("MODELPORT_")}
    env["XDG_DATA_HOME"] = str(clean_install.workdir / "share")  # the default data folder
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [clean_install.bin / "modelport", "up", "--port", str(port)],
            cwd=clean_install.workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        stop(proc)


def test_the_quick_start_serves_a_model_from_the_wheel(
    clean_install: Venv, modelport_up: tuple[str, Path]
) -> None:
    url, log = modelport_up
    wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, timeout=90, what="the API")
    assert (clean_install.workdir / "share" / "modelport" / "modelport.db").is_file()
    account = re.search(r"Account key \(control API, [^)]*\): (mp_\S+)", log.read_text())
    inference = re.search(r"Inference key \(calls models\): (mp_\S+)", log.read_text())
    assert account and inference, log.read_text()
    auth = {"Authorization": f"Bearer {account.group(1)}"}
    calls = {"Authorization": f"Bearer {inference.group(1)}"}

    # The web UI is served from the installed package's static files.
    page = httpx.get(f"{url}/ui/", follow_redirects=True)
    assert page.status_code == 200
    assert page.content == package_sources()["modelport/api/web/static/index.html"].read_bytes()

    r = httpx.post(
        f"{url}/api/v1/models",
        headers=auth,
        files={"file": ("model.onnx", onnx_add_one())},
        data={"modelName": "quickstart"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    endpoint = r.json()["endpointUrl"]

    def predicted() -> bool:
        p = httpx.post(f"{endpoint}/predict", json={"inputData": [[1.0, 2.0]]}, headers=calls)
        return p.status_code == 200 and p.json()["predictions"] == [[2.0, 3.0]]

    # The model runs in a local runtime process: the clean environment's own python.
    wait_for(predicted, timeout=90, what="the first prediction")
    commands = _commands_mentioning(clean_install.workdir)
    runtimes = [command for command in commands if "modelport.runtime.main" in command]
    assert runtimes, "a local runtime process serves the model"
    assert all(command[0] == str(clean_install.python) for command in runtimes), runtimes


def _commands_mentioning(folder: Path) -> list[list[str]]:
    """The command lines of the processes whose environment names `folder`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(folder).encode() in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().decode().split("\0")[:-1])
        except OSError:
            continue
    return found
