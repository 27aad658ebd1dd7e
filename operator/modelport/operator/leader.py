"""Leader election on a ``coordination.k8s.io/v1`` Lease, so two operator replicas never fight.

The replica holding the Lease reconciles; the others wait, and take over once the holder has not
renewed for ``lease_duration_seconds``. Updates are guarded by ``resourceVersion``, so two
candidates can never both win the same round. A leader that cannot renew in time stops itself
(its pod then restarts and stands in line again).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from modelport.operator.k8s import Kube, KubeConflict, KubeError

log = logging.getLogger(__name__)

LEASE_API = "coordination.k8s.io/v1"


def _micro(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class LeaderElector:
    """Acquire and renew one Lease on behalf of `identity`."""

    def __init__(
        self, kube: Kube, *, namespace: str, name: str, identity: str, duration_seconds: int
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration_seconds

    def _lease(self, spec: dict[str, Any], resource_version: str | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {"apiVersion": LEASE_API, "kind": "Lease", "metadata": meta, "spec": spec}

    def try_acquire(self) -> bool:
        """Take or renew the Lease; False while another live holder has it."""
        now = datetime.now(UTC)
        try:
            lease = self.kube.sync.get(LEASE_API, "Lease", self.namespace, self.name)
            if lease is None:
                spec = self._spec(now, acquired=now, transitions=0)
                self.kube.sync.create(self._lease(spec))
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            if holder and holder != self.identity and not self._expired(spec, now):
                return False
            mine = holder == self.identity
            acquired = _parse(spec.get("acquireTime")) if mine else now
            transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
            new = self._spec(now, acquired=acquired or now, transitions=transitions)
            self.kube.sync.replace(self._lease(new, lease["metadata"]["resourceVersion"]))
            if not mine:
                log.info("acquired the Lease %s/%s", self.namespace, self.name)
            return True
        except KubeConflict:
            return False

    def _expired(self, spec: dict[str, Any], now: datetime) -> bool:
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or self.duration)
        return renewed is None or now > renewed + timedelta(seconds=duration)

    def _spec(self, now: datetime, *, acquired: datetime, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration,
            "acquireTime": _micro(acquired),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }

    def release(self) -> None:
        """Give the Lease up at a clean shutdown, so that a standby takes over at once."""
        try:
            lease = self.kube.sync.get(LEASE_API, "Lease", self.namespace, self.name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                spec = dict(lease["spec"], holderIdentity=None, leaseDurationSeconds=1)
                self.kube.sync.replace(self._lease(spec, lease["metadata"]["resourceVersion"]))
        except KubeError as exc:
            log.warning("could not release the Lease: %s", exc)

    def run(self, leading: threading.Event, lost: threading.Event, stop: threading.Event) -> None:
        """Loop until `stop`: set `leading` once elected, `lost` (and `stop`) if renewal fails."""
        period = max(1.0, self.duration / 3)
        deadline = self.duration * 2 / 3  # give up before a standby may take over
        last_renewal = 0.0
        while not stop.is_set():
            try:
                ok = self.try_acquire()
            except (KubeError, OSError) as exc:
                log.warning("Lease renewal failed: %s", exc)
                ok = False
            if ok:
                last_renewal = time.monotonic()
                leading.set()
            elif leading.is_set() and time.monotonic() - last_renewal > deadline:
                log.error("lost the Lease %s/%s; stopping", self.namespace, self.name)
                lost.set()
                stop.set()
                return
            stop.wait(period)
