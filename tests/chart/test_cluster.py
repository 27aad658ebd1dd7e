"""The chart against a real API server: strict server-side validation of every rendering, the
`restricted` Pod Security Standard as admission enforces it, least-privilege RBAC, and a master key
that survives upgrades and uninstalls.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testing.harness.cluster import Cluster
from tests.chart.helm import (
    CHART_DIR,
    CI_VALUES,
    KUBE_VERSION,
    Manifest,
    pod_specs,
    render,
    set_args,
)

CRD_NAME = "mlmodels.modelport.io"
#: A stand-in for the Prometheus Operator's CRD, so that ServiceMonitors validate.
SERVICE_MONITOR_CRD: Manifest = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "kind": "ServiceMonitor",
            "plural": "servicemonitors",
            "singular": "servicemonitor",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def _name() -> str:
    return f"chart-{uuid.uuid4().hex[:8]}"


def _ensure_namespace(cluster: Cluster, name: str, labels: dict[str, str] | None = None) -> None:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})


def _dump(manifests: list[Manifest]) -> str:
    return yaml.safe_dump_all(manifests, sort_keys=False)


def _dry_run(cluster: Cluster, manifests: list[Manifest], verb: str = "apply") -> tuple[int, str]:
    args = [verb, "--dry-run=server", "--validate=strict", "-f", "-"]
    if verb == "apply":
        # Server-side apply: objects other tests created in the same cluster (the CRD) carry no
        # client-side last-applied annotation, and client-side apply warns about that.
        args[1:1] = ["--server-side", "--force-conflicts", "--field-manager=chart-dry-run"]
    result = cluster.kubectl(*args, input=_dump(manifests), check=False)
    return result.returncode, result.stderr


@pytest.fixture(scope="module")
def cluster(k8s_cluster: Cluster) -> Cluster:
    if k8s_cluster.kubectl(
        "get", "crd", SERVICE_MONITOR_CRD["metadata"]["name"], check=False
    ).returncode:
        k8s_cluster.apply(SERVICE_MONITOR_CRD)
        k8s_cluster.kubectl(
            "wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com"
        )
    return k8s_cluster


# --- Strict server-side validation -----------------------------------------------------------


@pytest.mark.parametrize(
    "values_file", [None, *CI_VALUES], ids=lambda p: p.name if p else "defaults"
)
def test_api_server_accepts_every_rendering(cluster: Cluster, values_file: Path | None) -> None:
    namespace = _name()
    manifests = render(namespace=namespace, values_files=[values_file] if values_file else [])
    for ns in {m["metadata"]["namespace"] for m in manifests if "namespace" in m["metadata"]}:
        _ensure_namespace(cluster, ns)
    code, stderr = _dry_run(cluster, manifests)
    assert code == 0, stderr
    assert "Warning" not in stderr, stderr
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_api_server_rejects_an_unknown_field(cluster: Cluster) -> None:
    """The check above is strict: a field the API does not know fails it."""
    namespace = _name()
    _ensure_namespace(cluster, namespace)
    manifests = render(namespace=namespace)
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    code, stderr = _dry_run(cluster, [deployment])
    assert code != 0
    # Server-side apply names the field in its own words.
    assert "securityContex" in stderr and "field not declared in schema" in stderr, stderr
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# --- The restricted Pod Security Standard, enforced by admission ------------------------------


@pytest.fixture(scope="module")
def restricted_namespace(cluster: Cluster) -> Iterator[str]:
    namespace = _name()
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    _ensure_namespace(cluster, namespace, labels)
    # Pods are admitted only with their ServiceAccounts present: create the chart's for real.
    for account in render(namespace=namespace, set_values={"models.namespace": namespace}):
        if account["kind"] == "ServiceAccount":
            cluster.apply(account)
    yield namespace
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _pods_of(manifests: list[Manifest], namespace: str) -> list[Manifest]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name.split("/")[1], "namespace": namespace},
            "spec": spec,
        }
        for name, spec in pod_specs(manifests).items()
    ]


@pytest.mark.parametrize(
    "values_file", [None, *CI_VALUES], ids=lambda p: p.name if p else "defaults"
)
def test_pods_are_admitted_in_a_restricted_namespace(
    cluster: Cluster, restricted_namespace: str, values_file: Path | None
) -> None:
    manifests = render(
        namespace=restricted_namespace,
        values_files=[values_file] if values_file else [],
        set_values={"models.namespace": restricted_namespace},
    )
    workloads = [m for m in manifests if m["kind"] == "Deployment"]
    code, stderr = _dry_run(cluster, workloads)
    assert code == 0, stderr
    assert "PodSecurity" not in stderr, stderr  # workloads get warnings, not refusals
    code, stderr = _dry_run(cluster, _pods_of(manifests, restricted_namespace), verb="create")
    assert code == 0, stderr


def test_a_violating_pod_is_refused_there(cluster: Cluster, restricted_namespace: str) -> None:
    """The namespace really enforces the standard: one relaxed field and admission refuses."""
    manifests = render(
        namespace=restricted_namespace,
        set_values={"api.containerSecurityContext.allowPrivilegeEscalation": "true"},
    )
    [api] = [
        p
        for p in _pods_of(manifests, restricted_namespace)
        if p["metadata"]["name"].endswith("-api")
    ]
    code, stderr = _dry_run(cluster, [api], verb="create")
    assert code != 0
    assert "violates PodSecurity" in stderr
    assert "allowPrivilegeEscalation" in stderr


# --- Least privilege -------------------------------------------------------------------------


def adopt_crd(cluster: Cluster, release: str, namespace: str) -> None:
    """Let `release` take over an MLModel CRD that other tests applied without Helm."""
    if cluster.kubectl("get", "crd", CRD_NAME, check=False).returncode:
        return
    cluster.kubectl(
        "annotate", "--overwrite", "crd", CRD_NAME,
        f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={namespace}",
    )  # fmt: skip
    cluster.kubectl("label", "--overwrite", "crd", CRD_NAME, "app.kubernetes.io/managed-by=Helm")


def helm_install(
    cluster: Cluster, release: str, namespace: str, values: dict[str, str], *extra: str
) -> None:
    adopt_crd(cluster, release, namespace)
    cluster.helm(
        "upgrade", "--install", release, str(CHART_DIR), "--namespace", namespace,
        *set_args(values), *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def installed(cluster: Cluster) -> Iterator[dict[str, str]]:
    """The chart installed for real, models in a namespace of their own."""
    namespace, models = _name(), _name()
    _ensure_namespace(cluster, namespace)
    _ensure_namespace(cluster, models)
    _ensure_namespace(cluster, "other-" + models)
    release = "mp"
    helm_install(cluster, release, namespace, {"models.namespace": models})
    yield {
        "namespace": namespace,
        "models": models,
        "other": "other-" + models,
        "operator": f"system:serviceaccount:{namespace}:{release}-modelport-operator",
        "api": f"system:serviceaccount:{namespace}:{release}-modelport-api",
        "lease": f"{release}-modelport-operator",
    }
    cluster.helm("uninstall", release, "--namespace", namespace, check=False)
    for ns in (namespace, models, "other-" + models):
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def can_i(cluster: Cluster, who: str, verb: str, resource: str, namespace: str | None) -> bool:
    """`resource` is `type`, `type/name` or `type#subresource`."""
    where = ["--namespace", namespace] if namespace else ["--all-namespaces"]
    resource, _, subresource = resource.partition("#")
    if subresource:
        where.append(f"--subresource={subresource}")
    result = cluster.kubectl("auth", "can-i", verb, resource, *where, f"--as={who}", check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


# (verb, resource, where): resource is `type`, `type/name` or `type#subresource`; where is "models",
# "namespace" (the release's), "other" (a third namespace) or "cluster".
OPERATOR_ALLOWED = [
    ("watch", "mlmodels.modelport.io", "models"),
    ("patch", "mlmodels.modelport.io", "models"),
    ("patch", "mlmodels.modelport.io#status", "models"),
    ("update", "mlmodels.modelport.io#finalizers", "models"),
    ("create", "deployments.apps", "models"),
    ("patch", "services", "models"),
    ("delete", "ingresses.networking.k8s.io", "models"),
    ("create", "networkpolicies.networking.k8s.io", "models"),
    ("create", "horizontalpodautoscalers.autoscaling", "models"),
    ("create", "poddisruptionbudgets.policy", "models"),
    ("create", "serviceaccounts", "models"),
    ("watch", "pods", "models"),
    ("get", "secrets", "models"),
    ("create", "events", "models"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", "cluster"),
    ("watch", "namespaces", "cluster"),
    ("create", "leases.coordination.k8s.io", "namespace"),
    ("update", "leases.coordination.k8s.io/{lease}", "namespace"),
]
OPERATOR_REFUSED = [
    ("list", "secrets", "models"),
    ("watch", "secrets", "models"),
    ("create", "secrets", "models"),
    ("get", "secrets", "namespace"),
    ("create", "mlmodels.modelport.io", "models"),
    ("delete", "mlmodels.modelport.io", "models"),
    ("create", "pods", "models"),
    ("create", "pods#exec", "models"),
    ("update", "mlmodels.modelport.io#status", "models"),
    ("create", "rolebindings.rbac.authorization.k8s.io", "models"),
    ("create", "deployments.apps", "namespace"),
    ("create", "deployments.apps", "other"),
    ("list", "mlmodels.modelport.io", "other"),
    ("list", "deployments.apps", "cluster"),
    ("update", "leases.coordination.k8s.io/another-lease", "namespace"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io", "cluster"),
    ("list", "nodes", "cluster"),
    ("get", "namespaces", "cluster"),
    ("delete", "namespaces", "cluster"),
]
API_ALLOWED = [
    ("create", "mlmodels.modelport.io", "models"),
    ("get", "mlmodels.modelport.io", "models"),
    ("list", "mlmodels.modelport.io", "models"),
    ("patch", "mlmodels.modelport.io", "models"),
    ("delete", "mlmodels.modelport.io", "models"),
    ("create", "secrets", "models"),
    ("patch", "secrets", "models"),
    ("delete", "secrets", "models"),
]
API_REFUSED = [
    ("update", "mlmodels.modelport.io", "models"),  # it applies (server-side apply), never PUTs
    ("update", "secrets", "models"),
    ("get", "secrets", "models"),  # it writes key material, never reads it back
    ("list", "secrets", "models"),
    ("get", "secrets", "namespace"),  # the master key and the JWT secret reach it as env only
    ("patch", "mlmodels.modelport.io#status", "models"),
    ("create", "deployments.apps", "models"),
    ("create", "pods", "models"),
    ("create", "mlmodels.modelport.io", "other"),
    ("list", "mlmodels.modelport.io", "cluster"),
    ("create", "roles.rbac.authorization.k8s.io", "models"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", "cluster"),
    ("watch", "namespaces", "cluster"),
    ("create", "leases.coordination.k8s.io", "namespace"),
]


def _cases(who: str, rows: list[tuple[str, str, str]], allowed: bool) -> list[Any]:
    return [
        pytest.param(who, verb, resource, where, allowed, id=f"{who}-{verb}-{resource}-{where}")
        for verb, resource, where in rows
    ]


@pytest.mark.parametrize(
    ("who", "verb", "resource", "where", "allowed"),
    _cases("operator", OPERATOR_ALLOWED, True)
    + _cases("operator", OPERATOR_REFUSED, False)
    + _cases("api", API_ALLOWED, True)
    + _cases("api", API_REFUSED, False),
)
def test_service_accounts_have_least_privilege(
    cluster: Cluster,
    installed: dict[str, str],
    who: str,
    verb: str,
    resource: str,
    where: str,
    allowed: bool,
) -> None:
    namespace = None if where == "cluster" else installed[where]
    resource = resource.format(lease=installed["lease"])
    assert can_i(cluster, installed[who], verb, resource, namespace) is allowed


def test_a_service_account_token_is_refused_outside_its_rights(
    cluster: Cluster, installed: dict[str, str], tmp_path: Path
) -> None:
    """A TokenRequest token of the chart's operator ServiceAccount, used as the operator would."""
    namespace = installed["namespace"]
    token = cluster.create_token("mp-modelport-operator", namespace)
    kubeconfig = cluster.write_token_kubeconfig(token, tmp_path / "operator.kubeconfig")
    listing = cluster.kubectl(
        "get", "mlmodels", "-n", installed["models"], "-o", "json", kubeconfig=kubeconfig
    )
    assert json.loads(listing.stdout)["items"] == []
    refused = cluster.kubectl(
        "get", "secrets", "-n", installed["models"], kubeconfig=kubeconfig, check=False
    )
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower()


# --- Generated secrets across upgrades and uninstalls ----------------------------------------


def _secret_data(cluster: Cluster, namespace: str, name: str) -> dict[str, str] | None:
    result = cluster.kubectl("get", "secret", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout)["data"] if result.returncode == 0 else None


def test_generated_master_key_survives_upgrade_and_uninstall(cluster: Cluster) -> None:
    namespace = _name()
    _ensure_namespace(cluster, namespace)
    release = "keys"
    master, jwt = "keys-modelport-master-key", "keys-modelport-api"
    helm_install(cluster, release, namespace, {})
    first = _secret_data(cluster, namespace, master)
    first_jwt = _secret_data(cluster, namespace, jwt)
    assert first is not None and first_jwt is not None

    helm_install(cluster, release, namespace, {"api.replicaCount": "3"})
    assert _secret_data(cluster, namespace, master) == first
    assert _secret_data(cluster, namespace, jwt) == first_jwt
    replicas = cluster.kubectl_json("get", "deploy", "keys-modelport-api", "-n", namespace)
    assert replicas["spec"]["replicas"] == 3  # the upgrade did apply

    cluster.helm("uninstall", release, "--namespace", namespace)
    assert _secret_data(cluster, namespace, master) == first  # kept: artifacts stay readable
    assert _secret_data(cluster, namespace, jwt) is None
    assert cluster.kubectl("get", "crd", CRD_NAME, check=False).returncode == 0

    helm_install(cluster, release, namespace, {})  # a reinstall adopts and reuses the kept key
    assert _secret_data(cluster, namespace, master) == first
    cluster.helm("uninstall", release, "--namespace", namespace)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_helm_template_matches_what_helm_installs(cluster: Cluster) -> None:
    """`helm template --kube-version` renders for the version the test cluster runs."""
    version = cluster.kubectl_json("version")["serverVersion"]["gitVersion"]
    assert version.lstrip("v") == KUBE_VERSION


def test_notes_tell_the_next_steps(cluster: Cluster, installed: dict[str, str]) -> None:
    notes = cluster.helm("get", "notes", "mp", "--namespace", installed["namespace"]).stdout
    assert f'Models run in namespace "{installed["models"]}"' in notes
    assert "modelport-api create-admin" in notes
    assert (
        f"kubectl -n {installed['namespace']} port-forward svc/mp-modelport-api 8000:8000" in notes
    )
    assert "$MODELPORT_URL/api/v1/models" in notes
    assert 'generated into the Secret "mp-modelport-master-key"' in notes
