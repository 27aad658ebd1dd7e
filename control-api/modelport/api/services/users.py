"""Users: sign-up, login, resolving callers from tokens or API keys, and admin changes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelport.api import auth
from modelport.api.db.tables import ApiKey, KeyScope, Role, Subscription, User
from modelport.api.schemas import (
    LoginRequest,
    RateLimits,
    SignupRequest,
    UserAdminUpdate,
    UserList,
    UserPublic,
)
from modelport.api.services import audit
from modelport.api.services.ids import is_id
from modelport.api.settings import ApiSettings
from modelport.api.throttle import LoginGuard
from modelport.core.errors import Conflict, Forbidden, NotFound, Unauthenticated
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

#: How stale an API key's ``last_used_at`` may grow before a request writes it again.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request (a snapshot; no session attached)."""

    id: str
    email: str
    role: Role
    requests_per_minute: int
    models_limit: int
    key_id: str | None = None
    scope: KeyScope | None = None
    """The API key's scope; None for a login token."""

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def _principal(user: User, key: ApiKey | None = None) -> Principal:
    return Principal(
        id=user.id,
        email=user.email,
        role=user.role,
        requests_per_minute=user.requests_per_minute,
        models_limit=user.models_limit,
        key_id=key.id if key else None,
        scope=key.scope if key else None,
    )


def new_user_id() -> str:
    return "u" + secrets.token_hex(8)


def create_user(
    session: Session,
    *,
    settings: ApiSettings,
    email: str,
    password: str | None,
    role: Role = Role.USER,
    subscription: Subscription = Subscription.FREE,
    actor_id: str | None = None,
    oidc_subject: str | None = None,
) -> User:
    """Insert a user with the subscription's default limits; 409 when the email is taken."""
    email = email.strip().lower()
    limits = settings.limits_for(subscription)
    user = User(
        id=new_user_id(),
        email=email,
        password_hash=auth.hash_password(password) if password is not None else None,
        oidc_subject=oidc_subject,
        role=role,
        subscription=subscription,
        requests_per_minute=limits.requests_per_minute,
        models_limit=limits.models_limit,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("a user with this email already exists") from None
    audit.record(session, actor_id=actor_id or user.id, action="user.create", target=user.id)
    session.commit()
    return user


def signup(
    session: Session,
    *,
    settings: ApiSettings,
    guard: LoginGuard,
    address: str,
    new: SignupRequest,
    caller: Principal | None,
) -> User:
    """A new account; the address's sign-up rate and back-off apply, and the password is hashed
    in one of the process's hash slots."""
    if settings.signup == "admin" and (caller is None or not caller.is_admin):
        raise Forbidden("sign-up is closed; an administrator creates accounts")
    guard.before_signup(address=address)
    try:
        with guard.slots.held():
            return create_user(
                session,
                settings=settings,
                email=new.email,
                password=new.password,
                actor_id=caller.id if caller else None,
            )
    except Conflict:
        guard.signup_refused(address=address)
        raise


def login(
    session: Session,
    *,
    settings: ApiSettings,
    guard: LoginGuard,
    address: str,
    credentials: LoginRequest,
) -> str:
    """A short-lived token for a correct email and password; 401 otherwise (same for both).

    Failures back off per client address and per account (429 with ``Retry-After``); a
    success resets the account's count."""
    account = credentials.email.strip().lower()
    guard.before_login(address=address, account=account)
    with guard.slots.held():
        # Again with the slot held: guesses sent at once all passed the first check before any
        # of them failed; now at most the hashes in flight are past it.
        guard.before_login(address=address, account=account)
        user = session.scalar(select(User).where(User.email == account))
        stored = user.password_hash if user else None
        correct = auth.verify_password(credentials.password, stored)
    if not correct or user is None:
        guard.login_failed(address=address, account=account)
        audit.record_now(session, actor_id=None, action="auth.login", outcome="denied")
        raise Unauthenticated("wrong email or password")
    guard.login_succeeded(account=account)
    audit.record_now(session, actor_id=user.id, action="auth.login")
    return auth.issue_token(
        user.id, keys=settings.signing_keys(), ttl_seconds=settings.jwt_ttl_seconds
    )


def resolve_caller(session: Session, *, settings: ApiSettings, credential: str) -> Principal:
    """The caller behind an account API key (``mp_...``) or a login token; 401 otherwise, 403
    for an inference key (it calls models, never the control API)."""
    if credential.startswith(auth.KEY_PREFIX + "_"):
        return _from_api_key(session, credential)
    user_id = auth.verify_token(credential, keys=settings.signing_keys())
    user = session.get(User, user_id)
    if user is None:
        raise Unauthenticated("invalid or expired token")
    return _principal(user)


def _from_api_key(session: Session, credential: str) -> Principal:
    key_id = auth.parse_api_key(credential)
    key = session.get(ApiKey, key_id) if key_id else None
    # Hash and compare even when the id is unknown, so that timing says nothing.
    stored = key.sha256 if key is not None else "0" * 64
    if not auth.key_matches(credential, stored) or key is None or key.revoked_at is not None:
        raise Unauthenticated("invalid or revoked API key")
    if not key.scope.uses_control_api:
        raise Forbidden(
            "this is an inference key: it calls models only; use an account key or sign in "
            "for the control API",
            details={"keyId": key.id, "scope": str(key.scope)},
        )
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.commit()
    return _principal(key.user, key)


def public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        email=user.email,
        role=user.role,
        subscription=user.subscription,
        rate_limits=RateLimits(
            requests_per_minute=user.requests_per_minute, models_limit=user.models_limit
        ),
        created_at=user.created_at,
    )


def get_self(session: Session, *, caller: Principal) -> User:
    user = session.get(User, caller.id)
    if user is None:
        raise Unauthenticated("this account no longer exists")
    return user


def list_users(session: Session, *, caller: Principal, limit: int, offset: int) -> UserList:
    _require_admin(caller)
    total = session.scalar(select(func.count()).select_from(User)) or 0
    rows = session.scalars(
        select(User).order_by(User.created_at, User.id).limit(limit).offset(offset)
    )
    return UserList(items=[public(u) for u in rows], total=total)


def admin_update(
    session: Session,
    *,
    settings: ApiSettings,
    caller: Principal,
    user_id: str,
    change: UserAdminUpdate,
) -> User:
    """Change a user's role, subscription or limits (a new subscription resets the limits)."""
    _require_admin(caller)
    user = session.get(User, user_id) if is_id(user_id) else None
    if user is None:
        raise NotFound(f"no user {user_id}", details={"userId": user_id})
    if change.subscription is not None and change.subscription is not user.subscription:
        user.subscription = change.subscription
        limits = settings.limits_for(change.subscription)
        user.requests_per_minute = limits.requests_per_minute
        user.models_limit = limits.models_limit
    if change.role is not None:
        user.role = change.role
    if change.requests_per_minute is not None:
        user.requests_per_minute = change.requests_per_minute
    if change.models_limit is not None:
        user.models_limit = change.models_limit
    audit.record(
        session,
        actor_id=caller.id,
        action="user.update",
        target=user.id,
        details=change.model_dump(mode="json", exclude_none=True, by_alias=True),
    )
    session.commit()
    return user


def _require_admin(caller: Principal) -> None:
    if not caller.is_admin:
        raise Forbidden("administrators only")
