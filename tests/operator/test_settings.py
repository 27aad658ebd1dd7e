"""Operator settings from the environment."""

from __future__ import annotations

import pytest
from modelport.core.spec import Routing
from modelport.operator.settings import OperatorSettings
from pydantic import ValidationError


def test_environment_with_json_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_OPERATOR_INGRESS_DOMAIN", "ml.acme.io")
    monkeypatch.setenv("MODELPORT_OPERATOR_NAMESPACES", '["team-a", "team-b"]')
    monkeypatch.setenv("MODELPORT_OPERATOR_RUNTIME_IMAGES", '{"onnx": "r/onnx:2"}')
    monkeypatch.setenv("MODELPORT_OPERATOR_GPU_NODE_SELECTOR", '{"gpu": "a100"}')
    monkeypatch.setenv("MODELPORT_OPERATOR_ROUTING", "host")
    s = OperatorSettings()
    assert s.ingress_domain == "ml.acme.io"
    assert s.namespaces == ["team-a", "team-b"]
    assert s.runtime_images == {"onnx": "r/onnx:2"}
    assert s.gpu_node_selector == {"gpu": "a100"}
    assert s.routing is Routing.HOST


def test_path_routing_with_tls_needs_a_shared_certificate() -> None:
    with pytest.raises(ValidationError, match="ingress_tls_secret"):
        OperatorSettings(routing=Routing.PATH, ingress_tls=True)
    ok = OperatorSettings(routing=Routing.PATH, ingress_tls_secret="wildcard", path_prefix="/m/")
    assert ok.path_prefix == "/m"


def test_path_prefix_must_be_absolute() -> None:
    with pytest.raises(ValidationError, match="path_prefix"):
        OperatorSettings(path_prefix="models")
