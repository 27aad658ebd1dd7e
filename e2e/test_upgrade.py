"""`helm upgrade` from the previous chart to this checkout's, on the test cluster.

The previous release is the chart and the code at commit `PREVIOUS`, checked out beside this
tree with `git worktree add`. No release has been tagged and the chart has said 0.1.0 since it
was written, so there is no tag to take; 9afbd2d is the last commit before the chart changed under
the current work (the control API's Role: `patch` for `update`; the CRD's `keras` and `pt2`
formats; the `api.scan` values; the API's routing settings), i.e. what a user who installed from
the repository before it has running.

A user on that chart runs that era's images, so its control API and operator run here as that
era's code (the worktree's source folders first on PYTHONPATH), each started from its Deployment
as in e2e/test_install.py; the new ones run this checkout's code. Running only the new operator
would make the children with the new code before the upgrade, and the test could not see whether
the new operator leaves the old one's children alone. The cluster, helm and the test are this
checkout's.

With the previous release serving two models, the chart is upgraded as docs/install.md says,
the new control API migrates and serves, the new operator takes over, and then: every MLModel is
still Ready (its Ready condition never changed), no child was recreated and no pod replaced, a pod
template changed only where the new version changes it (the runtime image tag when the version
moved), the generated master key and JWT secret kept their data, the database kept its rows and
the new migrator applied only the new revision, a session and API key from before the upgrade
still work (the key as a legacy key, which the model key files still list), and the new control
API can change a model the previous one created. Last, `helm rollback`
brings the previous chart back (its Role, its CRD) and keeps every model's children and the
secrets.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, inspect, text

from e2e.test_install import (
    API_DEPLOYMENT,
    CHART,
    CHILD_KINDS,
    CRD,
    PASSWORD,
    RELEASE,
    ROOT,
    Process,
    install,
    package_chart,
    start_api,
    start_operator,
    wait_for,
)
from testing.harness.cluster import Cluster
from testing.payloads import onnx_add_one, sklearn_pickle
from testing.postgres import PostgresServer
from testing.s3 import S3Server

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]

#: The previous release's commit (full id, so that a clone resolves it without ambiguity).
PREVIOUS = "9afbd2da293066364611ea41e5f9741560dd8f76"
CURRENT_CRD = ROOT / "crds" / "mlmodels.modelport.io.yaml"
SOURCE_ROOTS = ("core", "control-api", "operator", "runtime-image")
#: `helm upgrade` as docs/install.md gives it: the user's values again, the new chart's defaults.
UPGRADE_FLAGS = ("--reset-then-reuse-values",)


def python_path(tree: Path) -> dict[str, str]:
    """The environment that makes a process import Modelport from `tree`'s source folders."""
    return {"PYTHONPATH": os.pathsep.join(str(tree / root) for root in SOURCE_ROOTS)}


def _has_previous(git: str) -> bool:
    check = [git, "-C", str(ROOT), "cat-file", "-e", f"{PREVIOUS}^{{commit}}"]
    return subprocess.run(check, capture_output=True, check=False).returncode == 0


def _fetch_previous_if_missing(git: str) -> None:
    """A shallow or single-branch clone may lack `PREVIOUS`: fetch it from where the clone came
    from (its history, or the commit by hash)."""
    for fetch in (["fetch", "--quiet", "--unshallow"], ["fetch", "--quiet", "origin", PREVIOUS]):
        if _has_previous(git):
            return
        subprocess.run([git, "-C", str(ROOT), *fetch], capture_output=True, check=False,
                       timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def previous_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The repository at `PREVIOUS`, checked out with `git worktree add` (removed afterwards)."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.fail("the upgrade test needs git and this checkout's history")
    _fetch_previous_if_missing(git)
    tree = tmp_path_factory.mktemp("previous") / "modelport"
    added = subprocess.run(
        [git, "-C", str(ROOT), "worktree", "add", "--detach", str(tree), PREVIOUS],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if added.returncode:
        pytest.fail(
            f"cannot check out {PREVIOUS} (a shallow clone? `git fetch --unshallow`):\n"
            + added.stderr
        )
    try:
        yield tree
    finally:
        subprocess.run([git, "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       capture_output=True, check=False)  # fmt: skip


# --- What must survive the upgrade -----------------------------------------------------------


@dataclass
class Snapshot:
    """The state the upgrade must keep, read from the cluster and the database."""

    ready: dict[str, dict[str, Any]]
    """MLModel name -> its Ready condition."""
    uids: dict[str, str]
    """`kind/name` -> uid, for every MLModel, child and key Secret."""
    pods: dict[str, set[str]]
    """MLModel name -> the uids of its pods."""
    templates: dict[str, dict[str, Any]]
    """Model Deployment name -> its pod template."""
    secrets: dict[str, dict[str, str]]
    """The generated master key and JWT Secrets' data."""
    rows: dict[str, int]
    """Row count per table."""
    revision: str | None


def _uid(cluster: Cluster, namespace: str, kind: str, name: str) -> str:
    found = cluster.kubectl_json("get", kind, name, "-n", namespace)
    return str(found["metadata"]["uid"])


def _rows(db_url: str) -> tuple[dict[str, int], str | None]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            rows = {t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one())
                    for t in tables}  # fmt: skip
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    return rows, revision


def snapshot(cluster: Cluster, namespace: str, db_url: str, models: list[str]) -> Snapshot:
    ready: dict[str, dict[str, Any]] = {}
    uids: dict[str, str] = {}
    templates: dict[str, dict[str, Any]] = {}
    pods: dict[str, set[str]] = {}
    for name in models:
        found = cluster.kubectl_json("get", "mlmodel", name, "-n", namespace)
        conditions = found.get("status", {}).get("conditions", [])
        ready[name] = next(c for c in conditions if c["type"] == "Ready")
        uids[f"mlmodel/{name}"] = found["metadata"]["uid"]
        child = f"mlmodel-{name}"
        for kind in CHILD_KINDS:
            uids[f"{kind}/{child}"] = _uid(cluster, namespace, kind, child)
        uids[f"secret/{child}-key"] = _uid(cluster, namespace, "secret", f"{child}-key")
        deployment = cluster.kubectl_json("get", "deployment", child, "-n", namespace)
        templates[child] = deployment["spec"]["template"]
        listed = cluster.kubectl_json(
            "get", "pods", "-n", namespace, "-l", f"modelport.io/model={name}"
        )["items"]
        pods[name] = {p["metadata"]["uid"] for p in listed}
    secrets = {}
    for component in ("master-key", "api"):
        found = cluster.kubectl_json("get", "secret", f"{RELEASE}-modelport-{component}",
                                     "-n", namespace)  # fmt: skip
        secrets[component] = dict(found["data"])
    rows, revision = _rows(db_url)
    return Snapshot(ready, uids, pods, templates, secrets, rows, revision)


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """The paths at which two JSON documents differ (list items by `name` where they have one)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(old.keys() | new.keys())
                for d in differences(old.get(k), new.get(k), f"{path}.{k}")]  # fmt: skip
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        keys = [item.get("name", i) if isinstance(item, dict) else i for i, item in enumerate(old)]
        return [d for key, a, b in zip(keys, old, new, strict=True)
                for d in differences(a, b, f"{path}[{key}]")]  # fmt: skip
    return [] if old == new else [path]


# --- The upgrade -----------------------------------------------------------------------------


@dataclass
class Upgrade:
    before: Snapshot
    after: Snapshot
    previous_version: str
    current_version: str
    migrate_log: str
    api_url: str
    headers: dict[str, str]
    """A session (access token) issued by the previous control API."""
    api_key: str
    models: list[str]
    namespace: str
    cluster: Cluster
    db_url: str


def _app_version(chart: Path) -> str:
    return str(yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"])


def _sign_up(api_url: str) -> tuple[dict[str, str], str]:
    email = f"upgrade-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=api_url, timeout=60) as client:
        r = client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['accessToken']}"}
        r = client.post("/api/v1/keys", headers=headers, json={"name": "upgrade"})
        assert r.status_code == 201, r.text
        return headers, str(r.json()["key"])


def _upload(api_url: str, headers: dict[str, str], filename: str, content: bytes) -> str:
    with httpx.Client(base_url=api_url, timeout=60) as client:
        files = {"file": (filename, content, "application/octet-stream")}
        r = client.post("/api/v1/models", headers=headers, files=files,
                        data={"modelName": f"upgrade {filename}"})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["modelId"])


def _ready(cluster: Cluster, namespace: str, name: str) -> bool:
    found = cluster.kubectl_json("get", "mlmodel", name, "-n", namespace)
    return bool(found.get("status", {}).get("phase") == "Ready")


def _rolled_out(cluster: Cluster, namespace: str, name: str) -> bool:
    """Whether the model's Deployment runs its current template on every replica, all Ready."""
    found = cluster.kubectl_json("get", "deployment", f"mlmodel-{name}", "-n", namespace)
    meta, spec, status = found["metadata"], found["spec"], found.get("status", {})
    want = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration") == meta["generation"]
        and status.get("updatedReplicas", 0) == want
        and status.get("readyReplicas", 0) == want
        and status.get("replicas", 0) == want
    )


def _applied_deployments(operator: Process) -> int:
    """How many Deployment applies (server-side apply is a PATCH) the operator has made."""
    port = operator.env["MODELPORT_OPERATOR_HEALTH_PORT"]
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    found = re.search(
        r'modelport_operator_api_requests_total\{kind="Deployment",verb="PATCH"\} (\S+)', metrics
    )
    return int(float(found.group(1))) if found else 0


@pytest.fixture(scope="module")
def upgrade(
    k8s_cluster: Cluster,
    postgres_server: PostgresServer,
    s3_server: S3Server,
    previous_tree: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Upgrade]:
    cluster = k8s_cluster
    namespace = f"mp-upgrade-{uuid.uuid4().hex[:8]}"
    workdir = tmp_path_factory.mktemp("upgrade")
    (old_dir := workdir / "previous").mkdir()
    (new_dir := workdir / "current").mkdir()
    db_url = postgres_server.create_database()
    previous_chart = previous_tree / "charts" / "modelport"
    processes: list[Process] = []
    try:
        # The previous release, serving two models.
        install(cluster, namespace, db_url, s3_server, s3_server.create_bucket(), previous_chart)
        old_env = python_path(previous_tree)
        old_api, old_url = start_api(cluster, namespace, old_dir, old_env)
        processes.append(old_api)
        old_operator = start_operator(cluster, namespace, old_dir, old_env)
        processes.append(old_operator)
        headers, api_key = _sign_up(old_url)
        models = [
            _upload(old_url, headers, "add_one.onnx", onnx_add_one()),
            _upload(old_url, headers, "classifier.pkl", sklearn_pickle()),
        ]
        for name in models:
            wait_for(partial(_ready, cluster, namespace, name),
                     timeout=120, what=f"{name} Ready before the upgrade")  # fmt: skip
        before = snapshot(cluster, namespace, db_url, models)

        # The upgrade, as docs/install.md gives it; then the pods' replacements, in order.
        packaged = package_chart(cluster, new_dir)
        cluster.helm("upgrade", RELEASE, str(packaged), "--namespace", namespace, *UPGRADE_FLAGS)
        new_env = python_path(ROOT)
        new_api, new_url = start_api(cluster, namespace, new_dir, new_env)
        processes.append(new_api)
        old_api.stop()
        old_operator.stop()
        new_operator = start_operator(cluster, namespace, new_dir, new_env)
        processes.append(new_operator)
        wait_for(lambda: _applied_deployments(new_operator) >= len(models),
                 what="the new operator to apply every model's Deployment")  # fmt: skip
        for name in models:
            wait_for(partial(_rolled_out, cluster, namespace, name),
                     what=f"{name}'s Deployment rolled out")  # fmt: skip
            wait_for(partial(_ready, cluster, namespace, name),
                     timeout=60, what=f"{name} Ready after the upgrade")  # fmt: skip
        after = snapshot(cluster, namespace, db_url, models)
        yield Upgrade(
            before=before,
            after=after,
            previous_version=_app_version(previous_chart),
            current_version=_app_version(CHART),
            migrate_log=(new_dir / "migrate.log").read_text(),
            api_url=new_url,
            headers=headers,
            api_key=api_key,
            models=models,
            namespace=namespace,
            cluster=cluster,
            db_url=db_url,
        )
    finally:
        for process in reversed(processes):
            process.stop()
        if os.environ.get("MODELPORT_E2E_KEEP") == "1":
            print(f"logs kept in {workdir}")
        cluster.kubectl("delete", "mlmodels", "--all", "-n", namespace, "--wait=false",
                        check=False)  # fmt: skip
        cluster.helm("uninstall", RELEASE, "--namespace", namespace, check=False)
        # The CRD outlives the release: leave this checkout's, whatever step failed.
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CURRENT_CRD))
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# --- The checks ------------------------------------------------------------------------------


def test_helm_upgrade_from_the_previous_chart(upgrade: Upgrade) -> None:
    """One test, so that the upgrade (a minute of setup) runs once even when pytest-xdist would
    spread a module's tests over several workers; each check's name says what failed."""
    check_the_release_is_upgraded_to_this_chart(upgrade)
    check_every_model_stays_ready_and_keeps_its_children_and_pods(upgrade)
    check_pod_templates_change_only_where_the_new_version_does(upgrade)
    check_the_generated_secrets_keep_their_data(upgrade)
    check_the_database_keeps_its_rows_and_migrates_once(upgrade)
    check_sessions_keys_and_models_from_before_still_work(upgrade)
    check_a_model_from_before_can_be_changed_after(upgrade)
    check_a_rollback_keeps_models_and_secrets(upgrade)  # last: it undoes the upgrade


def _formats(cluster: Cluster) -> set[str]:
    """The formats the installed CRD accepts."""
    crd = cluster.kubectl_json("get", "crd", CRD)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return set(schema["properties"]["spec"]["properties"]["format"]["enum"])


def _mlmodel_verbs(upgrade: Upgrade) -> set[str]:
    """The verbs the control API's Role grants on MLModels."""
    role = upgrade.cluster.kubectl_json("get", "role", API_DEPLOYMENT, "-n", upgrade.namespace)
    return set(next(r for r in role["rules"] if "mlmodels" in r["resources"])["verbs"])


def _statuses(upgrade: Upgrade) -> list[str]:
    history = upgrade.cluster.helm(
        "history", RELEASE, "--namespace", upgrade.namespace, "--output", "json"
    )
    return [str(r["status"]) for r in yaml.safe_load(history.stdout)]


def check_the_release_is_upgraded_to_this_chart(upgrade: Upgrade) -> None:
    assert _statuses(upgrade) == ["superseded", "deployed"]
    assert "patch" in _mlmodel_verbs(upgrade)  # the new API applies MLModels server-side
    assert {"keras", "pt2"} <= _formats(upgrade.cluster)  # the CRD is a template: upgraded


def check_every_model_stays_ready_and_keeps_its_children_and_pods(upgrade: Upgrade) -> None:
    before, after = upgrade.before, upgrade.after
    # This release changes every runtime's pod template once (CHANGED_BY_THIS_RELEASE), so the
    # pods roll and the Ready condition may be re-stamped; every model ends Ready, on the same
    # objects.
    assert set(after.ready) == set(before.ready)
    assert all(c["status"] == "True" for c in after.ready.values())
    assert after.uids == before.uids
    for name, pods in before.pods.items():
        assert len(pods) == 1
        # Pods are replaced only by a rolling update, when their template changed.
        if after.templates[f"mlmodel-{name}"] == before.templates[f"mlmodel-{name}"]:
            assert after.pods[name] == pods


#: What this release changes in every runtime's pod template: the metrics port and its scrape
#: annotations (metrics left the inference port) and the termination message the runtime writes
#: when it cannot load its model.
CHANGED_BY_THIS_RELEASE = frozenset(
    {
        ".metadata.annotations.prometheus.io/scrape",
        ".metadata.annotations.prometheus.io/port",
        ".metadata.annotations.prometheus.io/path",
        ".spec.containers[runtime].ports",
        ".spec.containers[runtime].env",
        ".spec.containers[runtime].terminationMessagePolicy",
    }
)


def check_pod_templates_change_only_where_the_new_version_does(upgrade: Upgrade) -> None:
    """Same version: the template is identical. A new version moves the runtime image tag."""
    for name, template in upgrade.before.templates.items():
        changed = differences(template, upgrade.after.templates[name])
        allowed = set(CHANGED_BY_THIS_RELEASE)
        if upgrade.previous_version != upgrade.current_version:
            allowed.add(".spec.containers[runtime].image")
        assert set(changed) <= allowed, (name, changed)


def check_the_generated_secrets_keep_their_data(upgrade: Upgrade) -> None:
    assert upgrade.after.secrets == upgrade.before.secrets
    ring = base64.b64decode(upgrade.after.secrets["master-key"]["master-keys"]).decode()
    assert ring.count(":") == 1  # one key, the one generated at install


def check_the_database_keeps_its_rows_and_migrates_once(upgrade: Upgrade) -> None:
    """The new release adds revision 0002 (key scopes: a column and the bindings' table)."""
    assert (upgrade.before.revision, upgrade.after.revision) == ("0001", "0002")
    kept = {t: n for t, n in upgrade.after.rows.items() if t in upgrade.before.rows}
    assert kept == upgrade.before.rows
    assert set(upgrade.after.rows) - set(upgrade.before.rows) == {"api_key_models"}
    assert upgrade.before.rows["models"] == len(upgrade.models)
    assert "applied 0002" in upgrade.migrate_log, upgrade.migrate_log


def check_sessions_keys_and_models_from_before_still_work(upgrade: Upgrade) -> None:
    with httpx.Client(base_url=upgrade.api_url, timeout=60) as client:
        r = client.get("/api/v1/models", headers=upgrade.headers)  # the old access token
        assert r.status_code == 200, r.text
        shown = {m["id"]: m for m in r.json()["items"]}
        assert set(shown) == set(upgrade.models)
        assert {m["phase"] for m in shown.values()} == {"Ready"}
        r = client.get("/api/v1/models", headers={"Authorization": f"Bearer {upgrade.api_key}"})
        assert r.status_code == 200, r.text
        # A key from before scopes is a legacy key: the control API and the models, as before.
        listed = client.get("/api/v1/keys", headers=upgrade.headers).json()
        assert [(k["scope"], k["models"]) for k in listed] == [("legacy", None)]


def check_a_model_from_before_can_be_changed_after(upgrade: Upgrade) -> None:
    """The new control API applies over what the previous one created (create and update)."""
    name, namespace, cluster = upgrade.models[0], upgrade.namespace, upgrade.cluster
    change = {"settings": {"maxReplicas": 2, "rateLimitPerMinute": 7}}  # within free caps
    with httpx.Client(base_url=upgrade.api_url, timeout=60) as client:
        r = client.patch(f"/api/v1/models/{name}", headers=upgrade.headers, json=change)
    assert r.status_code == 200, r.text

    def hpa_max() -> int:
        found = cluster.kubectl_json("get", "hpa", f"mlmodel-{name}", "-n", namespace)
        return int(found["spec"]["maxReplicas"])

    def key_limits() -> set[int | None]:
        found = cluster.kubectl_json("get", "secret", f"mlmodel-{name}-key", "-n", namespace)
        keys = json.loads(base64.b64decode(found["data"]["auth-keys.json"]))["keys"]
        return {k.get("rateLimitPerMinute") for k in keys}

    wait_for(lambda: hpa_max() == 2, what="the HPA's new maximum")
    wait_for(lambda: key_limits() == {7}, what="the new limit in the model's Secret")
    # A new limit changes the Secret, whose checksum rolls the model's pods: Ready again after.
    wait_for(partial(_rolled_out, cluster, namespace, name), what="the model's pods rolled")
    wait_for(partial(_ready, cluster, namespace, name), what="Ready after the change")


def check_a_rollback_keeps_models_and_secrets(upgrade: Upgrade) -> None:
    """`helm rollback` to the previous revision, as docs/install.md gives it."""
    cluster, namespace = upgrade.cluster, upgrade.namespace
    cluster.helm("rollback", RELEASE, "1", "--namespace", namespace)
    assert _statuses(upgrade) == ["superseded", "superseded", "deployed"]
    assert "update" in _mlmodel_verbs(upgrade)
    assert not {"keras", "pt2"} & _formats(cluster)  # the previous CRD is back
    for key, uid in upgrade.before.uids.items():
        kind, name = key.split("/", 1)
        assert _uid(cluster, namespace, kind, name) == uid, key
    secrets = snapshot(cluster, namespace, upgrade.db_url, upgrade.models).secrets
    assert secrets == upgrade.before.secrets
