"""The operator's trust boundary on MLModel specs (modelport.operator.policy), rule by rule."""

from __future__ import annotations

from typing import Any

import pytest
from modelport.core.spec import Routing
from modelport.operator import policy
from modelport.operator.settings import OperatorSettings

from tests.operator.conftest import SHA, make_model

OWN_URI = "s3://bucket/artifacts/models/iris/v1.mpa"


def problems(settings: OperatorSettings, **spec: Any) -> list[str]:
    spec.setdefault("artifact", {"uri": OWN_URI, "sha256": SHA})
    return policy.problems(make_model("iris", "team-a", **spec), settings)


def test_what_the_control_api_writes_is_allowed(settings: OperatorSettings) -> None:
    artifact = {"uri": OWN_URI, "sha256": SHA, "keySecretRef": {"name": "mlmodel-iris-key"}}
    assert problems(settings, artifact=artifact, gpu={"count": 1}) == []


def test_another_models_key_secret_is_refused(settings: OperatorSettings) -> None:
    artifact = {"uri": OWN_URI, "sha256": SHA, "keySecretRef": {"name": "mlmodel-other-key"}}
    assert problems(settings, artifact=artifact) == [
        "spec.artifact.keySecretRef.name must be mlmodel-iris-key, not mlmodel-other-key"
    ]


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/artifacts/models/other/v1.mpa",
        "s3://bucket/artifacts/models/iris/../other/v1.mpa",
        "s3://bucket/artifacts/models/iris/sub/v1.mpa",
        "s3://bucket/artifacts/models/iris/",
        "s3://bucket/iris.onnx",
        "file:///data/models/iris/..",
    ],
)
def test_an_artifact_outside_the_models_own_folder_is_refused(
    settings: OperatorSettings, uri: str
) -> None:
    assert problems(settings, artifact={"uri": uri, "sha256": SHA}) == [
        "spec.artifact.uri must be a file directly under .../models/iris/"
    ]


def test_the_artifact_root_pins_the_store(settings: OperatorSettings) -> None:
    rooted = settings.model_copy(update={"artifact_root": "s3://bucket/artifacts/"})
    assert problems(rooted) == []
    elsewhere = {"uri": "s3://mine/models/iris/v1.mpa", "sha256": SHA}
    assert problems(rooted, artifact=elsewhere) == [
        "spec.artifact.uri must be a file directly under s3://bucket/artifacts/models/iris/"
    ]


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("ghcr.io/modelport/runtime-onnx:1.0", True),
        ("registry.local/team/custom:2", True),
        ("registry.local/team-evil/custom:2", False),
        ("ghcr.io/modelport-evil/runtime:1", False),
        ("docker.io/attacker/exfiltrate:latest", False),
        ("mirror.local/exact:3", True),
    ],
)
def test_runtime_images_come_from_the_allowed_registries(
    settings: OperatorSettings, image: str, allowed: bool
) -> None:
    configured = settings.model_copy(
        update={
            "allowed_image_registries": ["registry.local/team"],
            "runtime_images": {"onnx": "mirror.local/exact:3"},
        }
    )
    assert (problems(configured, runtimeImage=image) == []) is allowed


@pytest.mark.parametrize(
    ("ingress", "allowed"),
    [
        ({"host": "iris.team-a.models.example.com"}, True),
        ({"host": "v2.iris.team-a.models.example.com"}, True),
        ({"path": "/api/v1/auth/login"}, True),  # on its own host
        ({"host": "modelport.example.com", "path": "/api/v1/auth/login"}, False),
        ({"host": "other.team-a.models.example.com"}, False),
        ({"host": "eviliris.team-a.models.example.com"}, False),
    ],
)
def test_host_routing_keeps_a_model_on_its_own_host(
    settings: OperatorSettings, ingress: dict[str, str], allowed: bool
) -> None:
    assert (problems(settings, ingress=ingress) == []) is allowed


@pytest.mark.parametrize(
    ("ingress", "allowed"),
    [
        ({"path": "/models/team-a/iris"}, True),
        ({"path": "/models/team-a/iris/v2"}, True),
        ({"host": "models.example.com"}, True),
        ({"path": "/api/v1/auth/login"}, False),
        ({"path": "/models/team-a/iris-other"}, False),
        ({"host": "api.example.com"}, False),
    ],
)
def test_path_routing_keeps_a_model_under_its_own_path(
    settings: OperatorSettings, ingress: dict[str, str], allowed: bool
) -> None:
    paths = settings.model_copy(update={"routing": Routing.PATH})
    assert (problems(paths, ingress=ingress) == []) is allowed


def test_only_the_configured_gpu_tolerations_may_be_repeated(settings: OperatorSettings) -> None:
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert problems(settings, gpu={"count": 1, "tolerations": [gpu]}) == []
    anything = {"operator": "Exists"}
    [problem] = problems(settings, gpu={"count": 1, "tolerations": [gpu, anything]})
    assert problem.startswith("spec.gpu.tolerations may only repeat the configured GPU tolerations")
    assert "{'operator': 'Exists'}" in problem
