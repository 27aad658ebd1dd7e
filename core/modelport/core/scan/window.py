"""A long decompressed stream as the pickle walker reads it, without ever holding all of it.

The walker addresses its data by absolute offset and only ever moves forward: it reads an opcode
and its operands, then the next opcode after them, and skips array payloads by jumping ahead. A
:class:`Window` serves exactly that: indexing and slicing by absolute offset, backed by a buffer
that holds the bytes from a little before the last read up to the end of the last chunk the
decoder produced. Skipped bytes are decoded and dropped, never kept. Reading further back than
the look-back is refused (``undecidable``), never answered wrongly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import overload

from modelport.core.scan.limits import LimitExceeded, MiB

#: Bytes kept before the lowest offset of the last read (the walker reads forward only), at
#: most half the window.
LOOKBACK = 1 * MiB


class Window:
    """``total`` bytes produced in order by ``chunks``, read by absolute offset.

    At most ``limit`` bytes (look-back, the read itself and one decoder chunk) are held at once.
    """

    def __init__(self, chunks: Iterator[bytes], total: int, limit: int) -> None:
        self._chunks = chunks
        self._total = total
        self._limit = limit
        self._lookback = min(LOOKBACK, limit // 2)
        self._buf = bytearray()
        self._base = 0  # absolute offset of self._buf[0]

    def __len__(self) -> int:
        return self._total

    @overload
    def __getitem__(self, key: int) -> int: ...
    @overload
    def __getitem__(self, key: slice) -> bytes: ...
    def __getitem__(self, key: int | slice) -> int | bytes:
        if isinstance(key, slice):
            start, stop, step = key.indices(self._total)
            if step != 1:
                raise ValueError("a stream window is read contiguously")
            if stop <= start:
                return b""
            self._cover(start, stop)
            return bytes(self._buf[start - self._base : stop - self._base])
        index = key + self._total if key < 0 else key
        if not 0 <= index < self._total:
            raise IndexError("offset outside the decompressed stream")
        self._cover(index, index + 1)
        return self._buf[index - self._base]

    def _cover(self, lo: int, hi: int) -> None:
        """Make ``[lo, hi)`` present, dropping what lies more than the look-back before ``lo``."""
        if lo < self._base:
            raise LimitExceeded(
                "window_bytes",
                f"the scan read {self._base - lo} bytes behind its window of the decompressed "
                "stream",
            )
        end = self._base + len(self._buf)
        if hi <= end:
            return
        keep = max(self._base, lo - self._lookback)
        if hi - keep > self._limit:
            raise LimitExceeded(
                "window_bytes", f"one read of {hi - lo} bytes exceeds window_bytes={self._limit}"
            )
        drop = min(keep, end) - self._base
        del self._buf[:drop]
        self._base += drop
        while self._base + len(self._buf) < hi:
            chunk = next(self._chunks, None)
            if chunk is None:
                raise LimitExceeded("window_bytes", "the decompressed stream ended early")
            if not self._buf and self._base < keep:
                skip = min(keep - self._base, len(chunk))
                self._base += skip
                self._buf += memoryview(chunk)[skip:]
            else:
                self._buf += chunk
