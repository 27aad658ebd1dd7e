"""A strict, symbolic walk of a pickle opcode stream.

Nothing is imported, called or unpickled: the walker keeps a model of the unpickler's stack and
memo made of inert values (:class:`Global`, :class:`Instance`, plain literals) and checks every
import and every call site against an allowlist. It accepts a strict subset of what the CPython
unpickler accepts over the same bytes and rejects whatever the loader and a scanner could read
differently (frames that do not tile, PROTO anywhere but first, text opcodes, bytes after STOP).

Big binary payloads (BINBYTES*, BYTEARRAY8) are skipped by offset, never copied or decoded, so a
walk costs time per opcode, not per byte.
"""

from __future__ import annotations

import _compat_pickle
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn, Protocol

from modelport.core.scan.limits import Deadline, LimitExceeded, Limits, require
from modelport.core.scan.verdict import Code, Finding
from modelport.core.scan.window import Window

#: How an allowlisted global may be used (see allowlist.toml).
USES = frozenset({"call", "new", "build", "setitems", "appends", "additems"})
ALL_USES = USES

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_MAX_FINDINGS = 50
#: Fixed-size operands, unpacked from slices so that the data may be a stream window.
_U16, _U32, _I32, _U64, _F64 = (struct.Struct(f) for f in ("<H", "<I", "<i", "<Q", ">d"))
_SHORT_TEXT = 4096


#: What the walker reads (a mapped file is passed as a memoryview of the mmap; a long
#: decompressed stream as a window over it).
Buffer = bytes | bytearray | memoryview | Window


# ---------------------------------------------------------------------------------------------
# Symbolic values


class Global:
    """A name the pickle imports, with the uses the allowlist grants it."""

    __slots__ = ("module", "name", "uses")

    def __init__(self, module: str, name: str, uses: frozenset[str]) -> None:
        self.module = module
        self.name = name
        self.uses = uses

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    def __repr__(self) -> str:
        return f"Global({self.qualname})"


class Instance:
    """What calling or instantiating an allowlisted global would have produced."""

    __slots__ = ("args", "attrs", "origin", "state")

    def __init__(self, origin: Global, args: tuple[Any, ...]) -> None:
        self.origin = origin
        self.args = args
        self.state: Any = None
        self.attrs: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Instance({self.origin.qualname})"


class Poison:
    """A value derived from something already reported; using it adds no further findings."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Poison"


POISON = Poison()


class Blob:
    """A bytes or bytearray payload, kept by size only."""

    __slots__ = ("offset", "size")

    def __init__(self, offset: int, size: int) -> None:
        self.offset = offset
        self.size = size


class LongText:
    """A string too long to be worth decoding (never a name or a key we look at)."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class ListV:
    __slots__ = ("items",)

    def __init__(self, items: list[Any] | None = None) -> None:
        self.items: list[Any] = items if items is not None else []


class DictV:
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[Any, Any]] | None = None) -> None:
        self.items: list[tuple[Any, Any]] = items if items is not None else []

    def str_items(self) -> dict[str, Any]:
        """The entries whose key is a plain string (later keys win, as in a dict)."""
        return {k: v for k, v in self.items if isinstance(k, str)}


class SetV:
    __slots__ = ("frozen", "items")

    def __init__(self, items: list[Any] | None = None, *, frozen: bool = False) -> None:
        self.items: list[Any] = items if items is not None else []
        self.frozen = frozen


def describe(value: Any) -> str:
    """A short, safe description of a symbolic value for messages."""
    if isinstance(value, Global):
        return value.qualname
    if isinstance(value, Instance):
        return f"an object made by {value.origin.qualname}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, ListV | DictV | SetV | tuple):
        return f"a {type(value).__name__.removesuffix('V').lower()}"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------------
# Policy and hooks


class Allowlist(Protocol):
    def uses(self, module: str, name: str) -> frozenset[str] | None: ...

    def argument_ok(self, callee: str, index: int, argument: str) -> bool:
        """May ``argument`` (an allowlisted name) be passed at ``index`` to ``callee``?"""
        ...


class Recorder:
    """An allowlist that allows everything and records every use (for building allowlists)."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {}
        self.arguments: dict[str, dict[int, set[str]]] = {}

    def uses(self, module: str, name: str) -> frozenset[str]:
        self.seen.setdefault(f"{module}.{name}", set())
        return ALL_USES

    def note(self, glob: Global, use: str) -> None:
        self.seen.setdefault(glob.qualname, set()).add(use)

    def argument_ok(self, callee: str, index: int, argument: str) -> bool:
        self.arguments.setdefault(callee, {}).setdefault(index, set()).add(argument)
        return True


class Abort(Exception):
    """Stops a walk at the first structural problem."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


#: Called for BINPERSID with the persistent id; returns the value to push.
PersistentLoad = Callable[[Any, int], Any]
#: Called after BUILD on an object the hook claims; returns the offset to resume at.
BuildHook = Callable[[Instance, int], int]


@dataclass
class WalkResult:
    end: int
    root: Any
    protocol: int


@dataclass
class PickleWalker:
    """Walks one pickle stream in ``data[start:end]``; findings accumulate in ``findings``."""

    data: Buffer
    allowlist: Allowlist
    limits: Limits
    deadline: Deadline
    location: str = "pickle"
    persistent_load: PersistentLoad | None = None
    build_hooks: Mapping[str, BuildHook] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._recorder = self.allowlist if isinstance(self.allowlist, Recorder) else None

    # -- entry point ---------------------------------------------------------------------------

    def walk(self, start: int, end: int) -> WalkResult:
        """Walk one pickle starting at ``start``; return where its STOP ends."""
        self._end = end
        self._stack: list[Any] = []
        self._meta: list[list[Any]] = []
        self._memo: dict[int, Any] = {}
        self._elements = 0
        self._frame_end: int | None = None
        pos = self._proto(start)
        table = self._table
        count = 0
        max_ops = self.limits.max_opcodes
        data = self.data
        while True:
            if pos >= end:
                self._abort(Code.MALFORMED, pos, "the pickle ends without a STOP opcode")
            if self._frame_end is not None and pos == self._frame_end:
                self._frame_end = None
            op = data[pos]
            handler = table.get(op)
            if handler is None:
                self._reject_opcode(op, pos)
            self._op_pos = pos
            new = handler(self, pos + 1)
            if self._frame_end is not None and new > self._frame_end:
                self._abort(Code.FRAME_VIOLATION, pos, "an opcode runs past the end of its FRAME")
            count += 1
            if count & 0xFFF == 0:
                require("max_opcodes", count, max_ops, "pickle opcodes")
                self.deadline.check()
            if op == _STOP:
                if self._frame_end is not None and new != self._frame_end:
                    self._abort(Code.FRAME_VIOLATION, pos, "STOP before the end of its FRAME")
                return WalkResult(new, self._root, self._protocol)
            pos = new

    # -- helpers -------------------------------------------------------------------------------

    def _where(self, pos: int) -> str:
        return f"{self.location}@{pos}"

    def _abort(self, code: Code, pos: int, message: str) -> NoReturn:
        raise Abort(Finding(code, self._where(pos), message))

    def _report(self, code: Code, message: str) -> None:
        if len(self.findings) < _MAX_FINDINGS:
            self.findings.append(Finding(code, self._where(self._op_pos), message))

    def _need(self, pos: int, n: int) -> int:
        """Check that ``n`` bytes are there at ``pos``; return the offset after them."""
        after = pos + n
        if n < 0 or after > self._end:
            self._abort(Code.MALFORMED, pos, "the pickle is truncated inside an opcode")
        return after

    def _proto(self, start: int) -> int:
        self._op_pos = start
        self._root: Any = None
        if start + 2 > self._end or self.data[start] != _PROTO:
            self._abort(
                Code.DISALLOWED_OPCODE,
                start,
                "the pickle does not start with a PROTO opcode (protocols 0 and 1 are refused)",
            )
        proto = self.data[start + 1]
        if not 2 <= proto <= 5:
            self._abort(Code.MALFORMED, start, f"unsupported pickle protocol {proto}")
        self._protocol = proto
        return start + 2

    def _push(self, value: Any) -> None:
        stack = self._stack
        stack.append(value)
        if len(stack) > self.limits.max_stack:
            raise LimitExceeded(
                "max_stack", f"pickle stack exceeds max_stack={self.limits.max_stack}"
            )

    def _pop(self) -> Any:
        if not self._stack:
            self._abort(Code.MALFORMED, self._op_pos, "pickle stack underflow")
        return self._stack.pop()

    def _top(self) -> Any:
        if not self._stack:
            self._abort(Code.MALFORMED, self._op_pos, "pickle stack underflow")
        return self._stack[-1]

    def _pop_mark(self) -> list[Any]:
        if not self._meta:
            self._abort(Code.MALFORMED, self._op_pos, "no MARK to pop to")
        items = self._stack
        self._stack = self._meta.pop()
        return items

    def _grow(self, n: int) -> None:
        self._elements += n
        if self._elements > self.limits.max_elements:
            raise LimitExceeded(
                "max_elements",
                f"pickle containers exceed max_elements={self.limits.max_elements}",
            )

    def _note(self, glob: Global, use: str) -> None:
        if self._recorder is not None:
            self._recorder.note(glob, use)

    def _reject_opcode(self, op: int, pos: int) -> NoReturn:
        name = _REJECTED.get(op)
        if name is None:
            self._abort(Code.MALFORMED, pos, f"unknown opcode 0x{op:02x}")
        detail = ""
        if op == _INST:
            detail = self._text_global_for_message(pos + 1)
        self._abort(
            Code.DISALLOWED_OPCODE, pos, f"opcode {name}{detail} is not accepted in model files"
        )

    def _text_global_for_message(self, pos: int) -> str:
        chunk = bytes(self.data[pos : min(pos + 512, self._end)])
        parts = chunk.split(b"\n", 2)
        if len(parts) < 3:
            return ""
        return " importing " + (parts[0] + b"." + parts[1]).decode("ascii", "replace")

    def _read_line(self, pos: int) -> tuple[str, int]:
        data = self.data
        limit = min(self._end, pos + 1024)
        i = pos
        while i < limit and data[i] != 0x0A:
            i += 1
        if i >= limit:
            self._abort(Code.MALFORMED, pos, "unterminated or overlong GLOBAL line")
        raw = bytes(data[pos:i])
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            self._abort(Code.UNRESOLVED_GLOBAL, pos, "non-ASCII GLOBAL name")
        return text, i + 1

    def _text(self, pos: int, n: int) -> tuple[Any, int]:
        after = self._need(pos, n)
        require("max_string_bytes", n, self.limits.max_string_bytes, "pickle string")
        if n > _SHORT_TEXT:
            return LongText(n), after
        try:
            return str(bytes(self.data[pos:after]), "utf-8", "surrogatepass"), after
        except UnicodeDecodeError:
            return self._abort(Code.MALFORMED, pos, "a string is not valid UTF-8")

    def _resolve(self, module: str, name: str) -> Any:
        if not _MODULE.match(module) or not _IDENT.match(name):
            self._report(
                Code.DISALLOWED_GLOBAL,
                f"import of {module!r}/{name!r}: dotted or unusual names are not accepted",
            )
            return POISON
        if self._protocol < 3:
            module, name = _compat(module, name)
        uses = self.allowlist.uses(module, name)
        if uses is None:
            self._report(Code.DISALLOWED_GLOBAL, f"import of {module}.{name} is not allowlisted")
            return POISON
        return Global(module, name, uses)

    # -- opcode handlers: each takes the offset after the opcode byte, returns the next offset --

    def _op_frame(self, pos: int) -> int:
        if self._protocol < 4:
            self._abort(Code.FRAME_VIOLATION, pos - 1, "FRAME in a protocol < 4 pickle")
        if self._frame_end is not None:
            self._abort(Code.FRAME_VIOLATION, pos - 1, "FRAME before the end of the current frame")
        after = self._need(pos, 8)
        (n,) = _U64.unpack(self.data[pos : pos + 8])
        if n == 0 or after + n > self._end:
            self._abort(Code.FRAME_VIOLATION, pos - 1, "FRAME length is zero or runs past the end")
        self._frame_end = after + n
        return after

    def _op_proto(self, pos: int) -> int:
        return self._abort(Code.MISPLACED_PROTO, pos - 1, "PROTO opcode after the start")

    def _op_stop(self, pos: int) -> int:
        if len(self._stack) != 1 or self._meta:
            self._abort(Code.MALFORMED, pos - 1, "STOP with a stack that is not one value")
        self._root = self._stack.pop()
        return pos

    def _op_mark(self, pos: int) -> int:
        self._meta.append(self._stack)
        self._stack = []
        require("max_depth", len(self._meta), self.limits.max_depth, "MARK nesting")
        return pos

    def _op_pop(self, pos: int) -> int:
        if self._stack:
            self._stack.pop()
        else:
            self._pop_mark()
        return pos

    def _op_pop_mark(self, pos: int) -> int:
        self._pop_mark()
        return pos

    def _op_none(self, pos: int) -> int:
        self._push(None)
        return pos

    def _op_true(self, pos: int) -> int:
        self._push(True)
        return pos

    def _op_false(self, pos: int) -> int:
        self._push(False)
        return pos

    def _op_binint(self, pos: int) -> int:
        after = self._need(pos, 4)
        self._push(_I32.unpack(self.data[pos : pos + 4])[0])
        return after

    def _op_binint1(self, pos: int) -> int:
        after = self._need(pos, 1)
        self._push(self.data[pos])
        return after

    def _op_binint2(self, pos: int) -> int:
        after = self._need(pos, 2)
        self._push(_U16.unpack(self.data[pos : pos + 2])[0])
        return after

    def _long(self, pos: int, n: int) -> int:
        require("max_long_bytes", n, self.limits.max_long_bytes, "pickle integer")
        after = self._need(pos, n)
        self._push(int.from_bytes(bytes(self.data[pos:after]), "little", signed=True))
        return after

    def _op_long1(self, pos: int) -> int:
        self._need(pos, 1)
        return self._long(pos + 1, self.data[pos])

    def _op_long4(self, pos: int) -> int:
        self._need(pos, 4)
        (n,) = _I32.unpack(self.data[pos : pos + 4])
        if n < 0:
            self._abort(Code.MALFORMED, pos, "negative LONG4 length")
        return self._long(pos + 4, n)

    def _op_binfloat(self, pos: int) -> int:
        after = self._need(pos, 8)
        self._push(_F64.unpack(self.data[pos : pos + 8])[0])
        return after

    def _op_short_binunicode(self, pos: int) -> int:
        self._need(pos, 1)
        value, after = self._text(pos + 1, self.data[pos])
        self._push(value)
        return after

    def _op_binunicode(self, pos: int) -> int:
        self._need(pos, 4)
        value, after = self._text(pos + 4, _U32.unpack(self.data[pos : pos + 4])[0])
        self._push(value)
        return after

    def _op_binunicode8(self, pos: int) -> int:
        self._need(pos, 8)
        value, after = self._text(pos + 8, _U64.unpack(self.data[pos : pos + 8])[0])
        self._push(value)
        return after

    def _bytes(self, pos: int, n: int) -> int:
        after = self._need(pos, n)
        self._push(Blob(pos, n))
        return after

    def _op_short_binbytes(self, pos: int) -> int:
        self._need(pos, 1)
        return self._bytes(pos + 1, self.data[pos])

    def _op_binbytes(self, pos: int) -> int:
        self._need(pos, 4)
        return self._bytes(pos + 4, _U32.unpack(self.data[pos : pos + 4])[0])

    def _op_binbytes8(self, pos: int) -> int:
        self._need(pos, 8)
        return self._bytes(pos + 8, _U64.unpack(self.data[pos : pos + 8])[0])

    def _op_empty_tuple(self, pos: int) -> int:
        self._push(())
        return pos

    def _op_tuple(self, pos: int) -> int:
        items = self._pop_mark()
        self._push(tuple(items))
        return pos

    def _op_tuple1(self, pos: int) -> int:
        self._push((self._pop(),))
        return pos

    def _op_tuple2(self, pos: int) -> int:
        b = self._pop()
        a = self._pop()
        self._push((a, b))
        return pos

    def _op_tuple3(self, pos: int) -> int:
        c = self._pop()
        b = self._pop()
        a = self._pop()
        self._push((a, b, c))
        return pos

    def _op_empty_list(self, pos: int) -> int:
        self._push(ListV())
        return pos

    def _op_list(self, pos: int) -> int:
        items = self._pop_mark()
        self._grow(len(items))
        self._push(ListV(items))
        return pos

    def _op_empty_dict(self, pos: int) -> int:
        self._push(DictV())
        return pos

    def _op_dict(self, pos: int) -> int:
        items = self._pop_mark()
        if len(items) % 2:
            self._abort(Code.MALFORMED, pos - 1, "DICT with an odd number of items")
        self._grow(len(items) // 2)
        self._push(DictV(list(zip(items[::2], items[1::2], strict=True))))
        return pos

    def _op_empty_set(self, pos: int) -> int:
        self._push(SetV())
        return pos

    def _op_frozenset(self, pos: int) -> int:
        items = self._pop_mark()
        self._grow(len(items))
        self._push(SetV(items, frozen=True))
        return pos

    def _mutate(self, target: Any, kind: type, use: str, items: list[Any], what: str) -> None:
        self._grow(len(items))
        if isinstance(target, kind) and not (isinstance(target, SetV) and target.frozen):
            target.items.extend(items)  # type: ignore[attr-defined]
            return
        if isinstance(target, Instance) and use in target.origin.uses:
            self._note(target.origin, use)
            return
        if isinstance(target, Poison):
            return
        self._report(Code.DISALLOWED_MUTATION, f"{what} on {describe(target)} is not allowed")

    def _op_append(self, pos: int) -> int:
        value = self._pop()
        self._mutate(self._top(), ListV, "appends", [value], "APPEND")
        return pos

    def _op_appends(self, pos: int) -> int:
        items = self._pop_mark()
        self._mutate(self._top(), ListV, "appends", items, "APPENDS")
        return pos

    def _op_setitem(self, pos: int) -> int:
        value = self._pop()
        key = self._pop()
        self._mutate(self._top(), DictV, "setitems", [(key, value)], "SETITEM")
        return pos

    def _op_setitems(self, pos: int) -> int:
        items = self._pop_mark()
        if len(items) % 2:
            self._abort(Code.MALFORMED, pos - 1, "SETITEMS with an odd number of items")
        pairs = list(zip(items[::2], items[1::2], strict=True))
        self._mutate(self._top(), DictV, "setitems", pairs, "SETITEMS")
        return pos

    def _op_additems(self, pos: int) -> int:
        items = self._pop_mark()
        self._mutate(self._top(), SetV, "additems", items, "ADDITEMS")
        return pos

    def _memo_put(self, key: int) -> None:
        self._memo[key] = self._top()
        require("max_memo", len(self._memo), self.limits.max_memo, "pickle memo entries")

    def _op_memoize(self, pos: int) -> int:
        self._memo_put(len(self._memo))
        return pos

    def _op_binput(self, pos: int) -> int:
        after = self._need(pos, 1)
        self._memo_put(self.data[pos])
        return after

    def _op_long_binput(self, pos: int) -> int:
        after = self._need(pos, 4)
        self._memo_put(_U32.unpack(self.data[pos : pos + 4])[0])
        return after

    def _memo_get(self, key: int, pos: int) -> None:
        if key not in self._memo:
            self._abort(Code.MALFORMED, pos - 1, f"memo key {key} was never stored")
        self._push(self._memo[key])

    def _op_binget(self, pos: int) -> int:
        after = self._need(pos, 1)
        self._memo_get(self.data[pos], pos)
        return after

    def _op_long_binget(self, pos: int) -> int:
        after = self._need(pos, 4)
        self._memo_get(_U32.unpack(self.data[pos : pos + 4])[0], pos)
        return after

    def _op_global(self, pos: int) -> int:
        module, pos = self._read_line(pos)
        name, pos = self._read_line(pos)
        self._push(self._resolve(module, name))
        return pos

    def _op_stack_global(self, pos: int) -> int:
        name = self._pop()
        module = self._pop()
        if type(name) is not str or type(module) is not str:
            self._report(
                Code.UNRESOLVED_GLOBAL,
                f"STACK_GLOBAL from {describe(module)} and {describe(name)}, not two strings",
            )
            self._push(POISON)
        else:
            self._push(self._resolve(module, name))
        return pos

    def _call(self, func: Any, args: Any, use: str, opname: str) -> Any:
        if not isinstance(args, tuple):
            return self._abort(Code.MALFORMED, self._op_pos, f"{opname} arguments are not a tuple")
        if isinstance(func, Poison):
            return POISON
        if isinstance(func, Global):
            if use in func.uses:
                self._note(func, use)
                self._check_arguments(func, args, opname)
                return Instance(func, args)
            verb = "calling" if use == "call" else "instantiating"
            self._report(Code.DISALLOWED_CALL, f"{opname}: {verb} {func.qualname} is not allowed")
            return POISON
        self._report(Code.DISALLOWED_CALL, f"{opname} on {describe(func)}, not an allowlisted name")
        return POISON

    def _check_arguments(self, func: Global, args: tuple[Any, ...], opname: str) -> None:
        """A name passed straight to a call must be allowed for that call and position."""
        for index, arg in enumerate(args):
            if isinstance(arg, Global) and not self.allowlist.argument_ok(
                func.qualname, index, arg.qualname
            ):
                self._report(
                    Code.DISALLOWED_CALL,
                    f"{opname}: passing {arg.qualname} to {func.qualname} is not allowed",
                )

    def _op_reduce(self, pos: int) -> int:
        args = self._pop()
        func = self._pop()
        self._push(self._call(func, args, "call", "REDUCE"))
        return pos

    def _op_newobj(self, pos: int) -> int:
        args = self._pop()
        cls = self._pop()
        self._push(self._call(cls, args, "new", "NEWOBJ"))
        return pos

    def _op_newobj_ex(self, pos: int) -> int:
        kwargs = self._pop()
        args = self._pop()
        cls = self._pop()
        if not isinstance(kwargs, DictV):
            self._abort(Code.MALFORMED, pos - 1, "NEWOBJ_EX keyword arguments are not a dict")
        for key, value in kwargs.items:
            if isinstance(value, Global):
                self._report(
                    Code.DISALLOWED_CALL,
                    f"NEWOBJ_EX: passing {value.qualname} as keyword {key!r} is not allowed",
                )
        self._push(self._call(cls, args, "new", "NEWOBJ_EX"))
        return pos

    def _op_build(self, pos: int) -> int:
        state = self._pop()
        target = self._top()
        if isinstance(target, Poison):
            return pos
        if not isinstance(target, Instance) or "build" not in target.origin.uses:
            self._report(Code.DISALLOWED_BUILD, f"BUILD on {describe(target)} is not allowed")
            return pos
        self._note(target.origin, "build")
        target.state = state
        _merge_attrs(target, state)
        hook = self.build_hooks.get(target.origin.qualname)
        if hook is None:
            return pos
        if self._frame_end is not None and self._frame_end != pos:
            self._abort(Code.FRAME_VIOLATION, pos - 1, "array data starts inside a FRAME")
        self._frame_end = None
        return hook(target, pos)

    def _op_binpersid(self, pos: int) -> int:
        pid = self._pop()
        if self.persistent_load is None:
            self._abort(Code.DISALLOWED_OPCODE, pos - 1, "persistent ids are not accepted here")
        assert self.persistent_load is not None
        self._push(self.persistent_load(pid, pos - 1))
        return pos

    def replace_top(self, value: Any) -> None:
        """Let a build hook swap the object on top of the stack (joblib: wrapper -> array)."""
        self._stack[-1] = value

    _table: ClassVar[dict[int, Callable[[PickleWalker, int], int]]]


def _merge_attrs(target: Instance, state: Any) -> None:
    if isinstance(state, tuple) and len(state) == 2:
        for part in state:
            if isinstance(part, DictV):
                target.attrs.update(part.str_items())
    elif isinstance(state, DictV):
        target.attrs.update(state.str_items())


def _compat(module: str, name: str) -> tuple[str, str]:
    """The renames the unpickler applies to protocol < 3 names (``fix_imports``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


_PROTO = 0x80
_STOP = 0x2E
_INST = 0x69

PickleWalker._table = {
    0x80: PickleWalker._op_proto,
    0x95: PickleWalker._op_frame,
    0x2E: PickleWalker._op_stop,  # .
    0x28: PickleWalker._op_mark,  # (
    0x30: PickleWalker._op_pop,  # 0
    0x31: PickleWalker._op_pop_mark,  # 1
    0x4E: PickleWalker._op_none,  # N
    0x88: PickleWalker._op_true,
    0x89: PickleWalker._op_false,
    0x4A: PickleWalker._op_binint,  # J
    0x4B: PickleWalker._op_binint1,  # K
    0x4D: PickleWalker._op_binint2,  # M
    0x8A: PickleWalker._op_long1,
    0x8B: PickleWalker._op_long4,
    0x47: PickleWalker._op_binfloat,  # G
    0x8C: PickleWalker._op_short_binunicode,
    0x58: PickleWalker._op_binunicode,  # X
    0x8D: PickleWalker._op_binunicode8,
    0x43: PickleWalker._op_short_binbytes,  # C
    0x42: PickleWalker._op_binbytes,  # B
    0x8E: PickleWalker._op_binbytes8,
    0x96: PickleWalker._op_binbytes8,  # BYTEARRAY8: same layout
    0x29: PickleWalker._op_empty_tuple,  # )
    0x74: PickleWalker._op_tuple,  # t
    0x85: PickleWalker._op_tuple1,
    0x86: PickleWalker._op_tuple2,
    0x87: PickleWalker._op_tuple3,
    0x5D: PickleWalker._op_empty_list,  # ]
    0x6C: PickleWalker._op_list,  # l
    0x61: PickleWalker._op_append,  # a
    0x65: PickleWalker._op_appends,  # e
    0x7D: PickleWalker._op_empty_dict,  # }
    0x64: PickleWalker._op_dict,  # d
    0x73: PickleWalker._op_setitem,  # s
    0x75: PickleWalker._op_setitems,  # u
    0x8F: PickleWalker._op_empty_set,
    0x90: PickleWalker._op_additems,
    0x91: PickleWalker._op_frozenset,
    0x94: PickleWalker._op_memoize,
    0x71: PickleWalker._op_binput,  # q
    0x72: PickleWalker._op_long_binput,  # r
    0x68: PickleWalker._op_binget,  # h
    0x6A: PickleWalker._op_long_binget,  # j
    0x63: PickleWalker._op_global,  # c
    0x93: PickleWalker._op_stack_global,
    0x52: PickleWalker._op_reduce,  # R
    0x81: PickleWalker._op_newobj,
    0x92: PickleWalker._op_newobj_ex,
    0x62: PickleWalker._op_build,  # b
    0x51: PickleWalker._op_binpersid,  # Q
}

#: Opcodes the CPython unpickler knows and we refuse, by name for the message.
_REJECTED: dict[int, str] = {
    0x69: "INST",
    0x6F: "OBJ",
    0x82: "EXT1",
    0x83: "EXT2",
    0x84: "EXT4",
    0x50: "PERSID",
    0x97: "NEXT_BUFFER",
    0x98: "READONLY_BUFFER",
    0x32: "DUP",
    0x49: "INT",
    0x4C: "LONG",
    0x46: "FLOAT",
    0x53: "STRING",
    0x54: "BINSTRING",
    0x55: "SHORT_BINSTRING",
    0x56: "UNICODE",
    0x67: "GET",
    0x70: "PUT",
}


def walk_single(
    data: Buffer,
    allowlist: Allowlist,
    limits: Limits,
    deadline: Deadline,
    *,
    location: str = "pickle",
    start: int = 0,
    end: int | None = None,
) -> list[Finding]:
    """Walk a buffer that must hold exactly one pickle and nothing after it."""
    end = len(data) if end is None else end
    walker = PickleWalker(data, allowlist, limits, deadline, location=location)
    try:
        result = walker.walk(start, end)
    except Abort as stop:
        return [*walker.findings, stop.finding]
    findings = list(walker.findings)
    if result.end != end:
        findings.append(trailing(data, result.end, end, location))
    return findings


def trailing(data: Buffer, pos: int, end: int, location: str) -> Finding:
    """The finding for bytes after the last STOP the format accounts for."""
    n = end - pos
    looks_like = " (another pickle)" if data[pos] == _PROTO else ""
    code = Code.EXTRA_PICKLE if looks_like else Code.TRAILING_DATA
    return Finding(code, f"{location}@{pos}", f"{n} bytes after the pickle's STOP{looks_like}")
