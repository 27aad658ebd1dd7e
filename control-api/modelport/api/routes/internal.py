"""Endpoints for Modelport's own components: runtimes report usage here."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from modelport.api.deps import Ctx, SessionDep, credential
from modelport.api.schemas import UsageReport
from modelport.api.services import usage
from modelport.core.errors import Unauthenticated

router = APIRouter(prefix="/api/v1/internal", tags=["internal"])


@router.post("/usage", status_code=204)
def report_usage(body: UsageReport, request: Request, session: SessionDep, ctx: Ctx) -> Response:
    token = credential(request)
    if token is None:
        raise Unauthenticated("usage reports need the model's usage token")
    usage.record_report(session, ctx=ctx, token=token, report=body)
    return Response(status_code=204)
