"""The login back-off, the host policy and the quantity arithmetic of the settings caps."""

from __future__ import annotations

from fractions import Fraction

import pytest
from modelport.api.hosts import HostPolicy
from modelport.api.services.caps import cpu_cores, effective_rate_limit, memory_bytes
from modelport.api.throttle import Backoff
from modelport.core.hosts import split_host


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_past_the_free_failures_up_to_the_cap() -> None:
    clock = Clock()
    backoff = Backoff(free=3, max_seconds=10, clock=clock)
    waits = []
    for _ in range(8):
        backoff.failed("a")
        waits.append(backoff.wait_seconds("a"))
    assert waits == [0, 0, 1, 2, 4, 8, 10, 10]
    assert backoff.wait_seconds("b") == 0  # keys are separate
    clock.now += 4
    assert backoff.wait_seconds("a") == 6
    backoff.reset("a")
    assert backoff.wait_seconds("a") == 0


def test_backoff_forgets_failures_after_a_quiet_window() -> None:
    clock = Clock()
    backoff = Backoff(free=2, max_seconds=60, clock=clock)
    backoff.failed("a")
    clock.now += 61
    backoff.failed("a")  # the first one is forgotten: still free
    assert backoff.wait_seconds("a") == 0


def test_backoff_keeps_a_bounded_number_of_keys() -> None:
    backoff = Backoff(free=1, max_seconds=60, clock=Clock(), max_keys=2)
    for key in ("a", "b", "c"):
        backoff.failed(key)
    assert backoff.wait_seconds("a") == 0 and backoff.wait_seconds("c") == 1


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", "8000")),
        ("LocalHost", ("localhost", None)),
        ("[::1]:8000", ("[::1]", "8000")),
        ("[::1]", ("[::1]", None)),
        ("api.example.com.:443", ("api.example.com", "443")),
    ],
)
def test_split_host(host: str, expected: tuple[str, str | None]) -> None:
    assert split_host(host) == expected


def test_host_policy() -> None:
    policy = HostPolicy(["api.example.com", "127.0.0.1:8000", "[::1]:8000", "*.svc.local"])
    for allowed in ("api.example.com", "API.example.com:443", "127.0.0.1:8000", "[::1]:8000"):
        assert policy.allows(allowed), allowed
    assert policy.allows("mp-api.ns.svc.local:8000")
    for refused in ("evil.example", "127.0.0.1:8001", "127.0.0.1", "", "svc.local", "[::2]:8000"):
        assert not policy.allows(refused), refused
    assert HostPolicy(["*"]).allows("anything.example")


def test_quantities_and_the_effective_rate_limit() -> None:
    assert cpu_cores("500m") == Fraction(1, 2) and cpu_cores("1.5") == Fraction(3, 2)
    assert memory_bytes("1Gi") == 1 << 30 and memory_bytes("4G") == 4 * 10**9
    assert memory_bytes("1000") == 1000
    assert effective_rate_limit(60, 30) == 30 and effective_rate_limit(10, 30) == 10
    assert effective_rate_limit(0, 30) == 30 and effective_rate_limit(60, None) == 60
    assert effective_rate_limit(0, None) == 0 and effective_rate_limit(60, 0) == 60
