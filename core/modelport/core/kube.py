"""The one Kubernetes client of Modelport: the operator and the control API both talk through it.

A thin, synchronous JSON client over the ``kubernetes`` package's connection handling
(kubeconfig or in-cluster service account, TLS, token refresh): server-side apply under the
caller's field manager, get, list, create, replace, merge-patch, delete, status patches and a
container's log. A
refused request raises :class:`KubeError`, or :class:`KubeNotFound` / :class:`KubeConflict` for
404 and 409. Every request is counted per verb and kind (:attr:`KubeClient.requests`).

Only the control API and the operator import this module (the ``kubernetes`` package is in their
extras, not in the runtime's); the rest of ``modelport.core`` never imports it.

    client = KubeClient(load_configuration(), field_manager="modelport-api")
    applied = client.apply(manifest)
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from typing import Any, cast
from urllib.parse import urlencode

from kubernetes import config as kube_config
from kubernetes.client import Configuration
from kubernetes.client.rest import RESTClientObject

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
REQUEST_TIMEOUT = (5.0, 30.0)

#: Plural resource names of every kind Modelport touches.
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


class KubeNotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class KubeConflict(KubeError):
    """409: the object exists already, or changed since it was read."""


def resource_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None
) -> str:
    """The REST path of an object (or of a collection, without `name`)."""
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = (
        f"{base}/namespaces/{namespace}/{PLURALS[kind]}" if namespace else f"{base}/{PLURALS[kind]}"
    )
    return f"{path}/{name}" if name else path


def object_path(obj: dict[str, Any], *, named: bool = True) -> str:
    """The REST path of a manifest (of its collection when not `named`)."""
    meta = obj["metadata"]
    name = meta["name"] if named else None
    return resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), name)


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


class KubeClient:
    """JSON requests to the API server; every verb goes through :meth:`request`."""

    def __init__(self, configuration: Configuration, *, field_manager: str) -> None:
        self._config = configuration
        self._rest = RESTClientObject(configuration)
        self.field_manager = field_manager
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()

    def close(self) -> None:
        self._rest.pool_manager.clear()

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
        headers = {"Accept": "application/json", "Content-Type": content_type}
        data = self._send(method, path, headers, body=body, query=query, kind=kind)
        payload: dict[str, Any] = json.loads(data) if data else {}
        return payload

    def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        body: Any,
        query: dict[str, str] | None,
        kind: str,
    ) -> bytes:
        """One request's response body; raises :class:`KubeError` unless it succeeded."""
        with self._lock:
            self.requests[(method, kind)] += 1
        for auth in self._config.auth_settings().values():
            setting = cast(dict[str, str], auth)
            headers[setting["key"]] = setting["value"]
        url = self._config.host + path + (f"?{urlencode(query)}" if query else "")
        response = self._rest.request(  # type: ignore[no-untyped-call]
            method, url, headers=headers, body=body, _request_timeout=REQUEST_TIMEOUT
        )
        data: bytes = response.read()
        if 200 <= response.status < 300:
            return data
        payload: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            payload = json.loads(data) if data else {}
        error = {404: KubeNotFound, 409: KubeConflict}.get(response.status, KubeError)
        raise error(
            response.status,
            str(payload.get("reason") or response.reason),
            str(payload.get("message") or data[:500]),
        )

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply under this client's field manager, taking over conflicting fields."""
        query = {"fieldManager": self.field_manager, "force": "true"}
        path = object_path(obj)
        return self.request(
            "PATCH", path, body=obj, content_type=APPLY, query=query, kind=obj["kind"]
        )

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", resource_path(api_version, kind, namespace, name), kind=kind)
        except KubeNotFound:
            return None

    def list_all(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every object of a kind in `namespace` (all namespaces when None)."""
        path = resource_path(api_version, kind, namespace)
        query = {"labelSelector": label_selector} if label_selector else None
        items: list[dict[str, Any]] = self.request("GET", path, query=query, kind=kind).get(
            "items", []
        )
        return items

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """POST; raises :class:`KubeConflict` when the object exists."""
        return self.request("POST", object_path(obj, named=False), body=obj, kind=obj["kind"])

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT, guarded by ``metadata.resourceVersion`` (optimistic concurrency)."""
        return self.request("PUT", object_path(obj), body=obj, kind=obj["kind"])

    def patch(
        self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch; raises :class:`KubeNotFound` when the object does not exist."""
        path = resource_path(api_version, kind, namespace, name)
        return self.request("PATCH", path, body=patch, content_type=MERGE, kind=kind)

    def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge `status` into the status subresource."""
        path = resource_path(api_version, kind, namespace, name) + "/status"
        return self.request("PATCH", path, body={"status": status}, content_type=MERGE, kind=kind)

    def pod_log(
        self, namespace: str, pod: str, *, container: str, tail: int, previous: bool = False
    ) -> str:
        """The last ``tail`` lines of a container's log (of its previous run with ``previous``)."""
        path = resource_path("v1", "Pod", namespace, pod) + "/log"
        query = {"container": container, "tailLines": str(tail)}
        if previous:
            query["previous"] = "true"
        headers = {"Accept": "text/plain"}
        data = self._send("GET", path, headers, body=None, query=query, kind="Pod/log")
        return data.decode(errors="replace")

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete in the background (children go with it); False if it was already gone."""
        path = resource_path(api_version, kind, namespace, name)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            self.request("DELETE", path, body=body, kind=kind)
        except KubeNotFound:
            return False
        return True
