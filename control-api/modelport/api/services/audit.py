"""The audit log of security-relevant actions."""

from __future__ import annotations

import logging
from typing import Any, Required, TypedDict, Unpack

from modelport.api.db.tables import AuditEvent
from sqlalchemy.orm import Session

log = logging.getLogger("modelport.api.audit")


class Event(TypedDict, total=False):
    """The fields of one audit event, as :func:`record` takes them."""

    actor_id: Required[str | None]
    action: Required[str]
    target: str | None
    outcome: str
    details: dict[str, Any] | None


def record(
    session: Session,
    *,
    actor_id: str | None,
    action: str,
    target: str | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the session's transaction (committed with the action it records)."""
    session.add(
        AuditEvent(
            actor_id=actor_id, action=action, target=target, outcome=outcome, details=details or {}
        )
    )
    log.info("audit action=%s actor=%s target=%s outcome=%s", action, actor_id, target, outcome)


def record_now(session: Session, **event: Unpack[Event]) -> None:
    """:func:`record` and commit on its own (for refusals, whose action rolled back)."""
    record(session, **event)
    session.commit()
