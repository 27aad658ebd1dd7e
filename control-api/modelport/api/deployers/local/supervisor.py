"""Local runtime processes: one ``modelport-runtime`` per active model on 127.0.0.1, health-checked
and restarted with back-off. Each process gets two free ports: the one the proxy forwards to, and
a metrics port that nothing forwards to.

A new version starts beside the old process and takes over once it is ready, so that the model
keeps answering. The key material a process reads is written by the deployer into the model's
folder before the process is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from modelport.api.deployers.base import DeploymentSpec, DeploymentState
from modelport.api.deployers.local import isolation
from modelport.core.constants import ENV_PREFIX_RUNTIME
from modelport.core.errors import NotFound, NotReady

log = logging.getLogger(__name__)

_MAX_BACKOFF = 30.0
#: Crashes in a row after which a model is reported Failed (it is still retried).
_FAILED_AFTER = 3


@dataclass
class _Process:
    version: int
    port: int
    metrics_port: int
    popen: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    ready: bool = False


@dataclass
class _Model:
    spec: DeploymentSpec
    folder: Path
    current: _Process | None = None
    next: _Process | None = None
    restarts: int = 0
    retry_at: float = 0.0
    message: str = ""


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago (held until all are found)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


class Supervisor:
    """Runs, watches and restarts the runtime processes. Thread-safe."""

    def __init__(
        self,
        *,
        command: list[str],
        usage_url: str,
        data_dir: Path,
        runtime_user: isolation.RuntimeUser,
        s3_endpoint_url: str | None = None,
        env: dict[str, str] | None = None,
        check_seconds: float = 1.0,
    ) -> None:
        self.command = command
        self.data_dir = data_dir
        self.runtime_user = runtime_user
        self.usage_url = usage_url
        self.s3_endpoint_url = s3_endpoint_url
        self.env = dict(env or {})
        self.check_seconds = check_seconds
        self._models: dict[str, _Model] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Begin health checks and restarts in a background thread."""
        self._thread = threading.Thread(target=self._supervise, name="modelport-local", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, then stop every process."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for entry in self._models.values():
                _stop_process(entry.current)
                _stop_process(entry.next)
            self._models.clear()

    # --- models -------------------------------------------------------------------------------

    def apply(self, spec: DeploymentSpec, folder: Path) -> None:
        """Run ``spec`` from the key material in ``folder``; inactive specs stop their process."""
        with self._lock:
            entry = self._models.get(spec.model_id)
            if entry is None:
                entry = self._models[spec.model_id] = _Model(spec=spec, folder=folder)
            old = entry.spec
            entry.spec, entry.folder = spec, folder
            if not spec.active:
                _stop_process(entry.current)
                _stop_process(entry.next)
                entry.current = entry.next = None
                return
            unchanged = (
                entry.current is not None
                and old.version == spec.version
                and old.settings == spec.settings
            )
            if unchanged:
                return
            _stop_process(entry.next)
            entry.next = self._spawn(spec, folder)
            if entry.current is None:
                entry.current, entry.next = entry.next, None
            entry.restarts = 0

    def remove(self, model_id: str) -> None:
        with self._lock:
            entry = self._models.pop(model_id, None)
            if entry is not None:
                _stop_process(entry.current)
                _stop_process(entry.next)

    def state(self, model_id: str) -> DeploymentState:
        """The model's phase (the URL is the deployer's to add)."""
        with self._lock:
            entry = self._models.get(model_id)
            if entry is None:
                return DeploymentState(phase="Pending", message="not started")
            if not entry.spec.active:
                return DeploymentState(phase="Inactive")
            proc = entry.current
            if proc is not None and proc.ready and proc.popen.poll() is None:
                return DeploymentState(phase="Ready")
            if entry.restarts >= _FAILED_AFTER:
                return DeploymentState(phase="Failed", message=entry.message)
            return DeploymentState(phase="Deploying", message=entry.message)

    def upstream(self, model_id: str) -> int:
        """The port of the model's ready runtime; 404 unknown, 503 while it starts."""
        with self._lock:
            entry = self._models.get(model_id)
            if entry is None:
                raise NotFound(f"no model {model_id}", details={"modelId": model_id})
            proc = entry.current
            if not entry.spec.active or proc is None:
                raise NotReady(f"model {model_id} is not running", headers={"Retry-After": "5"})
            if not proc.ready:
                raise NotReady(f"model {model_id} is starting", headers={"Retry-After": "2"})
            return proc.port

    # --- processes ----------------------------------------------------------------------------

    def _runtime_env(
        self, spec: DeploymentSpec, folder: Path, port: int, metrics_port: int
    ) -> dict[str, str]:
        """The process environment, built from scratch (:func:`isolation.environment`)."""
        values: dict[str, str] = {
            "MODEL_NAME": spec.model_id,
            "ARTIFACT_URI": spec.artifact_uri,
            "FORMAT": spec.format,
            "SHA256": spec.sha256,
            "KEY_FILE": str(folder / "data-key"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "METRICS_HOST": "127.0.0.1",
            "METRICS_PORT": str(metrics_port),
            "AUTH_KEYS_FILE": str(folder / "auth-keys.json"),
            "AUTH_RELOAD_SECONDS": "2",
            "AUTH_REQUIRED": "true" if spec.settings.auth_required else "false",
            "RATE_LIMIT_PER_MINUTE": str(spec.settings.rate_limit_per_minute or 0),
            "USAGE_REPORT_URL": self.usage_url,
            "USAGE_TOKEN_FILE": str(folder / "usage-token"),
            "USAGE_REPORT_SECONDS": "5",
            "DRAIN_SECONDS": "1",
        }
        if self.s3_endpoint_url:
            values["S3_ENDPOINT_URL"] = self.s3_endpoint_url
        own = {ENV_PREFIX_RUNTIME + k: v for k, v in values.items()}
        return isolation.environment(os.environ, extra=self.env, own=own, folder=folder)

    def _spawn(self, spec: DeploymentSpec, folder: Path) -> _Process:
        port, metrics_port = free_ports(2)
        user = isolation.choose_user(
            wanted=self.runtime_user,
            interpreter=self.command[0],
            data_dir=self.data_dir,
            artifact_uri=spec.artifact_uri,
        )
        isolation.prepare_folder(folder, user)
        command = isolation.command(
            self.command,
            data_dir=self.data_dir,
            folder=folder,
            artifact_uri=spec.artifact_uri,
            user=user,
        )
        log_file = (folder / "runtime.log").open("ab")
        try:
            popen = subprocess.Popen(
                command,
                env=self._runtime_env(spec, folder, port, metrics_port),
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
            )
        finally:
            log_file.close()
        log.info("started runtime for %s v%s on port %s", spec.model_id, spec.version, port)
        return _Process(version=spec.version, port=port, metrics_port=metrics_port, popen=popen)

    def _supervise(self) -> None:
        with httpx.Client(timeout=1.0) as client:
            while not self._stop.wait(self.check_seconds):
                with self._lock:
                    entries = list(self._models.items())
                for model_id, entry in entries:
                    try:
                        self._check(model_id, entry, client)
                    except Exception:
                        log.exception("supervising %s failed", model_id)

    def _check(self, model_id: str, entry: _Model, client: httpx.Client) -> None:
        for proc in (entry.current, entry.next):
            if proc is not None and not proc.ready and proc.popen.poll() is None:
                proc.ready = _is_ready(client, proc.port)
        with self._lock:
            if self._models.get(model_id) is not entry or not entry.spec.active:
                return
            if entry.next is not None and entry.next.ready:
                old, entry.current, entry.next = entry.current, entry.next, None
                threading.Thread(target=_stop_process, args=(old,), daemon=True).start()
            proc = entry.current
            if proc is None or proc.popen.poll() is None:
                return
            now = time.monotonic()
            if entry.retry_at == 0.0:
                entry.restarts += 1
                entry.message = f"runtime exited with status {proc.popen.returncode}; restarting"
                entry.retry_at = now + min(_MAX_BACKOFF, 2.0 ** (entry.restarts - 1))
                log.warning("runtime of %s exited (%s)", model_id, proc.popen.returncode)
                return
            if now >= entry.retry_at:
                entry.retry_at = 0.0
                entry.current = self._spawn(entry.spec, entry.folder)


def _stop_process(proc: _Process | None, timeout: float = 5.0) -> None:
    if proc is None or proc.popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.popen.send_signal(signal.SIGTERM)
    try:
        proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.popen.kill()
        proc.popen.wait()


def _is_ready(client: httpx.Client, port: int) -> bool:
    try:
        return client.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200
    except httpx.HTTPError:
        return False
