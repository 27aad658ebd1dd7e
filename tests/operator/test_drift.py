"""Drift detection ignores server defaults and canonical quantities, and catches real edits."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from modelport.operator import drift, manifests
from modelport.operator.settings import OperatorSettings

from tests.operator.conftest import make_model


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("1", Decimal(1)),
        ("2Gi", Decimal(2**31)),
        ("1e3", Decimal(1000)),
        (3, Decimal(3)),
        ("1.5k", Decimal(1500)),
    ],
)
def test_parse_quantity(text: object, value: Decimal) -> None:
    assert drift.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["http", "", "1Qi", None, True, "/tmp"])
def test_not_a_quantity(text: object) -> None:
    assert drift.parse_quantity(text) is None


def as_server_returns(obj: dict[str, Any]) -> dict[str, Any]:
    """Roughly what the API server adds to an applied Deployment."""
    live = copy.deepcopy(obj)
    live["metadata"]["uid"] = "x"
    live["metadata"]["managedFields"] = [{"manager": "modelport-operator"}]
    live["status"] = {"replicas": 1}
    pod = live["spec"]["template"]["spec"]
    pod["dnsPolicy"] = "ClusterFirst"
    container = pod["containers"][0]
    container["terminationMessagePath"] = "/dev/termination-log"
    container["resources"]["requests"]["cpu"] = "0.5"  # canonical forms differ
    container["resources"]["requests"]["memory"] = "1024Mi"
    container["livenessProbe"]["successThreshold"] = 1
    return live


def test_server_defaults_are_not_drift(settings: OperatorSettings) -> None:
    desired = manifests.deployment(make_model(), settings, key_checksum="k")
    assert drift.drifted(desired, as_server_returns(desired)) == []


def test_hand_edits_are_drift(settings: OperatorSettings) -> None:
    desired = manifests.deployment(make_model(), settings, key_checksum="k")
    live = as_server_returns(desired)
    live["spec"]["replicas"] = 7
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
    container = live["spec"]["template"]["spec"]["containers"][0]
    del container["securityContext"]["readOnlyRootFilesystem"]
    live["metadata"]["labels"].pop("modelport.io/model")
    assert drift.drifted(desired, live) == [
        ".metadata.labels.modelport.io/model",
        ".spec.replicas",
        ".spec.template.spec.containers[0].image",
        ".spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem",
    ]


def test_list_length_changes_are_drift(settings: OperatorSettings) -> None:
    desired = manifests.service(make_model())
    live = copy.deepcopy(desired)
    live["spec"]["ports"].append({"name": "debug", "port": 9999})
    assert drift.drifted(desired, live) == [".spec.ports"]


def test_empty_desired_values_may_be_absent(settings: OperatorSettings) -> None:
    assert drift.differences({"a": {}, "b": [], "c": 1}, {"c": 1}) == []
