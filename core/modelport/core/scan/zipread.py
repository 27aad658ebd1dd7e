"""A strict zip reader: accepts only archives that every loader reads the same way.

What each loader reads (PyTorch's ``PyTorchStreamReader`` is miniz built with
``MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS``; Python's ``zipfile`` serves ``servable_kind`` and
older ``torch.export.load``):

=====================  ==========================================  ==========================
record / field         miniz (``torch.load``, ``torch.jit.load``)   Python ``zipfile``
=====================  ==========================================  ==========================
end record             searched backwards; comment allowed         same
central directory      name (looked up case-insensitively), flags,  name (exact), flags,
                       method, sizes, offset, zip64 extra; CRC      method, sizes, offset,
                       stored but never checked                     zip64 extra; CRC checked
                                                                    when a member is read
local header           signature, name and extra lengths (to find   signature, name (must
                       the data); nothing else                      equal the directory's),
                                                                    name and extra lengths
data descriptor        never read                                   never read
=====================  ==========================================  ==========================

So this reader refuses every way two readers could take different bytes or different names:
duplicate and case-colliding names, path tricks, encryption and unknown flag bits, methods other
than stored and deflate, a local header whose name, flags, method (or, without a data
descriptor, CRC and sizes) differ from the directory, overlapping members, and any byte not
accounted for (prepended data, gaps between members, trailing data). Content must match the
directory's size and CRC (``zipfile`` checks it); an archive written with
``torch.serialization.set_crc32_options(False)`` records CRC 0 everywhere and is read without
the check, as torch reads it.

A data descriptor (flag bit 3) is read by no loader: its CRC and sizes are not compared with the
directory (some torch releases write one whose CRC disagrees for ``.data/serialization_id``).
Its place is still accounted for: the bytes between a member's data and the next record must be
exactly one descriptor, 12 or 20 bytes, with or without its signature.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace

from modelport.core.scan.limits import Deadline, LimitExceeded, Limits

_EOCD = b"PK\x05\x06"
_EOCD64 = b"PK\x06\x06"
_LOC64 = b"PK\x06\x07"
_CDH = b"PK\x01\x02"
_LFH = b"PK\x03\x04"
_DD = b"PK\x07\x08"
_DESCRIPTOR = 1 << 3
_ALLOWED_FLAGS = _DESCRIPTOR | (1 << 11)
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
    #: False when the writer skipped checksums (every member records CRC 0).
    crc_recorded: bool = True


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
    """The member's local header checked against the directory; where its data starts and
    ends (a data descriptor, if any, is placed by :func:`_descriptor_end` once every member's
    start is known)."""
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
    if not flags & _DESCRIPTOR:
        size, csize, _ = _zip64_extra(extra, size, csize, 0)
        if (crc, csize, size) != (e.crc, e.compressed_size, e.size):
            raise ZipViolation(f"{e.name}: local header sizes or CRC differ from the directory")
    start = pos + 30 + n_len + e_len
    end = start + e.compressed_size
    if end > len(data):
        raise ZipViolation(f"{e.name}: member data runs past the end")
    return replace(e, data_offset=start, end_offset=end)


def _descriptor_end(data: memoryview, e: Entry, following: int) -> int:
    """Where ``e``'s data descriptor ends, given the offset of the record that follows it: the
    gap must hold exactly one descriptor (signature optional; 32- or 64-bit sizes). Its values
    are not compared: no loader reads them."""
    gap = following - e.end_offset
    signed = bytes(data[e.end_offset : e.end_offset + 4]) == _DD
    if gap not in ((16, 24) if signed else (12, 20)):
        raise ZipViolation(f"{e.name}: {gap} bytes after the data are not one data descriptor")
    return following


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
    for i, e in enumerate(located):
        if e.header_offset != pos:
            kind = "prepended" if pos == 0 else "unaccounted"
            raise ZipViolation(f"{kind} bytes before member {e.name!r} (offset {pos})")
        following = located[i + 1].header_offset if i + 1 < len(located) else cd_offset
        if e.end_offset > following:
            raise ZipViolation(f"member {e.name!r} overlaps the next record")
        pos = _descriptor_end(data, e, following) if e.flags & _DESCRIPTOR else e.end_offset
    if pos != cd_offset:
        raise ZipViolation("unaccounted bytes between the last member and the central directory")
    if all(e.crc == 0 for e in located):
        # torch.serialization.set_crc32_options(False): torch reads such archives unchecked.
        return [replace(e, crc_recorded=False) for e in located]
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
    if e.crc_recorded and zlib.crc32(content) != e.crc:
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
