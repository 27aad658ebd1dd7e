#!/usr/bin/env python3
"""Modelport's release script: one version in every copy, and the images a release pushes.

    python scripts/release.py version                 # the version (pyproject.toml's)
    python scripts/release.py stamp 0.2.0             # write a new version into every copy
    python scripts/release.py check [--tag v0.2.0]    # exit 1 when any copy disagrees
    python scripts/release.py images [--registry R]   # the image references a release pushes
    python scripts/release.py builds [--registry R]   # the same as the release workflow's matrix
    python scripts/release.py chart [--registry R]    # the OCI repository the chart is pushed to

The version in ``pyproject.toml`` is the source: the running code reads it from the installed
package's metadata, and ``stamp`` copies it into the chart's ``version`` and ``appVersion`` (which
the image tags default to); ``check`` also wants a ``## [VERSION]`` section in CHANGELOG.md. The
image names come from one table, ``modelport.core.images``, that the operator's and the chart's
defaults are held to. ``--registry`` replaces registry and prefix together (``ghcr.io/modelport``
by default; a fork would pass ``ghcr.io/<owner>``).

Standard library and PyYAML only; runs from the source tree, nothing needs to be installed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "core"))  # modelport.core from this tree, installed or not

from modelport.core import images  # noqa: E402
from modelport.core.formats import registered  # noqa: E402

PYPROJECT = Path("pyproject.toml")
CHART = Path("charts/modelport/Chart.yaml")
VALUES = Path("charts/modelport/values.yaml")
CHANGELOG = Path("CHANGELOG.md")

#: A release version: plain ``MAJOR.MINOR.PATCH``, the one spelling that PEP 440 (the package),
#: SemVer (the chart) and image tags all accept unchanged.
VERSION_PATTERN = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass(frozen=True)
class Copy:
    """One place the version is written: a file and the line that holds it."""

    path: Path
    #: Matches the whole line; group 1 is everything before the version, group 2 after it.
    line: re.Pattern[str]

    def read(self, root: Path) -> str | None:
        found = self.line.search((root / self.path).read_text())
        return None if found is None else found.group("version")

    def write(self, root: Path, version: str) -> None:
        path = root / self.path
        text, count = self.line.subn(
            lambda m: f"{m.group('head')}{version}{m.group('tail')}", path.read_text(), count=1
        )
        if count != 1:
            raise SystemExit(f"error: no version line in {self.path}")
        path.write_text(text)


def _line(head: str, tail: str = "") -> re.Pattern[str]:
    return re.compile(rf"^(?P<head>{head})(?P<version>[^\"\s]+)(?P<tail>{tail})$", re.MULTILINE)


#: Every copy of the version, pyproject.toml's first (the source).
COPIES: tuple[Copy, ...] = (
    Copy(PYPROJECT, _line(r'version = "', '"')),
    Copy(CHART, _line(r"version: ")),
    Copy(CHART, _line(r'appVersion: "', '"')),
)


def project_version(root: Path = ROOT) -> str:
    """The version in pyproject.toml, the source every copy follows."""
    project: dict[str, Any] = tomllib.loads((root / PYPROJECT).read_text())["project"]
    return str(project["version"])


def stamp(version: str, root: Path = ROOT) -> None:
    """Write `version` into every copy."""
    if not VERSION_PATTERN.match(version):
        raise SystemExit(f"error: {version!r} is not a MAJOR.MINOR.PATCH version")
    for copy in COPIES:
        copy.write(root, version)


def image_references(repository: str, version: str) -> list[str]:
    """Every image reference a release of `version` pushes, in the table's order."""
    return [images.reference(name, version, repository=repository) for name in images.image_names()]


def build_matrix(repository: str, version: str) -> dict[str, list[dict[str, str]]]:
    """The release workflow's build matrix: one entry per Dockerfile target."""
    return {
        "include": [
            {
                "key": build.key,
                "dockerfile": build.dockerfile,
                "target": build.target or "",
                "platforms": ",".join(build.platforms),
                "images": "\n".join(f"{repository}/{name}" for name in build.names),
                "tags": "\n".join(
                    images.reference(n, version, repository=repository) for n in build.names
                ),
            }
            for build in images.BUILDS
        ]
    }


def chart_repository(repository: str) -> str:
    """The OCI repository `helm push` sends the chart to (the chart lands at ``.../modelport``)."""
    return f"oci://{repository}/{images.CHART_REPOSITORY}"


def problems(root: Path = ROOT, *, tag: str | None = None) -> list[str]:
    """Every way the copies and the image defaults disagree with the source; empty when none."""
    version = project_version(root)
    found: list[str] = []
    if not VERSION_PATTERN.match(version):
        found.append(f"{PYPROJECT}: {version!r} is not a MAJOR.MINOR.PATCH version")
    for copy in COPIES:
        copied = copy.read(root)
        if copied != version:
            found.append(f"{copy.path}: {copy.line.pattern!r} reads {copied!r}, not {version!r}")
    if tag is not None and tag != f"v{version}":
        found.append(f"tag {tag!r} does not name version {version} (v{version})")
    if not re.search(rf"^## \[{re.escape(version)}\]", (root / CHANGELOG).read_text(), re.M):
        found.append(f"{CHANGELOG} has no section for {version} (## [{version}])")
    found += _chart_image_problems(root)
    found += _runtime_image_problems()
    found += _dockerfile_problems(root)
    return found


def _chart_image_problems(root: Path) -> list[str]:
    """The chart's image values must spell the table's registry and names and follow appVersion."""
    values: dict[str, Any] = yaml.safe_load((root / VALUES).read_text())
    expected: dict[str, Any] = {
        "global.imageRegistry": "",
        "api.image.registry": images.REGISTRY,
        "api.image.repository": f"{images.PREFIX}/api",
        "api.image.tag": "",
        "api.image.digest": "",
        "operator.image.registry": images.REGISTRY,
        "operator.image.repository": f"{images.PREFIX}/operator",
        "operator.image.tag": "",
        "operator.image.digest": "",
        "models.runtime.registry": images.REGISTRY,
        "models.runtime.repositoryPrefix": images.PREFIX,
        "models.runtime.tag": "",
        "models.runtime.images": {},
    }
    found = []
    for dotted, want in expected.items():
        value: Any = values
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value != want:
            found.append(f"{VALUES}: {dotted} is {value!r}, the release pushes {want!r}")
    return found


def _runtime_image_problems() -> list[str]:
    """Every runtime image the operator can default to is pushed, and nothing else is."""
    defaults = {images.runtime_image_name(s, gpu=g) for s in registered() for g in (False, True)}
    pushed = {name for name in images.image_names() if name.startswith("runtime-")}
    found = [f"the operator defaults to {n}, which no build pushes" for n in defaults - pushed]
    found += [f"a build pushes {n}, which no format is served by" for n in pushed - defaults]
    return sorted(found)


def _dockerfile_problems(root: Path) -> list[str]:
    found = []
    for build in images.BUILDS:
        path = root / build.dockerfile
        if not path.is_file():
            found.append(f"{build.dockerfile}: no such Dockerfile")
        elif build.target is not None and not re.search(
            rf"^FROM\s+\S+\s+AS\s+{re.escape(build.target)}\s*$", path.read_text(), re.M | re.I
        ):
            found.append(f"{build.dockerfile}: no stage named {build.target!r}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/release.py", description="Modelport's version and the images it releases."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the version")
    stamp_cmd = commands.add_parser("stamp", help="write VERSION into every copy")
    stamp_cmd.add_argument("version", metavar="VERSION")
    check_cmd = commands.add_parser("check", help="exit 1 when a copy disagrees")
    check_cmd.add_argument("--tag", help="the git tag being released (vVERSION)")
    for name, text in (
        ("images", "print the image references a release pushes"),
        ("builds", "print the release workflow's build matrix (JSON)"),
        ("chart", "print the OCI repository the chart is pushed to"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "--registry",
            default=images.DEFAULT_REPOSITORY,
            help=f"registry and prefix of the images (default {images.DEFAULT_REPOSITORY})",
        )
    args = parser.parse_args(argv)

    if args.command == "stamp":
        stamp(args.version)
        return 0
    if args.command == "check":
        found = problems(tag=args.tag)
        for problem in found:
            print(f"error: {problem}", file=sys.stderr)
        return 1 if found else 0
    version = project_version()
    if args.command == "version":
        print(version)
    elif args.command == "images":
        print("\n".join(image_references(args.registry.rstrip("/"), version)))
    elif args.command == "builds":
        print(json.dumps(build_matrix(args.registry.rstrip("/"), version), separators=(",", ":")))
    else:
        print(chart_repository(args.registry.rstrip("/")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
