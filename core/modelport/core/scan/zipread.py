"""A strict zip reader: accepts only archives every zip reader reads the same way.

PyTorch reads archives with miniz (case-insensitive names, first duplicate wins, CRCs and flags
ignored); Python's ``zipfile`` differs on each point. So this reader refuses duplicate and
case-colliding names, path tricks, encryption and unknown flag bits, methods other than stored
and deflate, local headers that disagree with the central directory, CRC and size mismatches,
and any byte not accounted for (prepended data, gaps between members, trailing data).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from modelport.core.scan.limits import Deadline, LimitExceeded, Limits

_EOCD = b"PK\x05\x06"
_EOCD64 = b"PK\x06\x06"
_LOC64 = b"PK\x06\x07"
_CDH = b"PK\x01\x02"
_LFH = b"PK\x03\x04"
_DD = b"PK\x07\x08"
_ALLOWED_FLAGS = (1 << 3) | (1 << 11)
_MAX_U32 = 0xFFFFFFFF
_MAX_U16 = 0xFFFF


class ZipViolation(Exception):
    """The archive is not one that all zip readers read the same way."""


@dataclass(frozen=True)
class Entry:
    name: str
    method: int
    flags: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    data_offset: int = 0
    end_offset: int = 0


def _u16(data: memoryview, pos: int) -> int:
    return int(struct.unpack_from("<H", data, pos)[0])


def _u32(data: memoryview, pos: int) -> int:
    return int(struct.unpack_from("<I", data, pos)[0])


def _u64(data: memoryview, pos: int) -> int:
    return int(struct.unpack_from("<Q", data, pos)[0])


def _find_eocd(data: memoryview) -> int:
    """The end record, which must end the file exactly (no comment, nothing after it)."""
    pos = len(data) - 22
    if pos < 0 or bytes(data[pos : pos + 4]) != _EOCD:
        raise ZipViolation("no end-of-central-directory record at the very end of the file")
    return pos


def _central_directory(data: memoryview, eocd: int) -> tuple[int, int, int, int]:
    """(offset of the CD, its size, entry count, where the CD must end)."""
    disk, cd_disk, n_here, n_total = struct.unpack_from("<HHHH", data, eocd + 4)
    cd_size, cd_offset = _u32(data, eocd + 12), _u32(data, eocd + 16)
    if _u16(data, eocd + 20) != 0:
        raise ZipViolation("archive comment present")
    cd_end = eocd
    loc = eocd - 20
    has_loc = loc >= 0 and bytes(data[loc : loc + 4]) == _LOC64
    if has_loc:
        rec = _u64(data, loc + 8)
        if rec + 56 != loc or bytes(data[rec : rec + 4]) != _EOCD64:
            raise ZipViolation("zip64 end record is not right before its locator")
        if _u64(data, rec + 4) != 44 or _u32(data, loc + 4) != 0 or _u32(data, loc + 16) != 1:
            raise ZipViolation("zip64 end record or locator has unusual fields")
        small = (disk, cd_disk, n_here, n_total, cd_size, cd_offset)
        disk, cd_disk = _u32(data, rec + 16), _u32(data, rec + 20)
        n_here, n_total = _u64(data, rec + 24), _u64(data, rec + 32)
        cd_size, cd_offset = _u64(data, rec + 40), _u64(data, rec + 48)
        big = (disk, cd_disk, n_here, n_total, cd_size, cd_offset)
        for a, b in zip(small, big, strict=True):
            if a != b and a not in (_MAX_U16, _MAX_U32):
                raise ZipViolation("zip64 end record disagrees with the end record")
        cd_end = rec
    elif _MAX_U32 in (cd_size, cd_offset) or _MAX_U16 in (n_here, n_total):
        raise ZipViolation("zip64 values without a zip64 locator")
    if disk or cd_disk or n_here != n_total:
        raise ZipViolation("multi-disk archives are not accepted")
    if cd_offset + cd_size != cd_end:
        raise ZipViolation("the central directory does not end where the end record starts")
    return cd_offset, cd_size, n_total, cd_end


def _zip64_extra(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 1:
            vals = [struct.unpack_from("<Q", body, i)[0] for i in range(0, len(body) - 7, 8)]
            it = iter(vals)
            try:
                size = next(it) if size == _MAX_U32 else size
                csize = next(it) if csize == _MAX_U32 else csize
                offset = next(it) if offset == _MAX_U32 else offset
            except StopIteration:
                raise ZipViolation("truncated zip64 extra field") from None
        pos += 4 + length
    if pos != len(extra):
        raise ZipViolation("malformed extra field")
    return size, csize, offset


def _check_name(raw: bytes, flags: int) -> str:
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ZipViolation(f"member name {raw!r} is not ASCII") from None
    if not name or any(ord(c) < 0x20 or c in '\\:*?"<>|' for c in name):
        raise ZipViolation(f"member name {name!r} has forbidden characters")
    parts = name.rstrip("/").split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ZipViolation(f"member name {name!r} is absolute or has empty, '.' or '..' parts")
    return name


def _read_central(data: memoryview, cd_offset: int, cd_end: int, count: int) -> list[Entry]:
    entries: list[Entry] = []
    pos = cd_offset
    for _ in range(count):
        if pos + 46 > cd_end or bytes(data[pos : pos + 4]) != _CDH:
            raise ZipViolation("central directory entry missing or truncated")
        (
            made_by,
            _,
            flags,
            method,
            _,
            _,
            crc,
            csize,
            size,
            n_len,
            e_len,
            c_len,
            disk,
            _,
            ext_attr,
            offset,
        ) = struct.unpack_from("<HHHHHHIIIHHHHHII", data, pos + 4)
        name = _check_name(bytes(data[pos + 46 : pos + 46 + n_len]), flags)
        extra = bytes(data[pos + 46 + n_len : pos + 46 + n_len + e_len])
        size, csize, offset = _zip64_extra(extra, size, csize, offset)
        if flags & ~_ALLOWED_FLAGS:
            raise ZipViolation(f"{name}: encrypted or unusual flag bits 0x{flags:04x}")
        if method not in (0, 8):
            raise ZipViolation(f"{name}: compression method {method} is not stored or deflate")
        if disk or c_len:
            raise ZipViolation(f"{name}: disk number or comment in the central directory")
        if (made_by >> 8) == 3 and (ext_attr >> 16) & 0o170000 == 0o120000:
            raise ZipViolation(f"{name}: symbolic link member")
        if method == 0 and csize != size:
            raise ZipViolation(f"{name}: stored member with different sizes")
        entries.append(Entry(name, method, flags, crc, csize, size, offset))
        pos += 46 + n_len + e_len + c_len
    if pos != cd_end:
        raise ZipViolation("central directory size disagrees with its entries")
    return entries


def _check_names(entries: list[Entry]) -> None:
    seen: set[str] = set()
    folded: set[str] = set()
    for e in entries:
        if e.name in seen:
            raise ZipViolation(f"duplicate member name {e.name!r}")
        if e.name.lower() in folded:
            raise ZipViolation(f"member names differ only in case: {e.name!r}")
        seen.add(e.name)
        folded.add(e.name.lower())


def _locate(data: memoryview, e: Entry) -> Entry:
    pos = e.header_offset
    if pos + 30 > len(data) or bytes(data[pos : pos + 4]) != _LFH:
        raise ZipViolation(f"{e.name}: local header missing")
    _, flags, method, _, _, crc, csize, size, n_len, e_len = struct.unpack_from(
        "<HHHHHIIIHH", data, pos + 4
    )
    if flags != e.flags or method != e.method:
        raise ZipViolation(f"{e.name}: local header flags or method differ from the directory")
    if bytes(data[pos + 30 : pos + 30 + n_len]) != e.name.encode("ascii"):
        raise ZipViolation(f"{e.name}: local header names a different file")
    extra = bytes(data[pos + 30 + n_len : pos + 30 + n_len + e_len])
    if not flags & (1 << 3):
        size, csize, _ = _zip64_extra(extra, size, csize, 0)
        if (crc, csize, size) != (e.crc, e.compressed_size, e.size):
            raise ZipViolation(f"{e.name}: local header sizes or CRC differ from the directory")
    start = pos + 30 + n_len + e_len
    end = start + e.compressed_size
    if end > len(data):
        raise ZipViolation(f"{e.name}: member data runs past the end")
    if flags & (1 << 3):
        end = _data_descriptor(data, e, end)
    return Entry(e.name, e.method, e.flags, e.crc, e.compressed_size, e.size, pos, start, end)


def _data_descriptor(data: memoryview, e: Entry, pos: int) -> int:
    if bytes(data[pos : pos + 4]) == _DD:
        pos += 4
    zip64 = e.size >= _MAX_U32 or e.compressed_size >= _MAX_U32
    fmt = "<IQQ" if zip64 else "<III"
    width = struct.calcsize(fmt)
    if pos + width > len(data):
        raise ZipViolation(f"{e.name}: data descriptor truncated")
    crc, csize, size = struct.unpack_from(fmt, data, pos)
    if (crc, csize, size) != (e.crc, e.compressed_size, e.size):
        raise ZipViolation(f"{e.name}: data descriptor differs from the directory")
    return pos + width


def read_entries(data: memoryview, limits: Limits) -> list[Entry]:
    """Parse and cross-check the archive's structure (no member is decompressed yet)."""
    eocd = _find_eocd(data)
    cd_offset, _, count, cd_end = _central_directory(data, eocd)
    if count > limits.max_zip_members:
        raise LimitExceeded(
            "max_zip_members", f"{count} members exceed max_zip_members={limits.max_zip_members}"
        )
    entries = _read_central(data, cd_offset, cd_end, count)
    _check_names(entries)
    located = sorted((_locate(data, e) for e in entries), key=lambda e: e.header_offset)
    pos = 0
    for e in located:
        if e.header_offset != pos:
            kind = "prepended" if pos == 0 else "unaccounted"
            raise ZipViolation(f"{kind} bytes before member {e.name!r} (offset {pos})")
        pos = e.end_offset
    if pos != cd_offset:
        raise ZipViolation("unaccounted bytes between the last member and the central directory")
    return located


def member_bytes(
    data: memoryview, e: Entry, limits: Limits, deadline: Deadline, budget: list[int]
) -> memoryview:
    """The member's content, CRC-checked; ``budget`` holds the decompressed bytes left."""
    raw = data[e.data_offset : e.data_offset + e.compressed_size]
    if e.method == 0:
        content = raw
    else:
        if e.size > budget[0]:
            raise LimitExceeded(
                "max_decompressed_bytes",
                f"{e.name}: members exceed max_decompressed_bytes={limits.max_decompressed_bytes}",
            )
        if e.size > 64 << 20 and e.size > limits.max_ratio * max(e.compressed_size, 1):
            raise LimitExceeded(
                "max_ratio", f"{e.name}: ratio exceeds max_ratio={limits.max_ratio}"
            )
        content = memoryview(_inflate(raw, e))
        budget[0] -= e.size
    deadline.check()
    if len(content) != e.size:
        raise ZipViolation(f"{e.name}: size differs from the directory")
    if zlib.crc32(content) != e.crc:
        raise ZipViolation(f"{e.name}: CRC mismatch")
    return content


def _inflate(raw: memoryview, e: Entry) -> bytes:
    dec = zlib.decompressobj(wbits=-15)
    try:
        out = dec.decompress(raw, e.size + 1)
    except zlib.error as exc:
        raise ZipViolation(f"{e.name}: corrupt deflate data ({exc})") from None
    if not dec.eof or dec.unused_data or dec.unconsumed_tail or len(out) != e.size:
        raise ZipViolation(f"{e.name}: deflate data does not match the declared size")
    return out
