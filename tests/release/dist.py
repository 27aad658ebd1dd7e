"""Building Modelport's wheel and sdist the way the release does, and installing them into clean
virtual environments with uv (dependencies from PyPI through uv's cache, outside the repository)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The folders whose ``modelport/`` namespace package the wheel is built from.
SOURCE_ROOTS = ("core", "control-api", "operator", "runtime-image")
#: Every subpackage that ships a ``py.typed`` marker.
SUBPACKAGES = ("core", "api", "client", "operator", "runtime")
#: Environment variables that would let the repository or another environment leak into a
#: command that must see only what it installed.
LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX")


def project() -> dict[str, object]:
    """pyproject.toml's ``[project]`` table."""
    table = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert isinstance(table, dict)
    return table


def project_version() -> str:
    return str(project()["version"])


def uv_binary() -> Path:
    """uv from PATH or ``~/.local/bin`` (where scripts/test.sh installs it)."""
    found = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin"))
    if found is None:
        pytest.fail("uv is not installed: scripts/test.sh installs it (pip install --user uv)")
    return Path(found)


def clean_env(*bin_dirs: Path) -> dict[str, str]:
    """This process's environment without Python path settings, `bin_dirs` first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    env["PATH"] = os.pathsep.join([*map(str, bin_dirs), env.get("PATH", os.defpath)])
    env["PYTHONNOUSERSITE"] = "1"  # no ~/.local site-packages either
    return env


def run_command(
    argv: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 600
) -> str:
    """Run a command; return its stdout, fail the test with its output when it exits non-zero."""
    result = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, argv))} exited {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def build(outdir: Path, *flags: str) -> list[Path]:
    """``python -m build`` of the repository into `outdir` (an isolated build environment that
    uv fills from PyPI); the distributions it wrote."""
    uv = uv_binary()
    argv: list[str | Path] = [sys.executable, "-m", "build", "--installer", "uv", *flags]
    run_command([*argv, "--outdir", outdir, REPO_ROOT], cwd=outdir, env=clean_env(uv.parent))
    return sorted(outdir.iterdir())


def digests(members: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}


def wheel_members(wheel: Path) -> dict[str, bytes]:
    """Every file of a wheel, by its path inside."""
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


def sdist_members(sdist: Path) -> dict[str, bytes]:
    """Every file of an sdist, by its path below the ``modelport-VERSION/`` folder."""
    out: dict[str, bytes] = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                out[member.name.split("/", 1)[1]] = handle.read()
    return out


def package_sources() -> dict[str, Path]:
    """The files of the ``modelport`` namespace package in the source tree, by the path they
    have in a wheel (byte-code caches left out, as .gitignore leaves them out of a build)."""
    out: dict[str, Path] = {}
    for root in SOURCE_ROOTS:
        base = REPO_ROOT / root
        for path in sorted((base / "modelport").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                name = path.relative_to(base).as_posix()
                assert name not in out, f"{name} is in two source roots"
                out[name] = path
    return out


@dataclass(frozen=True)
class Venv:
    """A virtual environment created by uv, and the commands to use it from outside the
    repository."""

    root: Path
    workdir: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def env(self) -> dict[str, str]:
        return clean_env(self.bin)

    def run(self, *argv: str | Path, timeout: float = 120) -> str:
        """A command from the environment's bin folder, run from outside the repository."""
        argv_here = [self.bin / argv[0], *argv[1:]]
        return run_command(argv_here, cwd=self.workdir, env=self.env(), timeout=timeout)

    def distributions(self) -> set[str]:
        """The normalised names of every distribution installed in the environment."""
        code = (
            "import importlib.metadata as m, re\n"
            "for d in m.distributions():\n"
            "    print(re.sub(r'[-_.]+', '-', d.metadata['Name']).lower())\n"
        )
        return set(self.run("python", "-c", code).split())


def install(base: Path, requirement: str) -> Venv:
    """A fresh uv virtual environment under `base` with `requirement` installed from PyPI."""
    uv = uv_binary()
    root, workdir = base / "venv", base / "work"
    workdir.mkdir(parents=True)
    env = clean_env(uv.parent)
    run_command([uv, "venv", "--quiet", "--python", sys.executable, root], cwd=workdir, env=env)
    run_command(
        [uv, "pip", "install", "--quiet", "--python", root / "bin" / "python", requirement],
        cwd=workdir,
        env=env,
    )
    return Venv(root=root, workdir=workdir)
