"""Operator benchmark: N MLModels created at once on the test cluster, until all are Ready.

    .venv/bin/python benchmarks/operator_bench.py            # 200 models
    .venv/bin/python benchmarks/operator_bench.py --models 50

Starts a throw-away cluster (testing/harness: real etcd, API server, controllers, scheduler, KWOK
nodes), installs the CRD, runs ``modelport-operator`` as a process, creates every MLModel with one
``kubectl apply`` and polls until each reports phase Ready. Prints a table: seconds until all
are Ready (and percentiles of the per-model times), the operator's peak RSS, and the API
requests it made per model, its own (counted in ``modelport.operator.k8s``) and kopf's (counted
around aiohttp), watches excluded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelport.operator.k8s import Kube, load_configuration  # noqa: E402

from testing.harness.cluster import Cluster  # noqa: E402
from testing.harness.nodes import NodeShape, default_nodes, node_manifest  # noqa: E402
from testing.operator_process import LEASE_NAMESPACE, OperatorProcess  # noqa: E402

CRD = ROOT / "crds" / "mlmodels.modelport.io.yaml"
NAMESPACE = "bench"
SHA = "0" * 64
#: Roomy fake nodes so that scheduling capacity never limits the benchmark.
BENCH_SHAPE = NodeShape(instance_type="bench.large", cpu="64", memory="256Gi", pods="250")


def mlmodel(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "modelport.io/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": f"m-{i:04d}", "namespace": NAMESPACE},
        "spec": {
            "format": "onnx",
            "artifact": {"uri": f"s3://models/m-{i:04d}.onnx.enc", "sha256": SHA},
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
        },
    }


def ready_models(kube: Kube) -> set[str]:
    path = f"/apis/modelport.io/v1alpha1/namespaces/{NAMESPACE}/mlmodels"
    items = kube.sync.request("GET", path)["items"]
    return {m["metadata"]["name"] for m in items if (m.get("status") or {}).get("phase") == "Ready"}


def create_all(kube: Kube, models: int, threads: int = 16) -> None:
    """POST every MLModel at once, from a pool of concurrent clients (as many users would)."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(kube.sync.create, (mlmodel(i) for i in range(models))))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> dict[str, float]:
    """CPU seconds of each child process of this benchmark (control plane and operator)."""
    out: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        if int(fields[1]) == os.getpid():
            ticks = int(fields[11]) + int(fields[12])
            out[name] = out.get(name, 0.0) + ticks / os.sysconf("SC_CLK_TCK")
    return out


def deployments_applied(kube: Kube) -> int:
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    return len(kube.sync.request("GET", path)["items"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(models: int, timeout: float) -> dict[str, Any]:
    nodes = default_nodes() + [
        node_manifest(f"bench-node-{i}", BENCH_SHAPE, "zone-a") for i in range(2)
    ]
    with Cluster(nodes=nodes) as cluster, tempfile.TemporaryDirectory() as tmp:
        cluster.kubectl("apply", "--server-side", "-f", str(CRD))
        cluster.kubectl(
            "wait", "--for=condition=Established", "crd/mlmodels.modelport.io", "--timeout=60s"
        )
        cluster.kubectl("create", "namespace", LEASE_NAMESPACE)
        cluster.kubectl("create", "namespace", NAMESPACE)
        operator = OperatorProcess(cluster.kubeconfig, Path(tmp) / "operator.log", count_kopf=True)
        operator.start()
        try:
            while not operator.leading():
                time.sleep(0.2)
            idle = operator.metrics()
            cpu_before = cpu_seconds(operator.pid())
            components_before = children_cpu()
            kube = Kube(load_configuration(str(cluster.kubeconfig)), workers=2)
            start = time.monotonic()
            creator = threading.Thread(target=create_all, args=(kube, models))
            creator.start()
            seen: dict[str, float] = {}
            created = applied = float("nan")
            while len(seen) < models and time.monotonic() - start < timeout:
                now = time.monotonic() - start
                for name in ready_models(kube) - seen.keys():
                    seen[name] = now
                if created != created and not creator.is_alive():  # NaN until done
                    created = now
                if applied != applied and deployments_applied(kube) == models:
                    applied = now
                time.sleep(0.5)
            creator.join()
            total = time.monotonic() - start
            time.sleep(2)  # let trailing status writes land before counting
            final = operator.metrics()
            rss = peak_rss_mib(operator.pid())
            cpu = cpu_seconds(operator.pid()) - cpu_before
            components = {k: v - components_before.get(k, 0.0) for k, v in children_cpu().items()}
        finally:
            operator.stop()
            log_tail = operator.log_tail(20)
    times = list(seen.values())
    return {
        "models": models,
        "ready": len(seen),
        "create_s": created,
        "applied_s": applied,
        "cpu_s": cpu,
        "components_cpu": components,
        "all_ready_s": max(times) if len(seen) == models else float("nan"),
        "waited_s": total,
        "p50_s": statistics.median(times) if times else float("nan"),
        "p90_s": percentile(times, 0.9) if times else float("nan"),
        "rss_mib": rss,
        "delta": {k: final.get(k, 0.0) - idle.get(k, 0.0) for k in final},
        "log_tail": log_tail,
    }


def print_table(result: dict[str, Any]) -> None:
    n = result["models"]
    delta: dict[str, float] = result["delta"]
    own = {k: v for k, v in delta.items() if k.startswith("modelport_operator_api_requests_total")}
    kopf = {
        k: v
        for k, v in delta.items()
        if k.startswith("modelport_operator_kopf_requests_total") and 'verb="WATCH"' not in k
    }
    rows = [
        ("MLModels created at once", f"{n}"),
        ("Ready", f"{result['ready']}/{n}"),
        ("seconds to create them (16 clients)", f"{result['create_s']:.1f}"),
        ("seconds until every Deployment exists", f"{result['applied_s']:.1f}"),
        ("seconds until all Ready", f"{result['all_ready_s']:.1f}"),
        ("per-model Ready time p50 / p90 (s)", f"{result['p50_s']:.1f} / {result['p90_s']:.1f}"),
        ("operator peak RSS (MiB)", f"{result['rss_mib']:.0f}"),
        ("operator CPU time (s)", f"{result['cpu_s']:.1f}"),
        ("machine load average (1 min)", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"),
        ("API requests per model, operator", f"{sum(own.values()) / n:.2f}"),
        ("API requests per model, kopf", f"{sum(kopf.values()) / n:.2f}"),
        ("API requests per model, total", f"{(sum(own.values()) + sum(kopf.values())) / n:.2f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'metric':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    print("\nCPU seconds during the run, per process:")
    for name, seconds in sorted(result["components_cpu"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:25} {seconds:7.1f}")
    print("\nrequests by verb and kind (whole run):")
    for key, count in sorted({**own, **kopf}.items()):
        if count:
            label = key.split("{", 1)[1].rstrip("}") if "{" in key else key
            source = "kopf" if "kopf" in key else "operator"
            print(f"  {source:8} {label:45} {count:6.0f}  ({count / n:.2f}/model)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    result = run(args.models, args.timeout)
    print_table(result)
    if result["ready"] < args.models:
        print("\noperator log tail:\n" + result["log_tail"])
        sys.exit(1)


if __name__ == "__main__":
    main()
