"""The pinned control-plane binaries: where they are cached and how they are built.

The versions are the `require` lines of the tool modules under `tools/k8s/`; `tools/k8s/build.sh`
compiles them from the Go module proxy. Built binaries live outside the checkout, keyed by those
versions, so that every clone on the machine (CI's included) shares one build:

    ${MODELPORT_CACHE:-${XDG_CACHE_HOME:-~/.cache}/modelport}/k8s-bin/<key>/

A build runs in a scratch directory next to its final place and is renamed into place only after
`build.sh` has written the `.complete` stamp, so a half-built cache is never used. A file lock
keeps parallel test workers from building the same key twice.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testing.harness.process import die_with_parent

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools" / "k8s"
BUILD_SCRIPT = TOOLS_DIR / "build.sh"
STAMP = ".complete"

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "helm",
    "kwok",
)
KWOK_STAGES_DIR = "kwok-stages"


class BinariesError(RuntimeError):
    """The binaries are missing and could not be built."""


@dataclass(frozen=True)
class ToolVersions:
    """The versions the tool modules pin; together they name a cache entry."""

    kubernetes: str
    etcd: str
    helm: str
    kwok: str

    @property
    def key(self) -> str:
        return f"k8s-{self.kubernetes}-etcd-{self.etcd}-helm-{self.helm}-kwok-{self.kwok}"


def required_version(go_mod: str, module: str) -> str:
    """Return the version `go_mod` (the text of a go.mod file) requires of `module`."""
    name = re.escape(module)
    pattern = rf"^(?:require\s+|\s+){name}\s+(v\S+)"
    match = re.search(pattern, go_mod, flags=re.MULTILINE)
    if match is None:
        raise BinariesError(f"go.mod does not require {module}")
    return match.group(1)


def tool_versions(tools_dir: Path = TOOLS_DIR) -> ToolVersions:
    """Read the pinned versions from the tool modules' go.mod files."""

    def read(tool: str, module: str) -> str:
        return required_version((tools_dir / tool / "go.mod").read_text(), module)

    return ToolVersions(
        kubernetes=read("kube", "k8s.io/kubernetes"),
        etcd=read("etcd", "go.etcd.io/etcd/server/v3"),
        helm=read("helm", "helm.sh/helm/v3"),
        kwok=read("kwok", "sigs.k8s.io/kwok"),
    )


def modelport_cache(environ: Mapping[str, str] | None = None) -> Path:
    """Modelport's per-user cache folder (the one scripts/test.sh uses)."""
    env = os.environ if environ is None else environ
    if base := env.get("MODELPORT_CACHE"):
        return Path(base)
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "modelport"


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """The cache folder that holds every built version of the control-plane binaries."""
    return modelport_cache(environ) / "k8s-bin"


def is_complete(bin_dir: Path) -> bool:
    """Whether `bin_dir` holds a finished build: the stamp and every binary."""
    return (bin_dir / STAMP).is_file() and all((bin_dir / b).is_file() for b in BINARIES)


def binaries_dir(versions: ToolVersions | None = None) -> Path:
    """Where the binaries of `versions` (default: the pinned ones) are, or will be, cached."""
    return cache_root() / (versions or tool_versions()).key


def ensure_binaries(*, build: bool = True) -> Path:
    """Return the folder holding the pinned binaries, building them first if needed.

    With `build=False` a missing cache raises `BinariesError` instead of starting a build that
    can take half an hour.
    """
    target = binaries_dir()
    if is_complete(target):
        return target
    if not build:
        raise BinariesError(f"no finished build in {target}; run `python -m testing.harness build`")
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target.with_name(target.name + ".lock")):
        if not is_complete(target):  # another process may have built it while we waited
            _remove_stale_builds(target)
            _build_into(target)
    return target


def _remove_stale_builds(target: Path) -> None:
    """Scratch folders of builds that were killed; only the lock holder builds, so none is live."""
    for stale in target.parent.glob(target.name + ".build-*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_into(target: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix=target.name + ".build-", dir=target.parent))
    try:
        print(f"building control-plane binaries into {target}", file=sys.stderr, flush=True)
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT), str(scratch)],
            check=False,
            preexec_fn=die_with_parent,  # a killed test run must not leave a build behind
        )
        if result.returncode != 0 or not is_complete(scratch):
            raise BinariesError(f"{BUILD_SCRIPT} failed with exit status {result.returncode}")
        if is_complete(target):  # placed meanwhile by someone who did not take the lock
            return
        if target.exists():  # an unstamped leftover of an interrupted build
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
