"""``.joblib``: a pickle stream with joblib's array records, whole-file compressed or not.

joblib is the only supported format that compresses; :data:`COMPRESSIONS` is the one table of
the compressions it writes, read by sniffing here and by the scanner's decompression.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelport.core.formats.spec import Container, Family, FormatSpec, ModelFormat


@dataclass(frozen=True)
class Compression:
    container: Container
    #: What ``joblib.load`` decides by (joblib/compressor.py), and so what the scanner decodes by.
    joblib_prefix: bytes
    #: What sniffing asks for: the prefix or a longer signature; None where a check does instead.
    signature: bytes | None
    detail: str


COMPRESSIONS: tuple[Compression, ...] = (
    Compression(Container.ZLIB, b"\x78", None, "zlib stream (compressed joblib)"),
    Compression(Container.GZIP, b"\x1f\x8b", b"\x1f\x8b", "gzip signature"),
    Compression(Container.BZ2, b"BZ", b"BZh", "bz2 signature"),
    Compression(Container.XZ, b"\xfd7zXZ", b"\xfd7zXZ\x00", "xz signature"),
    Compression(Container.LZMA, b"\x5d\x00", b"\x5d\x00\x00", "lzma stream (compressed joblib)"),
    Compression(Container.LZ4, b"\x04\x22\x4d\x18", b"\x04\x22\x4d\x18", "lz4 signature"),
)

COMPRESSED = frozenset(c.container for c in COMPRESSIONS)


def _is_zlib(head: bytes) -> bool:
    """A zlib header: deflate with a window of at most 32 KiB, and its checksum."""
    if len(head) < 2 or head[0] & 0x0F != 8 or head[0] >> 4 > 7:
        return False
    return (head[0] << 8 | head[1]) % 31 == 0


def sniff(head: bytes) -> tuple[Container, str] | None:
    for compression in COMPRESSIONS:
        if compression.signature is None:
            found = _is_zlib(head)
        else:
            found = head.startswith(compression.signature)
        if found:
            return compression.container, compression.detail
    return None


SPEC = FormatSpec(
    name="joblib",
    family=Family.PICKLE,
    formats=(ModelFormat.JOBLIB,),
    containers=COMPRESSED | {Container.PICKLE},
    sniff=sniff,
    scanner="modelport.core.scan.joblib:scan_joblib",
    loader="modelport.runtime.loaders.sklearn",
    image="runtime-sklearn",
)
