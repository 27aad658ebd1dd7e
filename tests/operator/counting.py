"""Run ``modelport-operator`` while counting kopf's own API requests too (for the benchmark).

The operator counts its own requests in ``modelport.operator.k8s``; kopf's watches, patches and
progress annotations go through aiohttp, which this wrapper counts per HTTP method and exports
as ``modelport_operator_kopf_requests_total``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
from modelport.operator.main import main
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

COUNTS: Counter[str] = Counter()
_original = aiohttp.ClientSession._request


async def _counting(self: aiohttp.ClientSession, method: str, *args: Any, **kwargs: Any) -> Any:
    watch = "watch=true" in str(args[0] if args else kwargs.get("url", ""))
    COUNTS["WATCH" if watch else method.upper()] += 1
    return await _original(self, method, *args, **kwargs)


class _KopfRequests(Collector):
    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "modelport_operator_kopf_requests", "API requests kopf made.", labels=["verb"]
        )
        for verb, count in sorted(COUNTS.items()):
            family.add_metric([verb], count)
        yield family


aiohttp.ClientSession._request = _counting  # type: ignore[method-assign]
REGISTRY.register(_KopfRequests())

if __name__ == "__main__":
    main([])
