"""Master-key rotation: re-wrap every stored data key under the current master key, bound to its
artifact.

Artifacts are never read or rewritten: each is encrypted under its own data key, and only that
key's wrapping changes. Run it after adding a new master key to ``MODELPORT_API_MASTER_KEYS`` and
making it current; once it reports nothing left under the old id, the old key can be removed.

:func:`bind_unbound_keys` runs at every API start: data keys wrapped before wrappings were bound
to their artifact (:class:`~modelport.core.crypto.KeyBinding`) are re-wrapped bound, so that
deployments only ever open bound keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from modelport.api.db.tables import ModelVersion, StoredArtifact
from modelport.api.services import artifacts
from modelport.core.crypto import CryptoError, WrappedKey
from modelport.core.keys import KeyRing
from sqlalchemy import select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RotationReport:
    rewrapped: int
    already_current: int
    current_key_id: str
    unreadable: list[str] = field(default_factory=list)
    """Artifacts whose data key no configured master key opens (left as they are)."""


def rotate_master_key(session: Session, *, keys: KeyRing, batch: int = 500) -> RotationReport:
    """Re-wrap each artifact's data key that is not under ``keys.current`` (or not bound to its
    artifact); commit per batch.

    Safe to run again, and safe to interrupt: each row is rewritten in one update, so a row is
    always wrapped under one key the ring can open. A row that no configured master key opens is
    reported in ``unreadable`` and left alone; the others are still re-wrapped.
    """
    return _rewrap(session, keys=keys, wanted=keys.needs_rewrap, batch=batch)


def bind_unbound_keys(session: Session, *, keys: KeyRing, batch: int = 500) -> RotationReport:
    """Re-wrap, bound to their artifact, the data keys still in the unbound form of earlier
    releases (under the current master key); the log says how many."""
    report = _rewrap(session, keys=keys, wanted=lambda wrapped: not wrapped.bound, batch=batch)
    if report.rewrapped:
        log.info("bound %d data keys of earlier releases to their artifacts", report.rewrapped)
    if report.unreadable:
        log.warning(
            "%d data keys of earlier releases are wrapped by a master key that is not "
            "configured and stay unbound: %s",
            len(report.unreadable),
            ", ".join(report.unreadable),
        )
    return report


def _rewrap(
    session: Session, *, keys: KeyRing, wanted: Callable[[WrappedKey], bool], batch: int
) -> RotationReport:
    current = keys.current.key_id
    rewrapped = already = 0
    unreadable: list[str] = []
    last_id = ""
    while True:
        rows = session.execute(
            select(StoredArtifact, ModelVersion.model_id)
            .join(ModelVersion, StoredArtifact.version_id == ModelVersion.id)
            .where(StoredArtifact.id > last_id, StoredArtifact.wrapped_data_key.is_not(None))
            .order_by(StoredArtifact.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        for artifact, model_id in rows:
            assert artifact.wrapped_data_key is not None
            wrapped = WrappedKey.decode(artifact.wrapped_data_key)
            if not wanted(wrapped):
                already += 1
                continue
            try:
                fresh = keys.rewrap(wrapped, artifacts.binding(artifact, model_id=model_id))
            except CryptoError as exc:
                log.warning("cannot re-wrap the data key of %s: %s", artifact.id, exc.code)
                unreadable.append(artifact.id)
                continue
            artifact.wrapped_data_key = fresh.encode()
            artifact.master_key_id = fresh.key_id
            rewrapped += 1
        last_id = rows[-1][0].id
        session.commit()
    return RotationReport(
        rewrapped=rewrapped, already_current=already, current_key_id=current, unreadable=unreadable
    )
