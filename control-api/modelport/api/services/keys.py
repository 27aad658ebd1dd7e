"""API keys: created (shown once), listed, revoked, and projected into each model's key file.

The projection is how inference is authorised without a database call per request: every model of
a user carries ``auth-keys.json`` (docs/contracts.md) listing the sha256 of each live key of its
owner and the per-key limit. Creating or revoking a key rewrites the file of every model the user
owns; runtimes re-read it within a minute.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from modelport.api import auth
from modelport.api.context import AppContext
from modelport.api.db.tables import ApiKey, Model, Role, Subscription, User
from modelport.api.errors import DeployFailed
from modelport.api.schemas import DeploymentSettings, KeyCreated, KeyPublic
from modelport.api.services import audit, users
from modelport.api.services.caps import effective_rate_limit
from modelport.api.services.ids import is_id
from modelport.api.services.users import Principal
from modelport.api.settings import ApiSettings
from modelport.core.errors import NotFound
from sqlalchemy import select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def create_key(session: Session, *, ctx: AppContext, caller: Principal, name: str) -> KeyCreated:
    new = auth.new_api_key()
    key = ApiKey(id=new.id, user_id=caller.id, name=name, sha256=new.sha256)
    session.add(key)
    audit.record(session, actor_id=caller.id, action="key.create", target=key.id)
    session.commit()
    try:
        publish(session, ctx=ctx, user_id=caller.id)
    except Exception:  # the key works for the control API; models get it on their next update
        log.exception("could not publish the new key of %s to their models", caller.id)
    return KeyCreated(key=new.secret_key, **public(key).model_dump())


def issue_first_key(session: Session, *, user: User, name: str) -> str:
    """A key for a freshly created user (``modelport up``); returns the whole key."""
    new = auth.new_api_key()
    session.add(ApiKey(id=new.id, user_id=user.id, name=name, sha256=new.sha256))
    audit.record(session, actor_id=user.id, action="key.create", target=new.id)
    session.commit()
    return new.secret_key


def create_admin_with_key(
    session: Session, *, settings: ApiSettings, email: str, password: str | None, key_name: str
) -> tuple[User, str]:
    """A new premium admin and a first API key for it (``modelport up``, ``create-admin``)."""
    admin = users.create_user(
        session,
        settings=settings,
        email=email,
        password=password,
        role=Role.ADMIN,
        subscription=Subscription.PREMIUM,
    )
    return admin, issue_first_key(session, user=admin, name=key_name)


def public(key: ApiKey) -> KeyPublic:
    return KeyPublic(
        id=key.id,
        name=key.name,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


def list_keys(session: Session, *, caller: Principal) -> list[KeyPublic]:
    rows = session.scalars(
        select(ApiKey).where(ApiKey.user_id == caller.id).order_by(ApiKey.created_at, ApiKey.id)
    )
    return [public(k) for k in rows]


def revoke_key(session: Session, *, ctx: AppContext, caller: Principal, key_id: str) -> None:
    """Revoke one of the caller's keys; the runtimes stop accepting it within a minute.

    The revocation is committed first (the control API refuses the key at once); when the models
    cannot be updated the call fails with 500 and can simply be repeated."""
    key = session.get(ApiKey, key_id) if is_id(key_id) else None
    if key is None or key.user_id != caller.id:
        raise NotFound(f"no key {key_id}", details={"keyId": key_id})
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        audit.record(session, actor_id=caller.id, action="key.revoke", target=key.id)
        session.commit()
    try:
        publish(session, ctx=ctx, user_id=caller.id)
    except Exception as exc:
        log.exception("could not publish the revocation of %s", key_id)
        raise DeployFailed(
            "the key is revoked for the control API but not yet on every model; repeat the "
            "request in a few seconds",
            details={"keyId": key_id},
        ) from exc


def auth_keys_document(session: Session, *, user_id: str, settings: DeploymentSettings) -> bytes:
    """The ``auth-keys.json`` of one model of ``user_id``."""
    user = session.get(User, user_id)
    limit = effective_rate_limit(
        user.requests_per_minute if user else 0, settings.rate_limit_per_minute
    )
    rows = session.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.id)
    )
    keys = [
        {
            "id": k.id,
            "sha256": k.sha256,
            "rateLimitPerMinute": limit,
        }
        for k in rows
    ]
    return json.dumps({"keys": keys}, separators=(",", ":")).encode()


def publish(session: Session, *, ctx: AppContext, user_id: str) -> None:
    """Rewrite the key file of every model ``user_id`` owns."""
    models = session.scalars(select(Model).where(Model.owner_id == user_id))
    for model in models:
        settings = DeploymentSettings.model_validate(model.settings)
        document = auth_keys_document(session, user_id=user_id, settings=settings)
        ctx.deployer.set_auth_keys(model.id, document)
