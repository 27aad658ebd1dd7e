"""The test cluster behaves like a real one: scheduling, GPUs, garbage collection, RBAC."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from testing.harness.cluster import Cluster
from testing.harness.nodes import (
    CPU_NODES,
    GPU_NODES,
    GPU_PRESENT_LABEL,
    GPU_RESOURCE,
    GPU_TAINT_KEY,
    GPUS_PER_NODE,
    INSTANCE_TYPE_LABEL,
)
from testing.harness.process import wait_until

WAIT = "--timeout=90s"
GPU_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}


def pod(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "registry.invalid/modelport/runtime:test"}
    container |= spec.pop("container", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [container], **spec},
    }


def gpu_pod(name: str, namespace: str, gpus: int) -> dict[str, Any]:
    limits = {GPU_RESOURCE: str(gpus)}
    return pod(
        name,
        namespace,
        container={"resources": {"limits": limits}},
        tolerations=[GPU_TOLERATION],
        nodeSelector={GPU_PRESENT_LABEL: "true"},
    )


def deployment(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    template = pod(name, namespace)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": template["spec"]},
        },
    }


def test_nodes_are_ready_with_cpu_and_gpu_capacity(k8s_cluster: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in k8s_cluster.kubectl_json("get", "nodes")["items"]}

    assert set(nodes) == set(CPU_NODES) | set(GPU_NODES)
    for node in nodes.values():
        conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert conditions["Ready"] == "True"
        assert INSTANCE_TYPE_LABEL in node["metadata"]["labels"]
    for name in GPU_NODES:
        assert nodes[name]["status"]["allocatable"][GPU_RESOURCE] == str(GPUS_PER_NODE)
        assert nodes[name]["metadata"]["labels"][GPU_PRESENT_LABEL] == "true"
        # The node lifecycle controller's own taints (`node.kubernetes.io/not-ready` while a
        # heartbeat is late on a loaded machine) come and go; the harness sets only the GPU one.
        taints = [t["key"] for t in nodes[name]["spec"]["taints"]]
        assert [t for t in taints if not t.startswith("node.kubernetes.io/")] == [GPU_TAINT_KEY]
    for name in CPU_NODES:
        assert GPU_RESOURCE not in nodes[name]["status"]["allocatable"]


def test_deployment_pods_run_on_cpu_nodes(k8s_cluster: Cluster, k8s_namespace: str) -> None:
    k8s_cluster.apply(deployment("web", k8s_namespace, replicas=3))

    k8s_cluster.kubectl("rollout", "status", "deployment/web", "-n", k8s_namespace, WAIT)

    pods = k8s_cluster.kubectl_json("get", "pods", "-n", k8s_namespace, "-l", "app=web")["items"]
    assert len(pods) == 3
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert {p["spec"]["nodeName"] for p in pods} <= set(CPU_NODES)


def test_gpu_pod_with_toleration_lands_on_a_gpu_node(
    k8s_cluster: Cluster, k8s_namespace: str
) -> None:
    k8s_cluster.apply(gpu_pod("infer", k8s_namespace, gpus=2))

    k8s_cluster.kubectl("wait", "pod/infer", "-n", k8s_namespace, "--for=condition=Ready", WAIT)

    placed = k8s_cluster.kubectl_json("get", "pod/infer", "-n", k8s_namespace)
    assert placed["spec"]["nodeName"] in GPU_NODES
    assert placed["status"]["phase"] == "Running"


def test_pod_wanting_more_gpus_than_any_node_stays_pending(
    k8s_cluster: Cluster, k8s_namespace: str
) -> None:
    k8s_cluster.apply(gpu_pod("greedy", k8s_namespace, gpus=GPUS_PER_NODE + 1))

    k8s_cluster.kubectl(
        "wait", "pod/greedy", "-n", k8s_namespace, "--for=condition=PodScheduled=false", WAIT
    )

    def failed_scheduling_events() -> list[dict[str, Any]]:
        selector = "involvedObject.name=greedy,reason=FailedScheduling"
        events = k8s_cluster.kubectl_json(
            "get", "events", "-n", k8s_namespace, f"--field-selector={selector}"
        )
        return list(events["items"])

    wait_until(lambda: bool(failed_scheduling_events()), what="FailedScheduling", timeout=60)
    placed = k8s_cluster.kubectl_json("get", "pod/greedy", "-n", k8s_namespace)
    assert placed["status"]["phase"] == "Pending"
    assert "nodeName" not in placed["spec"]
    assert GPU_RESOURCE in failed_scheduling_events()[0]["message"]


def test_garbage_collector_deletes_owned_objects(k8s_cluster: Cluster, k8s_namespace: str) -> None:
    ns = ["-n", k8s_namespace]
    k8s_cluster.kubectl("create", "configmap", "owner", *ns)
    owner = k8s_cluster.kubectl_json("get", "configmap/owner", *ns)
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "child", "namespace": k8s_namespace, "ownerReferences": [reference]},
        "data": {"k": "v"},
    }
    k8s_cluster.apply(child)
    k8s_cluster.apply(deployment("doomed", k8s_namespace, replicas=2))
    k8s_cluster.kubectl("rollout", "status", "deployment/doomed", *ns, WAIT)

    k8s_cluster.kubectl("delete", "configmap/owner", "deployment/doomed", *ns, "--wait=false")

    k8s_cluster.kubectl("wait", "configmap/child", *ns, "--for=delete", WAIT)
    k8s_cluster.kubectl("wait", "pods", "-l", "app=doomed", *ns, "--for=delete", WAIT)
    leftovers = k8s_cluster.kubectl_json("get", "replicasets,pods", "-l", "app=doomed", *ns)
    assert leftovers["items"] == []


def test_service_account_token_is_refused_outside_its_role(
    k8s_cluster: Cluster, k8s_namespace: str, tmp_path: Path
) -> None:
    ns = ["-n", k8s_namespace]
    k8s_cluster.kubectl("create", "serviceaccount", "reader", *ns)
    k8s_cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", *ns)
    k8s_cluster.kubectl(
        "create", "rolebinding", "reader", "--role=pod-reader",
        f"--serviceaccount={k8s_namespace}:reader", *ns,
    )  # fmt: skip
    token = k8s_cluster.create_token("reader", k8s_namespace)
    as_reader = k8s_cluster.write_token_kubeconfig(token, tmp_path / "reader.kubeconfig")

    whoami = k8s_cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=as_reader)
    allowed = k8s_cluster.kubectl("get", "pods", *ns, kubeconfig=as_reader, check=False)
    refused = [
        k8s_cluster.kubectl(*args, kubeconfig=as_reader, check=False)
        for args in (
            ("get", "secrets", *ns),
            ("create", "configmap", "nope", *ns),
            ("get", "pods", "-n", "default"),
        )
    ]

    username = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:{k8s_namespace}:reader"
    assert allowed.returncode == 0, allowed.stderr
    for result in refused:
        assert result.returncode != 0
        assert "forbidden" in result.stderr.lower()


def test_unknown_token_is_unauthorized(k8s_cluster: Cluster, tmp_path: Path) -> None:
    config = k8s_cluster.write_token_kubeconfig("not-a-token", tmp_path / "bad.kubeconfig")

    result = k8s_cluster.kubectl("get", "pods", kubeconfig=config, check=False)

    assert result.returncode != 0
    assert "Unauthorized" in result.stderr or "provide credentials" in result.stderr


def test_new_namespace_gets_service_account_and_root_ca(
    k8s_cluster: Cluster, k8s_namespace: str
) -> None:
    ns = ["-n", k8s_namespace]

    k8s_cluster.kubectl("wait", "serviceaccount/default", *ns, "--for=create", WAIT)
    k8s_cluster.kubectl("wait", "configmap/kube-root-ca.crt", *ns, "--for=create", WAIT)

    root_ca = k8s_cluster.kubectl_json("get", "configmap/kube-root-ca.crt", *ns)
    assert root_ca["data"]["ca.crt"] == k8s_cluster.ca_cert.read_text()


def test_horizontal_pod_autoscaler_is_reconciled(k8s_cluster: Cluster, k8s_namespace: str) -> None:
    ns = ["-n", k8s_namespace]
    k8s_cluster.apply(deployment("scaled", k8s_namespace, replicas=1))
    k8s_cluster.apply(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "scaled", "namespace": k8s_namespace},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ],
            },
        }
    )

    def conditions() -> dict[str, str]:
        hpa = k8s_cluster.kubectl_json("get", "hpa/scaled", *ns)
        return {c["type"]: c["status"] for c in hpa.get("status", {}).get("conditions", [])}

    # the controller syncs every 15s; without a metrics API it can scale but not measure
    wait_until(lambda: "AbleToScale" in conditions(), what="HPA conditions", timeout=90)
    assert conditions()["AbleToScale"] == "True"
