"""The pure manifest builders, checked with whole-dict equality."""

from __future__ import annotations

from typing import Any

import pytest
from modelport.core.formats import ModelFormat
from modelport.core.spec import Routing
from modelport.core.version import VERSION
from modelport.operator import manifests as m
from modelport.operator.settings import OperatorSettings

from tests.operator.conftest import SHA, UID, make_model

LABELS = {
    "app.kubernetes.io/managed-by": "modelport",
    "modelport.io/model": "iris",
    "modelport.io/component": "runtime",
}
SELECTOR = {"modelport.io/model": "iris", "modelport.io/component": "runtime"}
OWNER = {
    "apiVersion": "modelport.io/v1alpha1",
    "kind": "MLModel",
    "name": "iris",
    "uid": UID,
    "controller": True,
    "blockOwnerDeletion": True,
}


def meta(**extra: Any) -> dict[str, Any]:
    return {
        "name": "mlmodel-iris",
        "namespace": "team-a",
        "labels": LABELS,
        "ownerReferences": [OWNER],
        **extra,
    }


def probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def test_deployment_of_an_encrypted_cpu_model(settings: OperatorSettings) -> None:
    model = make_model(
        artifact={
            "uri": "s3://artifacts/models/iris/v1.mpa",
            "sha256": SHA,
            "keySecretRef": {"name": "mlmodel-iris-key"},
        },
        rateLimitPerMinute=60,
        batching={"maxBatchSize": 8, "maxBatchWaitMs": 5},
        predictTimeoutSeconds=30,
        replicas=2,
    )
    env = "MODELPORT_RUNTIME_"
    expected = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(),
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": SELECTOR},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": LABELS,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": "9090",
                        "prometheus.io/path": "/metrics",
                        "modelport.io/key-checksum": "abc123",
                    },
                },
                "spec": {
                    "serviceAccountName": "mlmodel-iris",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "runtime",
                            "image": f"ghcr.io/modelport/runtime-onnx:{VERSION}",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [
                                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                            ],
                            "env": [
                                {"name": env + "MODEL_NAME", "value": "iris"},
                                {
                                    "name": env + "ARTIFACT_URI",
                                    "value": "s3://artifacts/models/iris/v1.mpa",
                                },
                                {"name": env + "FORMAT", "value": "onnx"},
                                {"name": env + "SHA256", "value": SHA},
                                {
                                    "name": env + "KEY_FILE",
                                    "value": "/var/run/modelport/keys/data-key",
                                },
                                {"name": env + "HOST", "value": "0.0.0.0"},
                                {"name": env + "PORT", "value": "8080"},
                                {"name": env + "METRICS_HOST", "value": "0.0.0.0"},
                                {"name": env + "METRICS_PORT", "value": "9090"},
                                {
                                    "name": env + "AUTH_KEYS_FILE",
                                    "value": "/var/run/modelport/keys/auth-keys.json",
                                },
                                {"name": env + "AUTH_REQUIRED", "value": "true"},
                                {"name": env + "RATE_LIMIT_PER_MINUTE", "value": "60"},
                                {"name": env + "MAX_BATCH_SIZE", "value": "8"},
                                {"name": env + "MAX_BATCH_WAIT_MS", "value": "5"},
                                {"name": env + "PREDICT_TIMEOUT_SECONDS", "value": "30"},
                                {
                                    "name": env + "S3_ENDPOINT_URL",
                                    "value": "https://s3.example.com",
                                },
                            ],
                            "envFrom": [{"secretRef": {"name": "modelport-s3"}}],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "1Gi"},
                                "limits": {"memory": "2Gi"},
                            },
                            "startupProbe": probe("/v2/health/live", 5, 120),
                            "livenessProbe": probe("/v2/health/live", 10, 3),
                            "readinessProbe": probe("/v2/health/ready", 5, 2),
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "securityContext": {
                                "runAsNonRoot": True,
                                "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "volumeMounts": [
                                {
                                    "name": "keys",
                                    "mountPath": "/var/run/modelport/keys",
                                    "readOnly": True,
                                },
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "keys",
                            "secret": {
                                "secretName": "mlmodel-iris-key",
                                "defaultMode": 0o440,
                                "items": [
                                    {"key": "data-key", "path": "data-key"},
                                    {"key": "auth-keys.json", "path": "auth-keys.json"},
                                ],
                            },
                        },
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}},
                    ],
                },
            },
        },
    }
    assert m.deployment(model, settings, key_checksum="abc123") == expected


def test_unencrypted_model_mounts_only_the_auth_keys_and_tolerates_no_secret(
    settings: OperatorSettings,
) -> None:
    dep = m.deployment(make_model(), settings, key_checksum=None)
    pod = dep["spec"]["template"]
    assert "modelport.io/key-checksum" not in pod["metadata"]["annotations"]
    keys = pod["spec"]["volumes"][0]["secret"]
    assert keys == {
        "secretName": "mlmodel-iris-key",
        "defaultMode": 0o440,
        "items": [{"key": "auth-keys.json", "path": "auth-keys.json"}],
        "optional": True,
    }
    names = [e["name"] for e in pod["spec"]["containers"][0]["env"]]
    assert "MODELPORT_RUNTIME_KEY_FILE" not in names


def test_gpu_model_gets_gpu_limits_placement_and_image(settings: OperatorSettings) -> None:
    model = make_model(
        format="pt",
        gpu={
            "count": 2,
            "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A10G"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml"}],
        },
        resources={"requests": {"cpu": 2, "memory": "8Gi"}, "limits": {"memory": "16Gi"}},
    )
    pod = m.deployment(model, settings, key_checksum=None)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == f"ghcr.io/modelport/runtime-torch-gpu:{VERSION}"
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "8Gi"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "2"},
    }
    assert pod["nodeSelector"] == {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "NVIDIA-A10G",
    }
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Equal", "value": "ml"},
    ]


def test_cpu_model_has_no_gpu_placement(settings: OperatorSettings) -> None:
    pod = m.deployment(make_model(), settings, key_checksum=None)["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod
    assert "tolerations" not in pod
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"].get("limits", {})


@pytest.mark.parametrize(
    ("fmt", "gpu", "image"),
    [
        ("pkl", False, f"ghcr.io/modelport/runtime-sklearn:{VERSION}"),
        ("joblib", True, f"ghcr.io/modelport/runtime-sklearn:{VERSION}"),
        ("h5", True, f"ghcr.io/modelport/runtime-keras:{VERSION}"),
        ("keras", False, f"ghcr.io/modelport/runtime-keras:{VERSION}"),
        ("onnx", False, f"ghcr.io/modelport/runtime-onnx:{VERSION}"),
        ("pth", False, f"ghcr.io/modelport/runtime-torch:{VERSION}"),
    ],
)
def test_image_by_format_and_gpu(
    settings: OperatorSettings, fmt: str, gpu: bool, image: str
) -> None:
    assert settings.runtime_image(ModelFormat(fmt), gpu=gpu) == image


def test_image_map_override_and_spec_override(settings: OperatorSettings) -> None:
    custom = settings.model_copy(update={"runtime_images": {"onnx-gpu": "r/onnx-cuda:1"}})
    assert custom.runtime_image(ModelFormat.ONNX, gpu=True) == "r/onnx-cuda:1"
    assert custom.runtime_image(ModelFormat.ONNX, gpu=False).endswith(f"runtime-onnx:{VERSION}")
    model = make_model(runtimeImage="registry.local/mine:2")
    dep = m.deployment(model, custom, key_checksum=None)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/mine:2"


def test_service(settings: OperatorSettings) -> None:
    assert m.service(make_model()) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(),
        "spec": {
            "type": "ClusterIP",
            "selector": SELECTOR,
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"},
            ],
        },
    }


def test_host_based_ingress_with_tls(settings: OperatorSettings) -> None:
    custom = settings.model_copy(
        update={"ingress_annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}}
    )
    assert m.ingress(make_model(), custom) == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta(annotations={"cert-manager.io/cluster-issuer": "letsencrypt"}),
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "iris.team-a.models.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": "mlmodel-iris", "port": {"name": "http"}}
                                },
                            }
                        ]
                    },
                }
            ],
            "tls": [
                {"hosts": ["iris.team-a.models.example.com"], "secretName": "mlmodel-iris-tls"}
            ],
        },
    }
    assert m.url(make_model(), custom) == "https://iris.team-a.models.example.com"


def test_path_based_ingress_shares_one_host_and_certificate(settings: OperatorSettings) -> None:
    custom = settings.model_copy(
        update={"routing": Routing.PATH, "ingress_tls_secret": "wildcard", "ingress_class": None}
    )
    spec = m.ingress(make_model(), custom)["spec"]
    assert "ingressClassName" not in spec
    assert spec["rules"][0]["host"] == "models.example.com"
    assert spec["rules"][0]["http"]["paths"][0]["path"] == "/models/team-a/iris"
    assert spec["tls"] == [{"hosts": ["models.example.com"], "secretName": "wildcard"}]
    assert m.url(make_model(), custom) == "https://models.example.com/models/team-a/iris"


def test_spec_ingress_overrides(settings: OperatorSettings) -> None:
    model = make_model(
        ingress={"host": "iris.acme.io", "className": "traefik", "tls": {"enabled": False}}
    )
    spec = m.ingress(model, settings)["spec"]
    assert spec["ingressClassName"] == "traefik"
    assert spec["rules"][0]["host"] == "iris.acme.io"
    assert "tls" not in spec
    assert m.url(model, settings) == "http://iris.acme.io"


def test_hpa_scales_the_mlmodel(settings: OperatorSettings) -> None:
    model = make_model(autoscaling={"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilization": 55})
    assert m.horizontal_pod_autoscaler(model) == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "modelport.io/v1alpha1",
                "kind": "MLModel",
                "name": "iris",
            },
            "minReplicas": 2,
            "maxReplicas": 6,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 55},
                    },
                }
            ],
        },
    }


def test_network_policy(settings: OperatorSettings) -> None:
    custom = settings.model_copy(
        update={
            "artifact_store_cidrs": ["10.20.0.0/16"],
            "control_api_namespace": "modelport",
            "metrics_namespace": "monitoring",
        }
    )
    assert m.network_policy(make_model(), custom) == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(),
        "spec": {
            "podSelector": {"matchLabels": SELECTOR},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                            },
                            "podSelector": {
                                "matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}
                            },
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 8080}],
                },
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                            }
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 9090}],
                },
            ],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {
                    "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                },
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "modelport"}
                            },
                            "podSelector": {"matchLabels": {"app.kubernetes.io/component": "api"}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 8000}],
                },
            ],
        },
    }


def test_service_account_carries_workload_identity(settings: OperatorSettings) -> None:
    role = {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/models"}
    custom = settings.model_copy(update={"service_account_annotations": role})
    assert m.service_account(make_model(), custom) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(annotations=role),
        "automountServiceAccountToken": False,
    }


def kinds(children: m.Children) -> tuple[list[str], list[str]]:
    return [o["kind"] for o in children.present], [k.kind for k in children.absent]


def test_active_model_children(settings: OperatorSettings) -> None:
    present, absent = kinds(m.children(make_model(), settings, key_checksum=None))
    assert present == [
        "ServiceAccount",
        "NetworkPolicy",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
    ]
    assert absent == ["PodDisruptionBudget"]


def test_pdb_only_from_two_replicas(settings: OperatorSettings) -> None:
    model = make_model(autoscaling={"minReplicas": 2, "maxReplicas": 4})
    present, _ = kinds(m.children(model, settings, key_checksum=None))
    assert "PodDisruptionBudget" in present
    assert m.pod_disruption_budget(model)["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": SELECTOR},
    }


@pytest.mark.parametrize("state", ["inactive", "archived"])
def test_inactive_model_scales_to_zero_without_ingress_or_hpa(
    settings: OperatorSettings, state: str
) -> None:
    model = make_model(state=state, autoscaling={"minReplicas": 2, "maxReplicas": 4})
    children = m.children(model, settings, key_checksum=None)
    present, absent = kinds(children)
    assert present == ["ServiceAccount", "NetworkPolicy", "Service", "Deployment"]
    assert sorted(absent) == ["HorizontalPodAutoscaler", "Ingress", "PodDisruptionBudget"]
    deployment = next(o for o in children.present if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 0
    assert m.url(model, settings) is None


@pytest.mark.parametrize(
    ("replicas", "autoscaling", "expected"),
    [
        (1, {"minReplicas": 1, "maxReplicas": 3}, 1),
        (5, {"minReplicas": 1, "maxReplicas": 3}, 3),
        (1, {"minReplicas": 2, "maxReplicas": 3}, 2),
        (5, {"enabled": False, "minReplicas": 1, "maxReplicas": 3}, 5),
        (0, {"enabled": False}, 0),
    ],
)
def test_desired_replicas(replicas: int, autoscaling: dict[str, Any], expected: int) -> None:
    assert m.desired_replicas(make_model(replicas=replicas, autoscaling=autoscaling)) == expected


def test_no_network_policy_when_disabled(settings: OperatorSettings) -> None:
    custom = settings.model_copy(update={"network_policy": False})
    present, absent = kinds(m.children(make_model(), custom, key_checksum=None))
    assert "NetworkPolicy" not in present
    assert "NetworkPolicy" in absent


def test_owner_reference_needs_a_uid() -> None:
    model = make_model()
    meta = model.metadata.model_copy(update={"uid": None})
    anonymous = model.model_copy(update={"metadata": meta})
    with pytest.raises(ValueError, match="uid"):
        anonymous.owner_reference()
