"""Administrators: list users, change subscriptions, roles and limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from modelport.api.deps import Ctx, CurrentUser, SessionDep
from modelport.api.schemas import MAX_OFFSET, UserAdminUpdate, UserList, UserPublic
from modelport.api.services import keys, users

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.get("/users")
def list_users(
    session: SessionDep,
    caller: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> UserList:
    return users.list_users(session, caller=caller, limit=limit, offset=offset)


@router.patch("/users/{user_id}")
def update_user(
    user_id: str, body: UserAdminUpdate, session: SessionDep, ctx: Ctx, caller: CurrentUser
) -> UserPublic:
    user = users.admin_update(
        session, settings=ctx.settings, caller=caller, user_id=user_id, change=body
    )
    keys.publish(session, ctx=ctx, user_id=user.id)  # new per-key limits reach the runtimes
    return users.public(user)
