"""Model lifecycle: create, list, get, update, delete, versions and rollback; deployment specs.

Every lookup is owner-only: another user's model answers 404 exactly like a missing one.

A change that rolls out (a new model, a new version, a rollback) is one unit of work on the
request's session: the rows are written, the deployment is applied, and the transaction commits
last. If any step fails, the transaction rolls back and what already happened outside the
database is undone: the deployment is removed (or the previous version's restored) and the stored
artifact is deleted. Nothing is left behind.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from modelport.api.context import AppContext
from modelport.api.db.tables import Model, ModelStatus, ModelVersion, StoredArtifact, User
from modelport.api.deployers.base import DeploymentSpec, DeploymentState
from modelport.api.errors import DeployFailed, ModelsLimitReached
from modelport.api.schemas import (
    DeploymentSettings,
    ModelCreate,
    ModelList,
    ModelLogs,
    ModelMetadata,
    ModelUpdate,
    UploadResponse,
    VersionList,
    VersionPublic,
)
from modelport.api.services import artifacts, audit, caps, keys
from modelport.api.services.artifacts import Artifact, ReceivedFile
from modelport.api.services.ids import is_id
from modelport.api.services.users import Principal
from modelport.core.crypto import WrappedKey
from modelport.core.errors import ModelportError, NotFound
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def new_model_id() -> str:
    """A model id that is also a valid Kubernetes name (lowercase, starts with a letter)."""
    return "m" + secrets.token_hex(8)


def owned(session: Session, *, caller: Principal, model_id: str) -> Model:
    model = session.get(Model, model_id) if is_id(model_id) else None
    if model is None or model.owner_id != caller.id:
        raise NotFound(f"no model {model_id}", details={"modelId": model_id})
    return model


def active_artifact(session: Session, model: Model) -> StoredArtifact:
    artifact = session.scalar(_artifact_of(model.id, model.active_version))
    if artifact is None:  # pragma: no cover - the schema guarantees one
        raise NotFound(f"model {model.id} has no version {model.active_version}")
    return artifact


def _artifact_of(model_id: str, number: int) -> Select[StoredArtifact]:
    return (
        select(StoredArtifact)
        .join(ModelVersion, StoredArtifact.version_id == ModelVersion.id)
        .where(ModelVersion.model_id == model_id, ModelVersion.number == number)
    )


def public(
    model: Model,
    *,
    artifact_id: str,
    state: DeploymentState | None,
    endpoint_url: str | None = None,
) -> ModelMetadata:
    """The model as its owner reads it. ``filePath`` (the seed's name) is the active version's
    artifact id: a stable reference that says nothing of where or how the artifact is stored."""
    shown = state or _UNKNOWN
    phase = "Inactive" if model.status is not ModelStatus.ACTIVE else shown.phase
    return ModelMetadata(
        id=model.id,
        name=model.name,
        description=model.description,
        user_id=model.owner_id,
        file_format=model.format,
        file_path=artifact_id,
        endpoint_url=endpoint_url or (state.url if state and state.url else model.endpoint_url),
        created_at=model.created_at,
        last_used=model.last_used,
        request_count=model.request_count,
        status=model.status,
        version=model.active_version,
        phase=phase,
        reason=shown.reason or None,
        message=shown.message or None,
        settings=DeploymentSettings.model_validate(model.settings),
    )


_UNKNOWN = DeploymentState(phase="Pending")


def get_model(
    session: Session, *, ctx: AppContext, caller: Principal, model_id: str
) -> ModelMetadata:
    model = owned(session, caller=caller, model_id=model_id)
    artifact = active_artifact(session, model)
    return public(model, artifact_id=artifact.id, state=ctx.deployer.state(model.id))


def logs(
    session: Session, *, ctx: AppContext, caller: Principal, model_id: str, tail: int
) -> ModelLogs:
    """The last ``tail`` lines of the model's runtime log (owner only)."""
    model = owned(session, caller=caller, model_id=model_id)
    return ModelLogs(model_id=model.id, lines=ctx.deployer.logs(model.id, tail))


def list_models(
    session: Session,
    *,
    ctx: AppContext,
    caller: Principal,
    status: ModelStatus | None,
    limit: int,
    offset: int,
) -> ModelList:
    """One page of the caller's models, newest first."""
    where = [Model.owner_id == caller.id]
    if status is not None:
        where.append(Model.status == status)
    total = session.scalar(select(func.count()).select_from(Model).where(*where)) or 0
    rows = session.execute(
        select(Model, StoredArtifact.id)
        .join(
            ModelVersion,
            (ModelVersion.model_id == Model.id) & (ModelVersion.number == Model.active_version),
        )
        .join(StoredArtifact, StoredArtifact.version_id == ModelVersion.id)
        .where(*where)
        .order_by(Model.created_at.desc(), Model.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    states = ctx.deployer.states([m.id for m, _ in rows]) if rows else {}
    items = [public(m, artifact_id=a, state=states.get(m.id)) for m, a in rows]
    return ModelList(items=items, total=total, limit=limit, offset=offset)


def deployment_spec(session: Session, *, ctx: AppContext, model: Model) -> DeploymentSpec:
    """What the deployer needs to run the model's active version (the data key unwrapped)."""
    artifact = active_artifact(session, model)
    settings = DeploymentSettings.model_validate(model.settings)
    if artifact.wrapped_data_key is None:  # pragma: no cover - every upload wraps its key
        raise DeployFailed(f"model {model.id} has no data key")
    wrapped = WrappedKey.decode(artifact.wrapped_data_key)
    data_key = ctx.keys.unwrap(wrapped, artifacts.binding(artifact, model_id=model.id))
    return DeploymentSpec(
        model_id=model.id,
        owner_id=model.owner_id,
        format=artifact.format,
        version=model.active_version,
        artifact_uri=artifact.storage_uri,
        sha256=artifact.sha256,
        size=artifact.size,
        data_key=data_key,
        auth_keys=keys.auth_keys_document(
            session, user_id=model.owner_id, model_id=model.id, settings=settings
        ),
        usage_token=ctx.usage_token(model.id),
        settings=settings,
        active=model.status is ModelStatus.ACTIVE,
    )


def active_specs(session: Session, *, ctx: AppContext) -> Iterator[DeploymentSpec]:
    """The deployments that should be running, one per active model, each built as it is read
    (a model whose spec cannot be built is logged and skipped)."""
    for model in session.scalars(select(Model).where(Model.status == ModelStatus.ACTIVE)).all():
        try:
            spec = deployment_spec(session, ctx=ctx, model=model)
        except Exception:
            log.exception("could not start model %s", model.id)
            continue
        yield spec


def deploy(session: Session, *, ctx: AppContext, model: Model) -> None:
    """Apply the model's deployment; a deployer failure becomes a 500 that leaves the DB as was."""
    spec = deployment_spec(session, ctx=ctx, model=model)
    try:
        ctx.deployer.apply(spec)
    except ModelportError:
        raise
    except Exception as exc:
        log.exception("deploying %s failed", model.id)
        raise DeployFailed(
            f"could not deploy model {model.id}; nothing was changed, retry in a minute",
            details={"modelId": model.id},
        ) from exc


def ensure_room(session: Session, *, caller: Principal) -> None:
    """Refuse before an upload's body is read when the caller is already at the models limit.

    Ends its read, so that no connection is held while the body streams in."""
    _check_models_limit(session, caller=caller, lock=False)
    session.rollback()


def ensure_version_room(session: Session, *, caller: Principal, model_id: str) -> None:
    """Refuse before a new version's body is read unless the caller owns the model (404 for
    another user's model or a missing one, so that a stranger's upload is never spooled).

    A version adds no model, so the models limit does not apply; the body's own bound is the
    upload limit. Ends its read, like :func:`ensure_room`."""
    owned(session, caller=caller, model_id=model_id)
    session.rollback()


def _check_models_limit(session: Session, *, caller: Principal, lock: bool) -> None:
    query = select(User.models_limit).where(User.id == caller.id)
    limit = session.scalar(query.with_for_update() if lock else query)
    count = session.scalar(
        select(func.count()).select_from(Model).where(Model.owner_id == caller.id)
    )
    if limit is not None and (count or 0) >= limit:
        raise ModelsLimitReached(
            f"your subscription allows {limit} models and you have {count}; delete one or "
            "upgrade your subscription",
            details={"modelsLimit": limit, "models": count},
        )


def _ingest(ctx: AppContext, file: ReceivedFile, *, key: str, model_id: str) -> Artifact:
    """Check, scan and store `file` under `key` as an artifact of `model_id`, with this API's
    store, keys and scan limits."""
    return artifacts.ingest(
        file,
        store=ctx.store,
        keys=ctx.keys,
        key=key,
        model_id=model_id,
        scan_limits=ctx.settings.scan_limits(),
    )


def create(
    session: Session, *, ctx: AppContext, caller: Principal, new: ModelCreate, file: ReceivedFile
) -> UploadResponse:
    """Check, store and deploy a new model; all or nothing."""
    model_id = new_model_id()
    artifact = _ingest(ctx, file, key=f"models/{model_id}/v1.mpa", model_id=model_id)
    with _kept_only_if_committed(session, artifact):
        _check_models_limit(session, caller=caller, lock=True)
        model = Model(
            id=model_id,
            owner_id=caller.id,
            name=new.name,
            description=new.description,
            format=artifact.format.value,
            endpoint_url=ctx.deployer.endpoint_url(model_id),
            active_version=1,
            settings=_initial_settings(session, ctx=ctx, owner_id=caller.id),
        )
        version = ModelVersion(id=_new_version_id(), model_id=model_id, number=1)
        session.add_all([model, version, artifact.row(version_id=version.id)])
        audit.record(
            session,
            actor_id=caller.id,
            action="model.upload",
            target=model_id,
            details={"format": artifact.format.value, "size": file.size, "sha256": file.sha256},
        )
        _deploy_and_commit(session, ctx=ctx, model=model, undo=lambda: _undeploy(ctx, model_id))
    return UploadResponse(
        model_id=model_id,
        endpoint_url=model.endpoint_url,
        status="success",
        message=f"model {new.name!r} ({artifact.format.value}, {file.size} bytes) is deploying",
    )


def _owner_caps(session: Session, *, ctx: AppContext, owner_id: str) -> caps.Caps:
    owner = session.get(User, owner_id)
    if owner is None:  # pragma: no cover - a caller's own row; deleting it deletes their models
        raise NotFound(f"no user {owner_id}")
    return caps.Caps.of(owner, settings=ctx.settings)


def _initial_settings(session: Session, *, ctx: AppContext, owner_id: str) -> dict[str, object]:
    """A new model's settings: the defaults within the owner's caps (checked like any write)."""
    owner_caps = _owner_caps(session, ctx=ctx, owner_id=owner_id)
    settings = owner_caps.initial_settings()
    caps.check_settings(settings, caps=owner_caps)
    return settings.model_dump(mode="json")


def add_version(
    session: Session, *, ctx: AppContext, caller: Principal, model_id: str, file: ReceivedFile
) -> UploadResponse:
    """Store a new version of a model and roll it out (the old one serves until it is ready)."""
    owned(session, caller=caller, model_id=model_id)
    session.rollback()  # no connection is held while the file is scanned and stored
    key = f"models/{model_id}/v-{os.urandom(6).hex()}.mpa"
    artifact = _ingest(ctx, file, key=key, model_id=model_id)
    with _kept_only_if_committed(session, artifact):
        model = owned(session, caller=caller, model_id=model_id)
        last = session.scalar(
            select(func.max(ModelVersion.number)).where(ModelVersion.model_id == model_id)
        )
        number = (last or 0) + 1
        previous = model.active_version
        version = ModelVersion(id=_new_version_id(), model_id=model_id, number=number)
        session.add_all([version, artifact.row(version_id=version.id)])
        model.active_version = number
        model.format = artifact.format.value
        audit.record(
            session,
            actor_id=caller.id,
            action="model.version",
            target=model_id,
            details={"version": number, "format": artifact.format.value, "sha256": file.sha256},
        )
        _deploy_and_commit(
            session, ctx=ctx, model=model, undo=lambda: _restore(session, ctx, model_id, previous)
        )
    return UploadResponse(
        model_id=model_id,
        endpoint_url=model.endpoint_url,
        status="success",
        message=f"version {number} ({artifact.format.value}, {file.size} bytes) is rolling out",
    )


def _new_version_id() -> str:
    return "v" + os.urandom(8).hex()


@contextmanager
def _kept_only_if_committed(session: Session, artifact: Artifact) -> Iterator[None]:
    """If the block fails, roll the session back and delete the artifact it would have recorded."""
    try:
        yield
    except BaseException:
        try:
            session.rollback()
        finally:
            artifact.discard()
        raise


def _deploy_and_commit(
    session: Session, *, ctx: AppContext, model: Model, undo: Callable[[], None]
) -> None:
    """Apply the deployment of what the session holds, then commit; if either fails, roll back
    and ``undo`` the deployment."""
    session.flush()
    try:
        deploy(session, ctx=ctx, model=model)
        session.commit()
    except BaseException:
        try:
            session.rollback()
        finally:
            undo()
        raise


def _undeploy(ctx: AppContext, model_id: str) -> None:
    try:
        ctx.deployer.remove(model_id)
    except Exception as exc:
        log.warning("could not remove the deployment of %s: %s", model_id, type(exc).__name__)


def _restore(session: Session, ctx: AppContext, model_id: str, previous: int) -> None:
    """Deploy version ``previous`` again, if the rolled-back rows still make it the active one."""
    try:
        model = session.get(Model, model_id)
        if model is not None and model.active_version == previous:
            deploy(session, ctx=ctx, model=model)
        session.rollback()
    except Exception as exc:
        log.warning("could not restore version %s of %s: %s", previous, model_id, exc)


def update_model(
    session: Session, *, ctx: AppContext, caller: Principal, model_id: str, change: ModelUpdate
) -> ModelMetadata:
    model = owned(session, caller=caller, model_id=model_id)
    if change.settings is not None:
        owner_caps = _owner_caps(session, ctx=ctx, owner_id=model.owner_id)
        caps.check_settings(change.settings, caps=owner_caps)
    if change.description is not None:
        model.description = change.description
    if change.status is not None:
        model.status = change.status
    if change.settings is not None:
        model.settings = change.settings.model_dump(mode="json")
    audit.record(
        session,
        actor_id=caller.id,
        action="model.update",
        target=model.id,
        details=change.model_dump(mode="json", exclude_none=True, by_alias=True),
    )
    session.flush()
    deploy(session, ctx=ctx, model=model)
    session.commit()
    return get_model(session, ctx=ctx, caller=caller, model_id=model_id)


def delete_model(session: Session, *, ctx: AppContext, caller: Principal, model_id: str) -> None:
    """Remove the deployment (and its key material), every stored artifact, then the rows."""
    model = owned(session, caller=caller, model_id=model_id)
    ctx.deployer.remove(model.id)
    storage_keys = session.scalars(
        select(StoredArtifact.storage_key)
        .join(ModelVersion, StoredArtifact.version_id == ModelVersion.id)
        .where(ModelVersion.model_id == model.id)
    ).all()
    for key in storage_keys:
        ctx.store.delete(key)
    session.delete(model)
    audit.record(session, actor_id=caller.id, action="model.delete", target=model_id)
    session.commit()


def list_versions(session: Session, *, caller: Principal, model_id: str) -> VersionList:
    model = owned(session, caller=caller, model_id=model_id)
    rows = session.execute(
        select(ModelVersion, StoredArtifact)
        .join(StoredArtifact, StoredArtifact.version_id == ModelVersion.id)
        .where(ModelVersion.model_id == model.id)
        .order_by(ModelVersion.number)
    ).all()
    return VersionList(
        items=[
            VersionPublic(
                number=v.number,
                created_at=v.created_at,
                original_name=a.original_name,
                size=a.size,
                sha256=a.sha256,
                format=a.format,
                active=v.number == model.active_version,
            )
            for v, a in rows
        ]
    )


def rollback(
    session: Session, *, ctx: AppContext, caller: Principal, model_id: str, version: int
) -> ModelMetadata:
    """Make an earlier (or later) stored version the active one; rolls out like an upload."""
    model = owned(session, caller=caller, model_id=model_id)
    if session.scalar(_artifact_of(model.id, version)) is None:
        raise NotFound(
            f"model {model_id} has no version {version}",
            details={"modelId": model_id, "version": version},
        )
    previous = model.active_version
    model.active_version = version
    audit.record(
        session,
        actor_id=caller.id,
        action="model.rollback",
        target=model.id,
        details={"from": previous, "to": version},
    )
    _deploy_and_commit(
        session, ctx=ctx, model=model, undo=lambda: _restore(session, ctx, model_id, previous)
    )
    return get_model(session, ctx=ctx, caller=caller, model_id=model_id)
