"""Prometheus metrics of one API process (its own registry, so that tests can build many apps)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from modelport.core.errors import ModelportError
from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class UploadTally:
    """What an upload reports to :meth:`Metrics.counting_upload` once its body is in."""

    size: int = 0


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

    @contextmanager
    def counting_upload(self) -> Iterator[UploadTally]:
        """Count the upload handled in the block by outcome: the error code of the refusal that
        leaves the block, or ``ok`` and the model bytes set on the tally."""
        tally = UploadTally()
        try:
            yield tally
        except ModelportError as exc:
            self.uploads.labels(exc.code).inc()
            raise
        self.uploads.labels("ok").inc()
        self.upload_bytes.inc(tally.size)
