"""The token bucket shared by the control API and the runtime."""

from __future__ import annotations

import pytest
from modelport.core.errors import RateLimited
from modelport.core.ratelimit import RateLimiter


def test_token_bucket_refills_over_time():
    now = [0.0]
    limiter = RateLimiter(limit_field="limitPerMinute", clock=lambda: now[0])
    for _ in range(3):
        limiter.acquire("k", 3)
    with pytest.raises(RateLimited) as caught:
        limiter.acquire("k", 3)
    assert caught.value.retry_after == 20  # one token every 20 s at 3 a minute
    assert caught.value.headers == {"Retry-After": "20"}
    assert caught.value.details == {"limitPerMinute": 3}
    now[0] = 20.0
    limiter.acquire("k", 3)
    limiter.acquire("unlimited", 0)


def test_buckets_are_per_key_and_bounded():
    limiter = RateLimiter(limit_field="requestsPerMinute", clock=lambda: 0.0, max_keys=2)
    limiter.acquire("a", 1)
    limiter.acquire("b", 1)
    with pytest.raises(RateLimited):
        limiter.acquire("a", 1)
    limiter.acquire("c", 1)  # a third key starts over: every bucket is full again
    limiter.acquire("a", 1)
