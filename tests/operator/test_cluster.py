"""The operator for real: a real API server, scheduler, controllers and KWOK nodes.

One operator process serves the whole module; each test works in its own namespace.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelport.core.version import VERSION

from testing.harness.cluster import Cluster
from testing.harness.nodes import CPU_NODES, GPU_NODES
from testing.operator_process import LEASE_NAMESPACE, OperatorProcess, wait_for
from tests.operator.conftest import SHA

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "mlmodels.modelport.io.yaml"
CHILDREN = (
    "serviceaccount",
    "service",
    "deployment",
    "ingress",
    "horizontalpodautoscaler",
    "networkpolicy",
)


@pytest.fixture(scope="module")
def cluster(k8s_cluster: Cluster) -> Cluster:
    """The test cluster with the MLModel CRD installed."""
    k8s_cluster.kubectl("apply", "--server-side", "-f", str(CRD))
    k8s_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/mlmodels.modelport.io", "--timeout=60s"
    )
    if k8s_cluster.kubectl("get", "namespace", LEASE_NAMESPACE, check=False).returncode:
        k8s_cluster.kubectl("create", "namespace", LEASE_NAMESPACE)
    return k8s_cluster


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(cluster.kubeconfig, log).start()
    wait_for(proc.leading, timeout=30, what="operator leads")
    yield proc
    proc.stop()
    if os.environ.get("MODELPORT_E2E_KEEP") == "1":
        print(proc.log_tail(200))


@pytest.fixture
def ns(k8s_namespace: str, operator: OperatorProcess) -> Iterator[str]:
    yield k8s_namespace
    if os.environ.get("MODELPORT_TEST_SHOW_OPERATOR_LOG") == "1":
        print(operator.log_tail(100))


def mlmodel(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "format": "onnx",
        "artifact": {"uri": f"s3://artifacts/models/{name}/v1.mpa", "sha256": SHA},
    }
    body.update(spec)
    return {
        "apiVersion": "modelport.io/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": name},
        "spec": body,
    }


def create(cluster: Cluster, ns: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))


def get(cluster: Cluster, ns: str, *what: str) -> Any:
    return cluster.kubectl_json("get", "-n", ns, *what)


def exists(cluster: Cluster, ns: str, kind: str, name: str) -> bool:
    return cluster.kubectl("get", "-n", ns, kind, name, check=False).returncode == 0


def status(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict(get(cluster, ns, "mlmodel", name).get("status") or {})


def wait_phase(
    cluster: Cluster, ns: str, name: str, phase: str, timeout: float = 60
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        st = status(cluster, ns, name)
        return st if st.get("phase") == phase else None

    result: dict[str, Any] = wait_for(check, timeout=timeout, what=f"{name} {phase}")
    return result


def key_secret(cluster: Cluster, ns: str, model: str, key: bytes) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"mlmodel-{model}-key",
            "labels": {"modelport.io/model": model, "app.kubernetes.io/managed-by": "modelport"},
        },
        "data": {
            "data-key": base64.b64encode(base64.b64encode(key)).decode(),
            "auth-keys.json": base64.b64encode(b'{"keys": []}').decode(),
        },
    }
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(secret))


def pods(cluster: Cluster, ns: str, model: str) -> list[dict[str, Any]]:
    items = get(cluster, ns, "pods", "-l", f"modelport.io/model={model}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


# --- Creation, children, placement ------------------------------------------------------------


def test_every_child_with_expected_fields(cluster: Cluster, ns: str) -> None:
    key_secret(cluster, ns, "iris", b"k" * 32)
    create(
        cluster,
        ns,
        mlmodel(
            "iris",
            artifact={
                "uri": "s3://artifacts/models/iris/v1.mpa",
                "sha256": SHA,
                "keySecretRef": {"name": "mlmodel-iris-key"},
            },
        ),
    )
    st = wait_phase(cluster, ns, "iris", "Ready")
    model = get(cluster, ns, "mlmodel", "iris")
    assert st["url"] == f"https://iris.{ns}.models.test"
    assert (st["readyText"], st["replicas"], st["readyReplicas"]) == ("1/1", 1, 1)
    assert st["observedGeneration"] == model["metadata"]["generation"]
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"

    for kind in CHILDREN:
        child = get(cluster, ns, kind, "mlmodel-iris")
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "MLModel",
            model["metadata"]["uid"],
            True,
        )
        assert child["metadata"]["labels"]["modelport.io/model"] == "iris"
    assert not exists(cluster, ns, "pdb", "mlmodel-iris")

    dep = get(cluster, ns, "deployment", "mlmodel-iris")
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELPORT_RUNTIME_KEY_FILE"] == "/var/run/modelport/keys/data-key"
    assert env["MODELPORT_RUNTIME_SHA256"] == SHA
    assert container["image"].endswith(f"/runtime-onnx:{VERSION}")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert pod["automountServiceAccountToken"] is False
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert dep["spec"]["template"]["metadata"]["annotations"]["modelport.io/key-checksum"]
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"]["medium"] == "Memory"

    hpa = get(cluster, ns, "hpa", "mlmodel-iris")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "modelport.io/v1alpha1",
        "kind": "MLModel",
        "name": "iris",
    }
    ingress = get(cluster, ns, "ingress", "mlmodel-iris")
    assert ingress["spec"]["rules"][0]["host"] == f"iris.{ns}.models.test"

    (running,) = pods(cluster, ns, "iris")
    assert running["spec"]["nodeName"] in CPU_NODES

    events = get(cluster, ns, "events", "--field-selector", "involvedObject.name=iris")["items"]
    assert {"Ready"} <= {e["reason"] for e in events}


def test_gpu_model_lands_on_gpu_nodes(cluster: Cluster, ns: str) -> None:
    create(cluster, ns, mlmodel("vision", format="pt", gpu={"count": 1}, replicas=2))
    wait_phase(cluster, ns, "vision", "Ready")
    placed = pods(cluster, ns, "vision")
    assert len(placed) == 2
    assert {p["spec"]["nodeName"] for p in placed} <= set(GPU_NODES)
    limits = placed[0]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    assert placed[0]["spec"]["containers"][0]["image"].endswith(f"/runtime-torch-gpu:{VERSION}")


def test_impossible_gpu_request_reports_the_scheduler(cluster: Cluster, ns: str) -> None:
    create(cluster, ns, mlmodel("huge", format="pt", gpu={"count": 16}))
    st = wait_phase(cluster, ns, "huge", "Failed")
    assert st["reason"] == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in st["message"]
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Unschedulable")
    events = get(cluster, ns, "events", "--field-selector", "involvedObject.name=huge")["items"]
    assert any(e["reason"] == "Unschedulable" and e["type"] == "Warning" for e in events)


def crash_loop(cluster: Cluster, ns: str, pod: dict[str, Any], message: str) -> None:
    """Set the pod's status as the kubelet does when its runtime exits at start and is backing
    off: Ready=False, the container waiting in CrashLoopBackOff, its last run's termination
    message kept (KWOK runs no containers, so the test plays the kubelet)."""
    status = pod["status"]
    for cond in status["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond["status"] = "False"
    [container] = status["containerStatuses"]
    container.update(
        ready=False,
        started=False,
        restartCount=2,
        state={
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off 20s restarting failed container=runtime",
            }
        },
        lastState={
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "message": message + "\n",
                "startedAt": "2026-01-01T00:00:00Z",
                "finishedAt": "2026-01-01T00:00:05Z",
            }
        },
    )
    patch = {"status": {k: status[k] for k in ("conditions", "containerStatuses")}}
    cluster.kubectl(
        "patch", "pod", pod["metadata"]["name"], "-n", ns, "--subresource=status",
        "--type=merge", "-p", json.dumps(patch),
    )  # fmt: skip


def test_a_crash_loop_reports_the_runtimes_own_reason(cluster: Cluster, ns: str) -> None:
    create(cluster, ns, mlmodel("broken", format="joblib"))
    wait_phase(cluster, ns, "broken", "Ready")
    [pod] = pods(cluster, ns, "broken")
    container = pod["spec"]["containers"][0]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    reason = "model failed to load: the joblib file holds a dict, which has no predict()"
    crash_loop(cluster, ns, pod, reason)

    st = wait_phase(cluster, ns, "broken", "Failed")
    name = pod["metadata"]["name"]
    assert (st["reason"], st["message"]) == ("CrashLoopBackOff", f"{name}: {reason}")
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "CrashLoopBackOff")

    def event() -> dict[str, Any] | None:
        found = get(cluster, ns, "events", "--field-selector", "involvedObject.name=broken")
        return next((e for e in found["items"] if e["reason"] == "CrashLoopBackOff"), None)

    posted: dict[str, Any] = wait_for(event, timeout=30, what="the Event")
    assert posted["type"] == "Warning"
    assert posted["involvedObject"]["kind"] == "MLModel"
    assert reason in posted["message"]


def test_kubectl_get_shows_the_columns(cluster: Cluster, ns: str) -> None:
    create(cluster, ns, mlmodel("cols"))
    wait_phase(cluster, ns, "cols", "Ready")
    out = cluster.kubectl("get", "mlm", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "FORMAT", "PHASE", "READY", "URL", "AGE"]
    row = out[1].split()
    assert row[:5] == ["cols", "onnx", "Ready", "1/1", f"https://cols.{ns}.models.test"]


# --- Changes ----------------------------------------------------------------------------------


def test_kubectl_scale(cluster: Cluster, ns: str) -> None:
    create(cluster, ns, mlmodel("scaled"))
    wait_phase(cluster, ns, "scaled", "Ready")
    cluster.kubectl("scale", "-n", ns, "mlmodel/scaled", "--replicas=3")
    wait_for(
        lambda: status(cluster, ns, "scaled").get("readyText") == "3/3",
        what="3/3 ready",
    )
    assert get(cluster, ns, "deployment", "mlmodel-scaled")["spec"]["replicas"] == 3
    path = f"/apis/modelport.io/v1alpha1/namespaces/{ns}/mlmodels/scaled/scale"
    scale = json.loads(cluster.kubectl("get", "--raw", path).stdout)
    assert scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == "modelport.io/component=runtime,modelport.io/model=scaled"


def test_spec_update_rolls_the_deployment(cluster: Cluster, ns: str) -> None:
    create(cluster, ns, mlmodel("roll"))
    wait_phase(cluster, ns, "roll", "Ready")
    before = get(cluster, ns, "deployment", "mlmodel-roll")["metadata"]["generation"]
    patch = {"spec": {"runtimeImage": "ghcr.io/modelport/custom:2", "rateLimitPerMinute": 30}}
    cluster.kubectl("patch", "-n", ns, "mlmodel/roll", "--type=merge", "-p", json.dumps(patch))

    def rolled() -> bool:
        dep = get(cluster, ns, "deployment", "mlmodel-roll")
        container = dep["spec"]["template"]["spec"]["containers"][0]
        return bool(
            dep["metadata"]["generation"] > before
            and container["image"] == "ghcr.io/modelport/custom:2"
        )

    wait_for(rolled, what="Deployment rolled")
    generation = get(cluster, ns, "mlmodel", "roll")["metadata"]["generation"]
    wait_for(
        lambda: (
            status(cluster, ns, "roll").get("observedGeneration") == generation
            and status(cluster, ns, "roll").get("phase") == "Ready"
        ),
        what="Ready at the new generation",
    )
    assert all(
        p["spec"]["containers"][0]["image"] == "ghcr.io/modelport/custom:2"
        for p in pods(cluster, ns, "roll")
    )


def test_key_rotation_rolls_the_pods(cluster: Cluster, ns: str) -> None:
    key_secret(cluster, ns, "rot", b"a" * 32)
    ref = {"uri": "s3://m/models/rot/1", "sha256": SHA, "keySecretRef": {"name": "mlmodel-rot-key"}}
    create(cluster, ns, mlmodel("rot", artifact=ref))
    wait_phase(cluster, ns, "rot", "Ready")

    def checksum() -> str:
        dep = get(cluster, ns, "deployment", "mlmodel-rot")
        return str(dep["spec"]["template"]["metadata"]["annotations"]["modelport.io/key-checksum"])

    first = checksum()
    key_secret(cluster, ns, "rot", b"b" * 32)
    # The control API marks the model after rotating its key; any metadata change reconciles it.
    cluster.kubectl(
        "annotate", "-n", ns, "mlmodel/rot", "modelport.io/key-rotated-at=2026-11-26T09:00:00Z"
    )
    wait_for(lambda: checksum() != first, what="checksum changed")
    wait_phase(cluster, ns, "rot", "Ready")


def test_secret_missing_waits_then_deploys(cluster: Cluster, ns: str) -> None:
    ref = {
        "uri": "s3://m/models/late/1",
        "sha256": SHA,
        "keySecretRef": {"name": "mlmodel-late-key"},
    }
    create(cluster, ns, mlmodel("late", artifact=ref))
    st = wait_phase(cluster, ns, "late", "Pending")
    assert st["reason"] == "SecretMissing"
    assert not exists(cluster, ns, "deployment", "mlmodel-late")
    key_secret(cluster, ns, "late", b"c" * 32)
    wait_phase(cluster, ns, "late", "Ready")


def test_inactive_scales_to_zero_and_back(cluster: Cluster, ns: str) -> None:
    create(cluster, ns, mlmodel("sleepy", autoscaling={"minReplicas": 2, "maxReplicas": 3}))
    wait_phase(cluster, ns, "sleepy", "Ready")
    assert exists(cluster, ns, "pdb", "mlmodel-sleepy")
    cluster.kubectl(
        "patch", "-n", ns, "mlmodel/sleepy", "--type=merge", "-p", '{"spec":{"state":"inactive"}}'
    )
    st = wait_phase(cluster, ns, "sleepy", "Inactive")
    assert "url" not in st
    assert get(cluster, ns, "deployment", "mlmodel-sleepy")["spec"]["replicas"] == 0
    wait_for(lambda: not pods(cluster, ns, "sleepy"), what="pods gone")
    for kind in ("ingress", "hpa", "pdb"):
        assert not exists(cluster, ns, kind, "mlmodel-sleepy"), kind
    cluster.kubectl(
        "patch", "-n", ns, "mlmodel/sleepy", "--type=merge", "-p", '{"spec":{"state":"active"}}'
    )
    st = wait_phase(cluster, ns, "sleepy", "Ready")
    assert st["readyText"] == "2/2"
    assert exists(cluster, ns, "ingress", "mlmodel-sleepy")


def test_delete_collects_every_child(cluster: Cluster, ns: str) -> None:
    create(cluster, ns, mlmodel("gone", autoscaling={"minReplicas": 2, "maxReplicas": 2}))
    wait_phase(cluster, ns, "gone", "Ready")
    cluster.kubectl("delete", "-n", ns, "mlmodel/gone", "--wait=true", "--timeout=60s")
    for kind in (*CHILDREN, "pdb"):
        wait_for(
            lambda k=kind: not exists(cluster, ns, k, "mlmodel-gone"), what=f"{kind} collected"
        )
    wait_for(lambda: not pods(cluster, ns, "gone"), what="pods collected")


# --- Drift, validation, robustness ----------------------------------------------------------


def test_drift_is_repaired(cluster: Cluster, ns: str) -> None:
    create(cluster, ns, mlmodel("drifty"))
    wait_phase(cluster, ns, "drifty", "Ready")
    service_uid = get(cluster, ns, "service", "mlmodel-drifty")["metadata"]["uid"]
    cluster.kubectl("delete", "-n", ns, "service/mlmodel-drifty")
    cluster.kubectl("delete", "-n", ns, "ingress/mlmodel-drifty")
    bad = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil:1"}]
    cluster.kubectl(
        "patch", "-n", ns, "deployment/mlmodel-drifty", "--type=json", "-p", json.dumps(bad)
    )
    cluster.kubectl("scale", "-n", ns, "deployment/mlmodel-drifty", "--replicas=4")

    def repaired() -> bool:
        svc = get(cluster, ns, "service", "mlmodel-drifty")
        dep = get(cluster, ns, "deployment", "mlmodel-drifty")
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        return bool(
            svc["metadata"]["uid"] != service_uid
            and exists(cluster, ns, "ingress", "mlmodel-drifty")
            and image.endswith(f"/runtime-onnx:{VERSION}")
            and dep["spec"]["replicas"] == 1
        )

    wait_for(repaired, timeout=30, what="drift repaired")


def test_steady_state_makes_no_requests(
    cluster: Cluster, ns: str, operator: OperatorProcess
) -> None:
    create(cluster, ns, mlmodel("quiet"))
    wait_phase(cluster, ns, "quiet", "Ready")

    def others_gone() -> bool:
        names = cluster.kubectl("get", "namespaces", "-o", "name").stdout.split()
        return not [n for n in names if n.startswith("namespace/e2e-") and n != f"namespace/{ns}"]

    wait_for(others_gone, timeout=90, what="earlier test namespaces deleted")
    time.sleep(3)
    before = operator.api_requests()
    time.sleep(8)
    assert operator.api_requests() == before


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
            "autoscaling.maxReplicas must be >= autoscaling.minReplicas",
        ),
        ({"gpu": {"count": -1}}, "gpu.count must be >= 0"),
        (
            {"artifact": {"uri": "s3://m/x", "sha256": "nothex"}},
            "artifact.sha256 must be 64 lowercase hex characters",
        ),
        (
            {"artifact": {"uri": "http://m/x", "sha256": SHA}},
            "artifact.uri must start with s3:// or file://",
        ),
        ({"format": "exe"}, 'Unsupported value: "exe"'),
        ({"state": "paused"}, 'Unsupported value: "paused"'),
        ({"replicas": -2}, "replicas must be >= 0"),
        (
            {"resources": {"requests": {"cpu": "lots"}}},
            "resources.requests values must be quantities such as 500m or 2Gi",
        ),
    ],
)
def test_cel_rules_refuse_bad_specs(
    cluster: Cluster, ns: str, spec: dict[str, Any], message: str
) -> None:
    result = cluster.kubectl(
        "apply", "-n", ns, "-f", "-", input=json.dumps(mlmodel("bad", **spec)), check=False
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_name_too_long_is_refused(cluster: Cluster, ns: str) -> None:
    result = cluster.kubectl(
        "apply", "-n", ns, "-f", "-", input=json.dumps(mlmodel("a" * 56)), check=False
    )
    assert "at most 55 characters" in result.stderr


def test_spec_the_cluster_refuses_fails_without_crash_looping(
    cluster: Cluster, ns: str, operator: OperatorProcess
) -> None:
    # The CRD cannot check label keys; the API server refuses the Deployment (422).
    create(cluster, ns, mlmodel("badsel", gpu={"count": 1, "nodeSelector": {"bad key!": "x"}}))
    st = wait_phase(cluster, ns, "badsel", "Failed")
    assert st["reason"] == "InvalidSpec"
    assert "Deployment refused" in st["message"]
    assert "bad key!" in st["message"]
    assert operator.up()
    create(cluster, ns, mlmodel("afterwards"))
    wait_phase(cluster, ns, "afterwards", "Ready")


def test_restart_mid_reconcile_converges(
    cluster: Cluster, ns: str, operator: OperatorProcess
) -> None:
    for i in range(8):
        create(cluster, ns, mlmodel(f"burst-{i}"))
    time.sleep(0.5)
    operator.stop(kill=True)
    operator.start()
    for i in range(8):
        wait_phase(cluster, ns, f"burst-{i}", "Ready", timeout=90)


def test_two_operators_never_fight(
    cluster: Cluster, ns: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    standby = OperatorProcess(cluster.kubeconfig, tmp_path / "standby.log", identity="operator-1")
    standby.start()
    try:
        create(cluster, ns, mlmodel("contested"))
        wait_phase(cluster, ns, "contested", "Ready")
        assert not standby.leading()
        assert standby.api_requests('modelport_operator_api_requests_total{verb="PATCH"') == 0
        operator.stop()  # a clean stop releases the Lease at once
        wait_for(standby.leading, timeout=30, what="standby takes over")
        create(cluster, ns, mlmodel("after-failover"))
        wait_phase(cluster, ns, "after-failover", "Ready")
    finally:
        standby.stop()
        operator.start()
        wait_for(operator.leading, timeout=30, what="operator leads again")


# --- Least RBAC (docs/operator.md) ------------------------------------------------------------

CHILD_VERBS = ["list", "watch", "create", "patch", "delete"]
NAMESPACE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["modelport.io"],
        "resources": ["mlmodels"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {"apiGroups": ["modelport.io"], "resources": ["mlmodels/status"], "verbs": ["patch"]},
    {"apiGroups": ["modelport.io"], "resources": ["mlmodels/finalizers"], "verbs": ["update"]},
    {"apiGroups": [""], "resources": ["serviceaccounts", "services"], "verbs": CHILD_VERBS},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": CHILD_VERBS},
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["ingresses", "networkpolicies"],
        "verbs": CHILD_VERBS,
    },
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": CHILD_VERBS},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": CHILD_VERBS},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]


def rbac_objects(ns: str, sa: str, lease: str) -> list[dict[str, Any]]:
    subject = [{"kind": "ServiceAccount", "name": sa, "namespace": LEASE_NAMESPACE}]
    rbac = "rbac.authorization.k8s.io/v1"
    name = f"{sa}-{ns}"

    def binding(kind: str, role_kind: str, namespace: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if namespace:
            meta["namespace"] = namespace
        return {
            "apiVersion": rbac,
            "kind": kind,
            "metadata": meta,
            "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        }

    crds = {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    }
    namespaces = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}
    leases = [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease],
            "verbs": ["get", "update"],
        },
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": sa, "namespace": LEASE_NAMESPACE},
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [crds, namespaces],
        },
        binding("ClusterRoleBinding", "ClusterRole", None),
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": name, "namespace": ns},
            "rules": NAMESPACE_RULES,
        },
        binding("RoleBinding", "Role", ns),
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
            "rules": leases,
        },
        binding("RoleBinding", "Role", LEASE_NAMESPACE),
    ]


def test_least_rbac_is_enough(
    cluster: Cluster, ns: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    sa, lease = "least-operator", f"least-{ns}"
    items = rbac_objects(ns, sa, lease)
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    kubeconfig = cluster.write_token_kubeconfig(
        cluster.create_token(sa, LEASE_NAMESPACE), tmp_path / "least.kubeconfig"
    )
    operator.stop()  # the admin operator would reconcile this namespace too
    least = OperatorProcess(
        kubeconfig,
        tmp_path / "least.log",
        identity="least-0",
        settings={"namespaces": json.dumps([ns]), "lease_name": lease},
    )
    try:
        least.start()
        wait_for(least.leading, timeout=30, what="least-privileged operator leads")
        key_secret(cluster, ns, "lean", b"l" * 32)
        ref = {
            "uri": "s3://m/models/lean/v1.mpa",
            "sha256": SHA,
            "keySecretRef": {"name": "mlmodel-lean-key"},
        }
        create(
            cluster,
            ns,
            mlmodel("lean", artifact=ref, autoscaling={"minReplicas": 2, "maxReplicas": 3}),
        )
        wait_phase(cluster, ns, "lean", "Ready")
        assert exists(cluster, ns, "pdb", "mlmodel-lean")
        cluster.kubectl("delete", "-n", ns, "service/mlmodel-lean")
        wait_for(lambda: exists(cluster, ns, "service", "mlmodel-lean"), what="service repaired")
        cluster.kubectl(
            "patch", "-n", ns, "mlmodel/lean", "--type=merge", "-p", '{"spec":{"state":"archived"}}'
        )
        wait_phase(cluster, ns, "lean", "Inactive")
        assert not exists(cluster, ns, "ingress", "mlmodel-lean")
        assert "Forbidden" not in least.log_tail(400), least.log_tail(100)
    finally:
        least.stop()
        operator.start()
        wait_for(operator.leading, timeout=30, what="operator leads again")


def test_periodic_resync_picks_up_a_rotated_key(
    cluster: Cluster, ns: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    operator.stop()
    resyncing = OperatorProcess(
        cluster.kubeconfig, tmp_path / "resync.log", settings={"resync_seconds": "3"}
    )
    try:
        resyncing.start()
        wait_for(resyncing.leading, timeout=30, what="resyncing operator leads")
        key_secret(cluster, ns, "quiet-rot", b"a" * 32)
        ref = {
            "uri": "s3://m/models/quiet-rot/v1.mpa",
            "sha256": SHA,
            "keySecretRef": {"name": "mlmodel-quiet-rot-key"},
        }
        create(cluster, ns, mlmodel("quiet-rot", artifact=ref))
        wait_phase(cluster, ns, "quiet-rot", "Ready")

        def checksum() -> str:
            dep = get(cluster, ns, "deployment", "mlmodel-quiet-rot")
            return str(
                dep["spec"]["template"]["metadata"]["annotations"]["modelport.io/key-checksum"]
            )

        first = checksum()
        key_secret(cluster, ns, "quiet-rot", b"z" * 32)  # no annotation on the model this time
        wait_for(lambda: checksum() != first, timeout=30, what="resync rolled the pods")
    finally:
        resyncing.stop()
        operator.start()
        wait_for(operator.leading, timeout=30, what="operator leads again")
