"""The local deployer (``modelport up``): each active model runs as a ``modelport-runtime`` process
on 127.0.0.1 (``supervisor``), reverse-proxied under the API's own address at ``/models/{id}/...``
(``proxy``).

Key material lives under ``{data_dir}/run/{model id}/`` (folder 0700, files 0600): the data key, the
inference keys file (rewritten atomically on revocation; the runtime re-reads it every 2 s) and the
usage token; the runtime's log (``runtime.log``, read by ``logs``) and termination messages are
written there too. The folder is the runtime's private working folder, and the only part of the
data folder it may open (``isolation``). Removing a model removes the folder. Nothing survives
the process: at start the app hands down the active models' deployments and they run again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from modelport.api.deployers.base import DeploymentSpec, DeploymentState, fetch_metadata
from modelport.api.deployers.local.isolation import RuntimeUser
from modelport.api.deployers.local.proxy import Proxy
from modelport.api.deployers.local.supervisor import LOG_FILE, Supervisor, tail_lines
from modelport.api.settings import ApiSettings
from modelport.core.crypto import encode_data_key
from modelport.core.errors import NotFound, NotReady

log = logging.getLogger(__name__)


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
        runtime_uid: int = 65534,
        runtime_gid: int = 65534,
    ) -> None:
        self.run_dir = Path(data_dir).resolve() / "run"
        self.public_url = public_url.rstrip("/")
        self._supervisor = Supervisor(
            command=command or [sys.executable, "-m", "modelport.runtime.main"],
            usage_url=usage_url,
            data_dir=self.run_dir.parent,
            runtime_user=RuntimeUser(runtime_uid, runtime_gid),
            s3_endpoint_url=s3_endpoint_url,
            env=env,
            check_seconds=check_seconds,
        )
        self._proxy = Proxy(self._supervisor.upstream)

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> LocalDeployer:
        return cls(
            data_dir=settings.data_dir,
            public_url=settings.public_url,
            usage_url=settings.usage_url(),
            command=settings.runtime_command or None,
            s3_endpoint_url=settings.s3_endpoint_url,
            runtime_uid=settings.local_runtime_uid,
            runtime_gid=settings.local_runtime_gid,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, specs: Iterable[DeploymentSpec]) -> None:
        """Start the runtimes of the given (active) models, then the supervisor."""
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for spec in specs:
            try:
                self.apply(spec)
            except Exception:
                log.exception("could not start model %s", spec.model_id)
        self._supervisor.start()

    def router(self) -> APIRouter:
        """``/models/{id}/...``, forwarded to the model's runtime."""
        return self._proxy.router()

    def close(self) -> None:
        self._supervisor.stop()

    # --- deployments --------------------------------------------------------------------------

    def endpoint_url(self, model_id: str) -> str:
        return f"{self.public_url}/models/{model_id}"

    def apply(self, spec: DeploymentSpec) -> None:
        self._supervisor.apply(spec, self._write_files(spec))

    def set_auth_keys(self, model_id: str, auth_keys: bytes) -> None:
        folder = self.run_dir / model_id
        if folder.is_dir():
            _write_private(folder / "auth-keys.json", auth_keys)

    def remove(self, model_id: str) -> None:
        self._supervisor.remove(model_id)
        shutil.rmtree(self.run_dir / model_id, ignore_errors=True)

    def state(self, model_id: str) -> DeploymentState:
        state = self._supervisor.state(model_id)
        return dataclasses.replace(state, url=self.endpoint_url(model_id))

    def metadata(self, model_id: str, *, token: str) -> dict[str, Any] | None:
        try:
            port = self._supervisor.upstream(model_id)
        except (NotFound, NotReady):
            return None
        return fetch_metadata(f"http://127.0.0.1:{port}/v2/models/{model_id}", token=token)

    def states(self, model_ids: list[str]) -> dict[str, DeploymentState]:
        return {m: self.state(m) for m in model_ids}

    def logs(self, model_id: str, tail: int) -> list[str]:
        """The tail of ``{data_dir}/run/{id}/runtime.log`` (every start of the model appends)."""
        return tail_lines(self.run_dir / model_id / LOG_FILE, tail)

    # --- key material -------------------------------------------------------------------------

    def _write_files(self, spec: DeploymentSpec) -> Path:
        folder = self.run_dir / spec.model_id
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(folder / "data-key", encode_data_key(spec.data_key).encode())
        _write_private(folder / "auth-keys.json", spec.auth_keys)
        _write_private(folder / "usage-token", spec.usage_token.encode())
        return folder


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a 0600 file (readers never see half a file), owned like
    its folder (the runtime's user, when it has one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        folder = path.parent.stat()
        if os.geteuid() == 0 and folder.st_uid != 0:
            os.fchown(fd, folder.st_uid, folder.st_gid)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
