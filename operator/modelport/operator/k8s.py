"""The only module that talks to the Kubernetes API server (besides kopf's own watches).

A thin JSON client over the ``kubernetes`` package's connection handling (kubeconfig or in-cluster
service account, TLS, token refresh): server-side apply with one field manager, get, delete,
status merge-patch, Events and Leases. Calls block, so the async methods run them on a thread
pool. Every request is counted per verb and kind (:attr:`Kube.requests`), which the benchmark
reads and ``/metrics`` exports.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from kubernetes import config as kube_config
from kubernetes.client import Configuration
from kubernetes.client.rest import RESTClientObject

T = TypeVar("T")

FIELD_MANAGER = "modelport-operator"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
REQUEST_TIMEOUT = (5.0, 30.0)

#: Plural resource names of every kind the operator touches.
PLURALS: dict[str, str] = {
    "ServiceAccount": "serviceaccounts",
    "Service": "services",
    "Secret": "secrets",
    "Pod": "pods",
    "Event": "events",
    "Deployment": "deployments",
    "Ingress": "ingresses",
    "NetworkPolicy": "networkpolicies",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Lease": "leases",
    "MLModel": "mlmodels",
}


class KubeError(Exception):
    """The API server refused a request."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def transient(self) -> bool:
        """Worth retrying: conflicts, throttling, server-side trouble."""
        return self.status in (409, 429) or self.status >= 500


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


def resource_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None
) -> str:
    """The REST path of a namespaced object (or collection, without `name`)."""
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = (
        f"{base}/namespaces/{namespace}/{PLURALS[kind]}" if namespace else f"{base}/{PLURALS[kind]}"
    )
    return f"{path}/{name}" if name else path


def load_configuration(kubeconfig: str | None = None, *, pool_size: int = 16) -> Configuration:
    """In-cluster service-account credentials, else the kubeconfig (``KUBECONFIG``)."""
    configuration = Configuration()
    if kubeconfig is None:
        try:
            kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kube_config.ConfigException:
            kube_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    configuration.connection_pool_maxsize = pool_size
    return configuration


class Kube:
    """JSON requests to the API server; the sync core is ``request``, the rest wraps it."""

    def __init__(
        self,
        configuration: Configuration,
        *,
        field_manager: str = FIELD_MANAGER,
        workers: int = 16,
    ) -> None:
        self._config = configuration
        self._rest = RESTClientObject(configuration)
        self.field_manager = field_manager
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube")
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- Sync core ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
        kind: str = "",
    ) -> dict[str, Any]:
        """One request; raises :class:`KubeError` (or a subclass) unless it succeeded."""
        with self._lock:
            self.requests[(method, kind)] += 1
        headers = {"Accept": "application/json", "Content-Type": content_type}
        for auth in self._config.auth_settings().values():
            setting = cast(dict[str, str], auth)
            headers[setting["key"]] = setting["value"]
        url = self._config.host + path + (f"?{urlencode(query)}" if query else "")
        response = self._rest.request(  # type: ignore[no-untyped-call]
            method, url, headers=headers, body=body, _request_timeout=REQUEST_TIMEOUT
        )
        data = response.read()
        payload: dict[str, Any] = json.loads(data) if data else {}
        if 200 <= response.status < 300:
            return payload
        error = {404: NotFound, 409: Conflict}.get(response.status, KubeError)
        raise error(
            response.status,
            str(payload.get("reason") or response.reason),
            str(payload.get("message") or data[:500]),
        )

    def apply_sync(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        query = {"fieldManager": self.field_manager, "force": "true"}
        return self.request(
            "PATCH", path, body=obj, content_type=APPLY, query=query, kind=obj["kind"]
        )

    def get_sync(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            return self.request("GET", resource_path(api_version, kind, namespace, name), kind=kind)
        except NotFound:
            return None

    def list_sync(self, api_version: str, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every object of a kind in `namespace` (all namespaces when None)."""
        path = resource_path(api_version, kind, namespace)
        items: list[dict[str, Any]] = self.request("GET", path, kind=kind).get("items", [])
        return items

    def create_sync(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        return self.request("POST", path, body=obj, kind=obj["kind"])

    def replace_sync(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT, guarded by ``metadata.resourceVersion`` (optimistic concurrency)."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return self.request("PUT", path, body=obj, kind=obj["kind"])

    def delete_sync(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete in the background (children go with it); False if it was already gone."""
        path = resource_path(api_version, kind, namespace, name)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            self.request("DELETE", path, body=body, kind=kind)
        except NotFound:
            return False
        return True

    def patch_status_sync(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        path = resource_path(api_version, kind, namespace, name) + "/status"
        return self.request("PATCH", path, body={"status": status}, content_type=MERGE, kind=kind)

    # --- Async wrappers -----------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args))

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._run(self.apply_sync, obj)

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        return await self._run(self.get_sync, api_version, kind, namespace, name)

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        return await self._run(self.delete_sync, api_version, kind, namespace, name)

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._run(self.patch_status_sync, api_version, kind, namespace, name, status)

    async def list_all(
        self, api_version: str, kind: str, namespace: str | None
    ) -> list[dict[str, Any]]:
        return await self._run(self.list_sync, api_version, kind, namespace)

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._run(self.create_sync, obj)
