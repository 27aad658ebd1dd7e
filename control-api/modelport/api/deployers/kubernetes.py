"""The Kubernetes deployer: one ``MLModel`` resource and one Secret per model.

The Secret ``mlmodel-<id>-key`` (docs/contracts.md) holds the data key and ``auth-keys.json``; it
is owned by the MLModel, so deleting the resource deletes the key material too (and ``remove``
deletes it at once as well). The operator turns the MLModel into pods; a new version changes
``spec.artifact``, which the operator rolls out as a rolling update (no downtime).
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kubernetes.client import Configuration
from modelport.api.deployers.base import DeploymentSpec, DeploymentState, fetch_metadata
from modelport.api.settings import ApiSettings
from modelport.core import constants as c
from modelport.core.crypto import encode_data_key
from modelport.core.errors import ModelportError
from modelport.core.kube import KubeClient, KubeError, KubeNotFound, load_configuration
from modelport.core.spec import (
    API_VERSION,
    Artifact,
    Autoscaling,
    EndpointRule,
    Gpu,
    LifecycleState,
    MLModel,
    MLModelSpec,
    ObjectMeta,
    ResourceRequirements,
    SecretRef,
)

if TYPE_CHECKING:
    from fastapi import APIRouter

log = logging.getLogger(__name__)

#: The field manager the control API applies MLModels and Secrets under.
FIELD_MANAGER = "modelport-api"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_mlmodel(spec: DeploymentSpec, *, namespace: str, runtime_image: str | None) -> MLModel:
    """The MLModel for a deployment spec (a pure function)."""
    s = spec.settings
    resources: dict[str, str] = {}
    if s.cpu:
        resources["cpu"] = s.cpu
    if s.memory:
        resources["memory"] = s.memory
    return MLModel(
        metadata=ObjectMeta(
            name=spec.model_id,
            namespace=namespace,
            labels={
                c.LABEL_MODEL: spec.model_id,
                c.LABEL_OWNER: spec.owner_id,
                c.LABEL_MANAGED_BY: c.MANAGED_BY,
            },
            annotations={
                c.ANNOTATION_MODEL_ID: spec.model_id,
                c.ANNOTATION_VERSION: str(spec.version),
            },
        ),
        spec=MLModelSpec(
            format=spec.format,
            artifact=Artifact(
                uri=spec.artifact_uri,
                sha256=spec.sha256,
                size=spec.size,
                key_secret_ref=SecretRef(name=c.key_secret_name(spec.model_id)),
            ),
            owner=spec.owner_id,
            runtime_image=runtime_image,
            resources=ResourceRequirements(requests=resources, limits=resources)
            if resources
            else None,
            gpu=Gpu(count=s.gpu_count),
            autoscaling=Autoscaling(
                min_replicas=s.min_replicas,
                max_replicas=s.max_replicas,
                target_cpu_utilization=s.target_utilization,
            ),
            replicas=s.replicas,
            auth_required=s.auth_required,
            rate_limit_per_minute=s.rate_limit_per_minute or 0,
            state=LifecycleState.ACTIVE if spec.active else LifecycleState.INACTIVE,
        ),
    )


def build_secret(spec: DeploymentSpec, *, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    """The per-model Secret, owned by its MLModel (a pure function)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": c.key_secret_name(spec.model_id),
            "namespace": namespace,
            "labels": {c.LABEL_MODEL: spec.model_id, c.LABEL_MANAGED_BY: c.MANAGED_BY},
            "ownerReferences": [owner],
        },
        "data": {
            c.SECRET_DATA_KEY: _b64(encode_data_key(spec.data_key).encode()),
            c.SECRET_AUTH_KEYS: _b64(spec.auth_keys),
            c.SECRET_USAGE_TOKEN: _b64(spec.usage_token.encode()),
        },
    }


class KubernetesDeployer:
    """Applies and deletes MLModels and their Secrets in one namespace (server-side apply)."""

    def __init__(
        self,
        *,
        namespace: str,
        configuration: Configuration,
        public_url: str,
        endpoints: EndpointRule | None = None,
        runtime_image: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.kube = KubeClient(configuration, field_manager=FIELD_MANAGER)
        self.public_url = public_url.rstrip("/")
        self.endpoints = endpoints
        self.runtime_image = runtime_image

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> KubernetesDeployer:
        return cls(
            namespace=settings.kubernetes_namespace,
            configuration=load_configuration(),
            public_url=settings.public_url,
            endpoints=settings.endpoint_rule(),
            runtime_image=settings.runtime_image,
        )

    def start(self, specs: Iterable[DeploymentSpec]) -> None:
        """Nothing to restore: the MLModels outlive this process and the operator runs them."""
        return None

    def router(self) -> APIRouter | None:
        """None: models answer through the cluster's ingress, not through the API."""
        return None

    def endpoint_url(self, model_id: str) -> str:
        if self.endpoints is not None:
            return self.endpoints.url(model_id, self.namespace)
        return f"{self.public_url}/models/{model_id}"

    def apply(self, spec: DeploymentSpec) -> None:
        model = build_mlmodel(spec, namespace=self.namespace, runtime_image=self.runtime_image)
        applied = self.kube.apply(model.to_manifest())
        meta = model.metadata.model_copy(update={"uid": applied["metadata"]["uid"]})
        owner = model.model_copy(update={"metadata": meta}).owner_reference()
        self.kube.apply(build_secret(spec, namespace=self.namespace, owner=owner))

    def set_auth_keys(self, model_id: str, auth_keys: bytes) -> None:
        patch = {"data": {c.SECRET_AUTH_KEYS: _b64(auth_keys)}}
        with contextlib.suppress(KubeNotFound):  # no Secret: nothing deployed to update
            self.kube.patch("v1", "Secret", self.namespace, c.key_secret_name(model_id), patch)

    def remove(self, model_id: str) -> None:
        """Delete the MLModel and, at once, its Secret (the key material)."""
        self.kube.delete(API_VERSION, c.KIND, self.namespace, model_id)
        self.kube.delete("v1", "Secret", self.namespace, c.key_secret_name(model_id))

    def state(self, model_id: str) -> DeploymentState:
        found = self.kube.get(API_VERSION, c.KIND, self.namespace, model_id)
        return _state(found) if found else DeploymentState(phase="Pending", message="not found")

    def metadata(self, model_id: str, *, token: str) -> dict[str, Any] | None:
        """Read through the model's public endpoint, as a client would: the runtime's network
        policy admits only the ingress controller."""
        url = self.state(model_id).url or self.endpoint_url(model_id)
        return fetch_metadata(f"{url.rstrip('/')}/v2/models/{model_id}", token=token)

    def states(self, model_ids: list[str]) -> dict[str, DeploymentState]:
        ours = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
        listing = self.kube.list_all(API_VERSION, c.KIND, self.namespace, label_selector=ours)
        wanted = set(model_ids)
        return {
            item["metadata"]["name"]: _state(item)
            for item in listing
            if item["metadata"]["name"] in wanted
        }

    def logs(self, model_id: str, tail: int) -> list[str]:
        """The runtime's log from the pod most worth reading (``pods/log``): a pod that is not
        ready before a ready one, the newest first; a crash-looping container's previous run."""
        selector = f"{c.LABEL_MODEL}={model_id}"
        pods = self.kube.list_all("v1", "Pod", self.namespace, label_selector=selector)
        if not pods:
            return []
        pod = min(pods, key=_log_order)
        try:
            text = self.kube.pod_log(
                self.namespace,
                pod["metadata"]["name"],
                container=c.RUNTIME_CONTAINER,
                tail=tail,
                previous=_restarting(pod),
            )
        except KubeError as exc:
            if exc.status in (400, 404):  # not started yet, or gone meanwhile
                return []
            raise LogsUnavailable(f"could not read the model's log: {exc.message}") from exc
        return text.splitlines()[-tail:]

    def close(self) -> None:
        self.kube.close()


class LogsUnavailable(ModelportError):
    """The API server refused or failed to give a runtime's log."""

    status = 502
    code = "logs_unavailable"


def _state(obj: dict[str, Any]) -> DeploymentState:
    status = obj.get("status") or {}
    return DeploymentState(
        phase=str(status.get("phase") or "Pending"),
        url=status.get("url"),
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
    )


def _runtime_status(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == c.RUNTIME_CONTAINER), {})


def _log_order(pod: dict[str, Any]) -> tuple[bool, float]:
    """Sort key: pods that are not ready first, then the newest."""
    created = str(pod["metadata"].get("creationTimestamp") or "")
    stamp = datetime.fromisoformat(created).timestamp() if created else 0.0
    return bool(_runtime_status(pod).get("ready")), -stamp


def _restarting(pod: dict[str, Any]) -> bool:
    """The container waits to start again after a failed run: its log is the previous run's."""
    status = _runtime_status(pod)
    return bool((status.get("state") or {}).get("waiting")) and bool(status.get("restartCount"))
