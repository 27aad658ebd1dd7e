"""Command lines of the control-plane components: pure functions, no I/O.

Every component listens on 127.0.0.1 only, on ports chosen per cluster, so that several clusters
(one per pytest-xdist worker) can run side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from testing.harness.nodes import KWOK_SELECTOR
from testing.harness.pki import FRONT_PROXY_USER, Pki

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
NODE_IP = "10.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CLUSTER_NAME = "modelport-e2e"
HEALTH_PATHS = "/healthz,/readyz,/livez,/metrics"
NODE_LEASE_SECONDS = 40


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    @classmethod
    def from_list(cls, ports: list[int]) -> Ports:
        return cls(*ports)

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client}"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver}"


PORT_COUNT = len(Ports.__dataclass_fields__)


def etcd_args(bin_dir: Path, data_dir: Path, ports: Ports) -> list[str]:
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(bin_dir / "etcd"),
        "--name=modelport-e2e",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={ports.etcd_url}",
        f"--advertise-client-urls={ports.etcd_url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=modelport-e2e={peer}",
        "--unsafe-no-fsync=true",  # throw-away data: skip fsync, as test clusters do
        "--auto-compaction-retention=1h",
        "--log-level=warn",
    ]


def apiserver_args(bin_dir: Path, pki: Pki, ports: Ports, cert_dir: Path) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers={ports.etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",  # no default route is needed
        f"--secure-port={ports.apiserver}",
        "--endpoint-reconciler-type=none",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={pki.server_cert}",
        f"--tls-private-key-file={pki.server_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=Node,RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        f"--requestheader-client-ca-file={pki.front_proxy_ca_cert}",
        f"--requestheader-allowed-names={FRONT_PROXY_USER}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.front_proxy_client_cert}",
        f"--proxy-client-key-file={pki.front_proxy_client_key}",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_args(bin_dir: Path, pki: Pki, ports: Ports, kubeconfig: Path) -> list[str]:
    return [
        str(bin_dir / "kube-controller-manager"),
        *_delegated_auth(kubeconfig),
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        "--leader-elect=false",
        # every default controller: deployment, replicaset, garbage collector, namespace,
        # horizontal pod autoscaling, service account (+ tokens), node lifecycle, job, ...
        "--controllers=*",
        f"--cluster-name={CLUSTER_NAME}",
        f"--root-ca-file={pki.ca_cert}",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allocate-node-cidrs=false",
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        "--v=1",
    ]


def scheduler_args(bin_dir: Path, ports: Ports, kubeconfig: Path) -> list[str]:
    return [
        str(bin_dir / "kube-scheduler"),
        *_delegated_auth(kubeconfig),
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        "--leader-elect=false",
        "--v=1",
    ]


def kwok_args(bin_dir: Path, kubeconfig: Path, config: Path) -> list[str]:
    return [
        str(bin_dir / "kwok"),
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_SELECTOR}",
        "--manage-nodes-with-label-selector=",
        "--manage-single-node=",
        f"--cidr={POD_CIDR}",
        f"--node-ip={NODE_IP}",
        f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
    ]


def _delegated_auth(kubeconfig: Path) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--authorization-always-allow-paths={HEALTH_PATHS}",
    ]
