"""The wheel and sdist a release publishes: built by ``python -m build``, accepted by
``twine check --strict``, holding exactly the ``modelport`` package and its data files."""

from __future__ import annotations

import sys
from email.parser import Parser
from pathlib import Path

import pytest

from tests.release.conftest import Dists
from tests.release.dist import (
    REPO_ROOT,
    SUBPACKAGES,
    build,
    clean_env,
    digests,
    package_sources,
    project,
    project_version,
    run_command,
    sdist_members,
    wheel_members,
)

pytestmark = [pytest.mark.slow]

#: Data files the code reads at run time through importlib.resources or beside its module.
REQUIRED_DATA = (
    "modelport/core/scan/allowlist.toml",
    "modelport/core/scan/keras_allowlist.toml",
    "modelport/core/scan/aten_ops.txt",
    "modelport/api/migrations/env.py",
    "modelport/api/migrations/script.py.mako",
    "modelport/api/web/static/index.html",
    "modelport/api/web/static/app.js",
    "modelport/api/web/static/app.css",
    *(f"modelport/{sub}/py.typed" for sub in SUBPACKAGES),
)


def dist_info(version: str) -> str:
    return f"modelport-{version}.dist-info"


def test_twine_accepts_both_distributions(dists: Dists, tmp_path: Path) -> None:
    twine: list[str | Path] = [sys.executable, "-m", "twine", "check", "--strict"]
    out = run_command([*twine, dists.wheel, dists.sdist], cwd=tmp_path, env=clean_env())
    assert out.count("PASSED") == 2, out


def test_the_wheel_holds_exactly_the_namespace_package(dists: Dists) -> None:
    members = wheel_members(dists.wheel)
    info = dist_info(project_version())
    package = {name for name in members if not name.startswith(f"{info}/")}

    # One top-level name, a namespace package: no modelport/__init__.py would let one source
    # root's copy hide the others when a second distribution adds to it.
    assert {name.split("/")[0] for name in package} == {"modelport"}
    assert "modelport/__init__.py" not in package
    assert {name.split("/")[1] for name in package} == set(SUBPACKAGES)
    # Exactly the source tree's package files, byte for byte, and nothing from tests/,
    # testing/, benchmarks/ or e2e/.
    sources = package_sources()
    assert package == set(sources)
    assert digests({n: members[n] for n in package}) == digests(
        {n: p.read_bytes() for n, p in sources.items()}
    )
    outside = {"tests", "testing", "benchmarks", "e2e", "conftest.py"}
    assert not [name for name in package if outside & set(name.split("/"))]
    assert set(REQUIRED_DATA) <= package
    migrations = [n for n in package if n.startswith("modelport/api/migrations/versions/")]
    assert any(n.endswith(".py") and not n.endswith("/__init__.py") for n in migrations)

    assert {name.removeprefix(f"{info}/") for name in members if name.startswith(info)} == {
        "METADATA",
        "WHEEL",
        "RECORD",
        "entry_points.txt",
    }


def test_the_wheel_metadata_is_the_projects(dists: Dists) -> None:
    members = wheel_members(dists.wheel)
    info = dist_info(project_version())
    metadata = Parser().parsestr(members[f"{info}/METADATA"].decode())
    assert metadata["Name"] == "modelport"
    assert metadata["Version"] == project_version()
    assert metadata["Requires-Python"] == project()["requires-python"]
    assert metadata["License-Expression"] == project()["license"]
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload() == (REPO_ROOT / "README.md").read_text()
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"api", "runtime", "operator", "onnx", "torch", "keras"} <= extras
    # Self-references (modelport[s3]) are expanded: pip need not find modelport on an index.
    assert not [r for r in metadata.get_all("Requires-Dist") or [] if r.startswith("modelport")]

    entry_points = members[f"{info}/entry_points.txt"].decode().splitlines()
    scripts = entry_points[entry_points.index("[console_scripts]") + 1 :]
    declared = project()["scripts"]
    assert isinstance(declared, dict)
    assert {line for line in scripts if line.strip()} == {f"{k} = {v}" for k, v in declared.items()}


def test_the_sdist_holds_the_wheels_sources_and_nothing_else(dists: Dists) -> None:
    members = sdist_members(dists.sdist)
    sources = {path.relative_to(REPO_ROOT).as_posix() for path in package_sources().values()}
    assert sources <= set(members)
    # The project files a build needs; hatchling adds .gitignore, which it reads for excludes.
    assert set(members) - sources <= {"pyproject.toml", "README.md", "PKG-INFO", ".gitignore"}
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= set(members)
    assert members["pyproject.toml"] == (REPO_ROOT / "pyproject.toml").read_bytes()


def test_the_sdist_builds_the_same_wheel_as_the_tree(dists: Dists, tmp_path: Path) -> None:
    """`dists.wheel` was built from the sdist; this one straight from the repository."""
    (from_tree,) = build(tmp_path, "--wheel")
    assert from_tree.name == dists.wheel.name
    assert digests(wheel_members(from_tree)) == digests(wheel_members(dists.wheel))
