"""The fake nodes of the test cluster, as plain Node manifests for KWOK to run.

KWOK manages the nodes carrying `KWOK_ANNOTATION` and keeps the capacity we declare, so the
scheduler sees two ordinary CPU nodes and two tainted GPU nodes that advertise `nvidia.com/gpu`,
labelled the way GPU feature discovery labels real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"
KWOK_SELECTOR = f"{KWOK_ANNOTATION}={KWOK_ANNOTATION_VALUE}"

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_TAINT_KEY = GPU_RESOURCE
GPU_TAINT_VALUE = "present"
GPU_TAINT_EFFECT = "NoSchedule"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class NodeShape:
    """What one kind of fake node offers."""

    instance_type: str
    cpu: str
    memory: str
    gpus: int = 0
    gpu_product: str = ""
    pods: str = "110"


CPU_SHAPE = NodeShape(instance_type="m6i.2xlarge", cpu="8", memory="32Gi")
GPU_SHAPE = NodeShape(
    instance_type="g5.12xlarge", cpu="48", memory="192Gi", gpus=4, gpu_product="NVIDIA-A10G"
)
CPU_NODES = ("cpu-node-0", "cpu-node-1")
GPU_NODES = ("gpu-node-0", "gpu-node-1")
GPUS_PER_NODE = GPU_SHAPE.gpus


def node_manifest(name: str, shape: NodeShape, zone: str) -> dict[str, Any]:
    """A Node that KWOK will manage, with the labels, taints and capacity of `shape`."""
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        INSTANCE_TYPE_LABEL: shape.instance_type,
        ZONE_LABEL: zone,
    }
    capacity = {"cpu": shape.cpu, "memory": shape.memory, "pods": shape.pods}
    spec: dict[str, Any] = {}
    if shape.gpus:
        labels |= {
            GPU_PRESENT_LABEL: "true",
            "nvidia.com/gpu.product": shape.gpu_product,
            "nvidia.com/gpu.count": str(shape.gpus),
        }
        capacity[GPU_RESOURCE] = str(shape.gpus)
        spec["taints"] = [
            {"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": GPU_TAINT_EFFECT}
        ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE,
                "node.alpha.kubernetes.io/ttl": "0",
            },
        },
        "spec": spec,
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def default_nodes() -> list[dict[str, Any]]:
    """Two CPU nodes and two GPU nodes, spread over two zones."""
    zones = ("zone-a", "zone-b")
    cpu = [node_manifest(n, CPU_SHAPE, z) for n, z in zip(CPU_NODES, zones, strict=True)]
    gpu = [node_manifest(n, GPU_SHAPE, z) for n, z in zip(GPU_NODES, zones, strict=True)]
    return cpu + gpu


def node_list(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Wrap manifests in a `v1/List` that `kubectl create -f -` accepts in one call."""
    return {"apiVersion": "v1", "kind": "List", "items": nodes}
