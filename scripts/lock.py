#!/usr/bin/env python3
"""Compile the images' dependency locks: requirements/<target>.lock for each target in
requirements/targets.toml, pinned with hashes, for the images' Python on linux x86_64 and aarch64.

    python scripts/lock.py                    # every target
    python scripts/lock.py runtime-sklearn    # the named targets only

Each target is resolved once per architecture with `uv pip compile --python-platform`; pins that
agree are written once, pins that differ are written twice with a `platform_machine` marker, so
one lock serves both architectures of the release build. Needs uv (on PATH, or $UV) and the
package index; a target whose resolution fails keeps its previous lock and the script exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"
TARGETS_FILE = REQUIREMENTS / "targets.toml"
# The images' Python: tests/test_images.py keeps every Dockerfile's default on one version.
PYTHON = "3.11"
# The images' base (Debian bookworm) has glibc 2.36: wheels built for it or anything older run.
PLATFORMS = {"x86_64": "x86_64-manylinux_2_36", "aarch64": "aarch64-manylinux_2_36"}
INPUTS_PREFIX = "# inputs: "
COMMAND_PREFIX = "#    python scripts/lock.py "


@dataclass(frozen=True)
class Target:
    """One image's dependency set: what its Dockerfile stage installs."""

    name: str
    dockerfile: str
    stage: str
    extras: tuple[str, ...]
    requirements: tuple[str, ...] = ()
    torch_backend: str | None = None

    @property
    def lock(self) -> Path:
        return REQUIREMENTS / f"{self.name}.lock"

    def inputs(self) -> dict[str, Any]:
        """What the lock was compiled from, recorded in its header."""
        return {
            "extras": list(self.extras),
            "requirements": list(self.requirements),
            "torch-backend": self.torch_backend,
        }


def load_targets(path: Path = TARGETS_FILE) -> dict[str, Target]:
    table = tomllib.loads(path.read_text())
    return {
        name: Target(
            name=name,
            dockerfile=entry["dockerfile"],
            stage=entry["stage"],
            extras=tuple(entry["extras"]),
            requirements=tuple(entry.get("requirements", ())),
            torch_backend=entry.get("torch-backend"),
        )
        for name, entry in table.items()
    }


@dataclass(frozen=True)
class Pin:
    """One pinned distribution in a lock."""

    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]


PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)\s*(?:;(?P<marker>[^-]+))?"
)


def read_lock(path: Path) -> list[Pin]:
    """The pins of a requirements file written by this script (comments and `# via` dropped)."""
    logical = re.sub(r"\\\n", " ", re.sub(r"(?m)\s*#.*$", "", path.read_text()))
    pins = []
    for line in filter(None, (raw.strip() for raw in logical.splitlines())):
        found = PIN.match(line)
        if found is None:
            raise ValueError(f"{path.name}: not an exact pin: {line[:80]!r}")
        marker = found["marker"].strip() if found["marker"] else None
        hashes = tuple(re.findall(r"--hash=(\S+)", line))
        pins.append(Pin(canonical(found["name"]), found["version"], marker, hashes))
    return pins


def canonical(name: str) -> str:
    """A distribution name as package indexes compare them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def uv_command(target: Target, platform: str) -> list[str]:
    """The resolution of one target for one platform (requirements come on standard input)."""
    command = ["uv", "pip", "compile", "pyproject.toml", "-"]
    for extra in target.extras:
        command += ["--extra", extra]
    command += ["--python-version", PYTHON, "--python-platform", platform]
    if target.torch_backend:
        command += ["--torch-backend", target.torch_backend]
    return [*command, "--generate-hashes", "--no-header", "--quiet"]


def resolve(target: Target, platform: str, uv: str) -> str:
    done = subprocess.run(
        [uv, *uv_command(target, platform)[1:]],
        input="".join(f"{requirement}\n" for requirement in target.requirements),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{target.name} ({platform}): {done.stderr.strip()}")
    # Name the requirements' real source instead of standard input.
    return done.stdout.replace("-r -", f"{TARGETS_FILE.relative_to(ROOT)} [{target.name}]")


def entries(resolution: str) -> dict[str, str]:
    """Split uv's output into one block per pinned package: the pin, its hashes, its `# via`."""
    found: dict[str, str] = {}
    name = ""
    for line in resolution.splitlines(keepends=True):
        if line.strip() and not line.startswith((" ", "#")):
            name = canonical(re.split(r"[=<>!~;\[ ]", line, maxsplit=1)[0])
            found[name] = ""
        if name:
            found[name] += line
    return found


def with_marker(block: str, machine: str) -> str:
    pin, _, rest = block.partition(" \\\n")
    return f"{pin} ; platform_machine == '{machine}' \\\n{rest}"


def merge(resolutions: dict[str, str]) -> str:
    """One requirements text for every machine: a pin that differs carries its machine's marker."""
    per_machine = {machine: entries(text) for machine, text in resolutions.items()}
    names = sorted(set().union(*per_machine.values()))
    merged: list[str] = []
    for name in names:
        blocks = {machine: found.get(name) for machine, found in per_machine.items()}
        if len(set(blocks.values())) == 1:
            merged.append(str(blocks[next(iter(blocks))]))
        else:
            merged += [with_marker(b, m) for m, b in blocks.items() if b is not None]
    return "".join(merged)


def header(target: Target, uv_version: str) -> str:
    shown = " ".join(uv_command(target, "{" + ",".join(PLATFORMS.values()) + "}")[:-1])
    return (
        f"# {target.dockerfile} (stage {target.stage}) installs this with\n"
        f"# `pip install --require-hashes --no-deps -r`. Generated, do not edit; regenerate with:\n"
        f"{COMMAND_PREFIX}{target.name}\n"
        f"{INPUTS_PREFIX}{json.dumps(target.inputs())}\n"
        f"# resolved by {uv_version} for Python {PYTHON}, one run per platform:\n"
        f"#    {shown}\n"
    )


def lock(target: Target, uv: str, uv_version: str) -> None:
    resolutions = {m: resolve(target, platform, uv) for m, platform in PLATFORMS.items()}
    target.lock.write_text(header(target, uv_version) + merge(resolutions))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="target names (default: all)")
    args = parser.parse_args(argv)
    targets = load_targets()
    unknown = sorted(set(args.targets) - set(targets))
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {sorted(targets)}")
    uv = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    uv_version = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True)
    failed = 0
    for name in args.targets or targets:
        try:
            lock(targets[name], uv, uv_version.stdout.strip())
        except RuntimeError as error:
            print(f"lock: {error}", file=sys.stderr)
            failed += 1
        else:
            print(f"lock: wrote {targets[name].lock.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
