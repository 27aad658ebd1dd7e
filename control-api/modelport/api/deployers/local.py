"""The local deployer (``modelport up``): each active model runs as a ``modelport-runtime`` process
on 127.0.0.1, supervised (health-checked, restarted with back-off) and reverse-proxied under the
API's own address at ``/models/{id}/...``.

Key material lives under ``{data_dir}/run/{model id}/`` (folder 0700, files 0600): the data key, the
inference keys file (rewritten atomically on revocation; the runtime re-reads it every 2 s) and the
usage token. Removing a model removes the folder. A new version starts beside the old process and
takes over the proxy once it is ready, so that the endpoint keeps answering.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from fastapi import FastAPI, Request
from modelport.api.deployers.base import DeploymentSpec, DeploymentState
from modelport.api.settings import ApiSettings
from modelport.core.constants import ENV_PREFIX_RUNTIME
from modelport.core.crypto import encode_data_key
from modelport.core.errors import NotFound, NotReady
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

if TYPE_CHECKING:
    from modelport.api.context import AppContext

log = logging.getLogger(__name__)

_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_MAX_BACKOFF = 30.0


@dataclass
class _Process:
    version: int
    port: int
    popen: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    ready: bool = False


@dataclass
class _Model:
    spec: DeploymentSpec
    current: _Process | None = None
    next: _Process | None = None
    restarts: int = 0
    retry_at: float = 0.0
    message: str = ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalDeployer:
    """Runs models as local runtime processes. Thread-safe."""

    def __init__(
        self,
        *,
        data_dir: Path,
        public_url: str,
        usage_url: str,
        command: list[str] | None = None,
        s3_endpoint_url: str | None = None,
        check_seconds: float = 1.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.run_dir = Path(data_dir).resolve() / "run"
        self.public_url = public_url.rstrip("/")
        self.usage_url = usage_url
        self.command = command or [sys.executable, "-m", "modelport.runtime.main"]
        self.s3_endpoint_url = s3_endpoint_url
        self.check_seconds = check_seconds
        self.env = dict(env or {})
        self._models: dict[str, _Model] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> LocalDeployer:
        return cls(
            data_dir=settings.data_dir,
            public_url=settings.public_url,
            usage_url=settings.usage_url(),
            command=settings.runtime_command or None,
            s3_endpoint_url=settings.s3_endpoint_url,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, ctx: AppContext) -> None:
        """Start the runtimes of every active model, then the supervisor."""
        from modelport.api.db.tables import Model, ModelStatus
        from modelport.api.services.models import deployment_spec

        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with ctx.db.sessions() as session:
            for model in session.query(Model).filter(Model.status == ModelStatus.ACTIVE):
                try:
                    self.apply(deployment_spec(session, ctx=ctx, model=model))
                except Exception:
                    log.exception("could not start model %s", model.id)
        self._thread = threading.Thread(target=self._supervise, name="modelport-local", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for entry in self._models.values():
                self._stop_process(entry.current)
                self._stop_process(entry.next)
            self._models.clear()

    # --- Deployer -----------------------------------------------------------------------------

    def endpoint_url(self, model_id: str) -> str:
        return f"{self.public_url}/models/{model_id}"

    def apply(self, spec: DeploymentSpec) -> None:
        folder = self._write_files(spec)
        with self._lock:
            entry = self._models.get(spec.model_id)
            if entry is None:
                entry = self._models[spec.model_id] = _Model(spec=spec)
            old = entry.spec
            entry.spec = spec
            if not spec.active:
                self._stop_process(entry.current)
                self._stop_process(entry.next)
                entry.current = entry.next = None
                return
            unchanged = (
                entry.current is not None
                and old.version == spec.version
                and old.settings == spec.settings
            )
            if unchanged:
                return
            self._stop_process(entry.next)
            entry.next = self._spawn(spec, folder)
            if entry.current is None:
                entry.current, entry.next = entry.next, None
            entry.restarts = 0

    def set_auth_keys(self, model_id: str, auth_keys: bytes) -> None:
        folder = self.run_dir / model_id
        if folder.is_dir():
            _write_private(folder / "auth-keys.json", auth_keys)

    def remove(self, model_id: str) -> None:
        with self._lock:
            entry = self._models.pop(model_id, None)
            if entry is not None:
                self._stop_process(entry.current)
                self._stop_process(entry.next)
        shutil.rmtree(self.run_dir / model_id, ignore_errors=True)

    def state(self, model_id: str) -> DeploymentState:
        url = self.endpoint_url(model_id)
        with self._lock:
            entry = self._models.get(model_id)
            if entry is None:
                return DeploymentState(phase="Pending", url=url, message="not started")
            if not entry.spec.active:
                return DeploymentState(phase="Inactive", url=url)
            proc = entry.current
            if proc is not None and proc.ready and proc.popen.poll() is None:
                return DeploymentState(phase="Ready", url=url)
            if entry.restarts >= 3:
                return DeploymentState(phase="Failed", url=url, message=entry.message)
            return DeploymentState(phase="Deploying", url=url, message=entry.message)

    def states(self, model_ids: list[str]) -> dict[str, DeploymentState]:
        return {m: self.state(m) for m in model_ids}

    # --- processes ----------------------------------------------------------------------------

    def _write_files(self, spec: DeploymentSpec) -> Path:
        folder = self.run_dir / spec.model_id
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(folder / "data-key", encode_data_key(spec.data_key).encode())
        _write_private(folder / "auth-keys.json", spec.auth_keys)
        _write_private(folder / "usage-token", spec.usage_token.encode())
        return folder

    def _spawn(self, spec: DeploymentSpec, folder: Path) -> _Process:
        port = free_port()
        values: dict[str, str] = {
            "MODEL_NAME": spec.model_id,
            "ARTIFACT_URI": spec.artifact_uri,
            "FORMAT": spec.format,
            "SHA256": spec.sha256,
            "KEY_FILE": str(folder / "data-key"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
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
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX_RUNTIME)}
        env.update(self.env)
        env.update({ENV_PREFIX_RUNTIME + k: v for k, v in values.items()})
        log_file = (folder / "runtime.log").open("ab")
        try:
            popen = subprocess.Popen(
                self.command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log_file.close()
        log.info("started runtime for %s v%s on port %s", spec.model_id, spec.version, port)
        return _Process(version=spec.version, port=port, popen=popen)

    @staticmethod
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
                threading.Thread(target=self._stop_process, args=(old,), daemon=True).start()
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
                entry.current = self._spawn(entry.spec, self.run_dir / model_id)

    # --- proxy --------------------------------------------------------------------------------

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

    def mount(self, app: FastAPI) -> None:
        """Serve ``/models/{id}/...`` by forwarding to the model's runtime."""
        methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]
        app.add_api_route(
            "/models/{model_id}/{path:path}",
            self._proxy,
            methods=methods,
            include_in_schema=False,
        )

    async def _proxy(self, model_id: str, path: str, request: Request) -> StreamingResponse:
        port = self.upstream(model_id)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0))
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS]
        forwarded = self._client.build_request(
            request.method,
            f"http://127.0.0.1:{port}/{path}",
            params=list[tuple[str, str | int | float | bool | None]](
                request.query_params.multi_items()
            ),
            headers=headers,
            content=_body(request),
        )
        try:
            upstream = await self._client.send(forwarded, stream=True)
        except httpx.HTTPError as exc:
            raise NotReady(
                f"model {model_id} did not answer; retry in a few seconds",
                headers={"Retry-After": "2"},
            ) from exc
        response_headers = {
            k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS
        }
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=response_headers,
            background=BackgroundTask(upstream.aclose),
        )


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk


def _is_ready(client: httpx.Client, port: int) -> bool:
    try:
        return client.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200
    except httpx.HTTPError:
        return False


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a 0600 file (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
