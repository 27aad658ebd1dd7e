"""The Kubernetes deployer: one ``MLModel`` resource and one Secret per model.

The Secret ``mlmodel-<id>-key`` (docs/contracts.md) holds the data key and ``auth-keys.json``; it
is owned by the MLModel, so deleting the resource deletes the key material too (and ``remove``
deletes it at once as well). The operator turns the MLModel into pods; a new version changes
``spec.artifact``, which the operator rolls out as a rolling update (no downtime).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from modelport.api.deployers.base import DeploymentSpec, DeploymentState
from modelport.api.settings import ApiSettings
from modelport.core import constants as c
from modelport.core.crypto import encode_data_key
from modelport.core.spec import (
    Artifact,
    Autoscaling,
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

_FIELD_MANAGER = "modelport-api"


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
    """Creates, patches and deletes MLModels and their Secrets in one namespace."""

    def __init__(
        self,
        *,
        namespace: str,
        api_client: Any,
        public_url: str,
        ingress_domain: str | None = None,
        runtime_image: str | None = None,
    ) -> None:
        from kubernetes import client

        self.namespace = namespace
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.core: Any = client.CoreV1Api(api_client)
        self.public_url = public_url.rstrip("/")
        self.ingress_domain = ingress_domain
        self.runtime_image = runtime_image

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> KubernetesDeployer:
        from kubernetes import client, config

        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        return cls(
            namespace=settings.kubernetes_namespace,
            api_client=client.ApiClient(),
            public_url=settings.public_url,
            ingress_domain=settings.kubernetes_ingress_host,
            runtime_image=settings.runtime_image,
        )

    def start(self, specs: Iterable[DeploymentSpec]) -> None:
        """Nothing to restore: the MLModels outlive this process and the operator runs them."""
        return None

    def router(self) -> APIRouter | None:
        """None: models answer through the cluster's ingress, not through the API."""
        return None

    def _args(self) -> tuple[str, str, str, str]:
        return (c.GROUP, c.VERSION, self.namespace, c.PLURAL)

    def endpoint_url(self, model_id: str) -> str:
        if self.ingress_domain:
            return f"https://{model_id}.{self.namespace}.{self.ingress_domain}"
        return f"{self.public_url}/models/{model_id}"

    def apply(self, spec: DeploymentSpec) -> None:
        body = build_mlmodel(spec, namespace=self.namespace, runtime_image=self.runtime_image)
        current = self._get(spec.model_id)
        manifest = body.to_manifest()
        if current is None:
            created = self.custom.create_namespaced_custom_object(*self._args(), manifest)
            uid = created["metadata"]["uid"]
        else:
            manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            replaced = self.custom.replace_namespaced_custom_object(
                *self._args(), spec.model_id, manifest
            )
            uid = replaced["metadata"]["uid"]
        owner = {
            "apiVersion": f"{c.GROUP}/{c.VERSION}",
            "kind": c.KIND,
            "name": spec.model_id,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        self._put_secret(build_secret(spec, namespace=self.namespace, owner=owner))

    def _put_secret(self, secret: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        name = secret["metadata"]["name"]
        try:
            self.core.create_namespaced_secret(self.namespace, secret)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.core.replace_namespaced_secret(name, self.namespace, secret)

    def set_auth_keys(self, model_id: str, auth_keys: bytes) -> None:
        from kubernetes.client.exceptions import ApiException

        patch = {"data": {c.SECRET_AUTH_KEYS: _b64(auth_keys)}}
        try:
            self.core.patch_namespaced_secret(c.key_secret_name(model_id), self.namespace, patch)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def remove(self, model_id: str) -> None:
        """Delete the MLModel and, at once, its Secret (the key material)."""
        _unless_404(self.custom.delete_namespaced_custom_object, *self._args(), model_id)
        _unless_404(self.core.delete_namespaced_secret, c.key_secret_name(model_id), self.namespace)

    def _get(self, model_id: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                *self._args(), model_id
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def state(self, model_id: str) -> DeploymentState:
        found = self._get(model_id)
        return _state(found) if found else DeploymentState(phase="Pending", message="not found")

    def states(self, model_ids: list[str]) -> dict[str, DeploymentState]:
        listing = self.custom.list_namespaced_custom_object(
            *self._args(), label_selector=f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
        )
        wanted = set(model_ids)
        return {
            item["metadata"]["name"]: _state(item)
            for item in listing.get("items", [])
            if item["metadata"]["name"] in wanted
        }

    def close(self) -> None:
        self.custom.api_client.close()


def _unless_404(call: Callable[..., Any], *args: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        call(*args)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _state(obj: dict[str, Any]) -> DeploymentState:
    status = obj.get("status") or {}
    return DeploymentState(
        phase=str(status.get("phase") or "Pending"),
        url=status.get("url"),
        message=str(status.get("message") or ""),
    )
