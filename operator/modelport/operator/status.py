"""An MLModel's status, computed from its live Deployment and pods. Pure functions, no I/O.

Phases: Pending (nothing scheduled yet) → Deploying (pods rolling out) → Ready (every desired
replica updated and ready). Failed carries the reason a rollout cannot progress: the scheduler's
message for an unschedulable pod, an image pull failure, a crash loop (with the runtime's own
one-line reason, its termination message), a missed progress deadline or an invalid spec.
Inactive when the lifecycle state is inactive or archived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelport.core.spec import (
    Condition,
    ConditionStatus,
    MLModel,
    MLModelStatus,
    Phase,
)
from modelport.operator import manifests
from modelport.operator.settings import OperatorSettings

READY = "Ready"
DEPLOYMENT_AVAILABLE = "DeploymentAvailable"

#: Container waiting reasons that stop a rollout until someone acts.
FATAL_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class DeploymentView:
    """The part of a live Deployment the status depends on."""

    generation: int
    observed_generation: int
    replicas: int
    ready_replicas: int
    updated_replicas: int
    available: bool
    progress_failed: str | None
    """Message of ``Progressing=False`` (progress deadline exceeded), if any."""


@dataclass(frozen=True)
class PodView:
    """The part of a live Pod the status depends on."""

    name: str
    scheduled: bool
    unschedulable: str | None
    """The scheduler's message when it could not place the pod."""
    waiting_reason: str | None
    waiting_message: str | None
    last_failure: str | None
    """The termination message of the container's last failed run (why the runtime exited)."""
    ready: bool
    deleting: bool


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def deployment_view(body: dict[str, Any]) -> DeploymentView:
    status = body.get("status") or {}
    available = _condition(body, "Available")
    progressing = _condition(body, "Progressing")
    failed = None
    if progressing and progressing.get("status") == "False":
        failed = str(progressing.get("message") or progressing.get("reason") or "")
    return DeploymentView(
        generation=int(body.get("metadata", {}).get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        replicas=int(status.get("replicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        available=bool(available and available.get("status") == "True"),
        progress_failed=failed,
    )


def pod_view(body: dict[str, Any]) -> PodView:
    meta = body.get("metadata") or {}
    scheduled = _condition(body, "PodScheduled")
    unschedulable = None
    if scheduled and scheduled.get("status") == "False":
        unschedulable = str(scheduled.get("message") or scheduled.get("reason") or "")
    waiting_reason = waiting_message = last_failure = None
    for cs in (body.get("status") or {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            waiting_reason, waiting_message = waiting["reason"], waiting.get("message")
            last_failure = _failure_message(cs)
            break
    ready = _condition(body, "Ready")
    return PodView(
        name=str(meta.get("name", "")),
        scheduled=bool((body.get("spec") or {}).get("nodeName")),
        unschedulable=unschedulable,
        waiting_reason=waiting_reason,
        waiting_message=waiting_message,
        last_failure=last_failure,
        ready=bool(ready and ready.get("status") == "True"),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def _failure_message(container_status: dict[str, Any]) -> str | None:
    """The last line of the termination message of the container's current or last run, if that
    run failed (the runtime writes one line; ``FallbackToLogsOnError`` gives the log's tail)."""
    for state in ("state", "lastState"):
        ended = (container_status.get(state) or {}).get("terminated") or {}
        lines = [line.strip() for line in str(ended.get("message") or "").splitlines()]
        lines = [line for line in lines if line]
        if ended.get("exitCode") and lines:
            return lines[-1]
    return None


@dataclass(frozen=True)
class _Verdict:
    phase: Phase
    reason: str | None
    message: str | None


def _failure(pods: list[PodView]) -> _Verdict | None:
    for pod in sorted(pods, key=lambda p: p.name):
        if pod.deleting or pod.ready:
            continue
        if pod.unschedulable is not None:
            return _Verdict(Phase.FAILED, "Unschedulable", f"{pod.name}: {pod.unschedulable}")
        if pod.waiting_reason:
            why = pod.last_failure or pod.waiting_message or pod.waiting_reason
            message = f"{pod.name}: {why}"
            return _Verdict(Phase.FAILED, pod.waiting_reason, message)
    return None


def _verdict(model: MLModel, deployment: DeploymentView | None, pods: list[PodView]) -> _Verdict:
    if not model.spec.active:
        state = model.spec.state.value
        return _Verdict(Phase.INACTIVE, state.capitalize(), f"state is {state}: scaled to zero")
    if deployment is None:
        return _Verdict(Phase.PENDING, "Creating", "waiting for the Deployment")
    desired = manifests.desired_replicas(model)
    observed = deployment.observed_generation >= deployment.generation
    done = (
        observed
        and deployment.updated_replicas >= desired
        and deployment.ready_replicas >= desired
        and deployment.replicas == desired
    )
    if done:
        return _Verdict(Phase.READY, "Ready", f"{deployment.ready_replicas}/{desired} ready")
    failure = _failure(pods)
    if failure:
        return failure
    if deployment.progress_failed:
        return _Verdict(Phase.FAILED, "ProgressDeadlineExceeded", deployment.progress_failed)
    live = [p for p in pods if not p.deleting]
    if not any(p.scheduled for p in live):
        return _Verdict(Phase.PENDING, "Scheduling", "waiting for pods to be scheduled")
    ready = deployment.ready_replicas
    return _Verdict(Phase.DEPLOYING, "RollingOut", f"{ready}/{desired} replicas ready")


def _keep_time(new: Condition, previous: MLModelStatus | None, now: str) -> Condition:
    old = previous.condition(new.type) if previous else None
    same = old is not None and old.status == new.status and old.last_transition_time
    stamp = old.last_transition_time if same and old else now
    return new.model_copy(update={"last_transition_time": stamp})


def compute(
    model: MLModel,
    settings: OperatorSettings,
    *,
    deployment: DeploymentView | None,
    pods: list[PodView],
    previous: MLModelStatus | None,
    now: str,
) -> MLModelStatus:
    """The status `model` should show, given its live children."""
    verdict = _verdict(model, deployment, pods)
    desired = manifests.desired_replicas(model)
    ready = deployment.ready_replicas if deployment else 0
    generation = model.metadata.generation
    is_ready = verdict.phase is Phase.READY
    conditions = [
        Condition(
            type=READY,
            status=ConditionStatus.TRUE if is_ready else ConditionStatus.FALSE,
            reason=verdict.reason,
            message=verdict.message,
            observed_generation=generation,
        ),
        Condition(
            type=DEPLOYMENT_AVAILABLE,
            status=_available(deployment),
            reason="MinimumReplicasAvailable" if deployment and deployment.available else None,
            observed_generation=generation,
        ),
    ]
    return MLModelStatus(
        phase=verdict.phase,
        reason=None if is_ready else verdict.reason,
        message=verdict.message,
        url=manifests.url(model, settings),
        replicas=deployment.replicas if deployment else 0,
        ready_replicas=ready,
        ready_text=f"{ready}/{desired}",
        selector=manifests.selector_string(model.metadata.name),
        observed_generation=generation,
        conditions=[_keep_time(cond, previous, now) for cond in conditions],
    )


def _available(deployment: DeploymentView | None) -> ConditionStatus:
    if deployment is None:
        return ConditionStatus.UNKNOWN
    return ConditionStatus.TRUE if deployment.available else ConditionStatus.FALSE


def invalid(
    message: str,
    *,
    generation: int | None,
    previous: MLModelStatus | None,
    now: str,
    reason: str = "InvalidSpec",
) -> MLModelStatus:
    """The status of a model whose spec the operator cannot use (``InvalidSpec``) or may not
    serve (``NotAllowed``)."""
    cond = Condition(
        type=READY,
        status=ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observed_generation=generation,
    )
    return MLModelStatus(
        phase=Phase.FAILED,
        reason=reason,
        message=message,
        observed_generation=generation,
        conditions=[_keep_time(cond, previous, now)],
    )
