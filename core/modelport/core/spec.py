"""The typed ``MLModel`` custom resource: spec, status and the object that carries them.

The operator and the control API share these models. Field names are snake_case in Python and
camelCase on the wire, exactly as ``crds/mlmodels.modelport.io.yaml`` declares them; every model
forbids unknown fields, so a field the CRD gains must be added here too (a test checks that the two
agree). Defaults mirror the CRD's defaults, so a spec parsed from a manifest the API server never
saw reads the same as one it defaulted.

    model = MLModel.from_manifest(body)      # a dict from the API server
    manifest = model.to_manifest()           # a dict to apply

The one rule for where a model is published (:class:`EndpointRule`, host or path routing) lives
here too: the operator's Ingress and status URL and the control API's endpoint URL all read it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from modelport.core.constants import GROUP, VERSION
from modelport.core.formats import ModelFormat
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

API_VERSION = f"{GROUP}/{VERSION}"

#: Longest MLModel name: child names add the ``mlmodel-`` prefix and must stay DNS labels.
MAX_NAME_LENGTH = 55
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
HOST_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
URI_SCHEMES = ("s3://", "file://")

QUANTITY_PATTERN = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"


def _quantity(value: str | int) -> str | int:
    if isinstance(value, str) and not re.match(QUANTITY_PATTERN, value):
        raise ValueError(f"{value!r} is not a quantity such as 500m or 2Gi")
    if isinstance(value, int) and value < 0:
        raise ValueError("quantities must not be negative")
    return value


#: A Kubernetes resource quantity such as ``500m``, ``2Gi`` or ``1``.
Quantity = Annotated[str | int, Field(union_mode="left_to_right"), AfterValidator(_quantity)]


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python, nothing unknown accepted."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        frozen=True,
    )

    def wire(self) -> dict[str, Any]:
        """The camelCase dict, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class LifecycleState(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    ARCHIVED = "archived"


class Phase(enum.StrEnum):
    PENDING = "Pending"
    DEPLOYING = "Deploying"
    READY = "Ready"
    FAILED = "Failed"
    INACTIVE = "Inactive"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class SecretRef(_Model):
    """The per-model Secret holding the data key (and the inference keys file)."""

    name: str = Field(min_length=1, max_length=253)


class Artifact(_Model):
    uri: str = Field(min_length=1, max_length=2048)
    """``s3://bucket/key`` or ``file:///abs/path`` of the stored (encrypted) artifact."""
    sha256: str = Field(pattern=SHA256_PATTERN)
    """Hex sha256 of the plaintext model file."""
    size: int | None = Field(default=None, ge=0)
    """Plaintext size in bytes, when known."""
    key_secret_ref: SecretRef | None = None
    """The Secret with the data key; unset means the artifact is stored unencrypted."""

    @model_validator(mode="after")
    def _known_scheme(self) -> Self:
        if not self.uri.startswith(URI_SCHEMES):
            raise ValueError("artifact.uri must start with s3:// or file://")
        return self


class ResourceRequirements(_Model):
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class Toleration(_Model):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class Gpu(_Model):
    count: int = Field(default=0, ge=0, le=16)
    """GPUs per replica; more than zero places the model on GPU nodes with the GPU image."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Added to the operator's GPU node selector."""
    tolerations: list[Toleration] = Field(default_factory=list)
    """Added to the operator's GPU tolerations."""


class Autoscaling(_Model):
    enabled: bool = True
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=3, ge=1)
    target_cpu_utilization: int = Field(default=70, ge=1, le=100, alias="targetCPUUtilization")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError("autoscaling.maxReplicas must be >= autoscaling.minReplicas")
        return self


class IngressTls(_Model):
    enabled: bool = True
    secret_name: str | None = None
    """Certificate Secret; the operator's setting (or ``mlmodel-<name>-tls``) when unset."""


class Ingress(_Model):
    enabled: bool = True
    host: str | None = Field(default=None, max_length=253, pattern=HOST_PATTERN)
    """Overrides the generated host (``<model>.<namespace>.<domain>``)."""
    path: str | None = Field(default=None, max_length=512, pattern=r"^/")
    """Overrides the generated path in path-based routing; starts with ``/``."""
    class_name: str | None = None
    """Overrides the operator's ingress class."""
    tls: IngressTls = Field(default_factory=IngressTls)


class Batching(_Model):
    max_batch_size: int = Field(default=1, ge=1, le=4096)
    """1 turns adaptive batching off."""
    max_batch_wait_ms: int = Field(default=0, ge=0, le=60_000)


class MLModelSpec(_Model):
    format: ModelFormat
    artifact: Artifact
    owner: str | None = None
    runtime_image: str | None = None
    """Overrides the image the operator picks by format and GPU."""
    resources: ResourceRequirements | None = None
    """The runtime container's resources; the operator's defaults when unset."""
    gpu: Gpu = Field(default_factory=Gpu)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    replicas: int = Field(default=1, ge=0)
    """Desired replicas; the scale subresource (and so the HPA) writes it."""
    ingress: Ingress = Field(default_factory=Ingress)
    auth_required: bool = True
    rate_limit_per_minute: int = Field(default=0, ge=0)
    """Default per-key limit; 0 = unlimited."""
    predict_timeout_seconds: int | None = Field(default=None, ge=1)
    batching: Batching = Field(default_factory=Batching)
    state: LifecycleState = LifecycleState.ACTIVE

    @property
    def active(self) -> bool:
        return self.state is LifecycleState.ACTIVE

    @property
    def min_available_replicas(self) -> int:
        """The fewest replicas the model runs with while active."""
        if self.autoscaling.enabled:
            return self.autoscaling.min_replicas
        return self.replicas


class Condition(_Model):
    type: str
    status: ConditionStatus
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: int | None = None


class MLModelStatus(_Model):
    phase: Phase = Phase.PENDING
    reason: str | None = None
    """Why the model is not Ready (Unschedulable, ImagePullBackOff, CrashLoopBackOff, ...)."""
    message: str | None = None
    url: str | None = None
    replicas: int = 0
    ready_replicas: int = 0
    ready_text: str = "0/0"
    """``ready/desired`` for ``kubectl get``."""
    selector: str | None = None
    """Label selector of the model's pods, for the scale subresource."""
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class ObjectMeta(_Model):
    """The part of ``metadata`` Modelport reads and writes."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class MLModel(_Model):
    api_version: Literal["modelport.io/v1alpha1"] = "modelport.io/v1alpha1"
    kind: Literal["MLModel"] = "MLModel"
    metadata: ObjectMeta
    spec: MLModelSpec
    status: MLModelStatus | None = None

    @classmethod
    def from_manifest(cls, manifest: Any) -> MLModel:
        """Parse an MLModel as the API server returns it; raises ``pydantic.ValidationError``."""
        return cls.model_validate(dict(manifest))

    def to_manifest(self, *, with_status: bool = False) -> dict[str, Any]:
        """The manifest to create or apply (status left out unless asked for)."""
        body = self.wire()
        body["metadata"] = {
            k: v for k, v in body["metadata"].items() if v or k in ("name", "namespace")
        }
        if not with_status:
            body.pop("status", None)
        return body

    def owner_reference(self) -> dict[str, Any]:
        """The controller owner reference its children carry (the Secret, the operator's objects),
        so the garbage collector deletes them with the model; needs the uid the API server gave."""
        if not self.metadata.uid:
            raise ValueError("an owner reference needs the MLModel's uid")
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.metadata.name,
            "uid": self.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


# --- Endpoint URLs ----------------------------------------------------------------------------


class Routing(enum.StrEnum):
    """How model URLs are laid out under the ingress domain."""

    HOST = "host"
    """``<model>.<namespace>.<domain>/``: a host per model."""
    PATH = "path"
    """``<domain><prefix>/<namespace>/<model>``: one shared host."""


@dataclass(frozen=True)
class EndpointRule:
    """Where a model is published: the one rule behind the operator's Ingress and status URL and
    the endpoint URL the control API reports before the operator has written one."""

    domain: str
    routing: Routing = Routing.HOST
    path_prefix: str = "/models"
    tls: bool = True
    """Serve over HTTPS (a model's ``spec.ingress.tls.enabled`` may still turn it off)."""

    def host(self, name: str, namespace: str | None, ingress: Ingress | None = None) -> str:
        if ingress is not None and ingress.host:
            return ingress.host
        if self.routing is Routing.PATH:
            return self.domain
        return f"{name}.{namespace}.{self.domain}"

    def path(self, name: str, namespace: str | None, ingress: Ingress | None = None) -> str:
        if ingress is not None and ingress.path:
            return ingress.path
        if self.routing is Routing.PATH:
            return f"{self.path_prefix.rstrip('/')}/{namespace}/{name}"
        return "/"

    def secure(self, ingress: Ingress | None = None) -> bool:
        return self.tls and (ingress is None or ingress.tls.enabled)

    def url(self, name: str, namespace: str | None, ingress: Ingress | None = None) -> str:
        """The public URL of MLModel `name` in `namespace`, with its ingress overrides."""
        scheme = "https" if self.secure(ingress) else "http"
        path = self.path(name, namespace, ingress).rstrip("/")
        return f"{scheme}://{self.host(name, namespace, ingress)}{path}"
