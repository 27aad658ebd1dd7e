"""Files that attack the scanner's resources rather than the loader: built small and fast.

- :func:`zlib_joblib_bomb`: a valid zlib joblib (one pickle: a ``bytes`` of zeros) that
  decompresses about 1030:1, deflate's best, so 1.4 MB becomes 1.5 GB. Built from one
  independently compressed 1 MiB block of zeros repeated, never by compressing the whole.
- :func:`opcode_storm`: a small zlib joblib whose pickle is millions of cheap opcodes (CPU time).
- :func:`string_hoard`: a zlib joblib whose pickle appends distinct 4 KiB strings to one list,
  so a walker that models the list holds about as many bytes as the stream has (memory).
"""

from __future__ import annotations

import struct
import zlib

MiB = 1 << 20
_ADLER = 65521


def _adler_after_zeros(adler: int, n: int) -> int:
    """adler32 of the data so far followed by ``n`` zero bytes (``a`` is unchanged by zeros)."""
    a, b = adler & 0xFFFF, adler >> 16
    return (((b + n * a) % _ADLER) << 16) | a


def zlib_joblib_bomb(decompressed_bytes: int = 1536 * MiB) -> bytes:
    """A zlib-compressed joblib file of one pickled ``bytes`` of about that many zeros."""
    blocks = max(1, decompressed_bytes // MiB)
    n = blocks * MiB
    head = b"\x80\x04\x8e" + struct.pack("<Q", n)  # PROTO 4, BINBYTES8 n
    tail = b"."  # STOP
    first = zlib.compressobj(9)
    start = first.compress(head) + first.flush(zlib.Z_FULL_FLUSH)
    block = zlib.compressobj(9, wbits=-15)
    zeros = block.compress(bytes(MiB)) + block.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, wbits=-15)
    end = last.compress(tail) + last.flush()
    adler = zlib.adler32(tail, _adler_after_zeros(zlib.adler32(head), n))
    return start + zeros * blocks + end + struct.pack(">I", adler)


def opcode_storm(opcodes: int = 8_000_000) -> bytes:
    """A zlib joblib of ``opcodes`` NONE/POP opcodes, then None: cheap to send, slow to walk."""
    return zlib.compress(b"\x80\x04" + b"N0" * (opcodes // 2) + b"N.", 9)


def string_hoard(megabytes: int = 256) -> bytes:
    """A zlib joblib appending distinct 4 KiB strings to one list, ``megabytes`` of them."""
    comp = zlib.compressobj(1)
    parts = [comp.compress(b"\x80\x04]")]  # PROTO 4, EMPTY_LIST
    filler = bytes(4096 - 8)
    for i in range(megabytes * 256):
        # BINUNICODE of 4096 bytes (a unique prefix, then zeros), APPEND
        parts.append(comp.compress(b"X\x00\x10\x00\x00" + b"%08d" % i + filler + b"a"))
    parts.append(comp.compress(b".") + comp.flush())
    return b"".join(parts)
