"""What the control API answers, as the client sees it.

Unknown fields are kept (``extra="allow"``) so that an older client keeps working against a newer
server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class RateLimits(_Wire):
    requests_per_minute: int
    models_limit: int


class User(_Wire):
    id: str
    email: str
    role: str
    subscription: str
    rate_limits: RateLimits
    created_at: datetime


class Token(_Wire):
    access_token: str
    token_type: str
    expires_in: int


class ApiKey(_Wire):
    id: str
    name: str
    scope: str | None = None
    """``inference``, ``account`` or ``legacy`` (a key from before scopes: both)."""
    models: list[str] | None = None
    """The models a bound inference key calls; None: every model of its owner."""
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class CreatedKey(ApiKey):
    key: str
    """The whole key: the server shows it this once."""


class Upload(_Wire):
    model_id: str
    endpoint_url: str
    status: str
    message: str


class Model(_Wire):
    id: str
    name: str
    description: str
    file_format: str
    endpoint_url: str
    created_at: datetime
    last_used: datetime | None = None
    request_count: int
    status: str
    version: int
    phase: str
    reason: str | None = None
    """Why the phase is what it is (LoadFailed, CrashLoopBackOff, ...)."""
    message: str | None = None
    """The same in words; for a model that failed to load, the runtime's own reason."""
    settings: dict[str, Any] = Field(default_factory=dict)


class ModelLogs(_Wire):
    model_id: str
    lines: list[str]


class ModelPage(_Wire):
    items: list[Model]
    total: int
    limit: int
    offset: int


class Version(_Wire):
    number: int
    created_at: datetime
    original_name: str
    size: int
    sha256: str
    format: str
    active: bool


class Latency(_Wire):
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class UsageBucket(_Wire):
    start: datetime
    end: datetime
    requests: int
    errors: int
    latency_ms: Latency


class Usage(_Wire):
    model_id: str
    requests: int
    errors: int
    latency_ms: Latency
    request_count: int
    last_used: datetime | None = None
    buckets: list[UsageBucket] = Field(default_factory=list)
