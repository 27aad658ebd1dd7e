"""Per-user limit on control-API requests: a token bucket per user, in this process.

Each user's bucket holds ``requests_per_minute`` tokens and refills at that rate; a request with
no token left answers 429 with ``Retry-After`` (whole seconds until the next token). With several
API replicas each enforces the limit on its own share of the traffic.
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
    """Token buckets keyed by user id; thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_users: int = 100_000):
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._max_users = max_users

    def check(self, user_id: str, per_minute: int) -> None:
        """Take one token from the user's bucket, or raise :class:`RateLimited`."""
        if per_minute <= 0:
            return
        rate = per_minute / 60.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(user_id)
            if bucket is None:
                if len(self._buckets) >= self._max_users:
                    self._buckets.clear()
                bucket = self._buckets[user_id] = _Bucket(tokens=float(per_minute), stamp=now)
            bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = max(1, math.ceil((1.0 - bucket.tokens) / rate))
        raise RateLimited(
            f"rate limit of {per_minute} requests per minute reached; retry in {wait} s",
            retry_after=wait,
            details={"requestsPerMinute": per_minute},
        )
