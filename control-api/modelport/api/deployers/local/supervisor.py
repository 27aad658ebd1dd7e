"""Local runtime processes: one ``modelport-runtime`` per active model on 127.0.0.1, health-checked
and restarted with back-off. Each process gets two free ports: the one the proxy forwards to, and
a metrics port that nothing forwards to.

A new version starts beside the old process and takes over once it is ready, so that the model
keeps answering. The key material a process reads is written by the deployer into the model's
folder before the process is asked for.

A runtime that exits makes the model Failed at once, with the one-line termination message the
runtime wrote (else the last line of its log) as the reason, as a crash loop does on Kubernetes.
It is started again after 1 s, then 2 s, ...; after ``MAX_FAILED_STARTS`` failed starts in a row it
is left stopped until a new version, new settings or a restart of ``modelport up``.
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

#: Failed starts in a row after which a model is Failed and no longer started.
MAX_FAILED_STARTS = 3
#: Wait before the second start; it doubles after each failure.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
#: The runtime's stdout and stderr, in the model's folder.
LOG_FILE = "runtime.log"
#: Reasons by exit status (docs/api.md); any other status is RuntimeExited.
EXIT_REASONS = {1: "LoadFailed", 2: "InvalidSettings"}


@dataclass
class _Process:
    version: int
    port: int
    metrics_port: int
    popen: subprocess.Popen[bytes]
    message_file: Path
    """Where this process writes its one-line reason if it fails to start."""
    started: float = field(default_factory=time.monotonic)
    ready: bool = False


@dataclass
class _Model:
    spec: DeploymentSpec
    folder: Path
    current: _Process | None = None
    next: _Process | None = None
    failures: int = 0
    """Failed starts in a row of the process being brought up."""
    retry_at: float | None = None
    """When that process is due to start again (None: not waiting)."""
    gave_up: bool = False
    reason: str = ""
    message: str = ""

    def starting(self) -> _Process | None:
        """The process being brought up: the new one beside a serving one, else the only one."""
        return self.next or self.current

    def reset(self) -> None:
        """A clean start: no failures counted, nothing to report."""
        self.failures, self.retry_at, self.gave_up = 0, None, False
        self.reason = self.message = ""


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
            if entry.current is None or entry.current.popen.poll() is not None:
                entry.current, entry.next = entry.next, None
            entry.reset()

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
            if entry.failures:
                return DeploymentState(phase="Failed", reason=entry.reason, message=entry.message)
            proc = entry.current
            if proc is not None and proc.ready and proc.popen.poll() is None:
                return DeploymentState(phase="Ready")
            return DeploymentState(phase="Deploying")

    def upstream(self, model_id: str) -> int:
        """The port of the model's ready runtime; 404 unknown, 503 while it starts."""
        with self._lock:
            entry = self._models.get(model_id)
            if entry is None:
                raise NotFound(f"no model {model_id}", details={"modelId": model_id})
            proc = entry.current
            if not entry.spec.active or proc is None or proc.popen.poll() is not None:
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
            "TERMINATION_MESSAGE_PATH": str(_message_file(folder, port)),
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
        message_file = _message_file(folder, port)
        message_file.unlink(missing_ok=True)
        log_file = (folder / LOG_FILE).open("ab")
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
        return _Process(
            version=spec.version,
            port=port,
            metrics_port=metrics_port,
            popen=popen,
            message_file=message_file,
        )

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
            elif (
                entry.next is not None and entry.current and entry.current.popen.poll() is not None
            ):
                entry.current, entry.next = entry.next, None  # the old one died first
            proc = entry.starting()
            if proc is None or entry.gave_up:
                return
            if proc.popen.poll() is None:
                if proc.ready and proc is entry.current:
                    entry.reset()
                return
            self._exited(model_id, entry, proc)

    def _exited(self, model_id: str, entry: _Model, proc: _Process) -> None:
        """``proc`` (being brought up, or serving) has exited: back off, start again or give up."""
        now = time.monotonic()
        if entry.retry_at is None:
            entry.failures += 1
            entry.reason, entry.message = _exit_reason(proc, entry.folder / LOG_FILE)
            log.warning(
                "runtime of %s exited (status %s, start %d of %d): %s",
                model_id,
                proc.popen.returncode,
                entry.failures,
                MAX_FAILED_STARTS,
                entry.message,
            )
            if entry.failures >= MAX_FAILED_STARTS:
                entry.gave_up = True
                if proc is entry.next:  # the serving version keeps serving
                    entry.next = None
                return
            entry.retry_at = now + min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (entry.failures - 1))
            return
        if now >= entry.retry_at:
            entry.retry_at = None
            new = self._spawn(entry.spec, entry.folder)
            if proc is entry.next:
                entry.next = new
            else:
                entry.current = new


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


def _message_file(folder: Path, port: int) -> Path:
    return folder / f"termination-{port}.log"


def _exit_reason(proc: _Process, log_file: Path) -> tuple[str, str]:
    """(reason, message) of an exited runtime: its termination message, else its last log line."""
    code = proc.popen.returncode
    reason = EXIT_REASONS.get(code, "RuntimeExited")
    try:
        message = proc.message_file.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        message = ""
    proc.message_file.unlink(missing_ok=True)
    if message:
        return reason, message
    how = f"was stopped by signal {-code}" if code < 0 else f"exited with status {code}"
    last = tail_lines(log_file, 1)
    return reason, f"the runtime {how}" + (f": {last[0].strip()}" if last else "")


def tail_lines(path: Path, count: int, *, block: int = 64 << 10) -> list[str]:
    """The last ``count`` lines of a text file (reading from its end); [] when there is none."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            data, start = b"", end
            while start > 0 and data.count(b"\n") <= count:
                start = max(0, start - block)
                f.seek(start)
                data = f.read(end - start)
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:] if count > 0 else []


def _is_ready(client: httpx.Client, port: int) -> bool:
    try:
        return client.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200
    except httpx.HTTPError:
        return False
