"""Inference keys (docs/contracts.md) and their per-key rate limit.

The keys file holds only sha256 digests of the keys. A presented key is hashed and its digest is
compared with every stored digest in constant time. The file is re-read periodically, so a revoked
key stops working once the kubelet refreshes the mounted Secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelport.core.errors import Unauthenticated
from modelport.core.ratelimit import RateLimiter

log = logging.getLogger("modelport.runtime")


@dataclass(frozen=True)
class KeyEntry:
    id: str
    digest: bytes
    rate_limit_per_minute: int | None


def parse_keys(text: str) -> tuple[KeyEntry, ...]:
    """Parse the keys file; raises ValueError when it is not the contract's shape."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError('expected {"keys": [...]}')
    entries = []
    for item in doc["keys"]:
        digest = bytes.fromhex(item["sha256"])
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError(f"key {item.get('id')!r}: sha256 must be 64 hex digits")
        limit = item.get("rateLimitPerMinute")
        entries.append(KeyEntry(str(item["id"]), digest, int(limit) if limit is not None else None))
    return tuple(entries)


class KeyStore:
    """The current set of accepted keys, reloaded from the mounted file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: tuple[KeyEntry, ...] = ()
        self._stamp: tuple[int, int, int] | None = None
        if path is not None:
            self.reload()

    @property
    def entries(self) -> tuple[KeyEntry, ...]:
        return self._entries

    def reload(self) -> bool:
        """Re-read the file if it changed; keeps the last good keys when it is unreadable."""
        if self.path is None:
            return False
        try:
            stat = self.path.stat()
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return False
            entries = parse_keys(self.path.read_text())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("cannot read the inference keys file %s: %s", self.path, exc)
            return False
        self._entries, self._stamp = entries, stamp
        log.info("loaded %d inference key(s)", len(entries))
        return True

    def match(self, presented: str) -> KeyEntry | None:
        """The entry whose digest equals the presented key's, compared in constant time."""
        digest = hashlib.sha256(presented.encode()).digest()
        found: KeyEntry | None = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry
        return found


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class Authenticator:
    """Checks a request's key and its rate limit; returns the key id (None when auth is off)."""

    def __init__(self, *, required: bool, keys: KeyStore, default_limit: int) -> None:
        self.required = required
        self.keys = keys
        self.default_limit = default_limit
        self.limiter = RateLimiter(limit_field="limitPerMinute")

    def check(self, headers: Mapping[str, str]) -> str | None:
        if not self.required:
            return None
        presented = presented_key(headers)
        if presented is None:
            raise Unauthenticated(
                "an API key is required: send Authorization: Bearer <key> or X-API-Key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        entry = self.keys.match(presented)
        if entry is None:
            raise Unauthenticated(
                "the API key is not valid here: a model endpoint takes an inference key for "
                "this model (an account key or a sign-in token is refused)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        limit = entry.rate_limit_per_minute
        self.limiter.acquire(entry.id, self.default_limit if limit is None else limit)
        return entry.id
