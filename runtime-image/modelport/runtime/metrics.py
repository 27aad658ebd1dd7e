"""Prometheus metrics of one runtime, on a registry of its own (one per app), served by
``modelport.core.metrics_server`` on the metrics port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["RuntimeMetrics"]

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class RuntimeMetrics:
    """Request count, errors, latency, in-flight, batch sizes and model load time, per model."""

    def __init__(self, model: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.model = model
        labels = ("model", "protocol", "code")
        self.requests = Counter(
            "modelport_runtime_requests",
            "Inference requests answered, by protocol and HTTP status.",
            labels,
            registry=self.registry,
        )
        self.errors = Counter(
            "modelport_runtime_request_errors",
            "Inference requests answered with an error, by protocol and error code.",
            ("model", "protocol", "error"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelport_runtime_request_duration_seconds",
            "Time from request to response for inference requests.",
            ("model", "protocol"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "modelport_runtime_in_flight_requests",
            "Inference requests being handled now.",
            ("model",),
            registry=self.registry,
        ).labels(model)
        self.batch_rows = Histogram(
            "modelport_runtime_batch_rows",
            "Rows per framework call (above 1 when adaptive batching merges requests).",
            ("model",),
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        ).labels(model)
        self.load_seconds = Gauge(
            "modelport_runtime_model_load_seconds",
            "Seconds spent fetching, decrypting, verifying and loading the model.",
            ("model", "stage"),
            registry=self.registry,
        )
        self.ready = Gauge(
            "modelport_runtime_model_ready",
            "1 when the model is loaded and serving.",
            ("model",),
            registry=self.registry,
        ).labels(model)
        self._latency_children: dict[str, Histogram] = {}
        self._request_children: dict[tuple[str, int], Counter] = {}

    def observe(self, protocol: str, status: int, seconds: float, error: str | None) -> None:
        child = self._request_children.get((protocol, status))
        if child is None:
            child = self.requests.labels(self.model, protocol, str(status))
            self._request_children[(protocol, status)] = child
        child.inc()
        hist = self._latency_children.get(protocol)
        if hist is None:
            hist = self.latency.labels(self.model, protocol)
            self._latency_children[protocol] = hist
        hist.observe(seconds)
        if error is not None:
            self.errors.labels(self.model, protocol, error).inc()
