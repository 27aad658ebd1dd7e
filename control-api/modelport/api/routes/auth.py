"""Sign-up, login and the caller's own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Query, Response
from fastapi.responses import RedirectResponse
from modelport.api.deps import ClientAddress, Ctx, CurrentUser, OptionalUser, SessionDep
from modelport.api.schemas import LoginRequest, SignupRequest, TokenResponse, UserPublic
from modelport.api.services import oidc, users

router = APIRouter(prefix="/api/v1", tags=["users"])


@router.post("/auth/signup", status_code=201)
def signup(
    body: SignupRequest, session: SessionDep, ctx: Ctx, caller: OptionalUser, address: ClientAddress
) -> UserPublic:
    guard = ctx.login_guard
    user = users.signup(
        session, settings=ctx.settings, guard=guard, address=address, new=body, caller=caller
    )
    return users.public(user)


@router.post("/auth/login")
def login(
    body: LoginRequest, session: SessionDep, ctx: Ctx, address: ClientAddress
) -> TokenResponse:
    guard = ctx.login_guard
    token = users.login(
        session, settings=ctx.settings, guard=guard, address=address, credentials=body
    )
    return TokenResponse(access_token=token, expires_in=ctx.settings.jwt_ttl_seconds)


@router.get("/auth/oidc/login", status_code=302, response_class=RedirectResponse)
def oidc_login(ctx: Ctx) -> RedirectResponse:
    start = oidc.login_redirect(settings=ctx.settings)
    response = RedirectResponse(start.url, status_code=302)
    response.set_cookie(oidc.BROWSER_COOKIE, start.browser_secret, **oidc.cookie(ctx.settings))
    return response


@router.get("/auth/oidc/callback")
def oidc_callback(
    code: Annotated[str, Query(max_length=4096)],
    state: Annotated[str, Query(max_length=4096)],
    response: Response,
    session: SessionDep,
    ctx: Ctx,
    browser: Annotated[str, Cookie(alias=oidc.BROWSER_COOKIE, max_length=256)] = "",
) -> TokenResponse:
    response.delete_cookie(oidc.BROWSER_COOKIE, **oidc.cookie(ctx.settings, max_age=None))
    token = oidc.complete_login(
        session, settings=ctx.settings, code=code, state=state, browser_secret=browser
    )
    return TokenResponse(access_token=token, expires_in=ctx.settings.jwt_ttl_seconds)


@router.get("/users/me")
def me(session: SessionDep, caller: CurrentUser) -> UserPublic:
    return users.public(users.get_self(session, caller=caller))
