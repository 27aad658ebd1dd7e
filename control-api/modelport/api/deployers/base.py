"""The deployer interface: what the control API asks of whatever runs the models."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from modelport.api.schemas import DeploymentSettings

if TYPE_CHECKING:
    from fastapi import APIRouter


def fetch_metadata(url: str, *, token: str) -> dict[str, Any] | None:
    """GET a runtime's model metadata document; None when it does not answer with one."""
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5.0)
        doc = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


@dataclass(frozen=True)
class DeploymentSpec:
    """Everything needed to run one version of one model."""

    model_id: str
    owner_id: str
    format: str
    version: int
    artifact_uri: str
    sha256: str
    size: int
    data_key: bytes
    auth_keys: bytes
    """The ``auth-keys.json`` document (docs/contracts.md)."""
    usage_token: str
    settings: DeploymentSettings
    active: bool


@dataclass(frozen=True)
class DeploymentState:
    phase: str
    """Pending, Deploying, Ready, Failed or Inactive."""
    url: str | None = None
    reason: str = ""
    """Why the phase is what it is, as one CamelCase word (LoadFailed, CrashLoopBackOff, ...)."""
    message: str = ""
    """The same in words: for a runtime that failed to start, its own one-line reason."""


class Deployer(Protocol):
    """What runs the models. The app starts it with the deployments that should be running,
    mounts its router if it has one, and closes it on shutdown; in between, the services apply,
    re-key and remove deployments one model at a time."""

    def start(self, specs: Iterable[DeploymentSpec]) -> None:
        """Begin serving. ``specs`` are the active models' deployments, computed by the app and
        read lazily: a deployer that keeps no state of its own (local runtimes) restores them;
        one whose state outlives the process (Kubernetes) need not read them."""
        ...

    def router(self) -> APIRouter | None:
        """Routes the app mounts beside its own (the local proxy to the runtimes), or None."""
        ...

    def endpoint_url(self, model_id: str) -> str:
        """The URL the model will answer at (known before it is ready)."""
        ...

    def apply(self, spec: DeploymentSpec) -> None:
        """Create or update the model's deployment; idempotent. Inactive specs stop serving."""
        ...

    def set_auth_keys(self, model_id: str, auth_keys: bytes) -> None:
        """Replace the model's inference keys (revocation reaches the runtime within 60 s)."""
        ...

    def remove(self, model_id: str) -> None:
        """Delete the deployment and its key material; no error when there is none."""
        ...

    def state(self, model_id: str) -> DeploymentState: ...

    def metadata(self, model_id: str, *, token: str) -> dict[str, Any] | None:
        """The runtime's model metadata (``GET /v2/models/{id}``, sent with ``token``, the
        model's usage token, as a bearer), or None while no runtime answers it."""
        ...

    def states(self, model_ids: list[str]) -> dict[str, DeploymentState]:
        """States of several models at once (one call for a page of the model list)."""
        ...

    def logs(self, model_id: str, tail: int) -> list[str]:
        """The last ``tail`` lines of the model's runtime log, oldest first ([] when none)."""
        ...

    def close(self) -> None:
        """Stop: release what this process holds (local runtimes stop)."""
        ...


class NoDeployer:
    """Runs nothing: models are stored and listed only (tests, or a store-only install)."""

    def __init__(self, public_url: str) -> None:
        self._public_url = public_url.rstrip("/")

    def start(self, specs: Iterable[DeploymentSpec]) -> None:
        return None

    def router(self) -> APIRouter | None:
        return None

    def endpoint_url(self, model_id: str) -> str:
        return f"{self._public_url}/models/{model_id}"

    def apply(self, spec: DeploymentSpec) -> None:
        return None

    def set_auth_keys(self, model_id: str, auth_keys: bytes) -> None:
        return None

    def remove(self, model_id: str) -> None:
        return None

    def state(self, model_id: str) -> DeploymentState:
        return DeploymentState(phase="Pending", message="no deployer configured")

    def states(self, model_ids: list[str]) -> dict[str, DeploymentState]:
        return {m: self.state(m) for m in model_ids}

    def metadata(self, model_id: str, *, token: str) -> dict[str, Any] | None:
        return None

    def logs(self, model_id: str, tail: int) -> list[str]:
        return []

    def close(self) -> None:
        return None
