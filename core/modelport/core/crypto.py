"""Envelope encryption of artifacts (contract; implementation owned by the crypto/storage work).

Each artifact gets its own random 256-bit data key. The file is encrypted as a stream of
authenticated AES-256-GCM segments; the data key is stored only wrapped by a master key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

DATA_KEY_BYTES = 32
DEFAULT_SEGMENT_SIZE = 1 << 20


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    key: bytes


@dataclass(frozen=True)
class WrappedKey:
    key_id: str
    blob: bytes


def generate_data_key() -> bytes:
    raise NotImplementedError


def wrap_data_key(data_key: bytes, master: MasterKey) -> WrappedKey:
    raise NotImplementedError


def unwrap_data_key(wrapped: WrappedKey, masters: Iterable[MasterKey]) -> bytes:
    raise NotImplementedError


def encrypt_stream(
    chunks: Iterable[bytes], data_key: bytes, *, segment_size: int = DEFAULT_SEGMENT_SIZE
) -> Iterator[bytes]:
    raise NotImplementedError


def decrypt_stream(chunks: Iterable[bytes], data_key: bytes) -> Iterator[bytes]:
    raise NotImplementedError


def read_data_key_file(path: Path) -> bytes:
    """Read a data-key file as mounted from the per-model Secret (base64 text)."""
    raise NotImplementedError
