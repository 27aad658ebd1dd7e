"""Model formats, and telling them apart from the bytes rather than from the file name.

Six upload formats fall into four families. ``pkl`` and ``joblib`` are both pickle streams
(joblib's possibly compressed), ``pt`` and ``pth`` are both PyTorch files (a zip archive or a legacy
pickle stream), ``h5`` is HDF5, ``onnx`` is a protobuf ``ModelProto``. A file whose name and content
name different families is refused with both in the message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import PurePath

from modelport.core.errors import BadInput

#: How many leading bytes :func:`sniff` wants to see.
SNIFF_BYTES = 4096


class ModelFormat(enum.StrEnum):
    PKL = "pkl"
    JOBLIB = "joblib"
    H5 = "h5"
    ONNX = "onnx"
    PT = "pt"
    PTH = "pth"

    @property
    def family(self) -> Family:
        return _FAMILY[self]


class Family(enum.StrEnum):
    PICKLE = "pickle"
    HDF5 = "hdf5"
    ONNX = "onnx"
    TORCH = "torch"


_FAMILY: dict[ModelFormat, Family] = {
    ModelFormat.PKL: Family.PICKLE,
    ModelFormat.JOBLIB: Family.PICKLE,
    ModelFormat.H5: Family.HDF5,
    ModelFormat.ONNX: Family.ONNX,
    ModelFormat.PT: Family.TORCH,
    ModelFormat.PTH: Family.TORCH,
}

SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(f".{f.value}" for f in ModelFormat)


class Container(enum.StrEnum):
    """The outermost encoding the bytes start with."""

    PICKLE = "pickle"
    ZLIB = "zlib"
    GZIP = "gzip"
    BZ2 = "bz2"
    XZ = "xz"
    LZMA = "lzma"
    LZ4 = "lz4"
    ZIP = "zip"
    HDF5 = "hdf5"
    PROTOBUF = "protobuf"
    UNKNOWN = "unknown"


# Magic numbers, longest first where they share a prefix.
_MAGIC: tuple[tuple[bytes, Container], ...] = (
    (b"\x89HDF\r\n\x1a\n", Container.HDF5),
    (b"PK\x03\x04", Container.ZIP),
    (b"PK\x05\x06", Container.ZIP),  # empty zip
    (b"\x1f\x8b", Container.GZIP),
    (b"BZh", Container.BZ2),
    (b"\xfd7zXZ\x00", Container.XZ),
    (b"\x04\x22\x4d\x18", Container.LZ4),
)

# Pickle opcodes a protocol 0/1 stream plausibly starts with: MARK, EMPTY_LIST, EMPTY_DICT,
# GLOBAL, NONE, EMPTY_TUPLE, INT, FLOAT, STRING, UNICODE.
_PICKLE_V0_FIRST = frozenset(b"(]}cN)IFSV")


@dataclass(frozen=True)
class Sniffed:
    container: Container
    family: Family | None
    detail: str


def sniff(head: bytes) -> Sniffed:
    """Identify the container and family from the first bytes of a file."""
    if len(head) == 0:
        return Sniffed(Container.UNKNOWN, None, "empty file")
    for magic, container in _MAGIC:
        if head.startswith(magic):
            return Sniffed(container, _family_of(container, head), f"{container.value} signature")
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        family = Family.TORCH if _is_legacy_torch(head) else Family.PICKLE
        return Sniffed(Container.PICKLE, family, f"pickle protocol {head[1]}")
    if _is_zlib(head):
        return Sniffed(Container.ZLIB, Family.PICKLE, "zlib stream (compressed joblib)")
    if head[:3] == b"\x5d\x00\x00":
        return Sniffed(Container.LZMA, Family.PICKLE, "lzma stream (compressed joblib)")
    if _looks_like_onnx(head):
        return Sniffed(Container.PROTOBUF, Family.ONNX, "ONNX ModelProto")
    if head[0] in _PICKLE_V0_FIRST and head.rstrip().endswith(b".") and len(head) < SNIFF_BYTES:
        return Sniffed(Container.PICKLE, Family.PICKLE, "pickle protocol 0/1")
    if head[0] in _PICKLE_V0_FIRST and len(head) >= SNIFF_BYTES:
        return Sniffed(Container.PICKLE, Family.PICKLE, "pickle protocol 0/1 (by first opcode)")
    return Sniffed(Container.UNKNOWN, None, "no known model signature")


def _family_of(container: Container, head: bytes) -> Family | None:
    if container is Container.HDF5:
        return Family.HDF5
    if container is Container.ZIP:
        return Family.TORCH
    # Compressed streams: joblib is the only supported format that compresses.
    return Family.PICKLE


def _is_zlib(head: bytes) -> bool:
    if len(head) < 2 or head[0] & 0x0F != 8 or head[0] >> 4 > 7:
        return False
    return (head[0] << 8 | head[1]) % 31 == 0


# torch.save's legacy format starts with a pickled magic number 0x1950a86a20f9469cfc6c.
_TORCH_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _is_legacy_torch(head: bytes) -> bool:
    return _TORCH_LEGACY_MAGIC in head[:32]


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while pos < len(buf) and shift < 64:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
    raise ValueError("truncated varint")


# ModelProto field numbers and their wire types (0 varint, 2 length-delimited).
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def _looks_like_onnx(head: bytes) -> bool:
    """Walk the first protobuf fields: every one must be a known ModelProto field."""
    pos = 0
    seen = 0
    try:
        while pos < len(head) and seen < 8:
            tag, pos = _read_varint(head, pos)
            field, wire = tag >> 3, tag & 7
            if _ONNX_FIELDS.get(field) != wire:
                return False
            if wire == 0:
                _, pos = _read_varint(head, pos)
            else:
                length, pos = _read_varint(head, pos)
                pos += length
            seen += 1
    except ValueError:
        return seen > 0
    # ir_version (field 1, varint) comes first in every exporter we know.
    return seen > 0 and head[0] == 0x08


def format_from_name(filename: str) -> ModelFormat:
    """The format an upload's file name claims, or a 400 listing the supported ones."""
    suffix = PurePath(filename).suffix.lower().lstrip(".")
    try:
        return ModelFormat(suffix)
    except ValueError:
        raise UnsupportedFormat(
            f"unsupported file type {suffix or '(none)'!r}; supported formats: "
            + ", ".join(SUPPORTED_EXTENSIONS),
            details={"supportedFormats": list(SUPPORTED_EXTENSIONS)},
        ) from None


def resolve_format(filename: str, head: bytes) -> tuple[ModelFormat, Sniffed]:
    """Check that the name's format and the content's family agree, and return both."""
    claimed = format_from_name(filename)
    found = sniff(head)
    if found.family is None:
        raise FormatMismatch(
            f"{filename!r} is named as {claimed.value} but its content is not a model file "
            f"({found.detail})",
            details={"claimed": claimed.value, "detected": found.detail},
        )
    if found.family is not claimed.family:
        raise FormatMismatch(
            f"{filename!r} is named as {claimed.value} ({claimed.family.value}) but its content is "
            f"{found.family.value} ({found.detail})",
            details={"claimed": claimed.value, "detected": found.family.value},
        )
    return claimed, found


class UnsupportedFormat(BadInput):
    code = "unsupported_format"


class FormatMismatch(BadInput):
    code = "format_mismatch"
