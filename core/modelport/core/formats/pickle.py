"""``.pkl``: one uncompressed pickle stream (a scikit-learn estimator or pipeline)."""

from __future__ import annotations

from modelport.core.formats.spec import (
    SNIFF_BYTES,
    Container,
    Family,
    FormatSpec,
    ModelFormat,
)

# Pickle opcodes a protocol 0/1 stream plausibly starts with: MARK, EMPTY_LIST, EMPTY_DICT,
# GLOBAL, NONE, EMPTY_TUPLE, INT, FLOAT, STRING, UNICODE.
_V0_FIRST = frozenset(b"(]}cN)IFSV")


def protocol(head: bytes) -> int | None:
    """The protocol a pickle stream's PROTO opcode declares (2 to 5), or None."""
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return head[1]
    return None


def sniff(head: bytes) -> tuple[Container, str] | None:
    version = protocol(head)
    if version is not None:
        return Container.PICKLE, f"pickle protocol {version}"
    if head[:1] and head[0] in _V0_FIRST:
        if head.rstrip().endswith(b".") and len(head) < SNIFF_BYTES:
            return Container.PICKLE, "pickle protocol 0/1"
        if len(head) >= SNIFF_BYTES:
            return Container.PICKLE, "pickle protocol 0/1 (by first opcode)"
    return None


SPEC = FormatSpec(
    name="pickle",
    family=Family.PICKLE,
    formats=(ModelFormat.PKL,),
    containers=frozenset({Container.PICKLE}),
    sniff=sniff,
    scanner="modelport.core.scan.joblib:scan_pkl",
    loader="modelport.runtime.loaders.sklearn",
    image="runtime-sklearn",
)
