"""What `helm template` renders: the restricted Pod Security Standard, names and labels, secrets by
reference only, generated keys, and settings the components really accept."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from modelport.api.hosts import HostPolicy
from modelport.api.settings import ApiSettings
from modelport.core.version import VERSION
from modelport.operator.settings import OperatorSettings

from tests.chart.helm import CI_VALUES, HelmError, Manifest, env_of, find, pod_specs, render

#: Volume types the `restricted` Pod Security Standard allows.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
SECRET_SETTINGS = {
    "MODELPORT_API_DATABASE_URL",
    "MODELPORT_API_MASTER_KEYS",
    "MODELPORT_API_JWT_SECRET",
    "MODELPORT_API_OIDC_CLIENT_SECRET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.fixture(scope="module")
def default() -> list[Manifest]:
    return render()


def _all_renderings() -> list[Any]:
    return [None, *CI_VALUES]


def _render_case(values_file: Path | None) -> list[Manifest]:
    return render(values_files=[values_file] if values_file else [])


def _containers(pod: Manifest) -> list[Manifest]:
    return [*pod.get("initContainers", []), *pod["containers"]]


# --- Pod security ----------------------------------------------------------------------------


def restricted_violations(pod: Manifest) -> list[str]:
    """Where a pod spec breaks the `restricted` Pod Security Standard (v1.36), or our own bar."""
    problems: list[str] = []
    pod_ctx = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(flag)
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds)}")
    if pod_ctx.get("runAsUser") == 0:
        problems.append("pod runs as uid 0")
    for c in _containers(pod):
        ctx = c.get("securityContext", {})
        name = c["name"]
        if ctx.get("privileged"):
            problems.append(f"{name}: privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation not false")
        if "ALL" not in ctx.get("capabilities", {}).get("drop", []):
            problems.append(f"{name}: capabilities not dropped")
        if set(ctx.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if not (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot unset")
        if ctx.get("runAsUser") == 0:
            problems.append(f"{name}: runs as uid 0")
        seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccomp {seccomp}")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            problems.append(f"{name}: hostPort")
        if ctx.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: writable root file system")
    return problems


@pytest.mark.parametrize(
    "values_file", _all_renderings(), ids=lambda p: p.name if p else "defaults"
)
def test_every_pod_meets_the_restricted_standard(values_file: Path | None) -> None:
    pods = pod_specs(_render_case(values_file))
    assert set(pods) == {"Deployment/mp-modelport-api", "Deployment/mp-modelport-operator"}
    assert {name: restricted_violations(pod) for name, pod in pods.items()} == {
        name: [] for name in pods
    }


def test_the_check_catches_a_violation(default: list[Manifest]) -> None:
    pod = pod_specs(default)["Deployment/mp-modelport-api"]
    pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    assert restricted_violations(pod) == [
        "volume host: ['hostPath']",
        "api: allowPrivilegeEscalation not false",
    ]


def test_disabling_the_security_contexts_is_visible() -> None:
    pods = pod_specs(render(set_values={"api.containerSecurityContext.enabled": "false"}))
    assert restricted_violations(pods["Deployment/mp-modelport-api"]) != []


# --- Names and labels ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values_file", _all_renderings(), ids=lambda p: p.name if p else "defaults"
)
def test_names_and_labels(values_file: Path | None) -> None:
    for m in _render_case(values_file):
        meta = m["metadata"]
        assert DNS_LABEL.match(meta["name"].replace(".", "-")), meta["name"]
        labels = meta["labels"]
        assert labels["app.kubernetes.io/name"] == "modelport"
        assert labels["app.kubernetes.io/instance"] == "mp"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == f"modelport-{VERSION}"
        assert "app.kubernetes.io/component" in labels
        assert all(len(v) <= 63 for v in labels.values())


def test_long_release_names_are_truncated_to_63_characters() -> None:
    release = "a-release-name-that-goes-on-and-on-well-past-its-lim"  # helm's longest: 53
    manifests = render(release=release)
    names = {m["metadata"]["name"] for m in manifests if m["kind"] != "CustomResourceDefinition"}
    assert all(len(n) <= 63 and DNS_LABEL.match(n) for n in names), names
    # The component suffix survives truncation, so components never collide.
    assert len({n for n in names if n.endswith("-api")}) == 1
    assert len({n for n in names if n.endswith("-operator")}) == 1
    deployment = find(manifests, "Deployment", "-api")
    assert deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == (release)


def test_selectors_match_their_pods(default: list[Manifest]) -> None:
    for m in default:
        if m["kind"] != "Deployment":
            continue
        selector = m["spec"]["selector"]["matchLabels"]
        pod_labels = m["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
    service = find(default, "Service", "-api")
    api_pods = find(default, "Deployment", "-api")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= api_pods.items()


# --- Secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values_file", _all_renderings(), ids=lambda p: p.name if p else "defaults"
)
def test_secret_settings_come_from_secrets_by_reference(values_file: Path | None) -> None:
    for pod in pod_specs(_render_case(values_file)).values():
        for container in _containers(pod):
            for entry in container.get("env", []):
                if entry["name"] in SECRET_SETTINGS:
                    assert "value" not in entry, entry["name"]
                    assert "secretKeyRef" in entry["valueFrom"], entry["name"]


def test_generated_master_key_is_a_valid_ring_kept_on_uninstall(default: list[Manifest]) -> None:
    secret = find(default, "Secret", "-master-key")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert secret["immutable"] is True
    ring = base64.b64decode(secret["data"]["master-keys"]).decode()
    key_id, _, key = ring.partition(":")
    assert key_id == "primary"
    assert len(base64.b64decode(key, validate=True)) == 32
    # Each rendering without a cluster draws a fresh key: nothing is baked into the chart.
    again = find(render(), "Secret", "-master-key")
    assert again["data"] != secret["data"]


def test_existing_secrets_replace_generated_ones() -> None:
    manifests = render(
        set_values={"masterKey.existingSecret": "ring", "api.jwt.existingSecret": "jwt"}
    )
    assert [m["metadata"]["name"] for m in manifests if m["kind"] == "Secret"] == []
    env = env_of(find(manifests, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0])
    assert env["MODELPORT_API_MASTER_KEYS"]["secretKeyRef"] == {
        "name": "ring",
        "key": "master-keys",
    }
    assert env["MODELPORT_API_JWT_SECRET"]["secretKeyRef"] == {"name": "jwt", "key": "jwt-secret"}


def test_database_secret_is_required() -> None:
    with pytest.raises(HelmError, match="/database/existingSecret"):
        render(extra=["--set-json", 'database={"existingSecret":"","secretKey":"url"}'])


# --- The settings the components receive ----------------------------------------------------


def _resolve_env(
    container: Manifest, secrets: dict[tuple[str, str], str], pod_name: str = "pod-0"
) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            out[entry["name"]] = entry["value"]
        elif "secretKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["secretKeyRef"]
            out[entry["name"]] = secrets[(ref["name"], ref["key"])]
        else:
            assert entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            out[entry["name"]] = pod_name
    return out


def _rendered_secrets(manifests: list[Manifest]) -> dict[tuple[str, str], str]:
    out = {
        ("modelport-database", "url"): "postgresql+psycopg2://modelport:pw@postgres:5432/modelport",
    }
    for m in manifests:
        if m["kind"] == "Secret":
            for key, value in m["data"].items():
                out[(m["metadata"]["name"], key)] = base64.b64decode(value).decode()
    return out


def _field_names(settings: type[Any], prefix: str) -> set[str]:
    names = set()
    for name, field in settings.model_fields.items():
        env = prefix + name.upper()
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            names |= {f"{env}__{sub.upper()}" for sub in annotation.model_fields}
        else:
            names.add(env)
    return names


def _settings_from(
    settings: type[Any], env: dict[str, str], prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    for name in list(os.environ):
        if name.startswith(prefix):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings()


def test_control_api_accepts_its_rendered_settings(
    default: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = find(default, "Deployment", "-api")["spec"]["template"]["spec"]
    env = _resolve_env(pod["containers"][0], _rendered_secrets(default))
    ours = {k for k in env if k.startswith("MODELPORT_API_")}
    assert ours - _field_names(ApiSettings, "MODELPORT_API_") == set()
    settings = _settings_from(ApiSettings, env, "MODELPORT_API_", monkeypatch)
    assert settings.environment == "production"  # so it refuses embedded defaults
    assert settings.deployer == "kubernetes"
    assert settings.kubernetes_namespace == "modelport"
    assert settings.artifact_uri == "s3://modelport-artifacts/artifacts"
    assert (
        settings.usage_url() == "http://mp-modelport-api.modelport.svc:8000/api/v1/internal/usage"
    )
    ring = settings.key_ring()
    assert ring is not None
    # The migration init container gets exactly the same settings.
    assert _resolve_env(pod["initContainers"][0], _rendered_secrets(default)).keys() == env.keys()


def test_control_api_answers_only_its_own_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Ingress host, publicUrl's host, the Service names runtimes report usage to and
    localhost (port-forward); caps, trusted proxies and login limits follow the values."""
    values = {
        "api.ingress.enabled": "true",
        "api.ingress.hostname": "api.example.com",
        "api.publicUrl": "https://public.example.com:8443",
        "api.allowedHosts[0]": "*.internal.example",
        "api.trustedProxies[0]": "10.0.0.0/8",
        "api.subscriptions.free.maxGpusPerModel": "1",
        "api.subscriptions.premium.maxMemoryPerReplica": "128Gi",
        "api.login.failuresPerAccount": "3",
    }
    manifests = render(set_values=values)
    pod = find(manifests, "Deployment", "-api")["spec"]["template"]["spec"]
    env = _resolve_env(pod["containers"][0], _rendered_secrets(manifests))
    settings = _settings_from(ApiSettings, env, "MODELPORT_API_", monkeypatch)
    policy = HostPolicy(settings.allowed_hosts or [])
    usage_host = urlsplit(settings.usage_url()).netloc
    for host in (usage_host, "api.example.com", "public.example.com:8443", "localhost:8000"):
        assert policy.allows(host), host
    assert policy.allows("a.internal.example") and not policy.allows("evil.example")
    assert settings.trusted_proxies == ["10.0.0.0/8"]
    assert settings.free.max_gpus_per_model == 1 and settings.free.max_replicas == 3
    assert settings.premium.max_memory_per_replica == "128Gi"
    assert settings.login_failures_per_account == 3


def test_control_api_settings_from_external_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    [values_file] = [p for p in CI_VALUES if p.name == "external-secrets.yaml"]
    manifests = render(values_files=[values_file])
    pod = find(manifests, "Deployment", "-api")["spec"]["template"]["spec"]
    key1 = base64.b64encode(os.urandom(32)).decode()
    key2 = base64.b64encode(os.urandom(32)).decode()
    secrets = {
        ("modelport-postgres", "DATABASE_URL"): "postgresql+psycopg2://u:p@db:5432/modelport",
        ("modelport-master-keys", "ring"): f"k1:{key1},k2:{key2}",
        ("modelport-jwt", "secret"): "j" * 40,
        ("modelport-oidc", "client-secret"): "oidc-secret",
        ("modelport-s3", "AWS_ACCESS_KEY_ID"): "AKIA",
        ("modelport-s3", "AWS_SECRET_ACCESS_KEY"): "secret",
    }
    env = _resolve_env(pod["containers"][0], secrets)
    assert env["AWS_ACCESS_KEY_ID"] == "AKIA"
    settings = _settings_from(ApiSettings, env, "MODELPORT_API_", monkeypatch)
    assert settings.kubernetes_namespace == "modelport-models"
    assert settings.master_key_current == "k2"
    assert settings.s3_endpoint_url == "https://minio.storage.svc:9000"
    assert settings.artifact_uri == "s3://models"
    assert settings.oidc_issuer == "https://login.example.com/realms/ml"


@pytest.mark.parametrize(
    "values_file", _all_renderings(), ids=lambda p: p.name if p else "defaults"
)
def test_operator_accepts_its_rendered_settings(
    values_file: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = _render_case(values_file)
    pod = find(manifests, "Deployment", "-operator")["spec"]["template"]["spec"]
    env = _resolve_env(pod["containers"][0], {})
    assert set(env) - _field_names(OperatorSettings, "MODELPORT_OPERATOR_") == set()
    settings = _settings_from(OperatorSettings, env, "MODELPORT_OPERATOR_", monkeypatch)
    assert settings.namespace == "modelport"
    assert settings.identity == "pod-0"
    assert settings.control_api_namespace == "modelport"
    api_pods = find(manifests, "Deployment", "-api")["spec"]["template"]["metadata"]["labels"]
    assert settings.control_api_pod_labels.items() <= api_pods.items()
    leader_role = find(manifests, "Role", "-operator-leader")
    assert leader_role["rules"][1]["resourceNames"] == [settings.lease_name]


def test_operator_settings_follow_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    [values_file] = [p for p in CI_VALUES if p.name == "gpu.yaml"]
    manifests = render(values_files=[values_file])
    pod = find(manifests, "Deployment", "-operator")["spec"]["template"]["spec"]
    settings = _settings_from(
        OperatorSettings, _resolve_env(pod["containers"][0], {}), "MODELPORT_OPERATOR_", monkeypatch
    )
    from modelport.core.formats import ModelFormat

    assert settings.default_requests == {"cpu": "1", "memory": "2Gi"}
    assert settings.gpu_node_selector["node.kubernetes.io/instance-type"] == "g5.xlarge"
    assert len(settings.gpu_tolerations) == 2
    assert settings.runtime_image(ModelFormat.ONNX, gpu=True).endswith("onnx-gpu:0.1.0-cuda12")
    assert settings.runtime_image(ModelFormat.PKL, gpu=False) == (
        "registry.example.com/modelport/runtime-sklearn:0.1.0"
    )
    assert settings.cpu_node_selector == {"kubernetes.io/os": "linux"}


def _policy_variables(manifests: list[Manifest], suffix: str) -> dict[str, str]:
    policy = find(manifests, "ValidatingAdmissionPolicy", suffix)["spec"]
    return {v["name"]: v["expression"] for v in policy.get("variables", [])}


def test_the_mlmodel_policy_allows_what_the_operator_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One set of values, two guards: the admission policy's lists are the operator's settings."""
    [values_file] = [p for p in CI_VALUES if p.name == "gpu.yaml"]
    manifests = render(values_files=[values_file], set_values={"models.namespace": "ml"})
    pod = find(manifests, "Deployment", "-operator")["spec"]["template"]["spec"]
    settings = _settings_from(
        OperatorSettings, _resolve_env(pod["containers"][0], {}), "MODELPORT_OPERATOR_", monkeypatch
    )
    variables = _policy_variables(manifests, "-mlmodels")
    assert (
        json.loads(variables["registries"])
        == settings.allowed_image_prefixes()
        == [
            "registry.example.com/modelport",
            "registry.example.com/ml-team",
        ]
    )
    assert sorted(json.loads(variables["images"])) == sorted(settings.runtime_images.values())
    assert json.loads(variables["gpuTolerations"]) == [
        "nvidia.com/gpu|Exists||NoSchedule|",
        "dedicated|Equal|ml|NoSchedule|",
    ]
    assert variables["artifactDir"].startswith(json.dumps(settings.artifact_root) + " + ")
    assert json.dumps(settings.ingress_domain) in variables["ownHost"]
    for binding in (m for m in manifests if m["kind"] == "ValidatingAdmissionPolicyBinding"):
        assert binding["spec"]["validationActions"] == ["Deny"]
        selector = binding["spec"]["matchResources"]["namespaceSelector"]
        assert selector == {"matchLabels": {"kubernetes.io/metadata.name": "ml"}}


def test_the_secrets_policy_binds_only_the_control_api() -> None:
    manifests = render()
    policy = find(manifests, "ValidatingAdmissionPolicy", "-api-secrets")["spec"]
    [condition] = policy["matchConditions"]
    account = find(manifests, "ServiceAccount", "-api")["metadata"]["name"]
    assert condition["expression"] == (
        f'request.userInfo.username == "system:serviceaccount:modelport:{account}"'
    )
    [rule] = policy["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["secrets"]
    assert rule["operations"] == ["CREATE", "UPDATE", "DELETE"]


def test_models_in_their_own_namespace_get_rights_only_there() -> None:
    manifests = render(set_values={"models.namespace": "ml-models"})
    roles = {
        m["metadata"]["name"]: m["metadata"]["namespace"] for m in manifests if m["kind"] == "Role"
    }
    assert roles == {
        "mp-modelport-api": "ml-models",
        "mp-modelport-operator": "ml-models",
        "mp-modelport-operator-leader": "modelport",
    }
    for binding in (m for m in manifests if m["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert [s["namespace"] for s in binding["subjects"]] == ["modelport"]
    [cluster_role] = [m for m in manifests if m["kind"] == "ClusterRole"]
    verbs = {v for rule in cluster_role["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}


def test_the_api_reads_model_logs_and_nothing_more_of_pods() -> None:
    role = find(render(), "Role", "-api")
    pod_rules = {
        res: sorted(rule["verbs"])
        for rule in role["rules"]
        if rule["apiGroups"] == [""]
        for res in rule["resources"]
        if res.startswith("pods")
    }
    assert pod_rules == {"pods": ["list"], "pods/log": ["get"]}


def test_crds_rbac_and_admission_policies_can_be_left_out() -> None:
    kinds = {
        m["kind"] for m in render(set_values={"crds.enabled": "false", "rbac.create": "false"})
    }
    assert kinds.isdisjoint({"CustomResourceDefinition", "Role", "ClusterRole", "RoleBinding"})
    kinds = {m["kind"] for m in render(set_values={"admissionPolicies.enabled": "false"})}
    assert kinds.isdisjoint({"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"})
    crd = find(render(set_values={"crds.keep": "false"}), "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})


def test_locked_down_egress() -> None:
    [values_file] = [p for p in CI_VALUES if p.name == "monitoring.yaml"]
    manifests = render(values_files=[values_file])
    api = find(manifests, "NetworkPolicy", "-api")["spec"]
    assert api["policyTypes"] == ["Ingress", "Egress"]
    ports = [p["port"] for rule in api["egress"] for p in rule.get("ports", [])]
    assert ports == [53, 53, 5432, 9000]
    assert {"ipBlock": {"cidr": "10.0.0.1/32"}} in api["egress"][1]["to"]
    monitors = [m for m in manifests if m["kind"] == "ServiceMonitor"]
    assert {m["metadata"]["name"] for m in monitors} == {
        "mp-modelport-api",
        "mp-modelport-operator",
        "mp-modelport-models",
    }


def test_metrics_ports_are_apart_from_the_routed_port() -> None:
    """The API's /metrics is on a port of its own: the Ingress routes only `http`, Prometheus
    (and only Prometheus) reaches `metrics`, and every ServiceMonitor scrapes `metrics`."""
    [values_file] = [p for p in CI_VALUES if p.name == "monitoring.yaml"]
    manifests = render(values_files=[values_file], set_values={"api.ingress.enabled": "true"})
    pod = find(manifests, "Deployment", "-api")["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8000,
        "metrics": 9100,
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELPORT_API_METRICS_PORT"] == "9100"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9100"
    service = find(manifests, "Service", "-api")["spec"]
    assert [(p["name"], p["targetPort"]) for p in service["ports"]] == [
        ("http", "http"),
        ("metrics", "metrics"),
    ]
    [rule] = find(manifests, "Ingress", "-api")["spec"]["rules"]
    assert [p["backend"]["service"]["port"] for p in rule["http"]["paths"]] == [{"name": "http"}]
    policy = find(manifests, "NetworkPolicy", "-api")["spec"]["ingress"]
    prometheus = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    assert [r["ports"][0]["port"] for r in policy] == ["http", "metrics"]
    assert prometheus not in policy[0]["from"]
    assert policy[1]["from"] == [prometheus]
    monitors = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "ServiceMonitor"}
    for name in ("mp-modelport-api", "mp-modelport-models"):
        assert monitors[name]["spec"]["endpoints"][0]["port"] == "metrics"
