"""Upload, list, read, change and delete models; versions and rollback; usage; schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from modelport.api import multipart
from modelport.api.deps import Ctx, CurrentUser, SessionDep
from modelport.api.schemas import (
    MAX_OFFSET,
    ModelList,
    ModelLogs,
    ModelMetadata,
    ModelSchema,
    ModelStatus,
    ModelUpdate,
    RollbackRequest,
    UploadResponse,
    UsageSummary,
    VersionList,
)
from modelport.api.services import models, schema, usage

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.post("", status_code=201, openapi_extra=multipart.MODEL_FORM.openapi())
async def upload_model(
    request: Request, session: SessionDep, ctx: Ctx, caller: CurrentUser
) -> UploadResponse:
    with ctx.metrics.counting_upload() as tally, multipart.closing_on_refusal():
        await run_in_threadpool(models.ensure_room, session, caller=caller)
        async with multipart.spooled(request, ctx.settings, multipart.MODEL_FORM) as form:
            tally.size = form.file.size
            return await run_in_threadpool(
                models.create, session, ctx=ctx, caller=caller, new=form.new_model(), file=form.file
            )


@router.post(
    "/{model_id}/versions", status_code=201, openapi_extra=multipart.VERSION_FORM.openapi()
)
async def upload_version(
    model_id: str, request: Request, session: SessionDep, ctx: Ctx, caller: CurrentUser
) -> UploadResponse:
    with ctx.metrics.counting_upload() as tally, multipart.closing_on_refusal():
        await run_in_threadpool(
            models.ensure_version_room, session, caller=caller, model_id=model_id
        )
        async with multipart.spooled(request, ctx.settings, multipart.VERSION_FORM) as form:
            tally.size = form.file.size
            return await run_in_threadpool(
                models.add_version,
                session,
                ctx=ctx,
                caller=caller,
                model_id=model_id,
                file=form.file,
            )


@router.get("")
def list_models(
    session: SessionDep,
    ctx: Ctx,
    caller: CurrentUser,
    status: ModelStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ModelList:
    return models.list_models(
        session, ctx=ctx, caller=caller, status=status, limit=limit, offset=offset
    )


@router.get("/{model_id}")
def get_model(model_id: str, session: SessionDep, ctx: Ctx, caller: CurrentUser) -> ModelMetadata:
    return models.get_model(session, ctx=ctx, caller=caller, model_id=model_id)


@router.get("/{model_id}/logs")
def model_logs(
    model_id: str,
    session: SessionDep,
    ctx: Ctx,
    caller: CurrentUser,
    tail: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ModelLogs:
    return models.logs(session, ctx=ctx, caller=caller, model_id=model_id, tail=tail)


@router.patch("/{model_id}")
def update_model(
    model_id: str, body: ModelUpdate, session: SessionDep, ctx: Ctx, caller: CurrentUser
) -> ModelMetadata:
    return models.update_model(session, ctx=ctx, caller=caller, model_id=model_id, change=body)


@router.delete("/{model_id}", status_code=204)
def delete_model(model_id: str, session: SessionDep, ctx: Ctx, caller: CurrentUser) -> Response:
    models.delete_model(session, ctx=ctx, caller=caller, model_id=model_id)
    return Response(status_code=204)


@router.get("/{model_id}/versions")
def list_versions(model_id: str, session: SessionDep, caller: CurrentUser) -> VersionList:
    return models.list_versions(session, caller=caller, model_id=model_id)


@router.post("/{model_id}/rollback")
def rollback(
    model_id: str, body: RollbackRequest, session: SessionDep, ctx: Ctx, caller: CurrentUser
) -> ModelMetadata:
    return models.rollback(session, ctx=ctx, caller=caller, model_id=model_id, version=body.version)


@router.get("/{model_id}/usage")
def model_usage(
    model_id: str,
    session: SessionDep,
    caller: CurrentUser,
    window: Annotated[str, Query(pattern="^(1h|24h|7d|30d)$")] = "24h",
) -> UsageSummary:
    return usage.summary(session, caller=caller, model_id=model_id, window=window)


@router.get("/{model_id}/schema")
def model_schema(model_id: str, session: SessionDep, ctx: Ctx, caller: CurrentUser) -> ModelSchema:
    return schema.model_schema(session, ctx=ctx, caller=caller, model_id=model_id)


@router.get("/{model_id}/openapi.json")
def model_openapi(
    model_id: str, session: SessionDep, ctx: Ctx, caller: CurrentUser
) -> dict[str, Any]:
    """OpenAPI 3.1 for calling this model at its endpoint, generated from its schema."""
    return schema.openapi_document(session, ctx=ctx, caller=caller, model_id=model_id)
