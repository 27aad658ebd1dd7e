"""The chart's values: documented, listed by the schema, typos rejected, lint clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import values_doc
from tests.chart.helm import CHART_DIR, CI_VALUES, REPO_ROOT, HelmError, helm, template_text

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

#: Schema objects that stand for Kubernetes types passed through as they are; the API server's
#: strict field validation checks their content (tests/chart/test_cluster.py).
PASS_THROUGH = {"nodeAffinity", "podAffinity", "podAntiAffinity", "valueFrom"}


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _schema_paths(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    node = _resolve(node)
    out = [(path, node)]
    for key, child in node.get("properties", {}).items():
        out += _schema_paths(child, f"{path}.{key}" if path else key)
    items = node.get("items")
    if isinstance(items, dict):
        out += _schema_paths(items, f"{path}[]")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out += _schema_paths(extra, f"{path}.*")
    return out


def test_every_value_has_a_doc_comment() -> None:
    rows, undocumented = values_doc.parse(values_doc.VALUES.read_text())
    assert undocumented == []
    assert all(row.description for row in rows)
    assert len(rows) > 100


def test_readme_values_table_is_current() -> None:
    rows, _ = values_doc.parse(values_doc.VALUES.read_text())
    readme = values_doc.README.read_text()
    assert values_doc.readme_with_table(readme, rows) == readme, (
        "charts/modelport/README.md is stale: run `python -m tests.chart.values_doc --write`"
    )


def _leaf_paths(values: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(values, dict) and values:
        out: list[tuple[str, ...]] = []
        for key, value in values.items():
            out += _leaf_paths(value, (*prefix, key))
        return out
    return [prefix]


def _schema_allows(path: tuple[str, ...]) -> bool:
    node: dict[str, Any] = SCHEMA
    for part in path:
        node = _resolve(node)
        properties = node.get("properties", {})
        if part in properties:
            node = properties[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return True


def test_schema_lists_every_value() -> None:
    missing = [".".join(path) for path in _leaf_paths(VALUES) if not _schema_allows(path)]
    assert missing == []


def test_every_schema_object_rejects_unknown_keys() -> None:
    open_objects = [
        path or "<root>"
        for path, node in _schema_paths(SCHEMA)
        if node.get("type") == "object"
        and "additionalProperties" not in node
        and path.rsplit(".", 1)[-1].rstrip("[]") not in PASS_THROUGH
        and not path.endswith("[]")
    ]
    assert open_objects == []
    assert SCHEMA["additionalProperties"] is False


@pytest.mark.parametrize(
    ("key", "misspelt"),
    [
        ("api.replicaCoutn", "replicaCoutn"),
        ("models.ingress.domian", "domian"),
        ("storage.s3.bucekt", "bucekt"),
        ("operator.image.tga", "tga"),
        ("models.runtime.images.onxx", "onxx"),
        ("networkPolicy.enable", "enable"),
        ("crd.enabled", "crd"),
    ],
)
def test_schema_rejects_a_misspelt_key(key: str, misspelt: str) -> None:
    with pytest.raises(HelmError) as caught:
        template_text(set_values={key: "x"})
    assert f"additional properties '{misspelt}' not allowed" in caught.value.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("models.ingress.routing", "subdomain"),
        ("api.signup", "everyone"),
        ("operator.image.pullPolicy", "Sometimes"),
        ("networkPolicy.artifactStore.cidrs[0]", "not-a-cidr"),
        ("api.ingress.path", "no-leading-slash"),
    ],
)
def test_schema_rejects_a_bad_value(key: str, value: str) -> None:
    with pytest.raises(HelmError, match="schema"):
        template_text(set_values={key: value})


@pytest.mark.parametrize(
    "values_file", [None, *CI_VALUES], ids=lambda p: p.name if p else "defaults"
)
def test_helm_lint_is_clean(values_file: Path | None) -> None:
    args = ["lint", str(CHART_DIR), "--strict", "--kube-version", "1.36.3"]
    if values_file is not None:
        args += ["--values", str(values_file)]
    output = helm(*args)
    assert "0 chart(s) failed" in output
    assert "[ERROR]" not in output
    assert "[WARNING]" not in output


def test_chart_crd_is_the_repository_crd() -> None:
    source = REPO_ROOT / "crds" / "mlmodels.modelport.io.yaml"
    copy = CHART_DIR / "files" / "crds" / "mlmodels.modelport.io.yaml"
    assert copy.read_bytes() == source.read_bytes(), (
        "charts/modelport/files/crds/ is out of date: run charts/modelport/hack/sync-crds.sh"
    )
