"""The images and the Tilt loop agree on the Python they run."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = [
    ROOT / "control-api" / "Dockerfile",
    ROOT / "operator" / "Dockerfile",
    ROOT / "runtime-image" / "Dockerfile",
]


def default_python(dockerfile: Path) -> str:
    found = re.search(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+)-", dockerfile.read_text(), re.M)
    assert found, f"{dockerfile} has no default PYTHON_IMAGE"
    return found.group(1)


def test_every_image_defaults_to_one_python() -> None:
    assert len({default_python(d) for d in DOCKERFILES}) == 1


def test_tilt_syncs_into_the_images_site_packages() -> None:
    """Tilt's live update copies source into the installed package: a wrong Python version in
    the path would sync into a folder that nothing imports."""
    version = default_python(DOCKERFILES[0])
    site = re.search(r"^SITE = '(.+)'$", (ROOT / "Tiltfile").read_text(), re.M)
    assert site, "the Tiltfile names no SITE"
    assert site.group(1) == f"/opt/modelport/lib/python{version}/site-packages/modelport"


def test_the_image_build_script_tags_exactly_what_a_release_pushes() -> None:
    """scripts/images.py (local builds) and scripts/release.py (the release workflow) read one
    table; the tags a local build gives must be the references a release pushes."""
    run = [sys.executable, str(ROOT / "scripts" / "images.py"), "--print"]
    printed = subprocess.run(run, check=True, capture_output=True, text=True).stdout
    commands = [shlex.split(line) for line in printed.splitlines()]
    tags = [c[i + 1] for c in commands for i, word in enumerate(c) if word == "-t"]
    release = [sys.executable, str(ROOT / "scripts" / "release.py"), "images"]
    pushed = subprocess.run(release, check=True, capture_output=True, text=True).stdout.split()
    assert sorted(tags) == sorted(pushed)
    for command in commands:
        dockerfile = command[command.index("-f") + 1]
        assert (ROOT / dockerfile).is_file()
        if "--target" in command:
            target = command[command.index("--target") + 1]
            stages = re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / dockerfile).read_text(), re.M)
            assert target in stages, (dockerfile, target)


def test_the_image_build_script_passes_the_base_image_and_tag() -> None:
    run = [sys.executable, str(ROOT / "scripts" / "images.py"), "--print", "--only", "api"]
    run += ["--base-image", "localhost/modelport-base:bookworm", "--tag", "9.9.9"]
    printed = subprocess.run(run, check=True, capture_output=True, text=True).stdout.splitlines()
    assert len(printed) == 1
    command = shlex.split(printed[0])
    assert "PYTHON_IMAGE=localhost/modelport-base:bookworm" in command
    assert command[command.index("-t") + 1].endswith("/api:9.9.9")
