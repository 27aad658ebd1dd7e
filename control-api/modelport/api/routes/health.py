"""Liveness, readiness (the database answers and is migrated) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from modelport.api.deps import Ctx
from modelport.api.schemas import Health
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz")
async def readyz(ctx: Ctx) -> Health:
    await run_in_threadpool(ctx.db.ensure_migrated)
    return Health(status="ok")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}, "description": "Metrics"}},
)
def metrics(ctx: Ctx) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
