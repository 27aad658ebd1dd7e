"""``modelport-operator``: wire settings, the API client and leader election around kopf.

    MODELPORT_OPERATOR_INGRESS_DOMAIN=models.example.com modelport-operator

Credentials come from the pod's service account in a cluster, else from ``KUBECONFIG``.
``/metrics`` (and any other path, for the liveness probe) answer on ``health_port``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import threading
from collections.abc import Iterator

import kopf
from modelport.operator import handlers as _handlers  # noqa: F401  (registers the handlers)
from modelport.operator.k8s import Kube, load_configuration
from modelport.operator.leader import LeaderElector
from modelport.operator.reconcile import Reconciler
from modelport.operator.settings import OperatorSettings
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("modelport.operator")

ANNOTATION_PREFIX = "operator.modelport.io"


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    """kopf's own knobs: state in our annotations, no handler-log Events, our thread count."""
    ks = kopf.OperatorSettings()
    ks.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    ks.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    ks.posting.enabled = False  # the operator posts its own Events on phase changes
    ks.execution.max_workers = settings.workers
    ks.watching.server_timeout = 300
    return ks


class _Metrics(Collector):
    def __init__(self, kube: Kube, leading: threading.Event) -> None:
        self.kube = kube
        self.leading = leading

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        requests = CounterMetricFamily(
            "modelport_operator_api_requests",
            "Requests the operator made to the API server (besides its watches).",
            labels=["verb", "kind"],
        )
        for (verb, kind), count in sorted(self.kube.requests.items()):
            requests.add_metric([verb, kind], count)
        yield requests
        yield GaugeMetricFamily(
            "modelport_operator_leader", "1 while this replica leads.", value=self.leading.is_set()
        )


def _elect(
    settings: OperatorSettings, kube: Kube, leading: threading.Event, stop: threading.Event
) -> tuple[LeaderElector, threading.Event]:
    identity = settings.identity or socket.gethostname()
    elector = LeaderElector(
        kube,
        namespace=settings.namespace,
        name=settings.lease_name,
        identity=identity,
        duration_seconds=settings.lease_duration_seconds,
    )
    lost = threading.Event()
    thread = threading.Thread(
        target=elector.run, args=(leading, lost, stop), name="leader", daemon=True
    )
    thread.start()
    log.info(
        "waiting to lead as %s (Lease %s/%s)", identity, settings.namespace, settings.lease_name
    )
    while not leading.wait(1.0):
        if stop.is_set():
            break
    return elector, lost


async def _operate(settings: OperatorSettings, kube: Kube, lost: threading.Event) -> None:
    """kopf's operator, stopped by SIGINT/SIGTERM or when leadership is lost.

    The stop flag is an asyncio.Event: kopf waits for thread-side flags in an executor thread,
    which would keep the process alive after a signal.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def stop_when_lost() -> None:
        if lost.wait():
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=stop_when_lost, name="stop-when-lost", daemon=True).start()
    reconciler = Reconciler(settings=settings, kube=kube)
    resync = None
    if settings.resync_seconds:
        resync = asyncio.create_task(_resync(reconciler, settings))
    try:
        await _kopf(settings, reconciler, stop)
    finally:
        if resync is not None:
            resync.cancel()


async def _resync(reconciler: Reconciler, settings: OperatorSettings) -> None:
    while True:
        await asyncio.sleep(settings.resync_seconds)
        try:
            count = await reconciler.resync(settings.namespaces)
            log.info("resync re-applied the children of %d models", count)
        except Exception:  # the loop must survive anything; the next round retries
            log.exception("resync failed")


async def _kopf(settings: OperatorSettings, reconciler: Reconciler, stop: asyncio.Event) -> None:
    await kopf.operator(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=True,
        settings=kopf_settings(settings),
        memo=kopf.Memo(reconciler=reconciler),
        stop_flag=stop,
    )


def run(settings: OperatorSettings) -> int:
    """Run until stopped; the exit status is 1 if leadership was lost."""
    kube = Kube(load_configuration(pool_size=settings.workers), workers=settings.workers)
    leading, stop = threading.Event(), threading.Event()
    if settings.health_port is not None:
        REGISTRY.register(_Metrics(kube, leading))
        start_http_server(settings.health_port)
    elector, lost = None, threading.Event()
    if settings.leader_election:
        elector, lost = _elect(settings, kube, leading, stop)
    else:
        leading.set()
    try:
        asyncio.run(_operate(settings, kube, lost))
    finally:
        stop.set()
        if elector is not None and not lost.is_set():
            elector.release()
        kube.close()
    return 1 if lost.is_set() else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modelport-operator", description=__doc__)
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # one line per handler call and object is too much at INFO
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    sys.exit(run(OperatorSettings()))


if __name__ == "__main__":
    main()
