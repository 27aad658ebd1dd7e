"""API keys: created (shown once), listed, revoked, and projected into each model's key file.

The projection is how inference is authorised without a database call per request: every model of
a user carries ``auth-keys.json`` (docs/contracts.md) listing the sha256 of each live key of its
owner that may call that model, and the per-key limit. Creating or revoking a key rewrites the
file of every model the user owns; runtimes re-read it within a minute.

Scopes (docs/api.md, "API keys"): an ``inference`` key is written into the key files (of every
model of its owner, or of the models it is bound to) and refused by the control API; an
``account`` key is accepted by the control API and written into no key file; a ``legacy`` key
(from before scopes) does both.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from modelport.api import auth
from modelport.api.context import AppContext
from modelport.api.db.tables import (
    ApiKey,
    KeyScope,
    Model,
    Role,
    Subscription,
    User,
    api_key_models,
)
from modelport.api.errors import DeployFailed
from modelport.api.schemas import DeploymentSettings, KeyCreate, KeyCreated, KeyPublic
from modelport.api.services import audit, users
from modelport.api.services.caps import effective_rate_limit
from modelport.api.services.ids import is_id
from modelport.api.services.users import Principal
from modelport.api.settings import ApiSettings
from modelport.core.errors import Forbidden, NotFound
from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session, selectinload

log = logging.getLogger(__name__)


def create_key(
    session: Session, *, ctx: AppContext, caller: Principal, request: KeyCreate
) -> KeyCreated:
    """A new key of the caller's; only a login token or an account key may create one."""
    if caller.scope is not None and not caller.scope.uses_control_api:
        raise Forbidden("an inference key cannot create keys; sign in or use an account key")
    bound = (
        [_owned_model(session, caller=caller, model_id=m) for m in dict.fromkeys(request.models)]
        if request.models is not None
        else None
    )
    key, secret = _add_key(
        session, user_id=caller.id, name=request.name, scope=request.scope, bound=bound
    )
    session.commit()
    if key.scope.calls_models:
        try:
            publish(session, ctx=ctx, user_id=caller.id)
        except Exception:  # the key is stored; models get it on their next update
            log.exception("could not publish the new key of %s to their models", caller.id)
    return KeyCreated(key=secret, **public(key).model_dump())


def _add_key(
    session: Session, *, user_id: str, name: str, scope: KeyScope, bound: list[Model] | None
) -> tuple[ApiKey, str]:
    """Add a new key of ``user_id`` (bound to ``bound`` when given) and its audit record,
    uncommitted; returns the row and the whole key, which is shown this once."""
    new = auth.new_api_key()
    key = ApiKey(
        id=new.id,
        user_id=user_id,
        name=name,
        sha256=new.sha256,
        scope=scope,
        model_bound=bound is not None,
        models=bound or [],
    )
    session.add(key)
    audit.record(
        session,
        actor_id=user_id,
        action="key.create",
        target=key.id,
        details={"scope": str(key.scope), "models": [m.id for m in key.models]},
    )
    return key, new.secret_key


def _owned_model(session: Session, *, caller: Principal, model_id: str) -> Model:
    model = session.get(Model, model_id) if is_id(model_id) else None
    if model is None or model.owner_id != caller.id:
        raise NotFound(f"no model {model_id}", details={"modelId": model_id})
    return model


@dataclass(frozen=True)
class FirstKeys:
    """The keys a new admin starts with: one for the control API, one for calling models."""

    account: str
    inference: str


def issue_first_keys(session: Session, *, user: User, name: str) -> FirstKeys:
    """An account key and an inference key for a fresh user (``modelport up``, ``create-admin``)."""
    issued: dict[KeyScope, str] = {}
    for scope in (KeyScope.ACCOUNT, KeyScope.INFERENCE):
        _, issued[scope] = _add_key(
            session, user_id=user.id, name=f"{name} ({scope})", scope=scope, bound=None
        )
    session.commit()
    return FirstKeys(account=issued[KeyScope.ACCOUNT], inference=issued[KeyScope.INFERENCE])


def create_admin_with_keys(
    session: Session, *, settings: ApiSettings, email: str, password: str | None, key_name: str
) -> tuple[User, FirstKeys]:
    """A new premium admin and its first keys (``modelport up``, ``create-admin``)."""
    admin = users.create_user(
        session,
        settings=settings,
        email=email,
        password=password,
        role=Role.ADMIN,
        subscription=Subscription.PREMIUM,
    )
    return admin, issue_first_keys(session, user=admin, name=key_name)


def public(key: ApiKey) -> KeyPublic:
    return KeyPublic(
        id=key.id,
        name=key.name,
        scope=key.scope,
        models=[m.id for m in key.models] if key.model_bound else None,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


def list_keys(session: Session, *, caller: Principal) -> list[KeyPublic]:
    rows = session.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == caller.id)
        .options(selectinload(ApiKey.models))
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return [public(k) for k in rows]


def revoke_key(session: Session, *, ctx: AppContext, caller: Principal, key_id: str) -> None:
    """Revoke one of the caller's keys; the runtimes stop accepting it within a minute.

    The revocation is committed first (the control API refuses the key at once); when the models
    cannot be updated the call fails with 500 and can simply be repeated."""
    if not is_id(key_id) or auth.parse_api_key(key_id) is not None:  # never echo a whole key
        raise NotFound("no such key: revoke by the key's id (see GET /api/v1/keys)")
    key = session.get(ApiKey, key_id)
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


def auth_keys_document(
    session: Session, *, user_id: str, model_id: str, settings: DeploymentSettings
) -> bytes:
    """The ``auth-keys.json`` of the model ``model_id`` of ``user_id``: the live keys of the owner
    that may call it (inference and legacy keys, unbound or bound to this model)."""
    user = session.get(User, user_id)
    limit = effective_rate_limit(
        user.requests_per_minute if user else 0, settings.rate_limit_per_minute
    )
    rows = session.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .where(ApiKey.scope.in_([s for s in KeyScope if s.calls_models]))
        .where(or_(~ApiKey.model_bound, _bound_to(model_id)))
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


def _bound_to(model_id: str) -> ColumnElement[bool]:
    return exists().where(
        api_key_models.c.key_id == ApiKey.id, api_key_models.c.model_id == model_id
    )


def publish(session: Session, *, ctx: AppContext, user_id: str) -> None:
    """Rewrite the key file of every model ``user_id`` owns."""
    models = session.scalars(select(Model).where(Model.owner_id == user_id))
    for model in models:
        settings = DeploymentSettings.model_validate(model.settings)
        document = auth_keys_document(
            session, user_id=user_id, model_id=model.id, settings=settings
        )
        ctx.deployer.set_auth_keys(model.id, document)
