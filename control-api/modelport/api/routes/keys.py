"""The caller's API keys."""

from __future__ import annotations

from fastapi import APIRouter, Response
from modelport.api.deps import Ctx, CurrentUser, SessionDep
from modelport.api.schemas import KeyCreate, KeyCreated, KeyPublic
from modelport.api.services import keys

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


@router.post("", status_code=201)
def create_key(body: KeyCreate, session: SessionDep, ctx: Ctx, caller: CurrentUser) -> KeyCreated:
    """A new key, shown once: ``inference`` (the default; optionally bound to ``models``) or
    ``account``. Needs a login token or an account key."""
    return keys.create_key(session, ctx=ctx, caller=caller, request=body)


@router.get("")
def list_keys(session: SessionDep, caller: CurrentUser) -> list[KeyPublic]:
    return keys.list_keys(session, caller=caller)


@router.delete("/{key_id}", status_code=204)
def revoke_key(key_id: str, session: SessionDep, ctx: Ctx, caller: CurrentUser) -> Response:
    keys.revoke_key(session, ctx=ctx, caller=caller, key_id=key_id)
    return Response(status_code=204)
