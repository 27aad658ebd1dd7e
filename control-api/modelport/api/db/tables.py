"""SQLAlchemy 2.0 typed tables. API schemas live apart, in :mod:`modelport.api.schemas`."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp, also on SQLite (which forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


class Subscription(enum.StrEnum):
    FREE = "free"
    PREMIUM = "premium"


class KeyScope(enum.StrEnum):
    """What an API key may do (docs/api.md, "API keys")."""

    INFERENCE = "inference"
    """Calls models (listed in their ``auth-keys.json``); the control API refuses it."""
    ACCOUNT = "account"
    """Uses the control API; never written into a model's key file, so it calls no model."""
    LEGACY = "legacy"
    """A key from before scopes (migration 0002): both, as before; no new key gets it."""

    @property
    def calls_models(self) -> bool:
        return self in (KeyScope.INFERENCE, KeyScope.LEGACY)

    @property
    def uses_control_api(self) -> bool:
        return self in (KeyScope.ACCOUNT, KeyScope.LEGACY)


class ModelStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    ARCHIVED = "archived"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=16, values_callable=_values)


def _values(cls: type[enum.Enum]) -> list[str]:
    return [str(m.value) for m in cls]


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    """argon2id hash; None for users who only sign in through OIDC."""
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.USER)
    subscription: Mapped[Subscription] = mapped_column(
        _enum(Subscription, "subscription"), default=Subscription.FREE
    )
    requests_per_minute: Mapped[int] = mapped_column(Integer)
    models_limit: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    keys: Mapped[list[ApiKey]] = relationship(back_populates="user", cascade="all, delete-orphan")


api_key_models = Table(
    "api_key_models",
    Base.metadata,
    Column("key_id", ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("model_id", ForeignKey("models.id", ondelete="CASCADE"), primary_key=True, index=True),
)
"""The models an inference key is bound to; a row goes with its key or its model."""


class ApiKey(Base):
    """An API key ``mp_<id>_<secret>``: only the sha256 of the whole key is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    scope: Mapped[KeyScope] = mapped_column(_enum(KeyScope, "key_scope"))
    model_bound: Mapped[bool] = mapped_column(Boolean, default=False)
    """True: the key calls only the models in ``models``; when the last of them is deleted it
    calls none (an empty binding never means "every model")."""

    user: Mapped[User] = relationship(back_populates="keys")
    models: Mapped[list[Model]] = relationship(
        secondary=api_key_models, order_by="Model.id", passive_deletes=True
    )


class Model(Base):
    """The seed's ModelMetadata: one per uploaded model, whatever its version."""

    __tablename__ = "models"
    __table_args__ = (Index("ix_models_owner_created", "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(16))
    status: Mapped[ModelStatus] = mapped_column(
        _enum(ModelStatus, "model_status"), default=ModelStatus.ACTIVE
    )
    endpoint_url: Mapped[str] = mapped_column(String(500))
    active_version: Mapped[int] = mapped_column(Integer, default=1)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Deployment knobs: replicas, autoscaling bounds, GPU count, resources, auth, rate limit."""
    request_count: Mapped[int] = mapped_column(BigInteger, default=0)
    error_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_used: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", cascade="all, delete-orphan", order_by="ModelVersion.number"
    )


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[Model] = relationship(back_populates="versions")
    artifact: Mapped[StoredArtifact] = relationship(
        back_populates="version", cascade="all, delete-orphan", uselist=False
    )


class StoredArtifact(Base):
    """The seed's StoredModel: where an encrypted artifact lives and its wrapped data key."""

    __tablename__ = "stored_artifacts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version_id: Mapped[str] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), unique=True
    )
    original_name: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(500))
    storage_uri: Mapped[str] = mapped_column(String(1000))
    size: Mapped[int] = mapped_column(BigInteger)
    """Plaintext size in bytes."""
    sha256: Mapped[str] = mapped_column(String(64))
    """Hex sha256 of the plaintext; the runtime verifies it after decrypting."""
    format: Mapped[str] = mapped_column(String(16))
    wrapped_data_key: Mapped[str | None] = mapped_column(Text)
    """Base64 of the data key wrapped by the master key ``master_key_id``."""
    master_key_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    version: Mapped[ModelVersion] = relationship(back_populates="artifact")


class UsageWindow(Base):
    """One usage report of one runtime: counts are deltas over ``[start, end)``."""

    __tablename__ = "usage_windows"
    __table_args__ = (Index("ix_usage_windows_model_end", "model_id", "window_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    requests: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    p50_ms: Mapped[float | None] = mapped_column(Float)
    p90_ms: Mapped[float | None] = mapped_column(Float)
    p99_ms: Mapped[float | None] = mapped_column(Float)


class AuditEvent(Base):
    """Security-relevant actions: sign-ups, logins, key changes, uploads, deletions, refusals."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
