"""Shared builders for the operator tests."""

from __future__ import annotations

from typing import Any

import pytest
from modelport.core.spec import MLModel
from modelport.operator.settings import OperatorSettings

SHA = "0123456789abcdef" * 4
UID = "6f1c0d3e-3b6a-4a1e-9a51-8c1f0c9e2a77"


def model_manifest(name: str = "iris", namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    """An MLModel manifest as the API server would return it (with uid and generation)."""
    body: dict[str, Any] = {
        "format": "onnx",
        "artifact": {"uri": "s3://artifacts/models/iris/v1.mpa", "sha256": SHA},
    }
    body.update(spec)
    return {
        "apiVersion": "modelport.io/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": name, "namespace": namespace, "uid": UID, "generation": 1},
        "spec": body,
    }


def make_model(name: str = "iris", namespace: str = "team-a", **spec: Any) -> MLModel:
    return MLModel.from_manifest(model_manifest(name, namespace, **spec))


@pytest.fixture
def settings() -> OperatorSettings:
    """Settings independent of the environment the tests run in."""
    return OperatorSettings(
        _env_prefix="MODELPORT_OPERATOR_TEST_UNUSED_",  # type: ignore[call-arg]
        ingress_domain="models.example.com",
        s3_endpoint_url="https://s3.example.com",
        s3_credentials_secret="modelport-s3",
    )
