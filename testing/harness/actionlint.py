"""actionlint, the linter of the GitHub Actions workflows, built from its Go module and cached.

The version is the `require` line of `tools/actionlint/go.mod` (its `go.sum` pins every
dependency). Like the control-plane binaries, the build lives outside the checkout, keyed by
that version, and is renamed into place only once finished, under a file lock:

    ${MODELPORT_CACHE:-${XDG_CACHE_HOME:-~/.cache}/modelport}/actionlint/<version>/actionlint
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from testing.harness.binaries import (
    REPO_ROOT,
    BinariesError,
    locked,
    modelport_cache,
    required_version,
)
from testing.harness.process import die_with_parent

MODULE = "github.com/rhysd/actionlint"
TOOL_DIR = REPO_ROOT / "tools" / "actionlint"


def actionlint_version(tool_dir: Path = TOOL_DIR) -> str:
    """The version `tools/actionlint/go.mod` pins."""
    return required_version((tool_dir / "go.mod").read_text(), MODULE)


def actionlint_path(version: str | None = None) -> Path:
    """Where the binary of `version` (default: the pinned one) is, or will be, cached."""
    return modelport_cache() / "actionlint" / (version or actionlint_version()) / "actionlint"


def ensure_actionlint() -> Path:
    """The pinned actionlint binary, built from the Go module proxy first if it is not cached."""
    target = actionlint_path()
    if target.is_file():
        return target
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    with locked(target.parent.with_name(target.parent.name + ".lock")):
        if not target.is_file():  # another process may have built it while we waited
            _build_into(target)
    return target


def _go() -> str:
    """$GO, else the official toolchain's usual place, else `go` on PATH (as tools/k8s/build.sh)."""
    if found := os.environ.get("GO"):
        return found
    if Path("/usr/local/go/bin/go").is_file():
        return "/usr/local/go/bin/go"
    if found := shutil.which("go"):
        return found
    raise BinariesError("actionlint is built from its Go module, and no Go toolchain was found")


def _build_into(target: Path) -> None:
    scratch = Path(
        tempfile.mkdtemp(prefix=target.parent.name + ".build-", dir=target.parent.parent)
    )
    try:
        # -mod=readonly: go.mod and go.sum are the pins; a build never rewrites them.
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"}
        argv = [_go(), "-C", str(TOOL_DIR), "build", "-trimpath", "-ldflags", "-s -w"]
        argv += ["-o", str(scratch / "actionlint"), f"{MODULE}/cmd/actionlint"]
        result = subprocess.run(
            argv, env=env, capture_output=True, text=True, check=False, preexec_fn=die_with_parent
        )
        if result.returncode != 0:
            raise BinariesError(f"building actionlint failed:\n{result.stderr}")
        if target.parent.exists():  # an unfinished leftover; finished ones hold the binary
            shutil.rmtree(target.parent)
        scratch.rename(target.parent)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
