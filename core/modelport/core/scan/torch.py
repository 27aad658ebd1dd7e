"""PyTorch files: ``torch.save`` zip archives, TorchScript archives, ``torch.export`` programs,
and the legacy (non-zip) stream of five pickles plus raw storages.

Every pickle member is walked against the torch allowlist (what ``weights_only`` loading needs:
storages, the tensor rebuild functions, OrderedDict); every persistent id must name a storage
member of exactly the declared size, and no storage may go unreferenced. TorchScript code is
checked for calls outside the ATen operator allowlist (:mod:`modelport.core.scan.aten`, shared
with export graphs), export programs for graph targets outside it.
"""

from __future__ import annotations

import ast
import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelport.core.formats.torch import TorchArchive, layout
from modelport.core.scan import allowlist as allowlists
from modelport.core.scan.aten import aten_ops
from modelport.core.scan.limits import Deadline, LimitExceeded, Limits
from modelport.core.scan.pickle import (
    Abort,
    Allowlist,
    Global,
    Instance,
    ListV,
    PickleWalker,
    trailing,
)
from modelport.core.scan.verdict import Code, Finding
from modelport.core.scan.zipread import ZipViolation, member_bytes, read_entries

#: Bytes per element of each storage class a persistent id may name.
STORAGE_SIZES: dict[str, int] = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
    "BoolStorage": 1, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16,
    "QInt8Storage": 1, "QUInt8Storage": 1, "QInt32Storage": 4, "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}  # fmt: skip

_SIMPLE_MEMBERS = re.compile(
    r"(version|\.data/version|byteorder|\.format_version|\.storage_alignment"
    r"|\.data/serialization_id|archive_format|archive_version)\Z"
)
_STORAGE = re.compile(r"data/(\d+)\Z")
# TorchScript keeps each top-level pickle's storages in the folder of the same name.
_TS_PICKLES = {
    "data.pkl": "data",
    "constants.pkl": "constants",
    "traced_inputs.pkl": "traced_inputs",
}
_TS_STORAGE = re.compile(r"(constants|traced_inputs)/(\d+)\Z")
_CODE = re.compile(r"code/[A-Za-z0-9_./]+\.py\Z")
_DEBUG = re.compile(r"code/[A-Za-z0-9_./]+\.py\.debug_pkl\Z")
_EXTRA = re.compile(r"extra/[^/]+\Z")
_EXPORT_JSON = re.compile(r"(models/[^/]+\.json|data/(weights|constants)/[^/]+_config\.json)\Z")
_EXPORT_PAYLOAD = re.compile(r"data/(weights|constants|sample_inputs)/[^/]+\Z")
_MAX_SIMPLE = 128
_MAX_NESTED_ZIP = 2


@dataclass
class _Archive:
    """What one zip archive's pickles referenced, to check against its storage members."""

    prefix: str
    storages: dict[str, int] = field(default_factory=dict)  # member -> its size
    expected: dict[str, tuple[int, str]] = field(default_factory=dict)  # member -> bytes, where


class TorchScanner:
    def __init__(self, limits: Limits, deadline: Deadline, findings: list[Finding]) -> None:
        self.limits = limits
        self.deadline = deadline
        self.findings = findings
        self.budget = [limits.max_decompressed_bytes]
        base = allowlists.policy("torch")
        self.allow: Allowlist = base
        self.script_allow: Allowlist = base.with_modules("__torch__", frozenset({"new", "build"}))

    # -- entry points ----------------------------------------------------------------------------

    def scan(self, data: memoryview, location: str, depth: int = 0) -> None:
        head = bytes(data[:4])
        if head == b"PK\x03\x04":
            self.scan_zip(data, location, depth)
        elif len(data) > 1 and data[0] == 0x80:
            self.scan_legacy(data, location)
        else:
            self.findings.append(
                Finding(Code.UNSUPPORTED_FORMAT, location, "not a PyTorch zip or legacy file")
            )

    # -- zip archives ----------------------------------------------------------------------------

    def scan_zip(self, data: memoryview, location: str, depth: int) -> None:
        if depth > _MAX_NESTED_ZIP:
            raise LimitExceeded("max_depth", "PyTorch archives nested too deeply")
        try:
            entries = read_entries(data, self.limits)
        except ZipViolation as exc:
            self.findings.append(Finding(Code.ZIP_VIOLATION, location, str(exc)))
            return
        if any(e.name == "serialized_exported_program.json" for e in entries):
            self.findings.append(
                Finding(
                    Code.UNSUPPORTED_FORMAT,
                    location,
                    "torch.export archive in the legacy layout (serialized_exported_program.json, "
                    "written by older torch releases such as 2.5) that current torch.export.load "
                    "cannot read: export again with a current torch",
                )
            )
            return
        prefixes = {e.name.split("/", 1)[0] for e in entries}
        if len(prefixes) != 1 or any("/" not in e.name for e in entries):
            self.findings.append(
                Finding(Code.ZIP_VIOLATION, location, "members are not under one top-level folder")
            )
            return
        prefix = prefixes.pop()
        rel = {e.name[len(prefix) + 1 :]: e for e in entries}
        archive = _Archive(prefix)
        kind = layout(rel)
        if kind is not TorchArchive.EXPORT and "data.pkl" not in rel:
            self._unexpected(f"{location}:{prefix}", "archive has no data.pkl")
        export = kind is TorchArchive.EXPORT
        use_pickle = self._pickled_payloads(data, rel, location) if export else set()
        for name, entry in rel.items():
            where = f"{location}:{entry.name}"
            try:
                content = member_bytes(data, entry, self.limits, self.deadline, self.budget)
            except ZipViolation as exc:
                self.findings.append(Finding(Code.ZIP_VIOLATION, where, str(exc)))
                return
            self._member(kind, name, content, where, archive, use_pickle, depth)
        self._check_storages(archive, rel, location)

    def _member(
        self,
        kind: TorchArchive,
        name: str,
        content: memoryview,
        where: str,
        archive: _Archive,
        use_pickle: set[str],
        depth: int,
    ) -> None:
        if _SIMPLE_MEMBERS.match(name):
            if len(content) > _MAX_SIMPLE:
                self._unexpected(where, "metadata member is unexpectedly large")
            return
        if kind is not TorchArchive.EXPORT and _STORAGE.match(name):
            archive.storages[name] = len(content)
            return
        if kind is TorchArchive.SAVE:
            if name == "data.pkl":
                self.walk(content, where, self.allow, archive)
                return
        elif kind is TorchArchive.TORCHSCRIPT:
            if name in _TS_PICKLES:
                self.walk(content, where, self.script_allow, archive, _TS_PICKLES[name])
                return
            if _TS_STORAGE.match(name):
                archive.storages[name] = len(content)
                return
            if _DEBUG.match(name):
                self.walk(content, where, self.allow, None)
                return
            if _CODE.match(name):
                check_torchscript(bytes(content), where, self.findings)
                return
            if _EXTRA.match(name):
                return
        elif kind is TorchArchive.EXPORT:
            if _EXPORT_JSON.match(name):
                check_export_json(bytes(content), where, self.findings, self.limits)
                return
            if _EXPORT_PAYLOAD.match(name):
                self._export_payload(name, content, where, use_pickle, depth)
                return
        self._unexpected(where, f"member {name!r} has no place in a {kind} archive")

    def _export_payload(
        self, name: str, content: memoryview, where: str, use_pickle: set[str], depth: int
    ) -> None:
        pickled = name in use_pickle or name.startswith("data/sample_inputs/")
        if bytes(content[:4]) == b"PK\x03\x04" or pickled:
            self.scan(content, where, depth + 1)

    def _pickled_payloads(self, data: memoryview, rel: dict[str, Any], location: str) -> set[str]:
        """Names of weights/constants that torch.export.load will ``torch.load``."""
        names: set[str] = set()
        for folder in ("weights", "constants"):
            cfg = next(
                (
                    e
                    for n, e in rel.items()
                    if re.fullmatch(f"data/{folder}/[^/]+_config\\.json", n)
                ),
                None,
            )
            if cfg is None:
                continue
            try:
                raw = member_bytes(
                    data, cfg, self.limits, self.deadline, [self.limits.max_json_bytes]
                )
                doc = json.loads(bytes(raw))
                for meta in doc.get("config", {}).values():
                    if meta.get("use_pickle"):
                        names.add(f"data/{folder}/{meta['path_name']}")
            except (ZipViolation, ValueError, AttributeError, KeyError, TypeError):
                self.findings.append(
                    Finding(Code.MALFORMED, f"{location}:{cfg.name}", "unreadable payload config")
                )
        return names

    def _check_storages(self, archive: _Archive, rel: dict[str, Any], location: str) -> None:
        base = f"{location}:{archive.prefix}"
        for member, (expected, where) in archive.expected.items():
            size = archive.storages.get(member)
            if size is None:
                self.findings.append(
                    Finding(Code.BAD_PERSISTENT_ID, where, f"storage {member} is missing")
                )
            elif size != expected and not (size == 0 and member.startswith("traced_inputs/")):
                # torch.jit.trace writes its example inputs' storages empty.
                self.findings.append(
                    Finding(
                        Code.BAD_PERSISTENT_ID,
                        where,
                        f"storage {member} holds {size} bytes, the pickle declares {expected}",
                    )
                )
        for member in archive.storages.keys() - archive.expected.keys():
            self._unexpected(f"{base}/{member}", "storage not referenced by any pickle")

    def _unexpected(self, where: str, message: str) -> None:
        self.findings.append(Finding(Code.UNEXPECTED_MEMBER, where, message))

    # -- pickles ---------------------------------------------------------------------------------

    def walk(
        self,
        content: memoryview,
        where: str,
        allow: Allowlist,
        archive: _Archive | None,
        folder: str = "data",
    ) -> None:
        load = self._persistent_zip(where, archive, folder) if archive is not None else None
        walker = PickleWalker(
            content,
            allow,
            self.limits,
            self.deadline,
            location=where,
            persistent_load=load,
            findings=self.findings,
        )
        try:
            result = walker.walk(0, len(content))
        except Abort as stop:
            self.findings.append(stop.finding)
            return
        if result.end != len(content):
            self.findings.append(trailing(content, result.end, len(content), where))

    def _persistent_zip(
        self, where: str, archive: _Archive, folder: str
    ) -> Callable[[Any, int], Any]:
        def load(pid: Any, pos: int) -> Any:
            storage_type, key, numel = _storage_pid(pid, 5, f"{where}@{pos}")
            member = key if "/" in key else f"{folder}/{key}"
            expected = numel * STORAGE_SIZES[storage_type.name]
            previous = archive.expected.setdefault(member, (expected, f"{where}@{pos}"))
            if previous[0] != expected:
                raise Abort(
                    Finding(Code.BAD_PERSISTENT_ID, f"{where}@{pos}", f"{member} declared twice")
                )
            return Instance(storage_type, ())

        return load

    # -- legacy streams --------------------------------------------------------------------------

    def scan_legacy(self, data: memoryview, location: str) -> None:
        """Magic, protocol, sys_info, the object, the storage keys; then the raw storages."""
        pos = 0
        declared: dict[str, tuple[int, int]] = {}

        def load(pid: Any, at: int) -> Any:
            storage_type, key, numel = _storage_pid(pid, 6, f"{location}@{at}")
            declared[key] = (numel, STORAGE_SIZES[storage_type.name])
            return Instance(storage_type, ())

        roots: list[Any] = []
        for index in range(5):
            walker = PickleWalker(
                data,
                self.allow,
                self.limits,
                self.deadline,
                location=f"{location}[pickle {index + 1}]",
                persistent_load=load if index == 3 else None,
                findings=self.findings,
            )
            try:
                result = walker.walk(pos, len(data))
            except Abort as stop:
                self.findings.append(stop.finding)
                return
            roots.append(result.root)
            pos = result.end
        self._legacy_storages(data, pos, roots[4], declared, location)

    def _legacy_storages(
        self,
        data: memoryview,
        pos: int,
        keys: Any,
        declared: dict[str, tuple[int, int]],
        location: str,
    ) -> None:
        if not isinstance(keys, ListV) or not all(isinstance(k, str) for k in keys.items):
            self.findings.append(
                Finding(
                    Code.MALFORMED, location, "legacy storage key list is not a list of strings"
                )
            )
            return
        if sorted(keys.items) != sorted(declared) or len(set(keys.items)) != len(keys.items):
            self.findings.append(
                Finding(Code.BAD_PERSISTENT_ID, location, "storage keys disagree with the pickle")
            )
            return
        for key in keys.items:
            numel, width = declared[key]
            if pos + 8 > len(data) or struct.unpack_from("<q", data, pos)[0] != numel:
                self.findings.append(
                    Finding(Code.BAD_PERSISTENT_ID, f"{location}@{pos}", f"storage {key} header")
                )
                return
            pos += 8 + numel * width
        if pos != len(data):
            code = Code.TRAILING_DATA if pos < len(data) else Code.MALFORMED
            self.findings.append(
                Finding(
                    code,
                    f"{location}@{min(pos, len(data))}",
                    "bytes after the last storage"
                    if pos < len(data)
                    else "storages run past the end of the file",
                )
            )


def _storage_pid(pid: Any, arity: int, where: str) -> tuple[Global, str, int]:
    ok = (
        isinstance(pid, tuple)
        and len(pid) == arity
        and pid[0] == "storage"
        and isinstance(pid[1], Global)
        and pid[1].module == "torch"
        and pid[1].name in STORAGE_SIZES
        and isinstance(pid[2], str)
        and re.fullmatch(r"[A-Za-z0-9_]+(/[0-9]+)?", pid[2]) is not None
        and isinstance(pid[3], str)
        and type(pid[4]) is int
        and 0 <= pid[4] < 1 << 48
        and (arity == 5 or pid[5] is None)
    )
    if not ok:
        raise Abort(Finding(Code.BAD_PERSISTENT_ID, where, "persistent id is not a plain storage"))
    return pid[1], pid[2], pid[4]


# -- TorchScript code -----------------------------------------------------------------------------

_TS_OPS_NAMESPACES = frozenset({"aten", "prim", "quantized", "_quantized", "prepacked"})
_TS_MODULE_ROOTS = frozenset({"torch", "ops", "__torch__", "math"})


def _dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def check_torchscript(source: bytes, where: str, findings: list[Finding]) -> None:
    """Refuse TorchScript code that reaches beyond tensor, nn and math operations."""
    try:
        tree = ast.parse(source.decode("utf-8"), filename=where)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        findings.append(Finding(Code.MALFORMED, where, "TorchScript code does not parse"))
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                if name.split(".")[0] not in ("__torch__", "torch"):
                    findings.append(Finding(Code.TORCHSCRIPT_CALL, where, f"imports {name}"))
        elif isinstance(node, ast.Call):
            problem = _callee_problem(node.func)
            if problem:
                findings.append(Finding(Code.TORCHSCRIPT_CALL, f"{where}:{node.lineno}", problem))


def _callee_problem(func: ast.expr) -> str | None:
    parts = _dotted(func)
    if parts is None or parts[0] not in _TS_MODULE_ROOTS or parts[0] in ("__torch__", "math"):
        # A builtin, a method of a value ((l).forward(x)), a class of the archive itself, or a
        # name TorchScript resolves itself.
        return None
    if parts[0] == "torch" and len(parts) > 2 and parts[1] == "ops":
        parts = parts[1:]
    called = ".".join(parts)
    if parts[0] == "ops":
        if len(parts) < 3 or parts[1] not in _TS_OPS_NAMESPACES:
            return f"calls {called}: operator namespace outside aten/prim/quantized"
        if parts[1] != "aten":
            return None
        reason = aten_ops().overload(".".join(parts[2:4])) if len(parts) > 3 else None
        reason = reason or aten_ops().name(parts[2])
    elif len(parts) == 2:  # torch.<op>: an ATen operator, its overload chosen at load time
        reason = aten_ops().name(parts[1])
    else:
        reason = "outside the ATen operators"
    return f"calls {called}: {reason}" if reason else None


# -- torch.export programs ------------------------------------------------------------------------

_EXPORT_TARGETS = re.compile(
    r"(torch\.ops\.(prims|higher_order)\.[A-Za-z0-9_.]+"
    r"|_operator\.(getitem|add|sub|mul|floordiv|truediv|mod|neg|pow|eq|ne|lt|le|gt|ge|and_|or_|not_)"
    r"|torch\.sym_[a-z_]+|math\.[a-z_]+|torch\._assert(_async|_scalar)?)\Z"
)
_ATEN_TARGET = re.compile(r"torch\.ops\.aten\.([A-Za-z0-9_]+\.[A-Za-z0-9_]+)\Z")


def _target_problem(target: str) -> str | None:
    aten = _ATEN_TARGET.match(target)
    if aten:
        reason = aten_ops().overload(aten.group(1))
        return f"graph calls {target}: {reason}" if reason else None
    if _EXPORT_TARGETS.match(target):
        return None
    return f"graph calls {target[:200]!r}"


def check_export_json(raw: bytes, where: str, findings: list[Finding], limits: Limits) -> None:
    if len(raw) > limits.max_json_bytes:
        raise LimitExceeded("max_json_bytes", f"{where}: JSON exceeds max_json_bytes")
    try:
        doc = json.loads(raw)
    except ValueError:
        findings.append(Finding(Code.MALFORMED, where, "export JSON does not parse"))
        return
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_json_depth:
            raise LimitExceeded("max_json_depth", f"{where}: JSON nested too deeply")
        if isinstance(node, dict):
            target = node.get("target")
            problem = _target_problem(target) if isinstance(target, str) else None
            if problem and "inputs" in node:
                findings.append(Finding(Code.EXPORT_TARGET, where, problem))
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def scan_torch(
    data: memoryview, limits: Limits, deadline: Deadline, location: str
) -> list[Finding]:
    findings: list[Finding] = []
    TorchScanner(limits, deadline, findings).scan(data, location)
    return findings
