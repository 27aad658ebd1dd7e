"""The MLModel trust boundary and the control API's Secrets, on the real test cluster.

Whoever can write an MLModel chooses what a runtime pod mounts (a key Secret, an artifact), which
image receives the data key and the S3 credentials, where the model is published and where it
may be scheduled. The chart's ValidatingAdmissionPolicy refuses every spec that reaches beyond its
own model, for any writer (here a ServiceAccount that may write MLModels but is not the control
API), and the operator refuses the same specs where no policy guards the namespace. A second
policy holds the control API's ServiceAccount to the per-model key Secrets, so it cannot
overwrite the S3 credentials.

One chart install and one operator process serve the whole module.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelport.api.deployers.base import DeploymentSpec
from modelport.api.deployers.kubernetes import KubernetesDeployer
from modelport.api.schemas import DeploymentSettings
from modelport.core.kube import load_configuration
from modelport.core.spec import EndpointRule

from testing.harness.cluster import Cluster
from testing.operator_process import LEASE_NAMESPACE, OperatorProcess, wait_for
from tests.chart.test_cluster import helm_install

SHA = "0123456789abcdef" * 4
BUCKET_ROOT = "s3://modelport-artifacts/artifacts"  # the chart's default store and prefix
S3_SECRET = "modelport-s3"
RELEASE = "sec"
WRITER = "model-writer"

#: attack -> (the spec it writes into MLModel "thief", what the refusal says)
ATTACKS: dict[str, tuple[dict[str, Any], str]] = {
    "borrowed-key-secret": (
        {"artifact": {"keySecretRef": {"name": "mlmodel-victim-key"}}},
        "spec.artifact.keySecretRef.name must be mlmodel-thief-key, not mlmodel-victim-key",
    ),
    "borrowed-artifact": (
        {"artifact": {"uri": f"{BUCKET_ROOT}/models/victim/v1.mpa"}},
        f"spec.artifact.uri must be a file directly under {BUCKET_ROOT}/models/thief/",
    ),
    "unlisted-runtime-image": (
        {"runtimeImage": "docker.io/attacker/exfiltrate:1"},
        "spec.runtimeImage docker.io/attacker/exfiltrate:1 is not from an allowed registry",
    ),
    "api-login-path": (
        {"ingress": {"host": "modelport.example.com", "path": "/api/v1/auth/login"}},
        "spec.ingress.host must be the model's own host thief.",
    ),
    "arbitrary-toleration": (
        {"gpu": {"count": 1, "tolerations": [{"operator": "Exists"}]}},
        "spec.gpu.tolerations may only repeat the configured GPU tolerations",
    ),
}


def thief(namespace: str, attack: str | None = None, name: str = "thief") -> dict[str, Any]:
    """An MLModel that is its own in every way, with `attack`'s spec written over it."""
    spec: dict[str, Any] = {
        "format": "onnx",
        "artifact": {
            "uri": f"{BUCKET_ROOT}/models/{name}/v1.mpa",
            "sha256": SHA,
            "keySecretRef": {"name": f"mlmodel-{name}-key"},
        },
    }
    if attack is not None:
        bad = ATTACKS[attack][0]
        spec.update({k: v for k, v in bad.items() if k != "artifact"})
        spec["artifact"].update(bad.get("artifact", {}))
    return {
        "apiVersion": "modelport.io/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _namespace(cluster: Cluster, name: str) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def _create(
    cluster: Cluster, manifest: dict[str, Any], kubeconfig: Path | None, *flags: str
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "create", *flags, "-f", "-", input=json.dumps(manifest), kubeconfig=kubeconfig, check=False
    )


@pytest.fixture(scope="module")
def install(
    k8s_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The chart with its admission policies, models in their own namespace, the S3 credentials
    there, and kubeconfigs of the control API and of a ServiceAccount that may write MLModels."""
    cluster, suffix = k8s_cluster, uuid.uuid4().hex[:8]
    release_ns, models = f"sec-{suffix}", f"sec-models-{suffix}"
    for ns in (release_ns, models):
        _namespace(cluster, ns)
    values = {"models.namespace": models, "storage.s3.existingSecret": S3_SECRET}
    helm_install(cluster, RELEASE, release_ns, values)
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": S3_SECRET, "namespace": models},
            "stringData": {"AWS_ACCESS_KEY_ID": "minio", "AWS_SECRET_ACCESS_KEY": "original"},
        }
    )
    rbac = "rbac.authorization.k8s.io/v1"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": WRITER, "namespace": models},
        }
    )
    cluster.apply(
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": WRITER, "namespace": models},
            "rules": [
                {
                    "apiGroups": ["modelport.io"],
                    "resources": ["mlmodels"],
                    "verbs": ["get", "create", "update", "patch"],
                }
            ],
        }
    )
    cluster.apply(
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": WRITER, "namespace": models},
            "roleRef": {"apiGroup": rbac.split("/")[0], "kind": "Role", "name": WRITER},
            "subjects": [{"kind": "ServiceAccount", "name": WRITER, "namespace": models}],
        }
    )
    home = tmp_path_factory.mktemp("boundary")
    writer = cluster.write_token_kubeconfig(
        cluster.create_token(WRITER, models), home / "writer.kubeconfig"
    )
    api = cluster.write_token_kubeconfig(
        cluster.create_token(f"{RELEASE}-modelport-api", release_ns), home / "api.kubeconfig"
    )

    def enforced() -> bool:  # policies take effect a moment after they are created
        probe = thief(models, "unlisted-runtime-image", name="probe")
        return _create(cluster, probe, None, "--dry-run=server").returncode != 0

    wait_for(enforced, timeout=60, what="the MLModel policy is enforced")
    yield {"models": models, "writer": writer, "api": api}
    cluster.helm("uninstall", RELEASE, "--namespace", release_ns, check=False)
    for ns in (release_ns, models):
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _refused(cluster: Cluster, install: dict[str, Any], attack: str) -> None:
    result = _create(cluster, thief(install["models"], attack), install["writer"])
    assert result.returncode != 0, f"{attack}: admitted"
    policy = f"ValidatingAdmissionPolicy '{RELEASE}-modelport-mlmodels'"
    assert policy in result.stderr and "denied request" in result.stderr, result.stderr
    assert ATTACKS[attack][1] in result.stderr, result.stderr
    assert cluster.kubectl(
        "get", "mlmodel", "thief", "-n", install["models"], check=False
    ).returncode


# --- The admission policy, for any writer of MLModels ----------------------------------------


def test_mlmodel_cannot_borrow_another_models_key_secret(
    k8s_cluster: Cluster, install: dict[str, Any]
) -> None:
    _refused(k8s_cluster, install, "borrowed-key-secret")


def test_mlmodel_cannot_borrow_another_models_artifact(
    k8s_cluster: Cluster, install: dict[str, Any]
) -> None:
    _refused(k8s_cluster, install, "borrowed-artifact")


def test_mlmodel_cannot_pick_unlisted_runtime_image(
    k8s_cluster: Cluster, install: dict[str, Any]
) -> None:
    _refused(k8s_cluster, install, "unlisted-runtime-image")


def test_mlmodel_cannot_claim_api_login_path(k8s_cluster: Cluster, install: dict[str, Any]) -> None:
    _refused(k8s_cluster, install, "api-login-path")


def test_mlmodel_cannot_add_arbitrary_toleration(
    k8s_cluster: Cluster, install: dict[str, Any]
) -> None:
    _refused(k8s_cluster, install, "arbitrary-toleration")


def test_mlmodel_cannot_be_edited_into_an_attack(
    k8s_cluster: Cluster, install: dict[str, Any]
) -> None:
    """An admitted model's own writer cannot change it afterwards to use an unlisted image."""
    models, writer = install["models"], install["writer"]
    result = _create(k8s_cluster, thief(models, name="honest"), writer)
    assert result.returncode == 0, result.stderr
    patch = json.dumps({"spec": {"runtimeImage": "ghcr.io/modelport-evil/runtime:1"}})
    edit = k8s_cluster.kubectl(
        "patch", "mlmodel", "honest", "-n", models, "--type=merge", "-p", patch,
        kubeconfig=writer, check=False,
    )  # fmt: skip
    assert edit.returncode != 0
    assert "is not from an allowed registry (ghcr.io/modelport/)" in edit.stderr, edit.stderr


def test_the_control_api_still_writes_its_models_and_their_key_secrets(
    k8s_cluster: Cluster, install: dict[str, Any]
) -> None:
    """The control API's own deployer, as its ServiceAccount: the MLModel and its key Secret pass
    both policies, and so do re-keying and removal."""
    models = install["models"]
    deployer = KubernetesDeployer(
        namespace=models,
        configuration=load_configuration(str(install["api"])),
        public_url="http://api.example",
        endpoints=EndpointRule(domain="models.example.com"),
    )
    model_id = "m0a1b2c3d4e5f6a7b"
    secret_name = f"mlmodel-{model_id}-key"
    spec = DeploymentSpec(
        model_id=model_id,
        owner_id="u1",
        format="onnx",
        version=1,
        artifact_uri=f"{BUCKET_ROOT}/models/{model_id}/v1.mpa",
        sha256=SHA,
        size=10,
        data_key=bytes(range(32)),
        auth_keys=b'{"keys":[]}',
        usage_token="t",
        settings=DeploymentSettings(gpu_count=1),
        active=True,
    )
    try:
        deployer.apply(spec)
        deployer.set_auth_keys(model_id, b'{"keys":[1]}')
        secret = k8s_cluster.kubectl_json("get", "secret", secret_name, "-n", models)
        assert secret["metadata"]["labels"]["modelport.io/model"] == model_id
        deployer.remove(model_id)
    finally:
        deployer.close()
    gone = k8s_cluster.kubectl(
        "get", "secret", f"mlmodel-{model_id}-key", "-n", models, check=False
    )
    assert gone.returncode != 0


# --- The control API's Secrets ---------------------------------------------------------------


def test_api_serviceaccount_cannot_overwrite_s3_credentials(
    k8s_cluster: Cluster, install: dict[str, Any]
) -> None:
    """It writes as the control API does (server-side apply, its own field manager)."""
    models, api = install["models"], install["api"]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": S3_SECRET, "namespace": models},
        "stringData": {"AWS_SECRET_ACCESS_KEY": "attacker"},
    }
    overwrite = k8s_cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=modelport-api", "-f", "-",
        input=json.dumps(secret), kubeconfig=api, check=False,
    )  # fmt: skip
    assert overwrite.returncode != 0
    assert f"may only write per-model key Secrets (mlmodel-<model>-key), not {S3_SECRET}" in (
        overwrite.stderr
    ), overwrite.stderr
    delete = k8s_cluster.kubectl(
        "delete", "secret", S3_SECRET, "-n", models, kubeconfig=api, check=False
    )
    assert delete.returncode != 0 and "denied request" in delete.stderr, delete.stderr
    data = k8s_cluster.kubectl_json("get", "secret", S3_SECRET, "-n", models)["data"]
    assert data["AWS_SECRET_ACCESS_KEY"] == "b3JpZ2luYWw="  # base64 of "original"


def test_api_serviceaccount_cannot_plant_an_unlabelled_key_secret(
    k8s_cluster: Cluster, install: dict[str, Any]
) -> None:
    """The name alone is not enough: a key Secret carries its model's label."""
    models = install["models"]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "mlmodel-victim-key", "namespace": models},
        "stringData": {"data-key": "x"},
    }
    result = _create(k8s_cluster, secret, install["api"])
    assert result.returncode != 0
    assert "must carry the label modelport.io/model=victim" in result.stderr, result.stderr


# --- The operator, where no policy guards the namespace --------------------------------------


@pytest.fixture(scope="module")
def operator(
    k8s_cluster: Cluster, install: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    if k8s_cluster.kubectl("get", "namespace", LEASE_NAMESPACE, check=False).returncode:
        k8s_cluster.kubectl("create", "namespace", LEASE_NAMESPACE)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    settings = {"artifact_root": BUCKET_ROOT, "ingress_domain": "models.example.com"}
    proc = OperatorProcess(k8s_cluster.kubeconfig, log, settings=settings).start()
    wait_for(proc.leading, timeout=30, what="operator leads")
    yield proc
    proc.stop()


@pytest.mark.parametrize("attack", ATTACKS)
def test_operator_refuses_the_same_attacks_without_the_policy(
    k8s_cluster: Cluster, k8s_namespace: str, operator: OperatorProcess, attack: str
) -> None:
    ns = k8s_namespace  # no policy binding selects it: the API server admits anything
    result = _create(k8s_cluster, thief(ns, attack), None)
    assert result.returncode == 0, result.stderr

    def failed() -> dict[str, Any] | None:
        status = k8s_cluster.kubectl_json("get", "mlmodel", "thief", "-n", ns).get("status") or {}
        return status if status.get("phase") == "Failed" else None

    status = wait_for(failed, timeout=30, what=f"{attack} fails")
    assert status["reason"] == "NotAllowed"
    assert (
        ATTACKS[attack][1].replace("own host thief.", f"own host thief.{ns}.") in status["message"]
    )

    def event() -> list[Any]:
        listing = k8s_cluster.kubectl_json(
            "get", "events", "-n", ns, "--field-selector", "involvedObject.name=thief"
        )
        return [e for e in listing["items"] if e["reason"] == "NotAllowed"]

    wait_for(event, timeout=15, what="a NotAllowed Event")
    children = k8s_cluster.kubectl_json(
        "get", "deployments,serviceaccounts,services,ingresses", "-n", ns,
        "-l", "modelport.io/model=thief",
    )  # fmt: skip
    assert children["items"] == []
