"""A received model file on its way into the artifact store: check → scan → encrypt → store.

Where plaintext lives: only in the private spool folder the upload was received into (see
:mod:`modelport.api.multipart`), where the scanner and the servability check read it. What leaves
the process is ciphertext, under a fresh data key that the current master key wraps, bound to
the artifact's id, its model's id and the plaintext's sha256 (:class:`~modelport.core.crypto.
KeyBinding`): the row that records it is the only one it opens for.

:func:`ingest` returns an :class:`Artifact`, a handle on the stored object that can delete itself:
the caller keeps it when the rows that record it commit, and discards it when they do not.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from modelport.api.db.tables import StoredArtifact
from modelport.api.errors import StorageFailed, UploadRefused
from modelport.core import crypto
from modelport.core.formats import ModelFormat, ensure_servable, resolve_format
from modelport.core.keys import KeyRing
from modelport.core.scan import Outcome, UnsafeModel
from modelport.core.scan.sandbox import ProcessLimits, scan_isolated
from modelport.core.storage import ArtifactStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedFile:
    """A model file as received: its plaintext in the private spool, the name it was sent under,
    its size and sha256, and its first bytes (enough to sniff the format)."""

    path: Path
    filename: str
    size: int
    sha256: str
    head: bytes


@dataclass(frozen=True)
class Artifact:
    """A checked model file, encrypted into the store: what its row records, and the way back."""

    id: str
    store: ArtifactStore
    key: str
    uri: str
    wrapped_key: str
    format: ModelFormat
    file: ReceivedFile

    def row(self, *, version_id: str) -> StoredArtifact:
        """The row that records this object as the artifact of model version ``version_id``."""
        return StoredArtifact(
            id=self.id,
            version_id=version_id,
            original_name=self.file.filename[:255],
            storage_key=self.key,
            storage_uri=self.uri,
            size=self.file.size,
            sha256=self.file.sha256,
            format=self.format.value,
            wrapped_data_key=self.wrapped_key,
            master_key_id=self.wrapped_key.partition(":")[0],
        )

    def discard(self) -> None:
        """Delete the stored object: the rows that would have recorded it did not commit."""
        _delete(self.store, self.key)


def ingest(
    file: ReceivedFile,
    *,
    store: ArtifactStore,
    keys: KeyRing,
    key: str,
    model_id: str,
    scan_limits: ProcessLimits,
) -> Artifact:
    """Check ``file`` (format, security scan, servability), then encrypt it into ``store`` under
    ``key`` as an artifact of model ``model_id``. A refusal stores nothing; a store that fails is
    a 500 that keeps nothing. The scan runs in a child process held to ``scan_limits``."""
    fmt = _check(file, scan_limits)
    return _encrypt(file, fmt, store=store, keys=keys, key=key, model_id=model_id)


# --- checking ----------------------------------------------------------------------------------


def _check(file: ReceivedFile, scan_limits: ProcessLimits) -> ModelFormat:
    """Format from name and content, the security scanner, then servability.

    The scanner comes before anything else parses the file (the servability check opens zip
    archives), so only bytes it has passed reach another reader.
    """
    if file.size == 0:
        raise UploadRefused("the model file is empty")
    fmt, _ = resolve_format(file.filename, file.head)
    _scan(file.path, fmt, scan_limits)
    ensure_servable(file.path, fmt)
    return fmt


def _scan(path: Path, fmt: ModelFormat, limits: ProcessLimits) -> None:
    """The security scanner, in a child process with CPU, memory and time limits: a crafted file
    that exhausts one gets an ``undecidable`` refusal (400) and leaves this process as it was."""
    verdict = scan_isolated(path, expected_format=fmt, limits=limits)
    if verdict.outcome is not Outcome.SAFE:
        raise UnsafeModel(verdict)


# --- storing -----------------------------------------------------------------------------------


def binding(row: StoredArtifact, *, model_id: str) -> crypto.KeyBinding:
    """What the data key of ``row`` is bound to, as the artifact of model ``model_id``."""
    return crypto.KeyBinding(artifact_id=row.id, model_id=model_id, sha256=row.sha256)


def _encrypt(
    file: ReceivedFile,
    fmt: ModelFormat,
    *,
    store: ArtifactStore,
    keys: KeyRing,
    key: str,
    model_id: str,
) -> Artifact:
    """Encrypt the spooled file into the store under ``key``; 500 with retry advice."""
    artifact_id = "a" + os.urandom(8).hex()
    data_key = crypto.generate_data_key()
    bound_to = crypto.KeyBinding(artifact_id=artifact_id, model_id=model_id, sha256=file.sha256)
    wrapped = keys.wrap(data_key, bound_to)
    try:
        with file.path.open("rb") as source:
            written = crypto.encrypt_to_store(store, key, source, data_key, key_id=keys.current_id)
    except Exception as exc:
        _delete(store, key)
        if isinstance(exc, StorageFailed):
            raise
        log.warning("storing %s failed: %s", key, type(exc).__name__)
        raise StorageFailed(
            "the artifact store failed while saving the model; nothing was kept. "
            "Retry the upload in a few seconds.",
            details={"retryAfterSeconds": 5},
            headers={"Retry-After": "5"},
        ) from exc
    if written.sha256 != file.sha256 or written.size != file.size:
        _delete(store, key)
        raise StorageFailed("the spooled upload changed while it was stored; retry the upload")
    return Artifact(
        id=artifact_id,
        store=store,
        key=key,
        uri=written.uri,
        wrapped_key=wrapped.encode(),
        format=fmt,
        file=file,
    )


def _delete(store: ArtifactStore, key: str) -> None:
    try:
        store.delete(key)
    except Exception as exc:  # the store may be down: report, never mask the first error
        log.warning("could not delete %s after a failed upload: %s", key, type(exc).__name__)
