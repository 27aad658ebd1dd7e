"""Decides what to do for an MLModel: apply its children, repair drift, write its status.

Called by the kopf handlers (``handlers.py``) with plain dicts; builds manifests with
``manifests.py``, talks to the API server only through ``k8s.py``. Nothing here imports kopf:
failures are :class:`InvalidSpec` (never retried) and :class:`RetryLater` (retried after a delay),
which the handlers translate into kopf's errors.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelport.core import constants as c
from modelport.core.spec import API_VERSION, MLModel, MLModelStatus, Phase
from modelport.operator import drift, manifests, policy, status
from modelport.operator.k8s import Kube, KubeError
from modelport.operator.settings import OperatorSettings
from pydantic import ValidationError

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, model name)"""

COMPONENT = "modelport-operator"
WARNING_PHASES = frozenset({Phase.FAILED})


class InvalidSpec(Exception):
    """The spec cannot be served as written; retrying will not help."""

    reason = "InvalidSpec"


class NotAllowed(InvalidSpec):
    """The spec reaches beyond its own model (another model's key or artifact, an unlisted
    image, another host or path, a toleration outside the GPU set): see :mod:`policy`."""

    reason = "NotAllowed"


class RetryLater(Exception):
    """Something the model needs is not there yet."""

    def __init__(self, message: str, *, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True)
class LiveDeployment:
    """What the operator remembers of a model's Deployment between events."""

    view: status.DeploymentView
    key_checksum: str | None


@dataclass(frozen=True)
class LiveState:
    """What the operator currently knows of a model and its pods (from kopf's indexes)."""

    model: Mapping[str, Any] | None
    deployment: LiveDeployment | None
    pods: list[status.PodView]


Lookup = Callable[[], LiveState]
"""Reads the current LiveState of one model when called."""


def key_of(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return (str(meta.get("namespace")), str(meta["name"]))


def model_key_of_child(body: Mapping[str, Any]) -> Key | None:
    """The owning model of a child, from its labels."""
    meta = body.get("metadata") or {}
    name = (meta.get("labels") or {}).get(c.LABEL_MODEL)
    return (str(meta.get("namespace")), str(name)) if name else None


def live_deployment(body: Mapping[str, Any]) -> LiveDeployment:
    template = body.get("spec", {}).get("template", {}).get("metadata", {})
    checksum = (template.get("annotations") or {}).get(manifests.ANNOTATION_KEY_CHECKSUM)
    return LiveDeployment(status.deployment_view(dict(body)), checksum)


def parse_model(body: Mapping[str, Any]) -> MLModel:
    """The typed model; :class:`InvalidSpec` with a readable message when it does not parse."""
    try:
        return MLModel.from_manifest(
            {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidSpec(f"invalid MLModel: {problems}") from exc


def key_checksum(secret: Mapping[str, Any]) -> str | None:
    """A digest of the data key in `secret` (never the key itself), or None without one."""
    value = (secret.get("data") or {}).get(c.SECRET_DATA_KEY)
    if not value:
        return None
    return hashlib.sha256(base64.b64decode(value)).hexdigest()[:32]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _previous(body: Mapping[str, Any]) -> MLModelStatus | None:
    raw = body.get("status")
    if not raw:
        return None
    try:
        return MLModelStatus.model_validate(dict(raw))
    except ValidationError:
        return None


@dataclass
class Reconciler:
    """The operator's state shared by all handlers: settings, client, small caches."""

    settings: OperatorSettings
    kube: Kube
    _locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    _written: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _applied: dict[Key, set[str]] = field(default_factory=dict)
    _invalid: dict[Key, tuple[int | None, InvalidSpec]] = field(default_factory=dict)
    _refreshing: set[Key] = field(default_factory=set)
    _dirty: set[Key] = field(default_factory=set)
    _events: set[asyncio.Task[None]] = field(default_factory=set)

    def model(self, body: Mapping[str, Any]) -> MLModel:
        """The typed model, if the operator may serve it (:class:`InvalidSpec`, :class:`NotAllowed`
        otherwise)."""
        model = parse_model(body)
        found = policy.problems(model, self.settings)
        if found:
            raise NotAllowed("not allowed: " + "; ".join(found))
        return model

    def _lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def forget(self, key: Key) -> None:
        """Drop what is cached about a deleted model."""
        self._locks.pop(key, None)
        self._written.pop(key, None)
        self._applied.pop(key, None)
        self._invalid.pop(key, None)

    # --- Children -----------------------------------------------------------------------------

    async def reconcile(
        self, body: Mapping[str, Any], live: Lookup, *, created: bool = False
    ) -> MLModelStatus | None:
        """Apply every child the model should have, remove the others, write the status.

        `created`: the model is new, so no child can exist that should not.
        """
        key = key_of(body)
        if created:
            self._applied.setdefault(key, set())
        try:
            model = self.model(body)
            checksum = await self._key_checksum(model, body)
            await self._apply_children(model, checksum)
        except InvalidSpec as exc:
            await self._fail_invalid(body, exc)
            raise
        self._invalid.pop(key, None)
        return await self.refresh(key, live)

    async def _fail_invalid(self, body: Mapping[str, Any], exc: InvalidSpec) -> None:
        """Failed/InvalidSpec (or NotAllowed), kept (for this generation) over what the children
        say."""
        key = key_of(body)
        generation = body["metadata"].get("generation")
        self._invalid[key] = (generation, exc)
        async with self._lock(key):
            previous = self._last(key, body)
            new = status.invalid(
                str(exc), reason=exc.reason, generation=generation, previous=previous, now=_now()
            )
            await self._write_status(body, new, previous)

    async def _key_checksum(self, model: MLModel, body: Mapping[str, Any]) -> str | None:
        ref = model.spec.artifact.key_secret_ref
        if ref is None:
            return None
        secret = await self.kube.get("v1", "Secret", model.metadata.namespace, ref.name)
        checksum = key_checksum(secret) if secret else None
        if checksum is None:
            message = f"waiting for Secret {ref.name} with key {c.SECRET_DATA_KEY}"
            previous = self._last(key_of(body), body)
            pending = MLModelStatus(
                phase=Phase.PENDING,
                reason="SecretMissing",
                message=message,
                observed_generation=model.metadata.generation,
                selector=manifests.selector_string(model.metadata.name),
                ready_text=f"0/{manifests.desired_replicas(model)}",
            )
            await self._write_status(body, pending, previous)
            raise RetryLater(message, delay=self.settings.retry_delay_seconds)
        return checksum

    async def _apply_children(self, model: MLModel, checksum: str | None) -> None:
        key = (str(model.metadata.namespace), model.metadata.name)
        wanted = manifests.children(model, self.settings, key_checksum=checksum)
        known = self._applied.get(key)  # None: this process has not reconciled it yet
        # The ServiceAccount first: pods naming a missing one are refused at admission.
        first, rest = wanted.present[0], wanted.present[1:]
        await self._apply(first)
        await asyncio.gather(*(self._apply(obj) for obj in rest))
        for kind in wanted.absent:
            if known is not None and kind.kind not in known:
                continue
            await self.kube.delete(
                kind.api_version, kind.kind, key[0], manifests.child_name(key[1])
            )
        self._applied[key] = {obj["kind"] for obj in wanted.present}

    async def _apply(self, obj: dict[str, Any]) -> None:
        try:
            await self.kube.apply(obj)
        except KubeError as exc:
            if _namespace_gone(exc):
                log.debug("not applying %s: its namespace is going away", obj["kind"])
                return
            if exc.transient:
                raise RetryLater(str(exc), delay=self.settings.retry_delay_seconds) from exc
            if exc.status in (400, 422):
                raise InvalidSpec(f"{obj['kind']} refused: {exc.message}") from exc
            raise

    async def resync(self, namespaces: list[str]) -> int:
        """Re-apply every model's children (a safety net for missed events and rotated keys).

        Returns how many models were re-applied; models that cannot be applied are skipped
        (their own handlers report why).
        """
        bodies: list[dict[str, Any]] = []
        scopes: list[str | None] = [*namespaces] or [None]
        for namespace in scopes:
            bodies += await self.kube.list_all(API_VERSION, c.KIND, namespace)
        done = 0
        for body in bodies:
            body.setdefault("apiVersion", API_VERSION)
            body.setdefault("kind", c.KIND)
            try:
                model = self.model(body)
                checksum = await self._key_checksum_quiet(model)
                if model.spec.artifact.key_secret_ref and checksum is None:
                    continue
                await self._apply_children(model, checksum)
                done += 1
            except (InvalidSpec, RetryLater, KubeError) as exc:
                log.info("resync skipped %s: %s", key_of(body), exc)
        return done

    async def repair(
        self, model_body: Mapping[str, Any], child: Mapping[str, Any], *, deleted: bool
    ) -> list[str]:
        """Re-apply a child that was deleted or edited by hand; returns what had drifted."""
        try:
            model = self.model(model_body)
        except InvalidSpec:
            return []
        kind = str(child.get("kind"))
        checksum = None
        if kind == manifests.DEPLOYMENT.kind and not deleted:
            checksum = live_deployment(child).key_checksum
        elif kind == manifests.DEPLOYMENT.kind:
            checksum = await self._key_checksum_quiet(model)
        wanted = manifests.children(model, self.settings, key_checksum=checksum)
        desired = next((o for o in wanted.present if o["kind"] == kind), None)
        if desired is None:
            return []
        diffs = ["(deleted)"] if deleted else drift.drifted(desired, dict(child))
        if diffs:
            log.info("repairing %s %s: %s", kind, desired["metadata"]["name"], ", ".join(diffs))
            await self._apply(desired)
        return diffs

    async def _key_checksum_quiet(self, model: MLModel) -> str | None:
        ref = model.spec.artifact.key_secret_ref
        if ref is None:
            return None
        secret = await self.kube.get("v1", "Secret", model.metadata.namespace, ref.name)
        return key_checksum(secret) if secret else None

    # --- Status -------------------------------------------------------------------------------

    async def refresh(self, key: Key, live: Lookup) -> MLModelStatus | None:
        """Compute the model's status from its live children; write it if it changed.

        Bursts coalesce: while one refresh of a model runs, further calls only mark it dirty,
        and the running one computes again from the freshest state before it returns. So a
        slow API server sees one write per burst, not one per pod event.
        """
        if key in self._refreshing:
            self._dirty.add(key)
            return None
        self._refreshing.add(key)
        try:
            while True:
                self._dirty.discard(key)
                result = await self._refresh_once(key, live)
                if key not in self._dirty:
                    return result
        finally:
            self._refreshing.discard(key)

    async def _refresh_once(self, key: Key, live: Lookup) -> MLModelStatus | None:
        async with self._lock(key):
            state = live()
            body = state.model
            if body is None:
                return None  # deleted meanwhile
            generation = body["metadata"].get("generation")
            invalid = self._invalid.get(key)
            try:
                if invalid is not None and invalid[0] == generation:
                    raise invalid[1]
                model = self.model(body)
            except InvalidSpec as exc:
                previous = self._last(key, body)
                new = status.invalid(
                    str(exc),
                    reason=exc.reason,
                    generation=generation,
                    previous=previous,
                    now=_now(),
                )
                await self._write_status(body, new, previous)
                return new
            previous = self._last(key, body)
            new = status.compute(
                model,
                self.settings,
                deployment=state.deployment.view if state.deployment else None,
                pods=state.pods,
                previous=previous,
                now=_now(),
            )
            await self._write_status(body, new, previous)
            return new

    def _last(self, key: Key, body: Mapping[str, Any]) -> MLModelStatus | None:
        written = self._written.get(key)
        if written is not None:
            return MLModelStatus.model_validate(written)
        return _previous(body)

    async def _write_status(
        self, body: Mapping[str, Any], new: MLModelStatus, previous: MLModelStatus | None
    ) -> None:
        key = key_of(body)
        wire = new.wire()
        if previous is not None and previous.wire() == wire:
            self._written[key] = wire
            return
        try:
            await self.kube.patch_status(
                str(body["apiVersion"]), c.KIND, key[0], key[1], _full_status(wire)
            )
        except KubeError as exc:
            if exc.status == 404:
                return  # deleted meanwhile
            raise RetryLater(str(exc), delay=self.settings.retry_delay_seconds) from exc
        self._written[key] = wire
        if previous is None or previous.phase != new.phase or _failed_anew(new, previous):
            task = asyncio.create_task(self._event(body, new, previous))
            self._events.add(task)  # keep a reference until it is done
            task.add_done_callback(self._events.discard)

    async def _event(
        self, body: Mapping[str, Any], new: MLModelStatus, previous: MLModelStatus | None
    ) -> None:
        meta = body["metadata"]
        old = previous.phase.value if previous else "None"
        now = _now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{secrets.token_hex(8)}",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": body["apiVersion"],
                "kind": c.KIND,
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "type": "Warning" if new.phase in WARNING_PHASES else "Normal",
            "reason": new.phase.value
            if new.phase is not Phase.FAILED
            else (new.reason or "Failed"),
            "message": f"{old} -> {new.phase.value}: {new.message or ''}".strip(),
            "source": {"component": COMPONENT},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.kube.create(event)
        except KubeError as exc:  # an Event is best effort
            log.warning("could not post an Event for %s: %s", meta["name"], exc)


def _failed_anew(new: MLModelStatus, previous: MLModelStatus) -> bool:
    """Still Failed, but for another reason (an Event says so)."""
    return new.phase is Phase.FAILED and previous.reason != new.reason


def _namespace_gone(exc: KubeError) -> bool:
    """The namespace was deleted or is being deleted: its objects are going away anyway."""
    return exc.status == 404 or (exc.status == 403 and "being terminated" in exc.message)


def _full_status(wire: dict[str, Any]) -> dict[str, Any]:
    """A merge patch that also clears the optional fields the new status leaves unset."""
    cleared = dict.fromkeys(("reason", "message", "url", "selector"))
    return {**cleared, **wire}
