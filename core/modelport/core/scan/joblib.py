"""joblib files: one pickle whose ``NumpyArrayWrapper`` records are followed by raw array bytes.

joblib's unpickler, after BUILD of a wrapper, reads the array straight from the file: a padding
length byte and padding, then ``prod(shape) * itemsize`` bytes; for dtypes holding objects, a
nested pickle instead. The walk does the same by offset: it takes shape, dtype and order from the
wrapper's symbolic state, skips exactly the bytes joblib would read (no per-byte work), walks
nested pickles, and resumes with the opcodes after them, so nothing after an array escapes it.

A ``.pkl`` file written by ``joblib.dump`` may be loaded with either joblib or plain pickle. In
that mode (``plain_pickle=True``) an array record is accepted only where plain unpickling stops
with an error instead of running the array bytes as opcodes: the padding-length byte (1-16) that
joblib >= 1.2 writes after each wrapper is not a pickle opcode, and an object array's nested
pickle is itself walked. Records without that byte (joblib <= 1.1) are refused there.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from modelport.core.scan import compression
from modelport.core.scan.allowlist import policy
from modelport.core.scan.limits import Deadline, LimitExceeded, Limits
from modelport.core.scan.pickle import (
    Abort,
    Allowlist,
    DictV,
    Global,
    Instance,
    PickleWalker,
    trailing,
)
from modelport.core.scan.verdict import Code, Finding

WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_ARRAY_CLASSES = frozenset({"numpy.ndarray", "numpy.memmap", "numpy.matrix"})
_TYPESTR = re.compile(r"[biufcmMOSUV][0-9]{0,9}\Z")
_ALIGNMENT = 16
_MISSING = object()


class BadRecord(Exception):
    """An array record joblib and the scanner might read differently."""


@dataclass(frozen=True)
class DtypeInfo:
    itemsize: int
    hasobject: bool


def dtype_info(value: Any, depth: int = 0) -> DtypeInfo:
    """Item size and object-ness of a symbolic ``numpy.dtype(...)`` with its BUILD state.

    Only the canonical states numpy itself pickles are accepted; anything else could make numpy
    and the scanner disagree about how many bytes an array has.
    """
    if depth > 8:
        raise BadRecord("dtype nesting too deep")
    if not isinstance(value, Instance) or value.origin.qualname != "numpy.dtype":
        raise BadRecord("dtype is not a numpy.dtype(...) record")
    args = value.args
    if not args or not isinstance(args[0], str) or not _TYPESTR.match(args[0]):
        raise BadRecord("dtype type string is not a plain numpy type code")
    typestr = args[0]
    itemsize = _base_itemsize(typestr)
    state = value.state
    if state is None:
        return DtypeInfo(itemsize, typestr[0] == "O")
    if not isinstance(state, tuple) or len(state) not in (8, 9):
        raise BadRecord("dtype state has an unexpected shape")
    _, byteorder, subdescr, names, fields, elsize, _, flags = state[:8]
    if byteorder not in ("<", ">", "|", "=") or not isinstance(flags, int):
        raise BadRecord("dtype byte order or flags are not canonical")
    if not isinstance(elsize, int) or elsize not in (-1, itemsize):
        raise BadRecord("dtype element size disagrees with its type string")
    hasobject = typestr[0] == "O" or bool(flags & 1)
    if subdescr is not None:
        hasobject |= _check_subarray(subdescr, itemsize, depth)
    if names is not None or fields is not None:
        hasobject |= _check_fields(names, fields, itemsize, depth)
    return DtypeInfo(itemsize, hasobject)


def _base_itemsize(typestr: str) -> int:
    import numpy as np

    try:
        return int(np.dtype(typestr).itemsize)
    except TypeError:
        raise BadRecord(f"unknown dtype {typestr!r}") from None


def _check_subarray(subdescr: Any, itemsize: int, depth: int) -> bool:
    if not isinstance(subdescr, tuple) or len(subdescr) != 2:
        raise BadRecord("dtype subarray is not (dtype, shape)")
    base = dtype_info(subdescr[0], depth + 1)
    count = _count(subdescr[1])
    if base.itemsize * count != itemsize:
        raise BadRecord("dtype subarray size disagrees with the element size")
    return base.hasobject


def _check_fields(names: Any, fields: Any, itemsize: int, depth: int) -> bool:
    if not isinstance(names, tuple) or not isinstance(fields, DictV):
        raise BadRecord("structured dtype without names and fields")
    table = fields.str_items()
    if len(table) != len(fields.items) or set(table) != set(names) or len(names) != len(table):
        raise BadRecord("structured dtype names and fields disagree")
    hasobject = False
    for entry in table.values():
        if not isinstance(entry, tuple) or len(entry) not in (2, 3):
            raise BadRecord("structured dtype field is not (dtype, offset)")
        info = dtype_info(entry[0], depth + 1)
        offset = entry[1]
        if not isinstance(offset, int) or offset < 0 or offset + info.itemsize > itemsize:
            raise BadRecord("structured dtype field lies outside the element")
        hasobject |= info.hasobject
    return hasobject


def _count(shape: Any) -> int:
    if not isinstance(shape, tuple) or not all(type(n) is int and 0 <= n < 1 << 62 for n in shape):
        raise BadRecord("array shape is not a tuple of non-negative integers")
    return math.prod(shape) if shape else 1


class JoblibArrays:
    """The BUILD hook that reads array records the way joblib's unpickler does."""

    def __init__(
        self,
        data: Any,
        end: int,
        allowlist: Allowlist,
        limits: Limits,
        deadline: Deadline,
        location: str,
        findings: list[Finding],
        *,
        plain_pickle: bool = False,
    ) -> None:
        self.plain_pickle = plain_pickle
        self.data = data
        self.end = end
        self.allowlist = allowlist
        self.limits = limits
        self.deadline = deadline
        self.location = location
        self.findings = findings
        self.nested = 0
        self.walker: PickleWalker | None = None

    def __call__(self, wrapper: Instance, pos: int) -> int:
        try:
            after = self._read(wrapper, pos)
        except BadRecord as exc:
            raise Abort(
                Finding(Code.BAD_ARRAY_RECORD, f"{self.location}@{pos}", str(exc))
            ) from None
        if self.walker is not None:
            ndarray = Global("numpy", "ndarray", frozenset())
            self.walker.replace_top(Instance(ndarray, ()))
        return after

    def _read(self, wrapper: Instance, pos: int) -> int:
        attrs = wrapper.attrs
        subclass = attrs.get("subclass")
        if not isinstance(subclass, Global) or subclass.qualname not in _ARRAY_CLASSES:
            raise BadRecord("array wrapper subclass is not a numpy array class")
        if attrs.get("order") not in ("C", "F"):
            raise BadRecord("array wrapper order is not 'C' or 'F'")
        info = dtype_info(attrs.get("dtype"))
        count = _count(attrs.get("shape"))
        if info.hasobject:
            return self._nested(pos)
        align = attrs.get("numpy_array_alignment_bytes", _MISSING)
        if self.plain_pickle and (align is _MISSING or align is None):
            raise BadRecord(
                "an unaligned joblib array in a .pkl: plain unpickling would run the array bytes "
                "as opcodes; re-save with joblib >= 1.2 or upload it as .joblib"
            )
        if align is not _MISSING and align is not None:
            if align != _ALIGNMENT:
                raise BadRecord(f"array alignment {align!r} is not {_ALIGNMENT}")
            pos = self._padding(pos)
        size = count * info.itemsize
        if pos + size > self.end:
            raise BadRecord(f"array data ({size} bytes) runs past the end of the file")
        return pos + size

    def _padding(self, pos: int) -> int:
        if pos >= self.end:
            raise BadRecord("file ends before an array's padding byte")
        n = int(self.data[pos])
        pad_end = pos + 1 + n
        if n == 0 or n > _ALIGNMENT or pad_end > self.end:
            raise BadRecord(f"array padding length {n} is out of range")
        if any(b != 0xFF for b in bytes(self.data[pos + 1 : pad_end])):
            raise BadRecord("array padding is not 0xFF bytes")
        return pad_end

    def _nested(self, pos: int) -> int:
        self.nested += 1
        if self.nested > self.limits.max_nested_pickles:
            raise LimitExceeded(
                "max_nested_pickles",
                f"more than max_nested_pickles={self.limits.max_nested_pickles} object arrays",
            )
        inner = PickleWalker(
            self.data,
            self.allowlist,
            self.limits,
            self.deadline,
            location=f"{self.location}[object array]",
            findings=self.findings,
        )
        return inner.walk(pos, self.end).end


def walk_joblib(
    data: Any,
    allowlist: Allowlist,
    limits: Limits,
    deadline: Deadline,
    *,
    location: str = "joblib",
    plain_pickle: bool = False,
) -> list[Finding]:
    """Walk a decompressed joblib stream: one pickle with inline arrays, nothing after it."""
    end = len(data)
    findings: list[Finding] = []
    hook = JoblibArrays(
        data, end, allowlist, limits, deadline, location, findings, plain_pickle=plain_pickle
    )
    walker = PickleWalker(
        data,
        allowlist,
        limits,
        deadline,
        location=location,
        build_hooks={WRAPPER: hook},
        findings=findings,
    )
    hook.walker = walker
    try:
        result = walker.walk(0, end)
    except Abort as stop:
        return [*findings, stop.finding]
    if result.end != end:
        findings.append(trailing(data, result.end, end, location))
    return findings


def scan_pkl(data: memoryview, limits: Limits, deadline: Deadline, location: str) -> list[Finding]:
    """A ``.pkl``: one uncompressed pickle, nothing after its STOP. joblib array records are
    accepted only where plain unpickling and joblib read the file the same way (see above)."""
    return walk_joblib(data, policy("sklearn"), limits, deadline, location=location,
                       plain_pickle=True)  # fmt: skip


def scan_joblib(
    data: memoryview, limits: Limits, deadline: Deadline, location: str
) -> list[Finding]:
    """A ``.joblib``: decompressed as joblib would, then walked (through a window when long)."""
    if compression.is_pre_0_10(data):
        return [Finding(Code.UNSUPPORTED_FORMAT, location, "pre-0.10 joblib 'ZF' files")]
    kind = compression.detect(bytes(data[:8]))
    stream: Any = data
    if kind is not None:
        try:
            stream = compression.open_stream(data, kind, limits, deadline)
        except compression.BadStream as exc:
            return [Finding(Code.MALFORMED, location, str(exc))]
        inner = f"{location}[{kind.value}]"
        if len(stream) == 0 or stream[0] != 0x80:
            return [Finding(Code.WRAPPER_ARCHIVE, inner, "the compressed content is not a pickle")]
        location = inner
    return walk_joblib(stream, policy("sklearn"), limits, deadline, location=location)
