"""``modelport-operator`` as a real process against the test cluster (tests and benchmark).

The process is the real entry point; with ``count_kopf=True`` it starts through
``tests.operator.counting``, which also counts kopf's own API requests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from testing.harness.process import free_ports

ROOT = Path(__file__).resolve().parents[1]
#: This checkout's source roots first, so the operator runs the code under test even where the
#: environment's editable install points at another checkout.
PYTHONPATH = os.pathsep.join(
    str(ROOT / part) for part in ("core", "control-api", "operator", "runtime-image", "")
)
LEASE_NAMESPACE = "modelport-system"


def wait_for(check: Any, *, timeout: float = 60.0, interval: float = 0.5, what: str = "") -> Any:
    """Poll `check()` until it returns something truthy; its last error explains a timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # retried until the deadline
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what or check} not true after {timeout}s (last: {last!r})")


class OperatorProcess:
    """One operator replica; `settings` become MODELPORT_OPERATOR_* variables."""

    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        *,
        identity: str = "operator-0",
        count_kopf: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.identity = identity
        self.count_kopf = count_kopf
        self.settings = settings or {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> OperatorProcess:
        (self.port,) = free_ports(1)
        env = dict(os.environ)
        env.pop("MODELPORT_OPERATOR_NAMESPACES", None)
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "PYTHONPATH": PYTHONPATH,
                "MODELPORT_OPERATOR_NAMESPACE": LEASE_NAMESPACE,
                "MODELPORT_OPERATOR_IDENTITY": self.identity,
                "MODELPORT_OPERATOR_HEALTH_PORT": str(self.port),
                "MODELPORT_OPERATOR_INGRESS_DOMAIN": "models.test",
                "MODELPORT_OPERATOR_LEASE_DURATION_SECONDS": "6",
                **{f"MODELPORT_OPERATOR_{k.upper()}": v for k, v in self.settings.items()},
            }
        )
        module = "tests.operator.counting" if self.count_kopf else "modelport.operator.main"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.up, timeout=30, what="operator metrics endpoint")
        return self

    def up(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"operator exited:\n{self.log_tail()}")
        return bool(self.metrics_text())

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def metrics(self) -> dict[str, float]:
        """Samples of the operator's own metrics, keyed by name and labels."""
        out: dict[str, float] = {}
        for line in self.metrics_text().splitlines():
            if line.startswith("modelport_operator_"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def leading(self) -> bool:
        return self.metrics().get("modelport_operator_leader") == 1.0

    def api_requests(
        self, prefix: str = "modelport_operator_api_requests_total", *, leases: bool = False
    ) -> float:
        """Requests counted so far (by default without leader-election renewals)."""
        return sum(
            v
            for k, v in self.metrics().items()
            if k.startswith(prefix) and (leases or 'kind="Lease"' not in k)
        )

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
