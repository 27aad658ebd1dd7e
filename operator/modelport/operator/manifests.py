"""Pure manifest builders: a typed MLModel and the operator's settings in, plain dicts out.

No I/O and no Kubernetes client here (a test enforces it). Every child carries the model's labels
and an owner reference to the MLModel, so the garbage collector deletes it with the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelport.core import constants as c
from modelport.core.spec import MLModel
from modelport.operator.settings import OperatorSettings

#: Pod-template annotation whose change rolls the Deployment when the data key is rotated.
ANNOTATION_KEY_CHECKSUM = f"{c.GROUP}/key-checksum"
COMPONENT_RUNTIME = "runtime"
CONTAINER_NAME = c.RUNTIME_CONTAINER
SERVICE_PORT = 80
KEYS_DIR = "/var/run/modelport/keys"
USAGE_DIR = "/var/run/modelport/usage"
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
#: Where annotation-driven Prometheus scrapes the runtime: its metrics port, which the Service
#: exposes apart from ``http`` and the Ingress never routes.
SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(c.RUNTIME_METRICS_PORT),
    "prometheus.io/path": METRICS_PATH,
}
ENV = c.ENV_PREFIX_RUNTIME


@dataclass(frozen=True)
class ChildKind:
    """A kind of child object: its API group/version and kind."""

    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


SERVICE_ACCOUNT = ChildKind("v1", "ServiceAccount", "serviceaccounts")
DEPLOYMENT = ChildKind("apps/v1", "Deployment", "deployments")
SERVICE = ChildKind("v1", "Service", "services")
INGRESS = ChildKind("networking.k8s.io/v1", "Ingress", "ingresses")
HPA = ChildKind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
PDB = ChildKind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
NETWORK_POLICY = ChildKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")

#: Every kind the operator creates, in the order it applies them.
CHILD_KINDS: tuple[ChildKind, ...] = (
    SERVICE_ACCOUNT,
    NETWORK_POLICY,
    SERVICE,
    DEPLOYMENT,
    PDB,
    HPA,
    INGRESS,
)


@dataclass(frozen=True)
class Children:
    """The desired state: objects to apply, and kinds whose child must not exist."""

    present: list[dict[str, Any]]
    absent: list[ChildKind]


def child_name(model: str) -> str:
    """The name of every child of MLModel `model` (all kinds share it)."""
    return f"mlmodel-{model}"


def selector_labels(model: str) -> dict[str, str]:
    """The labels that select the model's pods (immutable once the Deployment exists)."""
    return {c.LABEL_MODEL: model, c.LABEL_COMPONENT: COMPONENT_RUNTIME}


def selector_string(model: str) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(model).items()))


def common_labels(model: MLModel) -> dict[str, str]:
    return {
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
        **selector_labels(model.metadata.name),
    }


def _metadata(model: MLModel, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": child_name(model.metadata.name),
        "namespace": model.metadata.namespace,
        "labels": common_labels(model),
        "ownerReferences": [model.owner_reference()],
    }
    meta.update({k: v for k, v in extra.items() if v})
    return meta


def _object(kind: ChildKind, metadata: dict[str, Any], **body: Any) -> dict[str, Any]:
    return {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata, **body}


# --- Replicas and URL -------------------------------------------------------------------------


def desired_replicas(model: MLModel) -> int:
    """Replicas the Deployment runs: zero unless active, clamped to the autoscaling range."""
    spec = model.spec
    if not spec.active:
        return 0
    if spec.autoscaling.enabled:
        low, high = spec.autoscaling.min_replicas, spec.autoscaling.max_replicas
        return max(low, min(spec.replicas, high))
    return spec.replicas


def url(model: MLModel, settings: OperatorSettings) -> str | None:
    """The model's public URL, or None while it has no Ingress."""
    if not (model.spec.active and model.spec.ingress.enabled):
        return None
    meta = model.metadata
    return settings.endpoint_rule().url(meta.name, meta.namespace, model.spec.ingress)


# --- ServiceAccount ---------------------------------------------------------------------------


def service_account(model: MLModel, settings: OperatorSettings) -> dict[str, Any]:
    """A per-model identity: no token mounted, workload-identity annotations from settings."""
    meta = _metadata(model, annotations=dict(settings.service_account_annotations))
    return _object(SERVICE_ACCOUNT, meta, automountServiceAccountToken=False)


# --- Deployment -------------------------------------------------------------------------------


def runtime_env(model: MLModel, settings: OperatorSettings) -> list[dict[str, Any]]:
    """The runtime's settings (docs/contracts.md), as container environment variables."""
    spec = model.spec
    values: list[tuple[str, str | None]] = [
        ("MODEL_NAME", model.metadata.name),
        ("ARTIFACT_URI", spec.artifact.uri),
        ("FORMAT", spec.format.value),
        ("SHA256", spec.artifact.sha256),
        ("KEY_FILE", f"{KEYS_DIR}/{c.SECRET_DATA_KEY}" if spec.artifact.key_secret_ref else None),
        ("HOST", "0.0.0.0"),  # noqa: S104 - the pod's own address space
        ("PORT", str(c.RUNTIME_PORT)),
        ("METRICS_HOST", "0.0.0.0"),  # noqa: S104 - scraped in-cluster; no Ingress routes it
        ("METRICS_PORT", str(c.RUNTIME_METRICS_PORT)),
        ("AUTH_KEYS_FILE", f"{KEYS_DIR}/{c.SECRET_AUTH_KEYS}"),
        ("AUTH_REQUIRED", "true" if spec.auth_required else "false"),
        ("RATE_LIMIT_PER_MINUTE", str(spec.rate_limit_per_minute)),
        ("MAX_BATCH_SIZE", str(spec.batching.max_batch_size)),
        ("MAX_BATCH_WAIT_MS", str(spec.batching.max_batch_wait_ms)),
        ("PREDICT_TIMEOUT_SECONDS", _opt_str(spec.predict_timeout_seconds)),
        ("S3_ENDPOINT_URL", settings.s3_endpoint_url),
        ("USAGE_REPORT_URL", settings.usage_report_url),
        ("USAGE_TOKEN_FILE", usage_token_file(model, settings)),
    ]
    env = [{"name": ENV + name, "value": value} for name, value in values if value is not None]
    if settings.s3_region:
        env.append({"name": "AWS_REGION", "value": settings.s3_region})
    return env


def _own_usage_token(model: MLModel, settings: OperatorSettings) -> bool:
    """Reports are authenticated with the model's own token from its key Secret, unless a
    shared token Secret is configured."""
    return bool(
        settings.usage_report_url
        and not settings.usage_token_secret
        and model.spec.artifact.key_secret_ref
    )


def usage_token_file(model: MLModel, settings: OperatorSettings) -> str | None:
    if settings.usage_token_secret:
        return f"{USAGE_DIR}/token"
    if _own_usage_token(model, settings):
        return f"{KEYS_DIR}/{c.SECRET_USAGE_TOKEN}"
    return None


def _opt_str(value: int | None) -> str | None:
    return None if value is None else str(value)


def container_resources(model: MLModel, settings: OperatorSettings) -> dict[str, Any]:
    res = model.spec.resources
    requests = (
        {k: str(v) for k, v in res.requests.items()} if res else dict(settings.default_requests)
    )
    limits = {k: str(v) for k, v in res.limits.items()} if res else dict(settings.default_limits)
    if model.spec.gpu.count > 0:
        limits[settings.gpu_resource] = str(model.spec.gpu.count)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _container(model: MLModel, settings: OperatorSettings) -> dict[str, Any]:
    gpu = model.spec.gpu.count > 0
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": model.spec.runtime_image or settings.runtime_image(model.spec.format, gpu=gpu),
        "imagePullPolicy": settings.image_pull_policy,
        "ports": [
            {"name": "http", "containerPort": c.RUNTIME_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": c.RUNTIME_METRICS_PORT, "protocol": "TCP"},
        ],
        "env": runtime_env(model, settings),
        "resources": container_resources(model, settings),
        # Loading a big model may take minutes; liveness only starts once it is up.
        "startupProbe": _probe(LIVE_PATH, period=5, failures=120),
        "livenessProbe": _probe(LIVE_PATH, period=10, failures=3),
        "readinessProbe": _probe(READY_PATH, period=5, failures=2),
        # A failed start writes its one-line reason here; without one, the log's last lines.
        "terminationMessagePath": c.TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "keys", "mountPath": KEYS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - memory-backed emptyDir
        ],
    }
    if settings.usage_token_secret:
        container["volumeMounts"].append(
            {"name": "usage", "mountPath": USAGE_DIR, "readOnly": True}
        )
    if settings.s3_credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.s3_credentials_secret}}]
    return container


def _volumes(model: MLModel, settings: OperatorSettings) -> list[dict[str, Any]]:
    ref = model.spec.artifact.key_secret_ref
    items = [{"key": c.SECRET_AUTH_KEYS, "path": c.SECRET_AUTH_KEYS}]
    if ref:
        items.insert(0, {"key": c.SECRET_DATA_KEY, "path": c.SECRET_DATA_KEY})
    if _own_usage_token(model, settings):
        items.append({"key": c.SECRET_USAGE_TOKEN, "path": c.SECRET_USAGE_TOKEN})
    keys: dict[str, Any] = {
        "secretName": ref.name if ref else c.key_secret_name(model.metadata.name),
        "defaultMode": 0o440,
        "items": items,
    }
    if ref is None:
        keys["optional"] = True  # unencrypted artifact (tests): only the auth keys, if any
    volumes: list[dict[str, Any]] = [
        {"name": "keys", "secret": keys},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": settings.tmp_size_limit}},
    ]
    if settings.usage_token_secret:
        usage = {"secretName": settings.usage_token_secret, "defaultMode": 0o440}
        volumes.append({"name": "usage", "secret": usage})
    return volumes


def _placement(model: MLModel, settings: OperatorSettings) -> dict[str, Any]:
    gpu = model.spec.gpu
    if gpu.count == 0:
        return (
            {"nodeSelector": dict(settings.cpu_node_selector)} if settings.cpu_node_selector else {}
        )
    tolerations = [dict(t) for t in settings.gpu_tolerations]
    tolerations += [t.wire() for t in gpu.tolerations]
    return {
        "nodeSelector": {**settings.gpu_node_selector, **gpu.node_selector},
        "tolerations": tolerations,
    }


def pod_spec(model: MLModel, settings: OperatorSettings) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": child_name(model.metadata.name),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(model, settings)],
        "volumes": _volumes(model, settings),
        **_placement(model, settings),
    }
    if settings.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in settings.image_pull_secrets]
    return spec


def deployment(
    model: MLModel, settings: OperatorSettings, *, key_checksum: str | None
) -> dict[str, Any]:
    """The runtime pods. `key_checksum` (of the data key) rolls them when the key is rotated."""
    name = model.metadata.name
    annotations = dict(SCRAPE_ANNOTATIONS)
    if key_checksum:
        annotations[ANNOTATION_KEY_CHECKSUM] = key_checksum
    template_meta: dict[str, Any] = {"labels": common_labels(model), "annotations": annotations}
    return _object(
        DEPLOYMENT,
        _metadata(model),
        spec={
            "replicas": desired_replicas(model),
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {"metadata": template_meta, "spec": pod_spec(model, settings)},
        },
    )


# --- Service, Ingress, HPA, PDB, NetworkPolicy ----------------------------------------------


def service(model: MLModel) -> dict[str, Any]:
    """Two ports: ``http`` (the Ingress's backend) and ``metrics`` (scraped in-cluster only)."""
    http = {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
    metrics = {
        "name": "metrics",
        "port": c.RUNTIME_METRICS_PORT,
        "targetPort": "metrics",
        "protocol": "TCP",
    }
    return _object(
        SERVICE,
        _metadata(model),
        spec={
            "type": "ClusterIP",
            "selector": selector_labels(model.metadata.name),
            "ports": [http, metrics],
        },
    )


def ingress(model: MLModel, settings: OperatorSettings) -> dict[str, Any]:
    """Routes the Service's ``http`` port only; metrics stay inside the cluster."""
    rule, overrides = settings.endpoint_rule(), model.spec.ingress
    name, namespace = model.metadata.name, model.metadata.namespace
    host = rule.host(name, namespace, overrides)
    backend = {"service": {"name": child_name(name), "port": {"name": "http"}}}
    path = {"path": rule.path(name, namespace, overrides), "pathType": "Prefix", "backend": backend}
    spec: dict[str, Any] = {"rules": [{"host": host, "http": {"paths": [path]}}]}
    class_name = model.spec.ingress.class_name or settings.ingress_class
    if class_name:
        spec["ingressClassName"] = class_name
    if rule.secure(overrides):
        secret = (
            model.spec.ingress.tls.secret_name
            or settings.ingress_tls_secret
            or f"{child_name(model.metadata.name)}-tls"
        )
        spec["tls"] = [{"hosts": [host], "secretName": secret}]
    meta = _metadata(model, annotations=dict(settings.ingress_annotations))
    return _object(INGRESS, meta, spec=spec)


def horizontal_pod_autoscaler(model: MLModel) -> dict[str, Any]:
    """Scales the MLModel itself (its scale subresource), never the Deployment directly."""
    auto = model.spec.autoscaling
    target = {"type": "Utilization", "averageUtilization": auto.target_cpu_utilization}
    return _object(
        HPA,
        _metadata(model),
        spec={
            "scaleTargetRef": {
                "apiVersion": model.api_version,
                "kind": model.kind,
                "name": model.metadata.name,
            },
            "minReplicas": max(1, auto.min_replicas),
            "maxReplicas": auto.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
        },
    )


def pod_disruption_budget(model: MLModel) -> dict[str, Any]:
    return _object(
        PDB,
        _metadata(model),
        spec={
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(model.metadata.name)},
        },
    )


def _peer(namespace: str, pod_labels: dict[str, str]) -> dict[str, Any]:
    peer: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    if pod_labels:
        peer["podSelector"] = {"matchLabels": dict(pod_labels)}
    return peer


def network_policy(model: MLModel, settings: OperatorSettings) -> dict[str, Any]:
    """In: the ingress controller to the http port, Prometheus (when its namespace is named) to
    the metrics port. Out: DNS, the artifact store and the control API."""
    controller = _peer(
        settings.ingress_controller_namespace, settings.ingress_controller_pod_labels
    )
    ingress = [{"from": [controller], "ports": [{"protocol": "TCP", "port": c.RUNTIME_PORT}]}]
    if settings.metrics_namespace:
        scraper = _peer(settings.metrics_namespace, {})
        metrics = [{"protocol": "TCP", "port": c.RUNTIME_METRICS_PORT}]
        ingress.append({"from": [scraper], "ports": metrics})
    dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    store = {
        "to": [{"ipBlock": {"cidr": cidr}} for cidr in settings.artifact_store_cidrs],
        "ports": [{"protocol": "TCP", "port": settings.artifact_store_port}],
    }
    egress: list[dict[str, Any]] = [
        {"to": [_peer(settings.dns_namespace, settings.dns_pod_labels)], "ports": dns_ports},
        store,
    ]
    if settings.control_api_namespace:
        api = _peer(settings.control_api_namespace, settings.control_api_pod_labels)
        egress.append(
            {"to": [api], "ports": [{"protocol": "TCP", "port": settings.control_api_port}]}
        )
    return _object(
        NETWORK_POLICY,
        _metadata(model),
        spec={
            "podSelector": {"matchLabels": selector_labels(model.metadata.name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    )


# --- Everything -------------------------------------------------------------------------------


def children(model: MLModel, settings: OperatorSettings, *, key_checksum: str | None) -> Children:
    """The full desired state of a model's children."""
    spec = model.spec
    present = [
        service_account(model, settings),
        service(model),
        deployment(model, settings, key_checksum=key_checksum),
    ]
    absent: list[ChildKind] = []
    wanted = {
        NETWORK_POLICY: settings.network_policy,
        PDB: spec.active and spec.min_available_replicas >= 2,
        HPA: spec.active and spec.autoscaling.enabled,
        INGRESS: spec.active and spec.ingress.enabled,
    }
    for kind, want in wanted.items():
        if not want:
            absent.append(kind)
        elif kind is NETWORK_POLICY:
            present.append(network_policy(model, settings))
        elif kind is PDB:
            present.append(pod_disruption_budget(model))
        elif kind is HPA:
            present.append(horizontal_pod_autoscaler(model))
        else:
            present.append(ingress(model, settings))
    order = {k.kind: i for i, k in enumerate(CHILD_KINDS)}
    present.sort(key=lambda obj: order[obj["kind"]])
    return Children(present=present, absent=absent)
