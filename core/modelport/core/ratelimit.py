"""Per-key request limits: a token bucket per key, in this process.

Each key's bucket holds ``per_minute`` tokens and refills at that rate; a request that finds no
token left answers 429 with ``Retry-After`` (whole seconds until the next token). The control API
keys its buckets by user, the runtime by inference key; with several replicas each enforces the
limit on its own share of the traffic.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from modelport.core.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets by key: ``per_minute`` requests a minute, bursts of up to ``per_minute``.

    ``limit_field`` names the limit in the 429's details, in the caller's own words
    (``requestsPerMinute`` for a user, ``limitPerMinute`` for an inference key). Thread-safe.
    """

    def __init__(
        self,
        *,
        limit_field: str,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._limit_field = limit_field
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def acquire(self, key: str, per_minute: int) -> None:
        """Take one token from ``key``'s bucket, or raise :class:`RateLimited` (0: no limit)."""
        if per_minute <= 0:
            return
        rate = per_minute / 60.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._buckets.clear()
                bucket = self._buckets[key] = _Bucket(tokens=float(per_minute), stamp=now)
            bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = max(1, math.ceil((1.0 - bucket.tokens) / rate))
        raise RateLimited(
            f"rate limit of {per_minute} requests per minute reached; retry in {wait} s",
            retry_after=wait,
            details={self._limit_field: per_minute},
        )
