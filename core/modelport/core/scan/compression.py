"""Bounded, strict, streamed decompression of the whole-file compressions joblib writes.

Exactly one compressed stream, fully decoded, with nothing after it: a second gzip member or
bytes after the end of the stream are refused, because the loader and the scanner could disagree
about them.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from typing import Protocol

from modelport.core.formats.joblib import COMPRESSIONS
from modelport.core.formats.spec import Container
from modelport.core.scan.limits import Deadline, LimitExceeded, Limits, MiB
from modelport.core.scan.window import Window


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


#: Compressed bytes fed at a time: the ratio is checked against what was fed, so it stays exact
#: to within this much for decoders that buffer input internally (bz2, lzma, lz4).
_IN_CHUNK = 64 * 1024
#: Most decompressed bytes asked of the decoder at a time (``max_length``).
_OUT_CHUNK = 4 * MiB


def chunks(
    data: memoryview, kind: Container, limits: Limits, deadline: Deadline
) -> Iterator[bytes]:
    """Decode exactly one stream, in pieces of at most 4 MiB (a quarter of the window); refuse
    anything after it; stop at the limits. Nothing is kept: the caller keeps what it wants."""
    dec = _decoder(kind)
    out_chunk = min(_OUT_CHUNK, max(limits.window_bytes // 4, 4096))
    pos = 0
    produced = 0
    total_in = len(data)
    while not dec.eof:
        feed = b""
        if pos < total_in and _wants_input(dec):
            feed = bytes(data[pos : pos + _IN_CHUNK])
            pos += len(feed)
        chunk, fed = _step(dec, feed, kind, out_chunk)
        # (lz4 says that it wants input only after one empty call at a block's end)
        stuck = pos >= total_in or not _wants_input(dec)
        if not chunk and not fed and not dec.eof and stuck:
            raise BadStream(f"the {kind.value} stream is truncated")
        produced += len(chunk)
        _check(produced, pos - len(getattr(dec, "unconsumed_tail", b"")), limits)
        deadline.check()
        if chunk:
            yield chunk
    if dec.unused_data or pos < total_in or getattr(dec, "unconsumed_tail", b""):
        raise BadStream(f"bytes follow the end of the {kind.value} stream")


def decompress(data: memoryview, kind: Container, limits: Limits, deadline: Deadline) -> bytearray:
    """The whole decoded stream in memory (tools on small files; scans use :func:`open_stream`)."""
    out = bytearray()
    for chunk in chunks(data, kind, limits, deadline):
        out += chunk
    return out


def open_stream(
    data: memoryview, kind: Container, limits: Limits, deadline: Deadline
) -> memoryview | Window:
    """The decoded stream for the walker, holding at most ``limits.window_bytes`` of it.

    A first pass decodes and checks the whole stream (one stream, nothing after it, size and
    ratio limits) and keeps it if it fits the window. A longer stream is decoded a second time,
    lazily, through a :class:`Window` as the walker reads it, so the walk sees the exact length
    it would see in memory.
    """
    kept: bytearray | None = bytearray()
    total = 0
    for chunk in chunks(data, kind, limits, deadline):
        total += len(chunk)
        if kept is not None and total <= limits.window_bytes:
            kept += chunk
        else:
            kept = None
    if kept is not None:
        return memoryview(kept)
    return Window(chunks(data, kind, limits, deadline), total, limits.window_bytes)


def _wants_input(dec: _Decoder) -> bool:
    tail = getattr(dec, "unconsumed_tail", None)
    if tail is not None:
        return not tail
    return bool(getattr(dec, "needs_input", True))


def _step(dec: _Decoder, feed: bytes, kind: Container, out_chunk: int) -> tuple[bytes, bool]:
    tail = getattr(dec, "unconsumed_tail", None)
    if tail and not feed:
        feed = tail
    try:
        return dec.decompress(feed, out_chunk), bool(feed)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, RuntimeError, ValueError) as exc:
        raise BadStream(f"corrupt {kind.value} stream: {exc}") from None


def _check(produced: int, consumed: int, limits: Limits) -> None:
    if produced > limits.max_decompressed_bytes:
        raise LimitExceeded(
            "max_decompressed_bytes",
            f"decompressed data exceeds max_decompressed_bytes={limits.max_decompressed_bytes}",
        )
    if produced > 64 * MiB and produced > limits.max_ratio * max(consumed, 1):
        raise LimitExceeded(
            "max_ratio",
            f"decompression ratio exceeds max_ratio={limits.max_ratio} "
            f"({produced} bytes from {consumed})",
        )
