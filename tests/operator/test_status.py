"""Status computation from live Deployment and pod bodies."""

from __future__ import annotations

from typing import Any

from modelport.core.spec import ConditionStatus, MLModelStatus, Phase
from modelport.operator import status as s
from modelport.operator.settings import OperatorSettings

from tests.operator.conftest import make_model

NOW = "2026-11-26T09:00:00Z"
LATER = "2026-11-26T09:05:00Z"


def deployment(
    *, replicas: int = 1, ready: int = 1, updated: int = 1, generation: int = 2, observed: int = 2
) -> s.DeploymentView:
    body = {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "conditions": [
                {"type": "Available", "status": "True" if ready else "False"},
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
            ],
        },
    }
    return s.deployment_view(body)


def pod(name: str = "p1", **status: Any) -> s.PodView:
    body: dict[str, Any] = {"metadata": {"name": name}, "spec": {}, "status": status}
    if status.pop("node", None):
        body["spec"]["nodeName"] = "cpu-node-0"
    return s.pod_view(body)


def compute(settings: OperatorSettings, model: Any = None, **kw: Any) -> MLModelStatus:
    kw.setdefault("pods", [])
    kw.setdefault("previous", None)
    return s.compute(model or make_model(), settings, now=NOW, **kw)


def test_ready(settings: OperatorSettings) -> None:
    st = compute(settings, deployment=deployment(), pods=[pod(node=True)])
    assert st.phase is Phase.READY
    assert st.reason is None
    assert (st.replicas, st.ready_replicas, st.ready_text) == (1, 1, "1/1")
    assert st.url == "https://iris.team-a.models.example.com"
    assert st.selector == "modelport.io/component=runtime,modelport.io/model=iris"
    assert st.observed_generation == 1
    ready = st.condition("Ready")
    assert ready is not None and ready.status is ConditionStatus.TRUE
    assert ready.last_transition_time == NOW


def test_pending_without_a_deployment_or_scheduled_pods(settings: OperatorSettings) -> None:
    assert compute(settings, deployment=None).phase is Phase.PENDING
    st = compute(settings, deployment=deployment(ready=0, updated=0, replicas=1), pods=[pod()])
    assert st.phase is Phase.PENDING
    assert st.ready_text == "0/1"


def test_deploying_while_pods_start(settings: OperatorSettings) -> None:
    st = compute(settings, deployment=deployment(ready=0), pods=[pod(node=True)])
    assert st.phase is Phase.DEPLOYING
    condition = st.condition("Ready")
    assert condition is not None and condition.status is ConditionStatus.FALSE


def test_rollout_not_observed_is_not_ready(settings: OperatorSettings) -> None:
    st = compute(settings, deployment=deployment(generation=3, observed=2), pods=[pod(node=True)])
    assert st.phase is Phase.DEPLOYING


def test_old_replicas_still_terminating_is_not_ready(settings: OperatorSettings) -> None:
    st = compute(settings, deployment=deployment(replicas=2), pods=[pod(node=True)])
    assert st.phase is Phase.DEPLOYING


def test_unschedulable_carries_the_scheduler_message(settings: OperatorSettings) -> None:
    message = "0/4 nodes are available: 2 Insufficient nvidia.com/gpu."
    unschedulable = pod(
        "iris-abc",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            }
        ],
    )
    st = compute(settings, deployment=deployment(ready=0), pods=[unschedulable])
    assert st.phase is Phase.FAILED
    assert st.reason == "Unschedulable"
    assert st.message == f"iris-abc: {message}"


def test_image_pull_and_crash_loop(settings: OperatorSettings) -> None:
    for reason in ("ImagePullBackOff", "CrashLoopBackOff"):
        waiting = {"state": {"waiting": {"reason": reason, "message": "boom"}}}
        bad = pod(node=True, containerStatuses=[waiting])
        st = compute(settings, deployment=deployment(ready=0), pods=[bad])
        assert (st.phase, st.reason, st.message) == (Phase.FAILED, reason, "p1: boom")


def test_crash_loop_carries_the_runtimes_termination_message(settings: OperatorSettings) -> None:
    reason = "model failed to load: the joblib file holds a dict, which has no predict()"
    last = {"terminated": {"exitCode": 1, "reason": "Error", "message": reason + "\n"}}
    waiting = {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}
    crashed = {"name": "runtime", "state": {"waiting": waiting}, "lastState": last}
    st = compute(settings, deployment=deployment(ready=0), pods=[pod(containerStatuses=[crashed])])
    assert (st.phase, st.reason, st.message) == (Phase.FAILED, "CrashLoopBackOff", f"p1: {reason}")
    # FallbackToLogsOnError: the log's tail stands in for a missing message; its last line counts.
    last["terminated"]["message"] = "loading\nTraceback ...\nMemoryError: out of memory\n"
    st = compute(settings, deployment=deployment(ready=0), pods=[pod(containerStatuses=[crashed])])
    assert st.message == "p1: MemoryError: out of memory"


def test_container_creating_is_not_a_failure(settings: OperatorSettings) -> None:
    waiting = {"state": {"waiting": {"reason": "ContainerCreating"}}}
    creating = pod(node=True, containerStatuses=[waiting])
    st = compute(settings, deployment=deployment(ready=0), pods=[creating])
    assert st.phase is Phase.DEPLOYING


def test_progress_deadline(settings: OperatorSettings) -> None:
    body = {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "conditions": [
                {"type": "Progressing", "status": "False", "message": "exceeded its deadline"}
            ],
        },
    }
    st = compute(settings, deployment=s.deployment_view(body), pods=[pod(node=True)])
    assert (st.phase, st.reason) == (Phase.FAILED, "ProgressDeadlineExceeded")


def test_inactive(settings: OperatorSettings) -> None:
    model = make_model(state="archived")
    st = compute(settings, model, deployment=deployment(replicas=0, ready=0, updated=0))
    assert st.phase is Phase.INACTIVE
    assert st.reason == "Archived"
    assert st.url is None
    assert st.ready_text == "0/0"


def test_transition_time_kept_while_the_condition_holds(settings: OperatorSettings) -> None:
    first = compute(settings, deployment=deployment(), pods=[pod(node=True)])
    again = s.compute(
        make_model(), settings, deployment=deployment(), pods=[], previous=first, now=LATER
    )
    assert again.condition("Ready").last_transition_time == NOW  # type: ignore[union-attr]
    assert again == first
    changed = s.compute(
        make_model(),
        settings,
        deployment=deployment(ready=0),
        pods=[pod(node=True)],
        previous=first,
        now=LATER,
    )
    assert changed.condition("Ready").last_transition_time == LATER  # type: ignore[union-attr]


def test_invalid_spec_status() -> None:
    st = s.invalid("invalid MLModel: spec.format: bad", generation=4, previous=None, now=NOW)
    assert (st.phase, st.reason, st.observed_generation) == (Phase.FAILED, "InvalidSpec", 4)
