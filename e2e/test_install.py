"""Modelport installed by its chart, end to end, on the test cluster.

`helm install` puts the chart into the test cluster. Containers do not run there (KWOK fakes the
kubelet), so the operator and the control API run as local processes, each started exactly as
its Deployment says (command, arguments, environment with the Secrets and field references
resolved) and with a kubeconfig that carries a TokenRequest token of the chart's own
ServiceAccount: the chart's RBAC must be enough. PostgreSQL and the S3-API server are the real
test services.

Then the whole flow goes through the public interfaces: a user and an API key, a real model per
format uploaded through the control API, the MLModel and its children, the (fake) pods Ready, the
model active at its per-model URL. One model's runtime is then started as a local process from the
pod spec the operator rendered (command, environment, the mounted Secret's files, the artifact
from S3) and called through all three protocols. Last, the lifecycle: a new version rolls the
Deployment, inactive scales to zero and removes the Ingress, delete removes everything.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from modelport.core.formats import ModelFormat

from testing.harness.cluster import Cluster
from testing.harness.process import free_ports
from testing.models import ModelFile
from testing.postgres import PostgresServer
from testing.s3 import S3Server

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "modelport"
BIN = Path(sys.executable).parent
RELEASE = "mp"
API_DEPLOYMENT = f"{RELEASE}-modelport-api"
OPERATOR_DEPLOYMENT = f"{RELEASE}-modelport-operator"
CRD = "mlmodels.modelport.io"
PASSWORD = "correct horse battery staple"
CHILD_KINDS = ("serviceaccount", "service", "deployment", "ingress", "hpa", "networkpolicy")


class ProcessExited(RuntimeError):
    """A component process ended while it was expected to run."""


def wait_for(check: Callable[[], Any], *, timeout: float = 120.0, what: str = "") -> Any:
    """Poll `check()` until it returns something truthy; a timeout names its last result."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except ProcessExited:
            raise
        except Exception as exc:  # retried until the deadline
            last = exc
        time.sleep(1.0)
    raise TimeoutError(f"{what or check} not true after {timeout}s (last: {last!r})")


# --- Running a container of the cluster as a local process ----------------------------------


def _secret(cluster: Cluster, namespace: str, name: str) -> dict[str, bytes]:
    data = cluster.kubectl_json("get", "secret", name, "-n", namespace).get("data", {})
    return {k: base64.b64decode(v) for k, v in data.items()}


def container_env(
    cluster: Cluster, namespace: str, container: dict[str, Any], *, pod_name: str
) -> dict[str, str]:
    """The container's environment as the kubelet would build it (env, envFrom, Secrets)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["secretRef"]["name"]
        env.update({k: v.decode() for k, v in _secret(cluster, namespace, ref).items()})
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        source = entry["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[entry["name"]] = _secret(cluster, namespace, ref["name"])[ref["key"]].decode()
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[entry["name"]] = pod_name
        else:
            raise AssertionError(f"unexpected env source {source}")
    return env


def pod_template(cluster: Cluster, namespace: str, deployment: str) -> dict[str, Any]:
    found = cluster.kubectl_json("get", "deployment", deployment, "-n", namespace)
    return dict(found["spec"]["template"]["spec"])


def container_named(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(
        c for c in [*pod.get("initContainers", []), *pod["containers"]] if c["name"] == name
    )


def with_flag(args: list[str], flag: str, value: str) -> list[str]:
    """`args` with `flag`'s value replaced (a local port instead of the pod's)."""
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


@dataclass
class Process:
    """A component started from its container spec; its output goes to a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> Process:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            env={
                "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                "HOME": str(self.log_path.parent),
                **self.env,
            },
            cwd=self.log_path.parent,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise ProcessExited(f"{self.name} exited:\n{self.log_tail()}")
        return True

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()


def resolve_command(container: dict[str, Any], default: list[str]) -> list[str]:
    """The container's command and args, the command found in this environment's bin folder."""
    command = list(container.get("command") or default)
    executable = shutil.which(command[0], path=str(BIN)) or shutil.which(command[0])
    assert executable, f"{command[0]} is not installed"
    return [executable, *command[1:], *container.get("args", [])]


# --- The installed stack ---------------------------------------------------------------------


@dataclass
class Stack:
    cluster: Cluster
    namespace: str
    api_url: str
    s3: S3Server
    bucket: str
    workdir: Path
    api: Process
    operator: Process

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=60)

    def kubectl_json(self, *args: str) -> Any:
        return self.cluster.kubectl_json(*args, "-n", self.namespace)

    def exists(self, kind: str, name: str) -> bool:
        found = self.cluster.kubectl("get", kind, name, "-n", self.namespace, check=False)
        return found.returncode == 0

    def s3_key(self, uri: str) -> str:
        """The object key of an `s3://bucket/key` URI in this stack's bucket."""
        prefix = f"s3://{self.bucket}/"
        assert uri.startswith(prefix), uri
        return uri[len(prefix) :]

    def gone(self, kind: str, name: str) -> bool:
        return not self.exists(kind, name)

    def objects(self, prefix: str) -> list[str]:
        listing = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for o in listing.get("Contents", [])]


def adopt_crd(cluster: Cluster, namespace: str) -> None:
    """Let this release take over an MLModel CRD that other tests applied without Helm."""
    if cluster.kubectl("get", "crd", CRD, check=False).returncode:
        return
    cluster.kubectl(
        "annotate", "--overwrite", "crd", CRD,
        f"meta.helm.sh/release-name={RELEASE}", f"meta.helm.sh/release-namespace={namespace}",
    )  # fmt: skip
    cluster.kubectl("label", "--overwrite", "crd", CRD, "app.kubernetes.io/managed-by=Helm")


def token_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    return cluster.write_token_kubeconfig(cluster.create_token(account, namespace), path, account)


def package_chart(cluster: Cluster, into: Path) -> Path:
    """`helm package` of this checkout's chart, as the release workflow packages it."""
    cluster.helm("package", str(CHART), "--destination", str(into))
    (packaged,) = into.glob("modelport-*.tgz")
    return packaged


def install(
    cluster: Cluster, namespace: str, db_url: str, s3: S3Server, bucket: str, chart: Path = CHART
) -> None:
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl(
        "create", "secret", "generic", "modelport-database", "-n", namespace,
        f"--from-literal=url={db_url}",
    )  # fmt: skip
    cluster.kubectl(
        "create", "secret", "generic", "modelport-s3", "-n", namespace,
        f"--from-literal=AWS_ACCESS_KEY_ID={s3.access_key}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={s3.secret_key}",
    )  # fmt: skip
    adopt_crd(cluster, namespace)
    values = {
        "storage.s3.endpoint": s3.endpoint_url,
        "storage.s3.bucket": bucket,
        "storage.s3.region": s3.region,
        "storage.s3.existingSecret": "modelport-s3",
        "api.signup": "open",
        "api.subscriptions.free.requestsPerMinute": "600",
        "api.subscriptions.free.modelsLimit": "20",
        "models.ingress.domain": "models.e2e.test",
        "models.defaultResources.requests.cpu": "100m",
        "models.defaultResources.requests.memory": "128Mi",
        "networkPolicy.artifactStore.cidrs[0]": "127.0.0.1/32",
        "networkPolicy.artifactStore.port": str(s3.port),
    }
    sets = [arg for k, v in values.items() for arg in ("--set", f"{k}={v}")]
    cluster.helm("install", RELEASE, str(chart), "--namespace", namespace, *sets)


def start_api(
    cluster: Cluster, namespace: str, workdir: Path, extra_env: Mapping[str, str] | None = None
) -> tuple[Process, str]:
    """Migrate with the init container, then serve with the API container, as the pod would.

    `extra_env` is added to both (a PYTHONPATH that picks which code runs, say).
    """
    pod = pod_template(cluster, namespace, API_DEPLOYMENT)
    account = pod["serviceAccountName"]
    kubeconfig = token_kubeconfig(cluster, namespace, account, workdir / "api.kubeconfig")
    (port,) = free_ports(1)
    processes = []
    for name in ("migrate", "api"):
        container = container_named(pod, name)
        env = container_env(cluster, namespace, container, pod_name=f"{API_DEPLOYMENT}-local")
        env.update({**(extra_env or {}), "KUBECONFIG": str(kubeconfig)})
        argv = resolve_command(container, ["modelport-api"])
        if name == "api":
            argv = with_flag(with_flag(argv, "--port", str(port)), "--host", "127.0.0.1")
            # The pod's own metrics port, 9100 on all addresses, on loopback and free here.
            env.update({"MODELPORT_API_METRICS_HOST": "127.0.0.1"})
            env.update({"MODELPORT_API_METRICS_PORT": str(free_ports(1)[0])})
        processes.append(Process(name, argv, env, workdir / f"{name}.log"))
    migrate, api = processes
    migrate.start()
    assert migrate.proc is not None
    assert migrate.proc.wait(timeout=120) == 0, migrate.log_tail()
    api.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: api.alive() and httpx.get(f"{url}/readyz").status_code == 200,
             timeout=60, what=f"the control API\n{api.log_tail()}")  # fmt: skip
    return api, url


def start_operator(
    cluster: Cluster, namespace: str, workdir: Path, extra_env: Mapping[str, str] | None = None
) -> Process:
    pod = pod_template(cluster, namespace, OPERATOR_DEPLOYMENT)
    account = pod["serviceAccountName"]
    kubeconfig = token_kubeconfig(cluster, namespace, account, workdir / "operator.kubeconfig")
    container = container_named(pod, "operator")
    env = container_env(cluster, namespace, container, pod_name=f"{OPERATOR_DEPLOYMENT}-local")
    (port,) = free_ports(1)
    env.update({**(extra_env or {}), "KUBECONFIG": str(kubeconfig)})
    env["MODELPORT_OPERATOR_HEALTH_PORT"] = str(port)
    operator = Process(
        "operator",
        resolve_command(container, ["modelport-operator"]),
        env,
        workdir / "operator.log",
    ).start()

    def leading() -> bool:
        operator.alive()
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        return "modelport_operator_leader 1.0" in metrics

    wait_for(leading, timeout=90, what="the operator to lead")
    return operator


@pytest.fixture(scope="module")
def stack(
    k8s_cluster: Cluster,
    postgres_server: PostgresServer,
    s3_server: S3Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    namespace = f"mp-e2e-{uuid.uuid4().hex[:8]}"
    workdir = tmp_path_factory.mktemp("install")
    bucket = s3_server.create_bucket()
    # As a user installs a release: the packaged chart, not the source folder.
    chart = package_chart(k8s_cluster, workdir)
    api: Process | None = None
    operator: Process | None = None
    try:  # a release left behind would hold the cluster-wide names the next release needs
        install(k8s_cluster, namespace, postgres_server.create_database(), s3_server, bucket, chart)
        api, url = start_api(k8s_cluster, namespace, workdir)
        operator = start_operator(k8s_cluster, namespace, workdir)
        yield Stack(k8s_cluster, namespace, url, s3_server, bucket, workdir, api, operator)
    finally:
        if operator is not None:
            operator.stop()
        if api is not None:
            api.stop()
        if os.environ.get("MODELPORT_E2E_KEEP") == "1":
            print(f"logs kept in {workdir}")
        k8s_cluster.helm("uninstall", RELEASE, "--namespace", namespace, check=False)
        k8s_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@dataclass
class User:
    headers: dict[str, str]
    key: str
    key_id: str


@pytest.fixture(scope="module")
def user(stack: Stack) -> User:
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    with stack.client() as client:
        r = client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['accessToken']}"}
        r = client.post("/api/v1/keys", headers=headers, json={"name": "e2e"})
        assert r.status_code == 201, r.text
        return User(headers, r.json()["key"], r.json()["id"])


def upload(stack: Stack, user: User, path: Path, name: str, filename: str | None = None) -> Any:
    with stack.client() as client, path.open("rb") as handle:
        files = {"file": (filename or path.name, handle, "application/octet-stream")}
        r = client.post(
            "/api/v1/models", headers=user.headers, files=files, data={"modelName": name}
        )
    assert r.status_code == 201, r.text
    return r.json()


def model(stack: Stack, user: User, model_id: str) -> Any:
    with stack.client() as client:
        r = client.get(f"/api/v1/models/{model_id}", headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()


def mlmodel(stack: Stack, model_id: str) -> Any:
    return stack.kubectl_json("get", "mlmodel", model_id)


def mlmodel_in_phase(stack: Stack, model_id: str, phase: str) -> Any:
    """The MLModel once its status shows `phase`, else None."""
    found = mlmodel(stack, model_id)
    return found if found.get("status", {}).get("phase") == phase else None


def model_in_phase(stack: Stack, user: User, model_id: str, phase: str) -> Any:
    """The control API's view of the model once it shows `phase`, else None."""
    found = model(stack, user, model_id)
    return found if found["phase"] == phase else None


# --- The flow --------------------------------------------------------------------------------


def _one_per_format(model_files: dict[str, ModelFile], workdir: Path) -> dict[str, Path]:
    """A servable file per upload format; `.pth` is a TorchScript program under that name."""
    files: dict[str, Path] = {}
    for item in model_files.values():
        if item.servable:
            files.setdefault(item.format.value, item.path)
    if "pth" not in files and "pt" in files:
        renamed = workdir / "model.pth"
        shutil.copy(files["pt"], renamed)
        files["pth"] = renamed
    return files


def test_every_format_becomes_a_ready_endpoint(
    stack: Stack, user: User, model_files: dict[str, ModelFile]
) -> None:
    files = _one_per_format(model_files, stack.workdir)
    assert sorted(files) == sorted(fmt.value for fmt in ModelFormat)
    uploaded = {fmt: upload(stack, user, path, f"e2e {fmt}") for fmt, path in files.items()}

    for fmt, response in uploaded.items():
        model_id = response["modelId"]
        resource = wait_for(partial(mlmodel, stack, model_id), what=f"MLModel {model_id}")
        assert resource["spec"]["format"] == fmt
        assert resource["spec"]["artifact"]["uri"].startswith(f"s3://{stack.bucket}/artifacts")
        child = f"mlmodel-{model_id}"
        for kind in CHILD_KINDS:
            wait_for(partial(stack.exists, kind, child), what=f"{kind}/{child}")
        ready = wait_for(
            partial(mlmodel_in_phase, stack, model_id, "Ready"), timeout=180, what=f"{fmt} Ready"
        )
        ingress = stack.kubectl_json("get", "ingress", child)
        host = ingress["spec"]["rules"][0]["host"]
        assert ready["status"]["url"] == f"https://{host}"
        assert response["endpointUrl"] == ready["status"]["url"]
        shown = wait_for(
            partial(model_in_phase, stack, user, model_id, "Ready"),
            what=f"the API to report {fmt} Ready",
        )
        assert shown["status"] == "active"
        assert shown["endpointUrl"] == ready["status"]["url"]
        assert shown["fileFormat"] == fmt


# --- The rendered pod, run for real ----------------------------------------------------------


@dataclass
class LocalRuntime:
    url: str
    name: str
    process: Process
    rate_limit: int


def start_runtime_from_pod(stack: Stack, model_id: str, api_url: str) -> LocalRuntime:
    """Start `modelport-runtime` exactly as the model's pod would, on this machine.

    Secret volumes become folders holding the Secret's files at the paths the container mounts
    them; the environment is the container's, with its Secrets resolved. Only the listen addresses,
    the ports and the usage URL (the in-cluster Service name does not resolve here) change.
    """
    deployment = f"mlmodel-{model_id}"
    pod = pod_template(stack.cluster, stack.namespace, deployment)
    container = container_named(pod, "runtime")
    env = container_env(stack.cluster, stack.namespace, container, pod_name=f"{deployment}-local")
    root = stack.workdir / f"pod-{model_id}"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        local = root / mount["mountPath"].lstrip("/")
        local.mkdir(parents=True, exist_ok=True)
        mounts[mount["mountPath"]] = local
        if "secret" in volume:
            data = _secret(stack.cluster, stack.namespace, volume["secret"]["secretName"])
            items = volume["secret"].get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                (local / item["path"]).write_bytes(data[item["key"]])
    for key, value in env.items():
        matching = [m for m in mounts if value == m or value.startswith(m.rstrip("/") + "/")]
        if matching:
            mount_path = max(matching, key=len)
            env[key] = str(mounts[mount_path]) + value[len(mount_path) :]
    port, metrics_port = free_ports(2)
    prefix = "MODELPORT_RUNTIME_"
    env.update({f"{prefix}HOST": "127.0.0.1", f"{prefix}PORT": str(port)})
    env.update({f"{prefix}METRICS_HOST": "127.0.0.1", f"{prefix}METRICS_PORT": str(metrics_port)})
    if f"{prefix}USAGE_REPORT_URL" in env:
        env[f"{prefix}USAGE_REPORT_URL"] = f"{api_url}/api/v1/internal/usage"
    process = Process(
        "runtime", resolve_command(container, ["modelport-runtime"]), env,
        stack.workdir / f"runtime-{model_id}.log",
    ).start()  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: process.alive() and httpx.get(f"{url}/v2/health/ready").status_code == 200,
             timeout=120, what=f"the runtime\n{process.log_tail()}")  # fmt: skip
    keys = json.loads(Path(env[f"{prefix}AUTH_KEYS_FILE"]).read_text())["keys"]
    limit = int(keys[0].get("rateLimitPerMinute") or env.get(f"{prefix}RATE_LIMIT_PER_MINUTE", 0))
    return LocalRuntime(url, env[f"{prefix}MODEL_NAME"], process, limit)


BURST_LIMIT = 5


def secret_rate_limit(stack: Stack, model_id: str) -> bool:
    """Whether the model's Secret carries the per-key limit `BURST_LIMIT`."""
    data = _secret(stack.cluster, stack.namespace, f"mlmodel-{model_id}-key")
    keys = json.loads(data["auth-keys.json"])["keys"]
    return bool(keys) and all(k.get("rateLimitPerMinute") == BURST_LIMIT for k in keys)


@pytest.fixture(scope="module")
def served(stack: Stack, user: User) -> Iterator[tuple[str, LocalRuntime]]:
    """An `x + 1` ONNX model uploaded and Ready, its pod spec running as a local runtime."""
    from testing.payloads import onnx_add_one

    path = stack.workdir / "add_one.onnx"
    path.write_bytes(onnx_add_one())
    model_id = upload(stack, user, path, "adder")["modelId"]
    wait_for(partial(mlmodel_in_phase, stack, model_id, "Ready"), timeout=180, what="adder Ready")
    # A small per-key limit, so that a burst can exceed it; it reaches the model's Secret.
    with stack.client() as client:
        r = client.patch(
            f"/api/v1/models/{model_id}",
            headers=user.headers,
            json={"settings": {"rateLimitPerMinute": BURST_LIMIT}},
        )
    assert r.status_code == 200, r.text
    wait_for(partial(secret_rate_limit, stack, model_id), what="the new limit in the Secret")
    runtime = start_runtime_from_pod(stack, model_id, stack.api_url)
    try:
        yield model_id, runtime
    finally:
        runtime.process.stop()


def test_the_rendered_pod_serves_all_three_protocols(
    served: tuple[str, LocalRuntime], user: User
) -> None:
    _, runtime = served
    auth = {"Authorization": f"Bearer {user.key}"}
    r = httpx.post(f"{runtime.url}/predict", json={"inputData": [[1.0, 2.0]]}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [[2.0, 3.0]]
    assert r.json()["status"] == "success"

    infer = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [5.0, 6.0]}]}
    r = httpx.post(f"{runtime.url}/v2/models/{runtime.name}/infer", json=infer, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [6.0, 7.0]

    r = httpx.post(
        f"{runtime.url}/v1/models/{runtime.name}:predict",
        json={"instances": [[0.5, 1.5]]},
        headers={"X-API-Key": user.key},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [[1.5, 2.5]]


def test_the_rendered_pod_refuses_a_wrong_key_and_a_burst(
    served: tuple[str, LocalRuntime], user: User
) -> None:
    _, runtime = served
    body = {"inputData": [[1.0, 2.0]]}
    wrong = httpx.post(f"{runtime.url}/predict", json=body, headers={"X-API-Key": "mp_wrong"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthenticated"
    assert httpx.post(f"{runtime.url}/predict", json=body).status_code == 401

    assert runtime.rate_limit == BURST_LIMIT
    auth = {"Authorization": f"Bearer {user.key}"}
    with httpx.Client(timeout=30) as client:
        statuses = [
            client.post(f"{runtime.url}/predict", json=body, headers=auth)
            for _ in range(runtime.rate_limit + 5)
        ]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["error"]["code"] == "rate_limited"


def test_usage_of_the_rendered_pod_reaches_the_api(
    stack: Stack, served: tuple[str, LocalRuntime], user: User
) -> None:
    model_id, runtime = served
    auth = {"Authorization": f"Bearer {user.key}"}
    assert httpx.post(f"{runtime.url}/predict", json={"inputData": [[0.0, 0.0]]}, headers=auth)
    shown = wait_for(
        lambda: (found := model(stack, user, model_id))["requestCount"] > 0 and found,
        timeout=60, what="usage reported",
    )  # fmt: skip
    assert shown["lastUsed"] is not None


# --- Lifecycle -------------------------------------------------------------------------------


def test_lifecycle_new_version_inactive_delete(stack: Stack, user: User) -> None:
    from testing.payloads import onnx_add_one

    first, second = stack.workdir / "v1.onnx", stack.workdir / "v2.onnx"
    first.write_bytes(onnx_add_one())
    second.write_bytes(onnx_add_one(padding=1024))
    model_id = upload(stack, user, first, "lifecycle")["modelId"]
    child = f"mlmodel-{model_id}"
    wait_for(partial(mlmodel_in_phase, stack, model_id, "Ready"), timeout=180, what="v1 Ready")
    v1 = mlmodel(stack, model_id)["spec"]["artifact"]

    # A new version: the artifact changes and the Deployment rolls to it.
    with stack.client() as client, second.open("rb") as handle:
        r = client.post(
            f"/api/v1/models/{model_id}/versions",
            headers=user.headers,
            files={"file": ("v2.onnx", handle, "application/octet-stream")},
        )
    assert r.status_code == 201, r.text
    v2 = wait_for(
        lambda: (
            (art := mlmodel(stack, model_id)["spec"]["artifact"])["sha256"] != v1["sha256"] and art
        ),
        what="the MLModel's new artifact",
    )

    def rolled() -> bool:
        pod = pod_template(stack.cluster, stack.namespace, child)
        env = {e["name"]: e.get("value") for e in container_named(pod, "runtime")["env"]}
        return bool(env["MODELPORT_RUNTIME_SHA256"] == v2["sha256"])

    wait_for(rolled, what="the Deployment to roll to v2")
    assert model(stack, user, model_id)["version"] == 2

    # Inactive: no pods, no Ingress, the API says so.
    with stack.client() as client:
        r = client.patch(
            f"/api/v1/models/{model_id}", headers=user.headers, json={"status": "inactive"}
        )
    assert r.status_code == 200, r.text
    wait_for(lambda: stack.kubectl_json("get", "deployment", child)["spec"]["replicas"] == 0,
             what="scaled to zero")  # fmt: skip
    wait_for(lambda: not stack.exists("ingress", child), what="the Ingress removed")
    wait_for(partial(model_in_phase, stack, user, model_id, "Inactive"), what="Inactive")

    # Delete: the resource, its children, its key material and its artifacts are gone.
    stored = [stack.s3_key(v1["uri"]), stack.s3_key(v2["uri"])]
    assert all(stack.objects(key) == [key] for key in stored)
    with stack.client() as client:
        assert client.delete(f"/api/v1/models/{model_id}", headers=user.headers).status_code == 204
        assert client.get(f"/api/v1/models/{model_id}", headers=user.headers).status_code == 404
    wait_for(lambda: not stack.exists("mlmodel", model_id), what="the MLModel deleted")
    for kind in (*CHILD_KINDS, "secret"):
        name = f"{child}-key" if kind == "secret" else child
        wait_for(partial(stack.gone, kind, name), what=f"{kind}/{name} deleted")
    wait_for(lambda: not any(stack.objects(key) for key in stored), what="the artifacts deleted")
