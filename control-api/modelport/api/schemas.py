"""The API's request and response shapes (camelCase on the wire), kept apart from the tables."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from modelport.api.db.tables import KeyScope, Role, Subscription
from modelport.api.db.tables import ModelStatus as ModelStatus  # the routes' filter takes it here
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

#: Text that a database can store (PostgreSQL refuses NUL characters).
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# --- errors ---------------------------------------------------------------------------------


class ErrorDetail(CamelModel):
    code: str
    message: str
    details: Any = None
    timestamp: str


class ErrorResponse(CamelModel):
    error: ErrorDetail


# --- users and auth ---------------------------------------------------------------------------


class SignupRequest(CamelModel):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@ \t\r\n\x00]+@[^@ \t\r\n\x00]+$")
    password: Text = Field(min_length=8, max_length=1024)


class LoginRequest(CamelModel):
    email: Text = Field(max_length=320)
    password: Text = Field(max_length=1024)


class TokenResponse(CamelModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class RateLimits(CamelModel):
    requests_per_minute: int
    models_limit: int


class UserPublic(CamelModel):
    id: str
    email: str
    role: Role
    subscription: Subscription
    rate_limits: RateLimits
    created_at: datetime


class UserList(CamelModel):
    items: list[UserPublic]
    total: int


class UserAdminUpdate(CamelModel):
    role: Role | None = None
    subscription: Subscription | None = None
    requests_per_minute: int | None = Field(default=None, ge=0, le=1_000_000)
    models_limit: int | None = Field(default=None, ge=0, le=100_000)


class KeyCreate(CamelModel):
    name: Text = Field(min_length=1, max_length=100)
    scope: Literal[KeyScope.INFERENCE, KeyScope.ACCOUNT] = KeyScope.INFERENCE
    """``inference`` (the default) calls models only; ``account`` uses the control API only."""
    models: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=100)
    """Bind an inference key to these models of the caller's; none: every model of theirs."""

    @model_validator(mode="after")
    def _models_bind_inference_keys(self) -> KeyCreate:
        if self.models is not None and self.scope is not KeyScope.INFERENCE:
            raise ValueError("only an inference key can be bound to models")
        if self.models is not None and not self.models:
            raise ValueError("list at least one model, or leave models out for every model")
        return self


class KeyPublic(CamelModel):
    id: str
    name: str
    scope: KeyScope
    models: list[str] | None
    """The models a bound inference key calls (those that still exist); null: every model."""
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str
    """The whole key, shown this once."""


# --- models -------------------------------------------------------------------------------------


class DeploymentSettings(CamelModel):
    """How a model runs; each field can be changed with ``PATCH /api/v1/models/{id}``."""

    replicas: int = Field(default=1, ge=0, le=100)
    min_replicas: int = Field(default=1, ge=0, le=100)
    max_replicas: int = Field(default=3, ge=1, le=100)
    target_utilization: int = Field(default=70, ge=1, le=100)
    gpu_count: int = Field(default=0, ge=0, le=16)
    cpu: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?m?$", max_length=16)
    memory: str | None = Field(
        default=None, pattern=r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$", max_length=16
    )
    auth_required: bool = True
    rate_limit_per_minute: int | None = Field(default=None, ge=0, le=1_000_000)
    """Per-key inference limit; none: the owner's ``requestsPerMinute``."""

    @model_validator(mode="after")
    def _bounds(self) -> DeploymentSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class ModelCreate(CamelModel):
    """A new model's name and description, as the upload form gives them (``api/multipart.py``
    reads the form and checks them)."""

    name: str
    description: str = ""


class UploadResponse(CamelModel):
    model_id: str
    endpoint_url: str
    status: Literal["success", "error"]
    message: str


class ModelMetadata(CamelModel):
    """The seed's ModelMetadata, plus version and deployment state."""

    id: str
    name: str
    description: str
    user_id: str
    file_format: str
    file_path: str
    """The active version's artifact reference: stable for that version, and opaque (never the
    bucket, path or storage key)."""
    endpoint_url: str
    created_at: datetime
    last_used: datetime | None
    request_count: int
    status: ModelStatus
    version: int
    phase: str
    """Deployment phase: Pending, Deploying, Ready, Failed, Inactive."""
    reason: str | None = None
    """Why the phase is what it is, one CamelCase word: LoadFailed, CrashLoopBackOff, ..."""
    message: str | None = None
    """The same in words; for a model that failed to load, the runtime's own reason."""
    settings: DeploymentSettings


class ModelLogs(CamelModel):
    """The last lines of a model's runtime log, oldest first."""

    model_id: str
    lines: list[str]


#: The largest ``offset`` a listing takes: beyond any real page, inside the database's integers.
MAX_OFFSET = 1_000_000_000


class ModelList(CamelModel):
    items: list[ModelMetadata]
    total: int
    limit: int
    offset: int


class ModelUpdate(CamelModel):
    description: Text | None = Field(default=None, max_length=10_000)
    status: ModelStatus | None = None
    settings: DeploymentSettings | None = None


class VersionPublic(CamelModel):
    number: int
    created_at: datetime
    original_name: str
    size: int
    sha256: str
    format: str
    active: bool


class VersionList(CamelModel):
    items: list[VersionPublic]


class RollbackRequest(CamelModel):
    version: int = Field(ge=1)


# --- usage --------------------------------------------------------------------------------------


class Window(CamelModel):
    start: datetime
    end: datetime


class Latency(CamelModel):
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class UsageReport(CamelModel):
    """What a runtime POSTs every few seconds (docs/contracts.md); counts are deltas."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    model: Text = Field(max_length=64)
    window: Window
    requests: int = Field(ge=0)
    errors: int = Field(ge=0)
    latency_ms: Latency = Field(default_factory=Latency)
    last_used: datetime | None = None
    by_key: dict[str, int] = Field(default_factory=dict)


class UsageBucket(CamelModel):
    start: datetime
    end: datetime
    requests: int
    errors: int
    latency_ms: Latency


class UsageSummary(CamelModel):
    model_id: str
    window: Window
    requests: int
    errors: int
    latency_ms: Latency
    """Request-weighted mean of the runtimes' per-report percentiles (p99: their maximum)."""
    request_count: int
    last_used: datetime | None
    buckets: list[UsageBucket]


class TensorMetadata(CamelModel):
    """One input or output as the runtime declares it (the Open Inference Protocol's
    ``$metadata_tensor``): ``-1`` is a dimension of any size."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str
    datatype: str
    shape: list[int]


class ModelSchema(CamelModel):
    """The model's inputs and outputs, read from its runtime's ``/v2/models/{id}``."""

    model_id: str
    platform: str = ""
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class Health(CamelModel):
    status: Literal["ok"]
