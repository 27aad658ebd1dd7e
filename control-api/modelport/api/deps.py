"""FastAPI dependencies: ``Ctx``, ``SessionDep``, ``CurrentUser`` (authenticated, rate-limited)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from modelport.api.context import AppContext
from modelport.api.services import users
from modelport.api.services.users import Principal
from modelport.core.errors import Unauthenticated
from sqlalchemy.orm import Session


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


def get_session(ctx: Ctx) -> Iterator[Session]:
    """A session per request; services commit what they change, the rest rolls back."""
    with ctx.db.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def credential(request: Request) -> str | None:
    """The bearer token or API key a request carries (``Authorization`` or ``X-API-Key``)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    return api_key or None


def _resolve(ctx: AppContext, request: Request) -> Principal | None:
    value = credential(request)
    if value is None:
        return None
    with ctx.db.sessions() as session:
        return users.resolve_caller(session, settings=ctx.settings, credential=value)


def current_user(ctx: Ctx, request: Request) -> Principal:
    """The authenticated caller, after taking one token from their rate-limit bucket."""
    caller = _resolve(ctx, request)
    if caller is None:
        raise Unauthenticated(
            "authentication required: send 'Authorization: Bearer <token or API key>'"
        )
    ctx.limiter.acquire(caller.id, caller.requests_per_minute)
    return caller


def optional_user(ctx: Ctx, request: Request) -> Principal | None:
    caller = _resolve(ctx, request)
    if caller is not None:
        ctx.limiter.acquire(caller.id, caller.requests_per_minute)
    return caller


def client_address(request: Request) -> str:
    """The client's address: the socket's peer, or what a trusted proxy's ``X-Forwarded-For``
    names (``trusted_proxies``; the app's proxy-headers middleware applies it)."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]
CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
