"""Optional OpenID Connect login (authorization-code flow) against an external identity provider.

``login_redirect`` sends the browser to the provider with a signed, short-lived ``state`` that
carries the nonce (no server-side session), and hands back a browser secret for a cookie: the
state holds its SHA-256, which is also the PKCE (S256) challenge, and the secret itself is the code
verifier. ``complete_login`` accepts only a state that matches the cookie of the browser that
started the login, exchanges the code with the verifier, verifies the ID token's signature (the
provider's JWKS), issuer, audience, expiry and nonce with authlib, then finds the user by subject,
links a user with the same email when the provider says it is verified (``email_verified`` exactly
``true``) and the user has no other subject, or creates one when sign-up is open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import authlib.deprecate
import httpx
from modelport.api import auth
from modelport.api.db.tables import User
from modelport.api.services import audit, users
from modelport.api.settings import ApiSettings
from modelport.core.errors import Forbidden, NotFound, NotReady, Unauthenticated
from sqlalchemy import select
from sqlalchemy.orm import Session

with warnings.catch_warnings():  # authlib.jose is deprecated in favour of joserfc
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.jose import JoseError, JsonWebKey, jwt

_STATE_TTL = 600
#: The cookie that binds a login's ``state`` to the browser that started it.
BROWSER_COOKIE = "modelport_oidc"
BROWSER_COOKIE_PATH = "/api/v1/auth/oidc"
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


@dataclass(frozen=True)
class LoginStart:
    """Where to send the browser, and the secret to keep in its :data:`BROWSER_COOKIE`."""

    url: str
    browser_secret: str


def cookie(settings: ApiSettings, *, max_age: int | None = _STATE_TTL) -> dict[str, Any]:
    """The attributes of :data:`BROWSER_COOKIE`: HttpOnly, SameSite=Lax (it must come back with
    the provider's top-level redirect), only for the OIDC routes, and Secure when the API is
    reached over https."""
    return {
        "path": BROWSER_COOKIE_PATH,
        "secure": settings.public_url.lower().startswith("https://"),
        "httponly": True,
        "samesite": "lax",
        **({"max_age": max_age} if max_age is not None else {}),
    }


def _challenge(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier`` (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def login_redirect(*, settings: ApiSettings) -> LoginStart:
    """The provider's authorization URL to send the browser to, and the browser's secret."""
    issuer, client_id, _ = _enabled(settings)
    nonce = secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)
    challenge = _challenge(verifier)
    now = int(time.time())
    state: bytes = jwt.encode(
        {"alg": "HS256"},
        {
            "iss": "modelport",
            "sub": _STATE_SUBJECT,
            "nonce": nonce,
            "browser": challenge,
            "exp": now + _STATE_TTL,
        },
        settings.signing_keys().oidc_state,
    )
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": callback_url(settings),
        "scope": "openid email",
        "state": state.decode(),
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    url = f"{_discover(issuer)['authorization_endpoint']}?{urlencode(query)}"
    return LoginStart(url=url, browser_secret=verifier)


def _state_nonce(state: str, settings: ApiSettings, *, browser_secret: str) -> str:
    """The ID-token nonce of a valid ``state`` that the calling browser's cookie matches."""
    try:
        claims = jwt.decode(state, settings.signing_keys().oidc_state)
        claims.validate()
    except (JoseError, ValueError) as exc:
        raise Unauthenticated("invalid or expired login state; start the login again") from exc
    if claims.get("sub") != _STATE_SUBJECT or claims.header.get("alg") != "HS256":
        raise Unauthenticated("invalid or expired login state; start the login again")
    bound = str(claims.get("browser", ""))
    if not browser_secret or not hmac.compare_digest(_challenge(browser_secret), bound):
        raise Unauthenticated(
            "this login was started in another browser (or its cookie expired); "
            "start the login again"
        )
    return str(claims["nonce"])


def _id_token_claims(code: str, nonce: str, verifier: str, settings: ApiSettings) -> dict[str, Any]:
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
                "code_verifier": verifier,
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


def complete_login(
    session: Session, *, settings: ApiSettings, code: str, state: str, browser_secret: str
) -> str:
    """Finish the flow started in the browser holding ``browser_secret`` (its cookie; empty when
    it sent none); returns a Modelport login token."""
    nonce = _state_nonce(state, settings, browser_secret=browser_secret)
    claims = _id_token_claims(code, nonce, browser_secret, settings)
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
    """Link the account with the ID token's email, or create one; both need the email verified
    (the JSON ``true``; a missing claim or the string ``"true"`` is not)."""
    email = str(claims.get("email") or "").strip().lower()
    if not email or claims.get("email_verified") is not True:
        raise Unauthenticated("the identity provider gave no verified email address")
    user = session.scalar(select(User).where(User.email == email).with_for_update())
    if user is not None:
        if user.oidc_subject is not None:  # another subject: this one was looked up first
            raise Forbidden(
                "the account with this email signs in with another identity; "
                "use that one, or ask an administrator"
            )
        user.oidc_subject = subject
        audit.record(session, actor_id=user.id, action="user.oidc_link", target=user.id)
        session.commit()
        return user
    if settings.signup == "admin":
        raise Forbidden("sign-up is closed; an administrator creates accounts")
    return users.create_user(
        session, settings=settings, email=email, password=None, oidc_subject=subject
    )
