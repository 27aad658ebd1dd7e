"""The metrics server beside a main server: it serves /metrics alone, and a taken port fails at
start-up instead of later."""

from __future__ import annotations

import socket

import httpx
import pytest
from modelport.core.metrics_server import metrics_server
from prometheus_client import CollectorRegistry, Counter


async def test_serves_the_registry_at_metrics_only() -> None:
    registry = CollectorRegistry()
    Counter("modelport_test_things", "Things.", registry=registry).inc(3)
    async with (
        metrics_server(registry, host="127.0.0.1", port=0) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        scraped = await client.get("/metrics")
        assert scraped.status_code == 200
        assert "modelport_test_things_total 3.0" in scraped.text
        other = await client.get("/v2")
        assert other.status_code == 404
        assert other.json()["error"]["code"] == "not_found"
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):  # stopped with the block
            await client.get(f"http://127.0.0.1:{port}/metrics")


async def test_a_taken_port_fails_at_once() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            async with metrics_server(CollectorRegistry(), host="127.0.0.1", port=port):
                pass
