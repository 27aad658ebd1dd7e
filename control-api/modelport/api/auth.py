"""Passwords (argon2id), short-lived login tokens (JWT, HS256, authlib) and API keys.

An API key reads ``mp_<id>_<secret>``; only the sha256 of the whole key is stored, looked up by
``id`` and compared in constant time. Neither keys nor passwords are ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import warnings
from dataclasses import dataclass

import authlib.deprecate
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

with warnings.catch_warnings():  # authlib.jose is deprecated in favour of joserfc; same tokens
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.jose import JoseError, jwt
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


def issue_token(user_id: str, *, secret: str, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {"iss": _ISSUER, "sub": user_id, "iat": now, "exp": now + ttl_seconds}
    token: bytes = jwt.encode({"alg": "HS256"}, claims, secret)
    return token.decode()


def verify_token(token: str, *, secret: str) -> str:
    """The user id a valid, unexpired token names; 401 otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            claims_options={
                "iss": {"essential": True, "value": _ISSUER},
                "exp": {"essential": True},
            },
        )
        claims.validate(leeway=5)
    except (JoseError, ValueError) as exc:
        raise Unauthenticated("invalid or expired token") from exc
    if claims.header.get("alg") != "HS256":
        raise Unauthenticated("invalid or expired token")
    return str(claims["sub"])


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
