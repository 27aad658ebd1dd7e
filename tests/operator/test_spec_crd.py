"""The typed MLModel and the CRD's schema agree field for field; the models parse and refuse."""

from __future__ import annotations

import enum
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelport.core.spec import (
    LifecycleState,
    MLModel,
    MLModelSpec,
    MLModelStatus,
    Phase,
)
from pydantic import BaseModel, ValidationError

from tests.operator.conftest import SHA, model_manifest

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "mlmodels.modelport.io.yaml"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return loaded


def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    return dict(only)


def schema(crd: dict[str, Any]) -> dict[str, Any]:
    return dict(version(crd)["schema"]["openAPIV3Schema"])


def _unwrap(annotation: Any) -> Any:
    """`X | None` → X; Annotated[X, ...] → X."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _compare(model: type[BaseModel], props: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    if set(fields) != set(props):
        problems.append(f"{path}: model {sorted(fields)} != crd {sorted(props)}")
    for alias, field in fields.items():
        if alias not in props:
            continue
        sub = props[alias]
        kind = _unwrap(field.annotation)
        origin = typing.get_origin(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel) and "properties" in sub:
            problems += _compare(kind, sub["properties"], f"{path}.{alias}")
        elif origin is list:
            (item,) = typing.get_args(kind)
            item = _unwrap(item)
            if isinstance(item, type) and issubclass(item, BaseModel):
                problems += _compare(item, sub["items"]["properties"], f"{path}.{alias}[]")
        elif (
            isinstance(kind, type)
            and issubclass(kind, enum.Enum)
            and sorted(e.value for e in kind) != sorted(sub.get("enum", []))
        ):
            problems.append(f"{path}.{alias}: enum differs")
        if "default" in sub and not isinstance(sub["default"], dict | list):
            default = field.default
            default = default.value if isinstance(default, enum.Enum) else default
            if default != sub["default"]:
                problems.append(f"{path}.{alias}: default {default!r} != {sub['default']!r}")
    return problems


def test_spec_matches_the_crd(crd: dict[str, Any]) -> None:
    props = schema(crd)["properties"]["spec"]["properties"]
    assert _compare(MLModelSpec, props, "spec") == []


def test_status_matches_the_crd(crd: dict[str, Any]) -> None:
    props = schema(crd)["properties"]["status"]["properties"]
    assert _compare(MLModelStatus, props, "status") == []


def test_crd_names_subresources_and_columns(crd: dict[str, Any]) -> None:
    assert crd["metadata"]["name"] == "mlmodels.modelport.io"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("MLModel", "mlmodels", ["mlm"])
    v = version(crd)
    assert v["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert v["subresources"]["status"] == {}
    visible = [c["name"] for c in v["additionalPrinterColumns"] if not c.get("priority")]
    assert visible == ["Format", "Phase", "Ready", "URL", "Age"]


def test_every_cel_rule_has_a_message(crd: dict[str, Any]) -> None:
    rules: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            rules.extend(node.get("x-kubernetes-validations", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema(crd))
    assert len(rules) >= 10
    assert all(rule.get("message") for rule in rules)


def test_round_trip() -> None:
    manifest = model_manifest(gpu={"count": 1}, state="inactive")
    model = MLModel.from_manifest(manifest)
    assert model.spec.state is LifecycleState.INACTIVE
    assert model.spec.gpu.count == 1
    again = MLModel.from_manifest(model.to_manifest())
    assert again == model
    assert model.to_manifest()["spec"]["autoscaling"]["targetCPUUtilization"] == 70


def test_status_round_trip_uses_camel_case() -> None:
    st = MLModelStatus(phase=Phase.READY, ready_replicas=2, ready_text="2/2")
    wire = st.wire()
    assert wire["readyReplicas"] == 2 and wire["readyText"] == "2/2"
    assert MLModelStatus.model_validate(wire) == st


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"format": "exe"}, "format"),
        ({"artifact": {"uri": "http://x", "sha256": SHA}}, "s3:// or file://"),
        ({"artifact": {"uri": "s3://b/k", "sha256": "XYZ"}}, "sha256"),
        ({"autoscaling": {"minReplicas": 4, "maxReplicas": 2}}, "maxReplicas must be >="),
        ({"gpu": {"count": -1}}, "count"),
        ({"state": "deleted"}, "state"),
        ({"replicas": -1}, "replicas"),
        ({"surprise": True}, "surprise"),
        ({"ingress": {"path": "no-slash"}}, "path"),
        ({"resources": {"requests": {"cpu": "lots"}}}, "not a quantity"),
    ],
)
def test_invalid_specs_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MLModel.from_manifest(model_manifest(**spec))


def test_long_or_odd_names_are_refused() -> None:
    with pytest.raises(ValidationError):
        MLModel.from_manifest(model_manifest(name="a" * 56))
    with pytest.raises(ValidationError):
        MLModel.from_manifest(model_manifest(name="Has.Dots"))
