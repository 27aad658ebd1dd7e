"""``.onnx``: a protobuf ``ModelProto``, every tensor inside the file."""

from __future__ import annotations

from modelport.core.formats.spec import Container, Family, FormatSpec, ModelFormat

# ModelProto field numbers and their wire types (0 varint, 2 length-delimited).
_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


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


def _looks_like_model_proto(head: bytes) -> bool:
    """Walk the first protobuf fields: every one must be a known ModelProto field."""
    pos = 0
    seen = 0
    try:
        while pos < len(head) and seen < 8:
            tag, pos = _read_varint(head, pos)
            field, wire = tag >> 3, tag & 7
            if _FIELDS.get(field) != wire:
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


def sniff(head: bytes) -> tuple[Container, str] | None:
    if _looks_like_model_proto(head):
        return Container.PROTOBUF, "ONNX ModelProto"
    return None


SPEC = FormatSpec(
    name="onnx",
    family=Family.ONNX,
    formats=(ModelFormat.ONNX,),
    containers=frozenset({Container.PROTOBUF}),
    sniff=sniff,
    scanner="modelport.core.scan.onnx:scan_onnx",
    loader="modelport.runtime.loaders.onnx",
    image="runtime-onnx",
    gpu_image=True,
)
