"""Which pod's log the Kubernetes deployer reads for ``GET /api/v1/models/{id}/logs``, and how
the API server's answers map (a stand-in for the API server: KWOK nodes keep no logs)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import Configuration
from modelport.api.deployers.kubernetes import KubernetesDeployer, LogsUnavailable
from modelport.core.kube import KubeError


def _pod(name: str, created: str, *, ready: bool, waiting: bool = False) -> dict[str, Any]:
    state = {"waiting": {"reason": "CrashLoopBackOff"}} if waiting else {"running": {}}
    status = {"name": "runtime", "ready": ready, "restartCount": 3 if waiting else 0}
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {"containerStatuses": [{**status, "state": state}]},
    }


class FakeKube:
    def __init__(self, pods: list[dict[str, Any]], error: KubeError | None = None) -> None:
        self.pods, self.error = pods, error
        self.asked: list[tuple[str, str, str, dict[str, Any]]] = []

    def list_all(self, api_version: str, kind: str, namespace: str, **kw: Any) -> Any:
        self.asked.append((kind, namespace, "list", kw))
        return self.pods

    def pod_log(self, namespace: str, pod: str, **kw: Any) -> str:
        self.asked.append(("Pod/log", namespace, pod, kw))
        if self.error:
            raise self.error
        return "".join(f"line {i}\n" for i in range(kw["tail"] + 3))


def _deployer(kube: FakeKube) -> KubernetesDeployer:
    deployer = KubernetesDeployer(
        namespace="models", configuration=Configuration(), public_url="http://api"
    )
    deployer.kube = kube  # type: ignore[assignment]
    return deployer


def test_the_failing_pods_previous_run_is_read() -> None:
    kube = FakeKube(
        [
            _pod("old-ready", "2026-01-01T00:00:00Z", ready=True),
            _pod("new-crashing", "2026-01-02T00:00:00Z", ready=False, waiting=True),
            _pod("newest-ready", "2026-01-03T00:00:00Z", ready=True),
        ]
    )
    lines = _deployer(kube).logs("m1", 5)
    assert lines == [f"line {i}" for i in range(3, 8)]
    assert kube.asked[0] == ("Pod", "models", "list", {"label_selector": "modelport.io/model=m1"})
    assert kube.asked[1] == (
        "Pod/log",
        "models",
        "new-crashing",
        {"container": "runtime", "tail": 5, "previous": True},
    )


def test_the_newest_pod_when_all_are_ready_and_nothing_without_pods() -> None:
    kube = FakeKube(
        [
            _pod("a", "2026-01-01T00:00:00Z", ready=True),
            _pod("b", "2026-01-02T00:00:00Z", ready=True),
        ]
    )
    _deployer(kube).logs("m1", 1)
    assert kube.asked[1][2:] == ("b", {"container": "runtime", "tail": 1, "previous": False})
    assert _deployer(FakeKube([])).logs("m1", 10) == []


def test_a_container_not_started_has_no_log_and_a_refusal_is_an_error() -> None:
    pods = [_pod("a", "2026-01-01T00:00:00Z", ready=False)]
    starting = KubeError(400, "BadRequest", 'container "runtime" is waiting to start')
    assert _deployer(FakeKube(pods, starting)).logs("m1", 10) == []
    refused = KubeError(403, "Forbidden", "cannot get resource pods/log")
    with pytest.raises(LogsUnavailable) as caught:
        _deployer(FakeKube(pods, refused)).logs("m1", 10)
    assert (caught.value.status, caught.value.code) == (502, "logs_unavailable")
    assert "pods/log" in caught.value.message
