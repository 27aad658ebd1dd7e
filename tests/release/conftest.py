"""The distributions under test, built once per test process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.release.dist import Venv, build, install, project_version

#: The extras the clean install takes: the control API, the runtime, the operator, and ONNX so
#: that docs/api.md's quick start can serve a model (no torch, no TensorFlow).
INSTALL_EXTRAS = "api,runtime,operator,onnx"


@dataclass(frozen=True)
class Dists:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """``python -m build`` with no options, as the release runs it: the sdist, then the wheel
    built from that sdist."""
    version = project_version()
    built = build(tmp_path_factory.mktemp("dist"))
    names = [path.name for path in built]
    assert names == [f"modelport-{version}-py3-none-any.whl", f"modelport-{version}.tar.gz"]
    return Dists(wheel=built[0], sdist=built[1])


@pytest.fixture(scope="session")
def clean_install(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A clean virtual environment with the wheel and its dependencies from PyPI."""
    return install(tmp_path_factory.mktemp("clean-install"), f"{dists.wheel}[{INSTALL_EXTRAS}]")
