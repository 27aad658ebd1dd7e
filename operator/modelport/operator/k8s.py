"""The only module of the operator that talks to the Kubernetes API server (besides kopf's watches).

The requests themselves are Modelport's shared client (:mod:`modelport.core.kube`: server-side
apply, typed errors, request counts); this module applies under the operator's field manager and
runs the blocking calls on a thread pool for the async reconciler. :attr:`Kube.sync` is the
blocking client itself (leader election uses it from its own thread). Every request is counted per
verb and kind (:attr:`Kube.requests`), which the benchmark reads and ``/metrics`` exports.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from kubernetes.client import Configuration
from modelport.core.kube import (
    KubeClient,
    KubeConflict,
    KubeError,
    KubeNotFound,
    load_configuration,
)

__all__ = [
    "FIELD_MANAGER",
    "Kube",
    "KubeConflict",
    "KubeError",
    "KubeNotFound",
    "load_configuration",
]

T = TypeVar("T")

FIELD_MANAGER = "modelport-operator"


class Kube:
    """The shared client's calls, awaited on a thread pool."""

    def __init__(
        self,
        configuration: Configuration,
        *,
        field_manager: str = FIELD_MANAGER,
        workers: int = 16,
    ) -> None:
        self.sync = KubeClient(configuration, field_manager=field_manager)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube")

    @property
    def requests(self) -> Counter[tuple[str, str]]:
        return self.sync.requests

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.sync.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args))

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._run(self.sync.apply, obj)

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        return await self._run(self.sync.get, api_version, kind, namespace, name)

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        return await self._run(self.sync.delete, api_version, kind, namespace, name)

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._run(self.sync.patch_status, api_version, kind, namespace, name, status)

    async def list_all(
        self, api_version: str, kind: str, namespace: str | None
    ) -> list[dict[str, Any]]:
        return await self._run(self.sync.list_all, api_version, kind, namespace)

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._run(self.sync.create, obj)
