"""The images and the Tilt loop agree on the Python they run."""

from __future__ import annotations

import re
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
