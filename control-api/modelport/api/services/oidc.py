"""Optional OpenID Connect login (authorization-code flow) against an external identity provider.

``login_redirect`` sends the browser to the provider with a signed, short-lived ``state`` that
carries the nonce (no server-side session); ``complete_login`` exchanges the code, verifies the ID
token's signature (the provider's JWKS), issuer, audience, expiry and nonce with authlib, then
finds the user by subject, links a user with the same verified email, or creates one.
"""

from __future__ import annotations

import secrets
import time
import warnings
from typing import Any
from urllib.parse import urlencode

import authlib.deprecate
import httpx
from modelport.api import auth
from modelport.api.db.tables import User
from modelport.api.services import audit, users
from modelport.api.settings import ApiSettings
from modelport.core.errors import NotFound, NotReady, Unauthenticated
from sqlalchemy import select
from sqlalchemy.orm import Session

with warnings.catch_warnings():  # authlib.jose is deprecated in favour of joserfc
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.jose import JoseError, JsonWebKey, jwt

_STATE_TTL = 600
_STATE_SUBJECT = "oidc-state"
_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def _enabled(settings: ApiSettings) -> tuple[str, str, str]:
    if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret):
        raise NotFound("OpenID Connect login is not configured")
    return (
        settings.oidc_issuer.rstrip("/"),
        settings.oidc_client_id,
        settings.oidc_client_secret.get_secret_value(),
    )


def callback_url(settings: ApiSettings) -> str:
    return f"{settings.public_url.rstrip('/')}/api/v1/auth/oidc/callback"


def _discover(issuer: str) -> dict[str, Any]:
    cached = _discovery_cache.get(issuer)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    try:
        response = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise NotReady("the identity provider is unreachable; retry in a minute") from exc
    _discovery_cache[issuer] = (time.monotonic() + 3600, document)
    return document


def login_redirect(*, settings: ApiSettings) -> str:
    """The provider's authorization URL to send the browser to."""
    issuer, client_id, _ = _enabled(settings)
    nonce = secrets.token_urlsafe(16)
    now = int(time.time())
    state: bytes = jwt.encode(
        {"alg": "HS256"},
        {"iss": "modelport", "sub": _STATE_SUBJECT, "nonce": nonce, "exp": now + _STATE_TTL},
        settings.signing_keys().oidc_state,
    )
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": callback_url(settings),
        "scope": "openid email",
        "state": state.decode(),
        "nonce": nonce,
    }
    return f"{_discover(issuer)['authorization_endpoint']}?{urlencode(query)}"


def _state_nonce(state: str, settings: ApiSettings) -> str:
    try:
        claims = jwt.decode(state, settings.signing_keys().oidc_state)
        claims.validate()
    except (JoseError, ValueError) as exc:
        raise Unauthenticated("invalid or expired login state; start the login again") from exc
    if claims.get("sub") != _STATE_SUBJECT or claims.header.get("alg") != "HS256":
        raise Unauthenticated("invalid or expired login state; start the login again")
    return str(claims["nonce"])


def _id_token_claims(code: str, nonce: str, settings: ApiSettings) -> dict[str, Any]:
    issuer, client_id, client_secret = _enabled(settings)
    meta = _discover(issuer)
    try:
        tokens = httpx.post(
            meta["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": callback_url(settings),
                "client_id": client_id,
                "client_secret": client_secret,
            },
            timeout=10,
        )
        jwks = httpx.get(meta["jwks_uri"], timeout=10).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise NotReady("the identity provider is unreachable; retry in a minute") from exc
    if tokens.status_code != 200 or "id_token" not in tokens.json():
        raise Unauthenticated("the identity provider refused the login")
    try:
        claims = jwt.decode(
            tokens.json()["id_token"],
            JsonWebKey.import_key_set(jwks),
            claims_options={
                "iss": {"essential": True, "values": [issuer, issuer + "/"]},
                "aud": {"essential": True, "value": client_id},
                "nonce": {"essential": True, "value": nonce},
                "sub": {"essential": True},
            },
        )
        claims.validate(leeway=30)
    except (JoseError, ValueError) as exc:
        raise Unauthenticated("the identity provider's token is not valid") from exc
    return dict(claims)


def complete_login(session: Session, *, settings: ApiSettings, code: str, state: str) -> str:
    """Finish the flow; returns a Modelport login token."""
    nonce = _state_nonce(state, settings)
    claims = _id_token_claims(code, nonce, settings)
    subject = f"{claims['iss']}|{claims['sub']}"
    user = session.scalar(select(User).where(User.oidc_subject == subject))
    if user is None:
        user = _link_or_create(session, settings=settings, claims=claims, subject=subject)
    audit.record_now(session, actor_id=user.id, action="auth.oidc_login")
    return auth.issue_token(
        user.id, keys=settings.signing_keys(), ttl_seconds=settings.jwt_ttl_seconds
    )


def _link_or_create(
    session: Session, *, settings: ApiSettings, claims: dict[str, Any], subject: str
) -> User:
    email = str(claims.get("email") or "").strip().lower()
    if not email or claims.get("email_verified") is False:
        raise Unauthenticated("the identity provider gave no verified email address")
    user = session.scalar(select(User).where(User.email == email))
    if user is not None:
        user.oidc_subject = subject
        session.commit()
        return user
    return users.create_user(
        session, settings=settings, email=email, password=None, oidc_subject=subject
    )
