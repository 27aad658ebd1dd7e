"""Password guessing and hashing limits: login back-off, sign-up rate, password-hash slots.

All of it lives in memory in one API process: with N replicas behind a load balancer a client
gets up to N times the attempts (each replica counts its own share).

- **Back-off** (:class:`Backoff`): after ``free`` failures of one key (an account's email, a client
  address), each further attempt waits 1 s, then twice as long after every further failure, up to
  ``max_seconds``; meanwhile attempts get 429 with ``Retry-After``, a correct password included.
- **Hash slots** (:class:`HashSlots`): at most ``concurrency`` argon2 hashes (64 MiB each) at
  once; a login or sign-up waits briefly for a slot, then gets 503 with ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from modelport.api.settings import ApiSettings
from modelport.core.errors import NotReady, RateLimited
from modelport.core.ratelimit import RateLimiter


@dataclass
class _Failures:
    count: int
    last: float
    blocked_until: float


class Backoff:
    """Failure counts by key, with exponential back-off past ``free`` failures. Thread-safe."""

    def __init__(
        self,
        *,
        free: int,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._free = free
        self._max = max_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._keys: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def wait_seconds(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        now = self._clock()
        with self._lock:
            entry = self._current(key, now)
            return max(0.0, entry.blocked_until - now) if entry else 0.0

    def failed(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            entry = self._current(key, now) or _Failures(count=0, last=now, blocked_until=now)
            entry.count += 1
            entry.last = now
            if entry.count >= self._free:
                wait = min(self._max, 2.0 ** (entry.count - self._free))
                entry.blocked_until = now + wait
            self._keys[key] = entry
            self._keys.move_to_end(key)
            while len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)

    def reset(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def _current(self, key: str, now: float) -> _Failures | None:
        """The key's failures, forgotten after ``max_seconds`` without a new one."""
        entry = self._keys.get(key)
        if entry is not None and now - entry.last > self._max and now >= entry.blocked_until:
            del self._keys[key]
            return None
        return entry


class HashSlots:
    """At most ``concurrency`` password hashes at once; waiting longer than ``wait_seconds``
    for a slot is a 503 (``busy``) with ``Retry-After``."""

    def __init__(self, *, concurrency: int, wait_seconds: float) -> None:
        self._slots = threading.BoundedSemaphore(concurrency)
        self._wait = wait_seconds

    @contextmanager
    def held(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self._wait):
            raise NotReady(
                "too many sign-ins at once; retry in a few seconds",
                code="busy",
                headers={"Retry-After": "2"},
            )
        try:
            yield
        finally:
            self._slots.release()


class LoginGuard:
    """The limits on logins and sign-ups of one API process."""

    def __init__(self, settings: ApiSettings, *, clock: Callable[[], float] = time.monotonic):
        self.accounts = Backoff(
            free=settings.login_failures_per_account,
            max_seconds=settings.login_backoff_max_seconds,
            clock=clock,
        )
        self.addresses = Backoff(
            free=settings.login_failures_per_address,
            max_seconds=settings.login_backoff_max_seconds,
            clock=clock,
        )
        self.signups = RateLimiter(limit_field="signupsPerMinute", clock=clock)
        self.signups_per_minute = settings.signups_per_minute
        self.slots = HashSlots(
            concurrency=settings.password_hash_concurrency,
            wait_seconds=settings.password_hash_wait_seconds,
        )

    def before_login(self, *, address: str, account: str) -> None:
        """429 while the address or the account is backing off."""
        wait = max(self.addresses.wait_seconds(address), self.accounts.wait_seconds(account))
        if wait > 0:
            _refuse(wait)

    def login_failed(self, *, address: str, account: str) -> None:
        self.addresses.failed(address)
        self.accounts.failed(account)

    def login_succeeded(self, *, account: str) -> None:
        """Resets the account; the address's failures stay until they are forgotten (else
        logging in to one's own account between guesses would clear them)."""
        self.accounts.reset(account)

    def before_signup(self, *, address: str) -> None:
        """429 while the address backs off or past its sign-ups per minute."""
        wait = self.addresses.wait_seconds(address)
        if wait > 0:
            _refuse(wait)
        self.signups.acquire(address, self.signups_per_minute)

    def signup_refused(self, *, address: str) -> None:
        """A refused sign-up (the email is taken) counts against the address, as a wrong
        password does: probing which emails exist backs off too."""
        self.addresses.failed(address)


def _refuse(wait: float) -> None:
    seconds = max(1, math.ceil(wait))
    raise RateLimited(
        f"too many failed attempts; retry in {seconds} s",
        retry_after=seconds,
        details={"retryAfterSeconds": seconds},
    )
