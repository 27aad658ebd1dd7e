"""Build Modelport's images on this machine, tagged exactly as a release tags them.

    python scripts/images.py                       # every image, for this machine's platform
    python scripts/images.py --only api runtime-sklearn
    python scripts/images.py --base-image localhost/modelport-base:bookworm
    python scripts/images.py --print               # the docker commands, without running them

The builds and their names come from the one image table (`modelport.core.images`) that the
release workflow (`scripts/release.py builds`), the chart and the operator read; the tag is the
package version. The release builds the same Dockerfiles and targets for linux/amd64 and
linux/arm64 with buildx; this script builds for the local platform with `docker build`
(BuildKit), so a cluster without a registry can load the images (`docker save | ctr import`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "core"))

from modelport.core import images  # noqa: E402


def version(root: Path = ROOT) -> str:
    """The package version, read from pyproject.toml as the release reads it."""
    with (root / "pyproject.toml").open("rb") as file:
        project: dict[str, str] = tomllib.load(file)["project"]
    return project["version"]


def commands(
    *, repository: str, tag: str, base_image: str | None, only: Sequence[str] = ()
) -> list[list[str]]:
    """One `docker build` per build of the table, with every name the release pushes it as."""
    known = {build.key for build in images.BUILDS}
    unknown = sorted(set(only) - known)
    if unknown:
        raise SystemExit(f"unknown build {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    out: list[list[str]] = []
    for build in images.BUILDS:
        if only and build.key not in only:
            continue
        command = ["docker", "build", "-f", build.dockerfile]
        if build.target is not None:
            command += ["--target", build.target]
        if base_image:
            command += ["--build-arg", f"PYTHON_IMAGE={base_image}"]
        for name in build.names:
            command += ["-t", images.reference(name, tag, repository=repository)]
        out.append([*command, "."])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", default=images.DEFAULT_REPOSITORY)
    parser.add_argument("--tag", default=None, help="default: the package version")
    parser.add_argument("--base-image", default=None, help="the Dockerfiles' PYTHON_IMAGE")
    parser.add_argument("--only", nargs="*", default=[], help="build keys (api, runtime-gpu, ...)")
    parser.add_argument("--print", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    planned = commands(
        repository=args.repository,
        tag=args.tag or version(),
        base_image=args.base_image,
        only=args.only,
    )
    for command in planned:
        print(shlex.join(command), flush=True)
        if not args.print:
            subprocess.run(
                command, cwd=ROOT, check=True, env={**os.environ, "DOCKER_BUILDKIT": "1"}
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
