"""A real Kubernetes control plane on loopback, for Modelport's end-to-end tests.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as child processes, and
KWOK plays the kubelet of two CPU nodes and two GPU nodes, so Deployments, scheduling with taints
and extended resources, garbage collection, RBAC and service-account tokens all behave as in a
real cluster; containers are never actually run.

    with Cluster() as cluster:
        cluster.kubectl("get", "nodes")

Each cluster lives in its own temporary folder (certificates, kubeconfig, etcd data, one log
file per component) and on its own free ports, so that parallel test workers do not collide.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from testing.harness import components as flags
from testing.harness.binaries import KWOK_STAGES_DIR, ensure_binaries
from testing.harness.kubeconfig import client_cert_kubeconfig, token_kubeconfig, write_kubeconfig
from testing.harness.nodes import default_nodes, node_list
from testing.harness.pki import ADMIN_USER, Pki, write_pki
from testing.harness.process import (
    Component,
    ComponentError,
    free_ports,
    http_ok,
    insecure_tls,
    wait_until,
)

__all__ = ["Cluster", "ClusterError", "CommandError", "ensure_binaries"]

START_ATTEMPTS = 3
PORT_IN_USE = "address already in use"
COMMAND_TIMEOUT = 120.0


class ClusterError(RuntimeError):
    """The cluster could not be started."""


class CommandError(subprocess.CalledProcessError):
    """kubectl or helm failed; the message carries its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"


class Cluster:
    """A throw-away control plane with fake CPU and GPU nodes.

    Attributes, valid after `start()`: `kubeconfig` (admin, O=system:masters), `server` (the
    API server's URL), `bin_dir` (etcd, kube-*, kubectl, helm, kwok), `dir` (the cluster's
    folder), `ca_cert` (the CA that signed the API server's certificate).
    """

    def __init__(
        self,
        *,
        bin_dir: Path | None = None,
        parent_dir: Path | None = None,
        nodes: list[dict[str, Any]] | None = None,
        start_timeout: float = 120.0,
        keep_dir: bool = False,
    ) -> None:
        self.bin_dir = bin_dir or ensure_binaries()
        self.nodes = default_nodes() if nodes is None else nodes
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self._parent_dir = parent_dir
        self._components: list[Component] = []
        self.dir = Path()
        self.server = ""
        self.kubeconfig = Path()
        self.ca_cert = Path()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Cluster:
        """Start every component and wait until the nodes are Ready; retry on a port clash."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_once()
                return self
            except ComponentError as error:
                clash = self._port_clash()
                report = self._failure_report(error)
                self.stop()
                if not clash or attempt == START_ATTEMPTS:
                    print(report, file=sys.stderr)
                    raise ClusterError(report) from error
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the components in reverse order and remove the cluster folder."""
        for component in reversed(self._components):
            component.stop()
        self._components = []
        if self.dir != Path() and self.dir.exists() and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clients -----------------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = COMMAND_TIMEOUT,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster (as admin unless `kubeconfig` says otherwise)."""
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}"]
        return self._run([*argv, *args], input=input, check=check, timeout=timeout)

    def kubectl_json(self, *args: str) -> Any:
        """Run kubectl with `-o json` and parse its output."""
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        """Server-side apply one manifest (or a `v1/List` of them)."""
        return self.kubectl(
            "apply", "--server-side", "--field-manager=modelport-e2e", "-f", "-",
            input=json.dumps(manifest),
        )  # fmt: skip

    def helm(
        self,
        *args: str,
        check: bool = True,
        timeout: float = COMMAND_TIMEOUT * 3,
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against this cluster, with its caches and config kept in the cluster folder."""
        argv = [str(self.bin_dir / "helm"), f"--kubeconfig={self.kubeconfig}"]
        return self._run([*argv, *args], input=None, check=check, timeout=timeout)

    def env(self) -> dict[str, str]:
        """The environment for clients of this cluster: KUBECONFIG, PATH with kubectl and helm."""
        helm_home = self.dir / "helm"
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }

    def write_token_kubeconfig(self, token: str, path: Path, user: str = "token-user") -> Path:
        """Write a kubeconfig that authenticates with a bearer `token` (no client certificate)."""
        return write_kubeconfig(path, token_kubeconfig(self.server, self.ca_cert, user, token))

    def create_token(self, service_account: str, namespace: str, duration: str = "1h") -> str:
        """A token for `service_account`, issued through the TokenRequest API."""
        result = self.kubectl(
            "create", "token", service_account, "-n", namespace, f"--duration={duration}"
        )
        return result.stdout.strip()

    # -- internals ---------------------------------------------------------------------------

    def _run(
        self,
        argv: list[str],
        *,
        input: str | None,
        check: bool,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )
        if check and result.returncode != 0:
            raise CommandError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def _start_once(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="modelport-k8s-", dir=self._parent_dir))
        ports = flags.Ports.from_list(free_ports(flags.PORT_COUNT))
        self.server = ports.server
        pki = write_pki(self.dir / "pki")
        self.ca_cert = pki.ca_cert
        self.kubeconfig = write_kubeconfig(
            self.dir / "admin.kubeconfig",
            client_cert_kubeconfig(
                self.server, pki.ca_cert, ADMIN_USER, pki.admin_cert, pki.admin_key
            ),
        )
        self._start_etcd(ports)
        self._start_apiserver(ports, pki)
        self._start_controllers(ports, pki)
        self._register_nodes()

    def _launch(self, name: str, argv: list[str]) -> Component:
        component = Component(name, argv, self.dir / f"{name}.log")
        component.start()
        self._components.append(component)
        return component

    def _wait(self, what: str, check: Any) -> None:
        wait_until(check, what=what, timeout=self.start_timeout, components=self._components)

    def _start_etcd(self, ports: flags.Ports) -> None:
        self._launch("etcd", flags.etcd_args(self.bin_dir, self.dir / "etcd", ports))
        self._wait("etcd /health", lambda: http_ok(f"{ports.etcd_url}/health"))

    def _start_apiserver(self, ports: flags.Ports, pki: Pki) -> None:
        argv = flags.apiserver_args(self.bin_dir, pki, ports, self.dir / "apiserver-certs")
        self._launch("kube-apiserver", argv)
        admin = ssl.create_default_context(cafile=str(pki.ca_cert))
        admin.load_cert_chain(pki.admin_cert, pki.admin_key)
        self._wait("kube-apiserver /readyz", lambda: http_ok(f"{self.server}/readyz", admin))

    def _start_controllers(self, ports: flags.Ports, pki: Pki) -> None:
        kwok_config = self._write_kwok_config()
        self._launch(
            "kube-controller-manager",
            flags.controller_manager_args(self.bin_dir, pki, ports, self.kubeconfig),
        )
        self._launch("kube-scheduler", flags.scheduler_args(self.bin_dir, ports, self.kubeconfig))
        self._launch("kwok", flags.kwok_args(self.bin_dir, self.kubeconfig, kwok_config))
        tls = insecure_tls()
        for name, port in (
            ("kube-controller-manager", ports.controller_manager),
            ("kube-scheduler", ports.scheduler),
        ):
            url = f"https://127.0.0.1:{port}/healthz"
            self._wait(f"{name} /healthz", lambda url=url: http_ok(url, tls))

    def _write_kwok_config(self) -> Path:
        stages = sorted((self.bin_dir / KWOK_STAGES_DIR).glob("*.yaml"))
        path = self.dir / "kwok.yaml"
        path.write_text("\n---\n".join(s.read_text() for s in stages))
        return path

    def _register_nodes(self) -> None:
        if not self.nodes:
            return
        self.kubectl("create", "-f", "-", input=json.dumps(node_list(self.nodes)))
        self._wait("nodes to be Ready", self._nodes_ready)
        # the service-account controller is up once `default` has its ServiceAccount
        self._wait(
            "the default ServiceAccount",
            lambda: self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
        )

    def _nodes_ready(self) -> bool:
        items = self.kubectl_json("get", "nodes")["items"]
        ready = {
            item["metadata"]["name"]
            for item in items
            for condition in item.get("status", {}).get("conditions", [])
            if condition["type"] == "Ready" and condition["status"] == "True"
        }
        return ready >= {node["metadata"]["name"] for node in self.nodes}

    def _port_clash(self) -> bool:
        return any(PORT_IN_USE in c.log_tail(200) for c in self._components)

    def _failure_report(self, error: ComponentError) -> str:
        lines = [f"test cluster in {self.dir} failed to start: {error}"]
        for component in self._components:
            lines += [f"--- {component.name} ({component.log_path}) ---", component.log_tail()]
        return "\n".join(lines)
