"""The Kubernetes deployer against a real API server (e2e harness): MLModel and owned Secret,
key rotation, status read back, removal; and an upload whose deployment fails leaves nothing."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from modelport.api.deployers.base import DeploymentSpec
from modelport.api.deployers.kubernetes import KubernetesDeployer
from modelport.api.schemas import DeploymentSettings
from modelport.core import constants as c
from modelport.core.kube import load_configuration
from modelport.core.spec import EndpointRule

from testing.payloads import onnx_add_one
from tests.api.conftest import MakeApi, count_rows

pytestmark = [pytest.mark.cluster]

CRD = Path(__file__).resolve().parents[2] / "crds" / "mlmodels.modelport.io.yaml"
SHA = "ab" * 32


@pytest.fixture(scope="module")
def cluster(k8s_cluster: Any) -> Any:
    k8s_cluster.kubectl("apply", "--server-side", "-f", str(CRD))
    k8s_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/mlmodels.modelport.io", "--timeout=60s"
    )
    return k8s_cluster


def _deployer(cluster: Any, namespace: str) -> KubernetesDeployer:
    return KubernetesDeployer(
        namespace=namespace,
        configuration=load_configuration(str(cluster.kubeconfig)),
        public_url="http://api.example",
        endpoints=EndpointRule(domain="models.example.com"),
    )


def _spec(model_id: str, *, version: int = 1, keys: bytes = b'{"keys":[]}') -> DeploymentSpec:
    return DeploymentSpec(
        model_id=model_id,
        owner_id="u123",
        format="onnx",
        version=version,
        artifact_uri=f"s3://bucket/models/{model_id}/v{version}.mpa",
        sha256=SHA,
        size=1234,
        data_key=bytes(range(32)),
        auth_keys=keys,
        usage_token="t",
        settings=DeploymentSettings(replicas=2, max_replicas=4, gpu_count=1, cpu="500m"),
        active=True,
    )


def test_apply_update_keys_status_and_remove(cluster: Any, k8s_namespace: str) -> None:
    deployer = _deployer(cluster, k8s_namespace)
    deployer.apply(_spec("m0123456789abcdef"))
    obj = cluster.kubectl_json("get", "mlmodel", "m0123456789abcdef", "-n", k8s_namespace)
    spec = obj["spec"]
    assert spec["format"] == "onnx" and spec["replicas"] == 2
    assert spec["artifact"]["keySecretRef"]["name"] == "mlmodel-m0123456789abcdef-key"
    assert spec["gpu"]["count"] == 1 and spec["autoscaling"]["maxReplicas"] == 4
    assert spec["resources"]["requests"]["cpu"] == "500m"
    assert obj["metadata"]["labels"][c.LABEL_OWNER] == "u123"

    secret = cluster.kubectl_json(
        "get", "secret", "mlmodel-m0123456789abcdef-key", "-n", k8s_namespace
    )
    [owner] = secret["metadata"]["ownerReferences"]
    assert owner["kind"] == "MLModel" and owner["uid"] == obj["metadata"]["uid"]
    data_key = base64.b64decode(base64.b64decode(secret["data"][c.SECRET_DATA_KEY]))
    assert data_key == bytes(range(32))

    # A new version replaces the artifact in place; new keys rewrite the Secret.
    deployer.apply(_spec("m0123456789abcdef", version=2))
    obj = cluster.kubectl_json("get", "mlmodel", "m0123456789abcdef", "-n", k8s_namespace)
    assert obj["spec"]["artifact"]["uri"].endswith("/v2.mpa")
    assert obj["metadata"]["annotations"][c.ANNOTATION_VERSION] == "2"
    keys = json.dumps({"keys": [{"id": "k1", "sha256": SHA, "rateLimitPerMinute": 5}]}).encode()
    deployer.set_auth_keys("m0123456789abcdef", keys)
    secret = cluster.kubectl_json(
        "get", "secret", "mlmodel-m0123456789abcdef-key", "-n", k8s_namespace
    )
    assert base64.b64decode(secret["data"][c.SECRET_AUTH_KEYS]) == keys

    # Status written by the operator is read back.
    assert deployer.state("m0123456789abcdef").phase == "Pending"
    assert deployer.logs("m0123456789abcdef", 10) == []  # no pods yet
    status = {"status": {"phase": "Ready", "url": "https://m.example/", "message": "ok"}}
    cluster.kubectl(
        "patch",
        "mlmodel",
        "m0123456789abcdef",
        "-n",
        k8s_namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    state = deployer.state("m0123456789abcdef")
    assert (state.phase, state.url) == ("Ready", "https://m.example/")
    assert deployer.states(["m0123456789abcdef", "other"])["m0123456789abcdef"].phase == "Ready"
    failed = {"phase": "Failed", "reason": "CrashLoopBackOff", "message": "p: model failed to load"}
    cluster.kubectl(
        "patch", "mlmodel", "m0123456789abcdef", "-n", k8s_namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": failed}),
    )  # fmt: skip
    state = deployer.state("m0123456789abcdef")
    assert (state.phase, state.reason, state.message) == tuple(failed.values())

    deployer.remove("m0123456789abcdef")
    deployer.remove("m0123456789abcdef")  # idempotent
    left = cluster.kubectl(
        "get",
        "mlmodel,secret",
        "-n",
        k8s_namespace,
        "-l",
        f"{c.LABEL_MODEL}=m0123456789abcdef",
        "-o",
        "name",
    )
    assert left.stdout.strip() == ""


@pytest.mark.postgres
@pytest.mark.s3
def test_upload_with_a_failing_deployment_leaves_nothing(cluster: Any, make_api: MakeApi) -> None:
    """The namespace does not exist: creating the MLModel fails, so the upload is undone."""
    deployer = _deployer(cluster, "no-such-namespace")
    api = make_api(deployer=deployer)
    user = api.user()
    before = count_rows(api.ctx.db, "models")
    r = api.upload(user, onnx_add_one())
    assert r.status_code == 500, r.text
    assert "retry" in r.json()["error"]["message"]
    assert count_rows(api.ctx.db, "models") == before
    assert api.objects() == []


@pytest.mark.postgres
@pytest.mark.s3
def test_upload_creates_the_mlmodel(cluster: Any, k8s_namespace: str, make_api: MakeApi) -> None:
    api = make_api(deployer=_deployer(cluster, k8s_namespace))
    user = api.user()
    key = api.client.post("/api/v1/keys", headers=user.headers, json={"name": "k"}).json()
    r = api.upload(user, onnx_add_one())
    assert r.status_code == 201, r.text
    model_id = r.json()["modelId"]
    assert r.json()["endpointUrl"] == f"https://{model_id}.{k8s_namespace}.models.example.com"
    obj = cluster.kubectl_json("get", "mlmodel", model_id, "-n", k8s_namespace)
    assert obj["spec"]["artifact"]["uri"].startswith(f"s3://{api.bucket}/artifacts/models/")
    secret = cluster.kubectl_json("get", "secret", c.key_secret_name(model_id), "-n", k8s_namespace)
    keys = json.loads(base64.b64decode(secret["data"][c.SECRET_AUTH_KEYS]))
    assert [k["id"] for k in keys["keys"]] == [key["id"]]

    # Revoking the key rewrites the Secret.
    api.client.delete(f"/api/v1/keys/{key['id']}", headers=user.headers)
    secret = cluster.kubectl_json("get", "secret", c.key_secret_name(model_id), "-n", k8s_namespace)
    assert json.loads(base64.b64decode(secret["data"][c.SECRET_AUTH_KEYS])) == {"keys": []}

    assert api.client.delete(f"/api/v1/models/{model_id}", headers=user.headers).status_code == 204
    gone = cluster.kubectl("get", "mlmodel", model_id, "-n", k8s_namespace, check=False)
    assert gone.returncode != 0
