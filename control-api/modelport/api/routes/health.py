"""Liveness and readiness (the database answers and is migrated). Prometheus metrics are served
on a port of their own (``ApiSettings.metrics_port``), never here."""

from __future__ import annotations

from fastapi import APIRouter
from modelport.api.deps import Ctx
from modelport.api.schemas import Health
from starlette.concurrency import run_in_threadpool

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz")
async def readyz(ctx: Ctx) -> Health:
    await run_in_threadpool(ctx.db.ensure_migrated)
    return Health(status="ok")
