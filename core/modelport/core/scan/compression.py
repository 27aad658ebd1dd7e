"""Bounded, strict decompression of the whole-file compressions joblib writes.

Exactly one compressed stream, fully decoded, with nothing after it: a second gzip member or
bytes after the end of the stream are refused, because the loader and the scanner could disagree
about them.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Protocol

from modelport.core.formats.joblib import COMPRESSIONS
from modelport.core.formats.spec import Container
from modelport.core.scan.limits import Deadline, LimitExceeded, Limits, MiB


def detect(head: bytes) -> Container | None:
    """The compression joblib would detect from the first bytes; None for a plain pickle."""
    for compression in COMPRESSIONS:
        if head.startswith(compression.joblib_prefix):
            return compression.container
    return None


def is_pre_0_10(data: memoryview) -> bool:
    """joblib before 0.10 wrote its own ``ZF`` format, which it still tells apart first."""
    return bytes(data[:2]) == b"ZF"


class BadStream(Exception):
    """The compressed stream is corrupt, truncated or followed by other bytes."""


class _Decoder(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


def _decoder(kind: Container) -> _Decoder:
    if kind is Container.ZLIB:
        return zlib.decompressobj()  # type: ignore[return-value]
    if kind is Container.GZIP:
        return zlib.decompressobj(wbits=31)  # type: ignore[return-value]
    if kind is Container.BZ2:
        return bz2.BZ2Decompressor()
    if kind is Container.XZ:
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    if kind is Container.LZMA:
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)
    if kind is Container.LZ4:
        return _lz4_decoder()
    raise BadStream(f"{kind.value} is not a compression the scanner decodes")


def _lz4_decoder() -> _Decoder:
    try:
        import lz4.frame
    except ImportError as exc:
        raise ModuleNotFoundError("lz4 is not installed; cannot scan lz4-compressed files") from exc
    return _Lz4Adapter(lz4.frame.LZ4FrameDecompressor())


class _Lz4Adapter:
    def __init__(self, inner: object) -> None:
        self._inner = inner

    @property
    def eof(self) -> bool:
        return bool(self._inner.eof)  # type: ignore[attr-defined]

    @property
    def needs_input(self) -> bool:
        return bool(self._inner.needs_input)  # type: ignore[attr-defined]

    @property
    def unused_data(self) -> bytes:
        return bytes(self._inner.unused_data or b"")  # type: ignore[attr-defined]

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        return bytes(self._inner.decompress(data, max_length=max_length))  # type: ignore[attr-defined]


_IN_CHUNK = 1 * MiB
_OUT_CHUNK = 16 * MiB


def decompress(data: memoryview, kind: Container, limits: Limits, deadline: Deadline) -> bytearray:
    """Decode exactly one stream; refuse anything after it; stop at the limits."""
    dec = _decoder(kind)
    out = bytearray()
    pos = 0
    total_in = len(data)
    while not dec.eof:
        feed = b""
        if pos < total_in and _wants_input(dec):
            feed = bytes(data[pos : pos + _IN_CHUNK])
            pos += len(feed)
        chunk, fed = _step(dec, feed, kind)
        if not chunk and not fed and not dec.eof:
            raise BadStream(f"the {kind.value} stream is truncated")
        _append(out, chunk, pos, limits)
        deadline.check()
    if dec.unused_data or pos < total_in or getattr(dec, "unconsumed_tail", b""):
        raise BadStream(f"bytes follow the end of the {kind.value} stream")
    return out


def _wants_input(dec: _Decoder) -> bool:
    tail = getattr(dec, "unconsumed_tail", None)
    if tail is not None:
        return not tail
    return bool(getattr(dec, "needs_input", True))


def _step(dec: _Decoder, feed: bytes, kind: Container) -> tuple[bytes, bool]:
    tail = getattr(dec, "unconsumed_tail", None)
    if tail and not feed:
        feed = tail
    try:
        return dec.decompress(feed, _OUT_CHUNK), bool(feed)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, RuntimeError, ValueError) as exc:
        raise BadStream(f"corrupt {kind.value} stream: {exc}") from None


def _append(out: bytearray, chunk: bytes, consumed: int, limits: Limits) -> None:
    out += chunk
    size = len(out)
    if size > limits.max_decompressed_bytes:
        raise LimitExceeded(
            "max_decompressed_bytes",
            f"decompressed data exceeds max_decompressed_bytes={limits.max_decompressed_bytes}",
        )
    if size > 64 * MiB and size > limits.max_ratio * max(consumed, 1):
        raise LimitExceeded(
            "max_ratio", f"decompression ratio exceeds max_ratio={limits.max_ratio}"
        )
