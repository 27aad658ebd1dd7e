"""Prometheus metrics of one API process (its own registry, so that tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "modelport_api_requests_total",
            "Control-API requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelport_api_request_seconds",
            "Control-API request latency by route.",
            ["route"],
            registry=self.registry,
        )
        self.uploads = Counter(
            "modelport_api_uploads_total",
            "Uploads by outcome (the error code, or ok).",
            ["outcome"],
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "modelport_api_upload_bytes_total",
            "Model bytes received in accepted uploads.",
            registry=self.registry,
        )
