"""Artifact storage behind one small interface (contract; implementation owned by the crypto/storage work).

``s3://bucket/key`` through boto3, ``file:///abs/path`` for the embedded mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol


class ArtifactStore(Protocol):
    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int: ...
    def get_stream(self, key: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def uri_for(self, key: str) -> str: ...


def open_uri(uri: str) -> Iterator[bytes]:
    """Stream the bytes behind an artifact URI (s3:// or file://)."""
    raise NotImplementedError
