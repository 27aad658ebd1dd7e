"""Passwords (argon2id), short-lived login tokens (JWT, HS256, authlib) and API keys.

An API key reads ``mp_<id>_<secret>``; only the sha256 of the whole key is stored, looked up by
``id`` and compared in constant time. Neither keys nor passwords are ever logged.

The one configured secret (``jwt_secret``) is never a key itself: :class:`SigningKeys` derives
one key per purpose with HKDF-SHA256 (login tokens, OpenID Connect ``state``, runtimes' usage
tokens), so that nothing made for one purpose verifies for another. A login token names its
audience and type (``aud``, ``typ``), and verification requires both.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import warnings
from dataclasses import dataclass, field

import authlib.deprecate
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

with warnings.catch_warnings():  # authlib.jose is deprecated in favour of joserfc; same tokens
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.jose import JoseError, JWTClaims, jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from modelport.core.errors import Unauthenticated

KEY_PREFIX = "mp"
_hasher = PasswordHasher()
# Verified against when the user does not exist, so that timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
_ISSUER = "modelport"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches; spends the same effort when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


AUDIENCE = "modelport-api"
LOGIN_TYPE = "login"
_LEGACY_STATE_SUBJECT = "oidc-state"


def _derive(secret: bytes, purpose: str) -> bytes:
    info = b"modelport/v1/" + purpose.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


@dataclass(frozen=True)
class SigningKeys:
    """The keys derived from the configured secret, one per purpose. ``repr`` shows none."""

    login: bytes = field(repr=False)
    """Signs and verifies login tokens."""
    oidc_state: bytes = field(repr=False)
    """Signs the OpenID Connect ``state``."""
    usage: bytes = field(repr=False)
    """Derives each model's usage-report token."""
    legacy: bytes = field(repr=False)
    """The secret itself, which signed the login tokens of earlier releases: it verifies a token
    of that form only when issued before ``legacy_issued_before`` (so sessions survive an upgrade
    for at most one token lifetime), and signs nothing."""
    legacy_issued_before: int = 0

    @classmethod
    def derive(cls, secret: str, *, issued_before: int | None = None) -> SigningKeys:
        raw = secret.encode()
        return cls(
            login=_derive(raw, "jwt-login"),
            oidc_state=_derive(raw, "oidc-state"),
            usage=_derive(raw, "usage-token"),
            legacy=raw,
            legacy_issued_before=int(time.time()) if issued_before is None else issued_before,
        )

    def usage_token(self, model_id: str) -> str:
        """The bearer token model ``model_id``'s runtime reports usage with (never stored)."""
        return hmac.new(self.usage, model_id.encode(), hashlib.sha256).hexdigest()

    def legacy_usage_token(self, model_id: str) -> str:
        """The usage token earlier releases gave a model's runtime, still accepted from runtimes
        whose key Secret they wrote (the next apply of the model replaces it). Its message is no
        JWT's signing input, so it verifies nothing else."""
        message = f"usage:{model_id}".encode()
        return hmac.new(self.legacy, message, hashlib.sha256).hexdigest()


def issue_token(user_id: str, *, keys: SigningKeys, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {
        "iss": _ISSUER,
        "aud": AUDIENCE,
        "typ": LOGIN_TYPE,
        "sub": user_id,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    token: bytes = jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, keys.login)
    return token.decode()


def verify_token(token: str, *, keys: SigningKeys) -> str:
    """The user id a valid, unexpired login token names; 401 otherwise.

    The token must be signed with the login key and name this API as its audience and ``login``
    as its type. A token of the earlier releases' form (the raw secret, no audience) is accepted
    only when it was issued before this process started.
    """
    try:
        claims = _decode(token, keys.login, {"aud": AUDIENCE, "typ": LOGIN_TYPE})
    except (JoseError, ValueError) as exc:
        claims = _legacy_claims(token, keys)
        if claims is None:
            raise Unauthenticated("invalid or expired token") from exc
    if claims.header.get("alg") != "HS256":
        raise Unauthenticated("invalid or expired token")
    return str(claims["sub"])


def _decode(token: str, key: bytes, required: dict[str, str]) -> JWTClaims:
    options: dict[str, dict[str, object]] = {
        "iss": {"essential": True, "value": _ISSUER},
        "exp": {"essential": True},
        "sub": {"essential": True},
    }
    options.update({name: {"essential": True, "value": value} for name, value in required.items()})
    claims = jwt.decode(token, key, claims_options=options)
    claims.validate(leeway=5)
    return claims


def _legacy_claims(token: str, keys: SigningKeys) -> JWTClaims | None:
    """The claims of an earlier release's login token, or None (any failure, or not one)."""
    try:
        claims = _decode(token, keys.legacy, {})
    except (JoseError, ValueError):
        return None
    issued = claims.get("iat")
    if (
        not isinstance(issued, int)
        or issued >= keys.legacy_issued_before
        or "aud" in claims
        or "typ" in claims
        or claims.get("sub") == _LEGACY_STATE_SUBJECT
    ):
        return None
    return claims


@dataclass(frozen=True)
class NewKey:
    id: str
    secret_key: str
    """The whole key, shown to its owner once."""
    sha256: str


def new_api_key() -> NewKey:
    key_id = secrets.token_hex(6)
    whole = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(id=key_id, secret_key=whole, sha256=sha256_hex(whole))


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def parse_api_key(value: str) -> str | None:
    """The key id of a well-formed key, else None."""
    parts = value.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


def key_matches(value: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(sha256_hex(value), stored_sha256)
