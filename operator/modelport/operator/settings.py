"""The operator's settings: environment variables with the prefix ``MODELPORT_OPERATOR_``.

Built once in :func:`modelport.operator.main.main` and passed down; nothing else reads the
environment. Mappings and lists are given as JSON, e.g.
``MODELPORT_OPERATOR_INGRESS_ANNOTATIONS='{"cert-manager.io/cluster-issuer": "letsencrypt"}'``.
"""

from __future__ import annotations

from typing import Any

from modelport.core.formats import ModelFormat, spec_for
from modelport.core.images import DEFAULT_REPOSITORY, runtime_image_name
from modelport.core.spec import EndpointRule, Routing
from modelport.core.version import VERSION
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_GPU_TOLERATIONS: list[dict[str, Any]] = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
]


class OperatorSettings(BaseSettings):
    """Everything the operator needs to know about the cluster it runs in."""

    model_config = SettingsConfigDict(env_prefix="MODELPORT_OPERATOR_", extra="ignore")

    # --- What to watch -------------------------------------------------------------------------
    namespaces: list[str] = Field(default_factory=list)
    """Namespaces to watch; empty means the whole cluster."""
    namespace: str = "modelport-system"
    """The operator's own namespace (its leader-election Lease lives here)."""
    leader_election: bool = True
    """Hold a Lease before reconciling, so that two replicas never fight."""
    lease_name: str = "modelport-operator"
    lease_duration_seconds: int = Field(default=15, ge=5)
    identity: str | None = None
    """This replica's holder identity; the pod name (``HOSTNAME``) when unset."""
    health_port: int | None = 8081
    """Port of ``/healthz`` (liveness); None turns it off."""
    workers: int = Field(default=16, ge=1)
    """Threads for API calls."""
    retry_delay_seconds: float = Field(default=5.0, gt=0)
    """Delay before retrying a transient failure."""
    resync_seconds: int = Field(default=0, ge=0)
    """Re-apply every model's children this often (0: never); events repair drift anyway."""

    # --- Runtime image -------------------------------------------------------------------------
    image_registry: str = DEFAULT_REPOSITORY
    """Registry and path of the runtime images, ``<image_registry>/runtime-<family>:<tag>``."""
    image_tag: str = VERSION
    """Tag of the runtime images; defaults to this operator's own version."""
    runtime_images: dict[str, str] = Field(default_factory=dict)
    """Overrides per format (``onnx``) or per format on GPU (``onnx-gpu``)."""
    allowed_image_registries: list[str] = Field(default_factory=list)
    """Registry prefixes (``registry.example.com/team``) a model's ``spec.runtimeImage`` may come
    from, besides ``image_registry`` and the images in ``runtime_images``."""
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: list[str] = Field(default_factory=list)

    # --- Resources and placement ---------------------------------------------------------------
    default_requests: dict[str, str] = Field(
        default_factory=lambda: {"cpu": "500m", "memory": "1Gi"}
    )
    default_limits: dict[str, str] = Field(default_factory=lambda: {"memory": "2Gi"})
    tmp_size_limit: str = "2Gi"
    """Size of the memory-backed /tmp, where decrypted bytes may live."""
    cpu_node_selector: dict[str, str] = Field(default_factory=dict)
    gpu_resource: str = "nvidia.com/gpu"
    gpu_node_selector: dict[str, str] = Field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"}
    )
    gpu_tolerations: list[dict[str, Any]] = Field(
        default_factory=lambda: [dict(t) for t in DEFAULT_GPU_TOLERATIONS]
    )
    """Tolerations of GPU pods; a model's ``spec.gpu.tolerations`` may only repeat these."""
    run_as_user: int = 10001

    # --- Ingress -------------------------------------------------------------------------------
    ingress_domain: str = "models.example.com"
    routing: Routing = Routing.HOST
    path_prefix: str = "/models"
    ingress_class: str | None = "nginx"
    ingress_annotations: dict[str, str] = Field(default_factory=dict)
    ingress_tls: bool = True
    ingress_tls_secret: str | None = None
    """Shared certificate Secret; per model ``mlmodel-<name>-tls`` when unset."""

    # --- Network policy ------------------------------------------------------------------------
    network_policy: bool = True
    ingress_controller_namespace: str = "ingress-nginx"
    ingress_controller_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "ingress-nginx"}
    )
    dns_namespace: str = "kube-system"
    dns_pod_labels: dict[str, str] = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    metrics_namespace: str | None = None
    """Namespace allowed to scrape the runtime's /metrics; None allows none."""
    artifact_store_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"])
    """Where the runtime may fetch artifacts from (the S3 endpoint's addresses)."""
    artifact_store_port: int = 443
    control_api_namespace: str | None = None
    """Namespace of the control API, which receives usage reports; None allows no such egress."""
    control_api_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/component": "api"}
    )
    control_api_port: int = 8000

    # --- Artifact store and usage reports ------------------------------------------------------
    artifact_root: str | None = None
    """The control API's artifact store (its ``artifact_uri``, ``s3://bucket/prefix``): a model's
    artifact must lie under ``<artifact_root>/models/<name>/``. Unset: under ``.../models/<name>/``
    of any store."""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_credentials_secret: str | None = None
    """Secret (in the model's namespace) with ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``."""
    service_account_annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations on each model's ServiceAccount, e.g. a workload-identity role."""
    usage_report_url: str | None = None
    usage_token_secret: str | None = None
    """Secret (in the model's namespace) whose key ``token`` authenticates usage reports."""

    @field_validator("path_prefix")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path_prefix must start with /")
        return value.rstrip("/")

    @field_validator("allowed_image_registries")
    @classmethod
    def _no_trailing_slash(cls, value: list[str]) -> list[str]:
        if any(not p.strip("/") for p in value):
            raise ValueError("allowed_image_registries entries must not be empty")
        return [p.rstrip("/") for p in value]

    @model_validator(mode="after")
    def _tls_secret_for_paths(self) -> OperatorSettings:
        if self.routing is Routing.PATH and self.ingress_tls and not self.ingress_tls_secret:
            raise ValueError("path routing with TLS needs ingress_tls_secret (one shared host)")
        return self

    def endpoint_rule(self) -> EndpointRule:
        """Where models are published: the URL rule the control API shares."""
        return EndpointRule(
            domain=self.ingress_domain,
            routing=self.routing,
            path_prefix=self.path_prefix,
            tls=self.ingress_tls,
        )

    def runtime_image(self, fmt: ModelFormat, *, gpu: bool) -> str:
        """The image that serves `fmt`, on a GPU or not."""
        key = f"{fmt.value}-gpu" if gpu else fmt.value
        if key in self.runtime_images:
            return self.runtime_images[key]
        spec = spec_for(fmt)
        if gpu and fmt.value in self.runtime_images and not spec.gpu_image:
            return self.runtime_images[fmt.value]
        name = runtime_image_name(spec, gpu=gpu)
        return f"{self.image_registry}/{name}:{self.image_tag}"

    def allowed_image_prefixes(self) -> list[str]:
        """Registry prefixes a model's ``spec.runtimeImage`` may come from."""
        return [self.image_registry.rstrip("/"), *self.allowed_image_registries]

    def image_allowed(self, image: str) -> bool:
        """Whether a model may run `image`: a configured runtime image, or one under an allowed
        registry prefix (``<prefix>/...``, so ``ghcr.io/modelport`` never admits
        ``ghcr.io/modelport-evil/...``)."""
        if image in self.runtime_images.values():
            return True
        return any(image.startswith(f"{p}/") for p in self.allowed_image_prefixes())
