"""Fetch (streamed), decrypt in memory and verify the pinned sha256 of a model artifact.

Plaintext only ever exists in this process's memory: the stream of ciphertext chunks is decrypted
segment by segment into one in-memory buffer while the sha256 of the plaintext is computed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from modelport.core.crypto import decrypt_stream, read_data_key_file
from modelport.core.errors import ModelportError
from modelport.core.storage import ArtifactNotFound, S3Options, StorageError, open_uri
from modelport.runtime.settings import RuntimeSettings

log = logging.getLogger("modelport.runtime")


class IntegrityError(ModelportError):
    """The plaintext is not the file that was pinned."""

    status = 500
    code = "artifact_integrity"


@dataclass
class Fetched:
    data: bytes
    sha256: str
    timings: dict[str, float] = field(default_factory=dict)


def fetch_plaintext(settings: RuntimeSettings) -> Fetched:
    """The verified plaintext of the configured artifact; raises on any failure."""
    started = time.perf_counter()
    key = read_data_key_file(settings.key_file) if settings.key_file is not None else None
    s3 = S3Options(endpoint_url=settings.s3_endpoint_url) if settings.s3_endpoint_url else None
    digest = hashlib.sha256()
    buffer = bytearray()
    try:
        chunks: Iterator[bytes] = open_uri(settings.artifact_uri, s3=s3)
        if key is not None:
            chunks = decrypt_stream(chunks, key)
        for chunk in chunks:
            digest.update(chunk)
            buffer += chunk
    except StorageError as exc:
        # The store's message names the URI; the owner reads this reason (the model's status and
        # logs), and where the artifact is stored is none of theirs.
        hidden = (
            "the model's artifact is not in the artifact store"
            if isinstance(exc, ArtifactNotFound)
            else exc.message.replace(settings.artifact_uri, "the model's artifact")
        )
        raise StorageError(hidden, retry=False) from None
    fetched = time.perf_counter()
    actual = digest.hexdigest()
    if settings.sha256 is not None and not hmac.compare_digest(actual, settings.sha256.lower()):
        raise IntegrityError(
            f"the artifact's plaintext sha256 is {actual} but {settings.sha256.lower()} "
            "was pinned: refusing to load it",
            details={"expected": settings.sha256.lower(), "actual": actual},
        )
    # Not the URI: this log is its owner's to read (the logs endpoint), where it is stored is not.
    log.info(
        "fetched the artifact (%d bytes%s, sha256 %s)",
        len(buffer),
        ", decrypted" if key is not None else ", stored unencrypted",
        "verified" if settings.sha256 is not None else "not pinned",
    )
    return Fetched(bytes(buffer), actual, {"fetch_decrypt_verify": fetched - started})
