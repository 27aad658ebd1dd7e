"""Master-key rotation: re-wrap every stored data key under the current master key.

Artifacts are never read or rewritten: each is encrypted under its own data key, and only that
key's wrapping changes. Run it after adding a new master key to ``MODELPORT_API_MASTER_KEYS`` and
making it current; once it reports nothing left under the old id, the old key can be removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelport.api.db.tables import StoredArtifact
from modelport.core.crypto import CryptoError, WrappedKey
from modelport.core.keys import KeyRing
from sqlalchemy import select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class RotationReport:
    rewrapped: int
    already_current: int
    current_key_id: str
    unreadable: list[str] = field(default_factory=list)
    """Artifacts whose data key no configured master key opens (left as they are)."""


def rotate_master_key(session: Session, *, keys: KeyRing, batch: int = 500) -> RotationReport:
    """Re-wrap each artifact's data key that is not under ``keys.current``; commit per batch.

    Safe to run again, and safe to interrupt: each row is rewritten in one update, so a row is
    always wrapped under one key the ring can open. A row that no configured master key opens is
    reported in ``unreadable`` and left alone; the others are still re-wrapped.
    """
    current = keys.current.key_id
    rewrapped = already = 0
    unreadable: list[str] = []
    last_id = ""
    while True:
        rows = session.scalars(
            select(StoredArtifact)
            .where(StoredArtifact.id > last_id, StoredArtifact.wrapped_data_key.is_not(None))
            .order_by(StoredArtifact.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        for artifact in rows:
            assert artifact.wrapped_data_key is not None
            wrapped = WrappedKey.decode(artifact.wrapped_data_key)
            if not keys.needs_rewrap(wrapped):
                already += 1
                continue
            try:
                fresh = keys.rewrap(wrapped)
            except CryptoError:
                unreadable.append(artifact.id)
                continue
            artifact.wrapped_data_key = fresh.encode()
            artifact.master_key_id = fresh.key_id
            rewrapped += 1
        last_id = rows[-1].id
        session.commit()
    return RotationReport(
        rewrapped=rewrapped, already_current=already, current_key_id=current, unreadable=unreadable
    )
