"""The chart a release pushes: ``helm package`` of charts/modelport, linted strictly as packaged,
stamped with the package version, and rendering with its default values."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import yaml

from tests.chart.helm import CHART_DIR, helm
from tests.release.dist import project_version

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chart")
    helm("package", str(CHART_DIR), "--destination", str(out))
    (chart,) = out.iterdir()
    return chart


def test_the_package_is_named_and_stamped_with_the_package_version(packaged: Path) -> None:
    version = project_version()
    assert packaged.name == f"modelport-{version}.tgz"
    chart = yaml.safe_load(helm("show", "chart", str(packaged)))
    assert (chart["name"], chart["version"], chart["appVersion"]) == ("modelport", version, version)


def test_the_package_holds_the_chart_without_its_development_helpers(packaged: Path) -> None:
    with tarfile.open(packaged) as archive:
        names = {m.name.removeprefix("modelport/") for m in archive.getmembers() if m.isfile()}
    for required in ("Chart.yaml", "values.yaml", "values.schema.json", "README.md"):
        assert required in names
    sources = {p.relative_to(CHART_DIR).as_posix() for p in CHART_DIR.rglob("*") if p.is_file()}
    shipped = {n for n in sources if n.startswith(("templates/", "files/"))}
    assert shipped <= names
    assert not [n for n in names if n.startswith("hack/")]
    assert names <= sources


def test_helm_lint_strict_accepts_the_packaged_chart(packaged: Path) -> None:
    out = helm("lint", str(packaged), "--strict")
    assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_the_packaged_chart_renders_with_its_default_values(packaged: Path) -> None:
    # As a platform engineer first types it: no --kube-version, no cluster (helm then assumes
    # Kubernetes 1.20, so the chart must not set a kubeVersion that refuses it).
    out = helm("template", "modelport", str(packaged))
    kinds = {doc["kind"] for doc in yaml.safe_load_all(out) if doc}
    expected = {"CustomResourceDefinition", "Deployment", "Service", "ServiceAccount", "Secret"}
    assert expected <= kinds
