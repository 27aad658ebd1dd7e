"""kopf handlers: a few lines each, translating kopf's world into ``reconcile.py`` calls.

* MLModel created, changed or found at start-up: apply its children and write its status.
* A child changed or vanished: repair it if it drifted from the desired state.
* The model's Deployment or pods changed: recompute the status (phase, replicas, reasons).

Secrets are never watched (the operator may only read single Secrets): a rotated data key rolls
the pods when the MLModel is next changed, which the control API does by annotating it
(``modelport.io/key-rotated-at``).

In-memory indexes of models, Deployments and pods let the event handlers work without reading
from the API server; the only requests are the writes that something actually needs.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from modelport.core import constants as c
from modelport.operator import reconcile as r
from modelport.operator.manifests import CHILD_KINDS, DEPLOYMENT
from modelport.operator.status import PodView, pod_view

log = logging.getLogger(__name__)

MODEL = (c.GROUP, c.VERSION, c.PLURAL)
MANAGED = {c.LABEL_MANAGED_BY: c.MANAGED_BY}


def _reconciler(memo: Any) -> r.Reconciler:
    reconciler: r.Reconciler = memo.reconciler
    return reconciler


def _one(index: kopf.Index[Any, Any], key: r.Key | None) -> Any:
    store = index.get(key) if key else None
    return next(iter(store), None) if store else None


def _all(index: kopf.Index[Any, Any], key: r.Key | None) -> list[Any]:
    store = index.get(key) if key else None
    return list(store) if store else []


def _lookup(key: r.Key | None, kwargs: dict[str, Any]) -> r.Lookup:
    """Reads the indexes (kopf passes them as keyword arguments) when called, not before."""

    def live() -> r.LiveState:
        return r.LiveState(
            model=_one(kwargs["mlmodel_index"], key),
            deployment=_one(kwargs["deployment_index"], key),
            pods=_all(kwargs["pod_index"], key),
        )

    return live


# --- Indexes ------------------------------------------------------------------------------------


@kopf.index(*MODEL)
async def mlmodel_index(body: kopf.Body, **_: Any) -> dict[r.Key, dict[str, Any]]:
    return {r.key_of(body): dict(body)}


@kopf.index("apps", "v1", "deployments", labels=MANAGED)
async def deployment_index(body: kopf.Body, **_: Any) -> dict[r.Key, r.LiveDeployment]:
    key = r.model_key_of_child(body)
    return {key: r.live_deployment(body)} if key else {}


@kopf.index("", "v1", "pods", labels=MANAGED)
async def pod_index(body: kopf.Body, **_: Any) -> dict[r.Key, PodView]:
    key = r.model_key_of_child(body)
    return {key: pod_view(dict(body))} if key else {}


# --- The model ------------------------------------------------------------------------------


@kopf.on.resume(*MODEL)
@kopf.on.create(*MODEL)
@kopf.on.update(*MODEL)
async def reconcile_model(body: kopf.Body, memo: Any, reason: str, **kwargs: Any) -> None:
    live = _lookup(r.key_of(body), kwargs)
    try:
        await _reconciler(memo).reconcile(dict(body), live, created=reason == "create")
    except r.InvalidSpec as exc:
        raise kopf.PermanentError(str(exc)) from exc
    except r.RetryLater as exc:
        raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc


@kopf.on.event(*MODEL)
async def model_deleted(type: str, body: kopf.Body, memo: Any, **_: Any) -> None:
    if type == "DELETED":
        _reconciler(memo).forget(r.key_of(body))


# --- Children -------------------------------------------------------------------------------


def _child_handler(group: str, version: str, plural: str) -> None:
    @kopf.on.event(group, version, plural, labels=MANAGED, id=f"drift-{plural}")
    async def child_event(type: str, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        key = r.model_key_of_child(body)
        live = _lookup(key, kwargs)
        model = live().model
        if key is None or model is None:
            return
        reconciler = _reconciler(memo)
        try:
            await reconciler.repair(model, dict(body), deleted=type == "DELETED")
            if body.get("kind") == DEPLOYMENT.kind:
                await reconciler.refresh(key, live)
        except (r.RetryLater, r.InvalidSpec) as exc:
            log.warning("could not repair %s for %s: %s", plural, key, exc)


for _kind in CHILD_KINDS:
    _child_handler(_kind.group, _kind.version, _kind.plural)


@kopf.on.event("", "v1", "pods", labels=MANAGED)
async def pod_event(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    key = r.model_key_of_child(body)
    if key is None:
        return
    try:
        await _reconciler(memo).refresh(key, _lookup(key, kwargs))
    except r.RetryLater as exc:
        log.warning("could not update the status of %s: %s", key, exc)
