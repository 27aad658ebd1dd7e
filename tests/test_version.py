"""One version and one image table: the package metadata is the source of the version, every copy
agrees with it, and what the chart and the operator default to is exactly what a release pushes."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelport.core.formats import ModelFormat
from modelport.core.images import BUILDS
from modelport.core.version import VERSION
from modelport.operator.settings import OperatorSettings

from tests.chart.helm import env_of, find, pod_specs, render

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "scripts" / "release.py"
#: What `release.py stamp` and `check` read and write, copied into a scratch tree to edit.
RELEASE_TREE = (
    "scripts/release.py",
    "CHANGELOG.md",
    "pyproject.toml",
    "charts/modelport/Chart.yaml",
    "charts/modelport/values.yaml",
    "core/modelport/core",
    "control-api/Dockerfile",
    "operator/Dockerfile",
    "runtime-image/Dockerfile",
)


def release(*args: str, root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "release.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def pushed() -> list[str]:
    """The image references `release.py images` prints for this version."""
    result = release("images")
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A scratch copy of the files the release script reads and stamps."""
    for name in RELEASE_TREE:
        source, target = ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return tmp_path


def operator_defaults(**values: Any) -> OperatorSettings:
    """The operator's settings from `values` alone, whatever the test's environment holds."""
    return OperatorSettings(_env_prefix="MODELPORT_OPERATOR_TEST_UNUSED_", **values)  # type: ignore[call-arg]


def runtime_defaults(settings: OperatorSettings) -> set[str]:
    return {settings.runtime_image(fmt, gpu=gpu) for fmt in ModelFormat for gpu in (False, True)}


# --- One version ------------------------------------------------------------------------------


def test_the_running_code_reports_the_package_version() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert declared == VERSION


def test_the_chart_is_this_version_and_deploys_it() -> None:
    chart = yaml.safe_load((ROOT / "charts" / "modelport" / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == (VERSION, VERSION)


def test_the_operator_pulls_runtime_images_of_its_own_version() -> None:
    assert operator_defaults().image_tag == VERSION


def test_the_release_check_passes_on_this_tree() -> None:
    result = release("check", "--tag", f"v{VERSION}")
    assert result.returncode == 0, result.stderr
    assert release("version").stdout.strip() == VERSION


def test_the_release_check_refuses_a_tag_of_another_version() -> None:
    result = release("check", "--tag", "v999.0.0")
    assert result.returncode == 1
    assert "does not name version" in result.stderr


def test_stamp_writes_every_copy_and_nothing_else(tree: Path) -> None:
    chart_before = (tree / "charts/modelport/Chart.yaml").read_text()
    pyproject_before = (tree / "pyproject.toml").read_text()

    result = release("stamp", "2.3.4", root=tree)
    assert result.returncode == 0, result.stderr
    assert "CHANGELOG.md has no section for 2.3.4" in release("check", root=tree).stderr
    changelog = tree / "CHANGELOG.md"
    changelog.write_text(
        changelog.read_text().replace("## [Unreleased]", "## [2.3.4] - 2027-01-01")
    )

    assert release("check", "--tag", "v2.3.4", root=tree).returncode == 0
    assert release("version", root=tree).stdout.strip() == "2.3.4"
    chart = yaml.safe_load((tree / "charts/modelport/Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == ("2.3.4", "2.3.4")
    # Only the version lines changed: comments and every other line are kept as they were.
    assert (tree / "charts/modelport/Chart.yaml").read_text() == chart_before.replace(
        f"version: {VERSION}\n", "version: 2.3.4\n"
    ).replace(f'appVersion: "{VERSION}"\n', 'appVersion: "2.3.4"\n')
    assert (tree / "pyproject.toml").read_text() == pyproject_before.replace(
        f'\nversion = "{VERSION}"\n', '\nversion = "2.3.4"\n', 1
    )
    assert release("images", root=tree).stdout.split()[0] == "ghcr.io/modelport/api:2.3.4"


@pytest.mark.parametrize("version", ["1.0.0rc1", "1.0", "v1.0.0", "01.0.0", "1.0.0-beta.1"])
def test_stamp_refuses_what_is_not_one_spelling_everywhere(tree: Path, version: str) -> None:
    result = release("stamp", version, root=tree)
    assert result.returncode != 0
    assert "MAJOR.MINOR.PATCH" in result.stderr
    assert release("check", root=tree).returncode == 0  # nothing was written


@pytest.mark.parametrize(
    ("path", "old", "new", "complaint"),
    [
        ("charts/modelport/Chart.yaml", 'appVersion: "', 'appVersion: "9', "Chart.yaml"),
        ("charts/modelport/Chart.yaml", "\nversion: ", "\nversion: 9", "Chart.yaml"),
        ("pyproject.toml", '\nversion = "', '\nversion = "9', "Chart.yaml"),
        ("charts/modelport/values.yaml", "repository: modelport/api", "repository: mp/api", "api"),
        (
            "charts/modelport/values.yaml",
            "repositoryPrefix: modelport",
            "repositoryPrefix: x",
            "models.runtime.repositoryPrefix",
        ),
        ("runtime-image/Dockerfile", "AS keras", "AS tensorflow", "'keras'"),
        ("CHANGELOG.md", f"## [{VERSION}]", f"## {VERSION}", "CHANGELOG.md"),
        ("core/modelport/core/formats/onnx.py", '"runtime-onnx"', '"runtime-ort"', "runtime-ort"),
    ],
)
def test_the_check_catches_each_kind_of_drift(
    tree: Path, path: str, old: str, new: str, complaint: str
) -> None:
    file = tree / path
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new, 1))
    result = release("check", root=tree)
    assert result.returncode == 1
    assert complaint in result.stderr


# --- One image table --------------------------------------------------------------------------


def test_a_release_pushes_every_image_once(pushed: list[str]) -> None:
    assert len(pushed) == len(set(pushed))
    assert all(ref.endswith(f":{VERSION}") for ref in pushed)
    assert {"ghcr.io/modelport/api", "ghcr.io/modelport/operator"} <= {
        ref.rsplit(":", 1)[0] for ref in pushed
    }


def test_the_operator_defaults_to_images_the_release_pushes(pushed: list[str]) -> None:
    runtime = {ref for ref in pushed if "/runtime-" in ref}
    assert runtime_defaults(operator_defaults()) == runtime


def test_the_chart_defaults_to_exactly_the_images_the_release_pushes(pushed: list[str]) -> None:
    manifests = render()
    deployed = {
        container["image"]
        for pod in pod_specs(manifests).values()
        for container in [*pod.get("initContainers", []), *pod["containers"]]
    }
    operator = env_of(
        find(manifests, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]
    )
    settings = operator_defaults(
        image_registry=operator["MODELPORT_OPERATOR_IMAGE_REGISTRY"],
        image_tag=operator["MODELPORT_OPERATOR_IMAGE_TAG"],
        runtime_images=json.loads(operator["MODELPORT_OPERATOR_RUNTIME_IMAGES"]),
    )
    assert deployed | runtime_defaults(settings) == set(pushed)


def test_the_builds_matrix_is_the_images_list(pushed: list[str]) -> None:
    result = release("builds")
    assert result.returncode == 0, result.stderr
    matrix = json.loads(result.stdout)["include"]
    assert [tag for entry in matrix for tag in entry["tags"].split("\n")] == pushed
    assert {entry["key"] for entry in matrix} == {build.key for build in BUILDS}
    assert all(entry["platforms"] == "linux/amd64,linux/arm64" for entry in matrix)


def test_a_registry_override_moves_every_image(pushed: list[str]) -> None:
    moved = release("images", "--registry", "registry.example.com/acme").stdout.split()
    assert moved == [
        ref.replace("ghcr.io/modelport/", "registry.example.com/acme/") for ref in pushed
    ]
    chart = release("chart", "--registry", "registry.example.com/acme").stdout.strip()
    assert chart == "oci://registry.example.com/acme/charts"


def test_tilt_builds_the_runtime_targets_under_the_release_names() -> None:
    """The dev loop tags each CPU runtime target as the release does, so the operator finds it."""
    found = re.search(
        r"^RUNTIME_TARGETS = (\{.*?\n\})", (ROOT / "Tiltfile").read_text(), re.M | re.S
    )
    assert found, "the Tiltfile has no RUNTIME_TARGETS"
    tilt = ast.literal_eval(found.group(1))
    table = {b.target: list(b.names) for b in BUILDS if b.target is not None}
    assert tilt == {target: names for target, names in table.items() if target in tilt}
    assert set(table) - set(tilt) == {"gpu"}  # no GPU in the local clusters Tilt drives
