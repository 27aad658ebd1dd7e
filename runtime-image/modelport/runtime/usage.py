"""Usage counters, reported to the control API as deltas (docs/contracts.md, "Usage report")."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("modelport.runtime")

#: Latency samples kept per window; beyond this the window keeps a uniform thinning of them.
MAX_SAMPLES = 20_000


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UsageWindow:
    """Counts since the last report."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC)
        self.requests = 0
        self.errors = 0
        self.latencies_ms: list[float] = []
        self.last_used: float | None = None
        self.by_key: Counter[str] = Counter()

    def record(self, *, key_id: str | None, seconds: float, error: bool) -> None:
        self.requests += 1
        self.errors += int(error)
        if len(self.latencies_ms) < MAX_SAMPLES:
            self.latencies_ms.append(seconds * 1000.0)
        elif self.requests % 2 == 0:
            self.latencies_ms[self.requests % MAX_SAMPLES] = seconds * 1000.0
        self.last_used = time.time()
        if key_id is not None:
            self.by_key[key_id] += 1

    def merge(self, older: UsageWindow) -> None:
        """Fold an unsent window back in (its report failed)."""
        self.start = min(self.start, older.start)
        self.requests += older.requests
        self.errors += older.errors
        self.latencies_ms = (older.latencies_ms + self.latencies_ms)[-MAX_SAMPLES:]
        self.by_key.update(older.by_key)
        self.last_used = max(self.last_used or 0.0, older.last_used or 0.0) or None

    def report(self, model: str) -> dict[str, Any]:
        p50, p90, p99 = (
            np.percentile(self.latencies_ms, [50, 90, 99]).tolist()
            if self.latencies_ms
            else [0.0, 0.0, 0.0]
        )
        return {
            "model": model,
            "window": {"start": _iso(self.start), "end": _iso(datetime.now(UTC))},
            "requests": self.requests,
            "errors": self.errors,
            "latencyMs": {"p50": round(p50, 3), "p90": round(p90, 3), "p99": round(p99, 3)},
            "lastUsed": _iso(datetime.fromtimestamp(self.last_used, UTC))
            if self.last_used
            else None,
            "byKey": dict(self.by_key),
        }


class UsageReporter:
    """Collects usage and POSTs it every ``interval`` seconds when a URL is configured."""

    def __init__(
        self, *, model: str, url: str | None, token_file: Path | None, interval: float
    ) -> None:
        self.model = model
        self.url = url
        self.token_file = token_file
        self.interval = interval
        self.window = UsageWindow()

    def record(self, *, key_id: str | None, seconds: float, error: bool) -> None:
        self.window.record(key_id=key_id, seconds=seconds, error=error)

    async def run(self) -> None:
        """Report forever (cancel to stop); a final flush is :meth:`flush`."""
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        if self.url is None or self.window.requests == 0:
            return
        window, self.window = self.window, UsageWindow()
        body = json.dumps(window.report(self.model)).encode()
        try:
            await asyncio.to_thread(self._post, body)
        except Exception as exc:
            log.warning(
                "usage report to %s failed (%s); will retry with the next one", self.url, exc
            )
            self.window.merge(window)

    def _post(self, body: bytes) -> None:
        assert self.url is not None
        headers = {"Content-Type": "application/json"}
        if self.token_file is not None:
            headers["Authorization"] = "Bearer " + self.token_file.read_text().strip()
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - configured URL
            response.read()
