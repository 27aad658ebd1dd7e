"""``scan``: one file in, one :class:`Verdict` out. Fails closed on anything unexpected."""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import IO, Any

from modelport.core.formats import (
    SNIFF_BYTES,
    SUPPORTED_EXTENSIONS,
    Container,
    Family,
    ModelFormat,
    Sniffed,
    extension,
    format_for,
    sniff,
    spec_for,
)
from modelport.core.formats.joblib import COMPRESSED
from modelport.core.formats.keras import HDF5_OFFSETS, HDF5_SIGNATURE
from modelport.core.scan import allowlist as allowlist_files
from modelport.core.scan.limits import Deadline, LimitExceeded, Limits
from modelport.core.scan.verdict import Code, Finding, Verdict, outcome_of

#: Bumped when the rules change; the verdict also carries a digest of the allowlist data.
SCANNER_VERSION = "1"
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]

_WRAPPERS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"7z\xbc\xaf\x27\x1c", "7z archive"),
    (0, b"Rar!\x1a\x07", "RAR archive"),
    (257, b"ustar", "tar archive"),
    (0, b"\x28\xb5\x2f\xfd", "zstd stream"),
)


def scan(
    source: Source,
    *,
    name: str | None = None,
    expected_format: ModelFormat | str | None = None,
    limits: Limits | None = None,
) -> Verdict:
    """Scan a model file (a path, bytes, or a binary stream) without running any of it.

    ``expected_format`` (or else the file name's extension) is what the caller will load the
    file as; content that is anything else is refused.
    """
    limits = limits or Limits()
    if name is None and isinstance(source, str | os.PathLike):
        name = os.fspath(source)
    try:
        claimed = _claimed(expected_format, name)
    except ValueError as exc:
        return _verdict([Finding(Code.UNSUPPORTED_FORMAT, "name", str(exc))], None, None, b"")
    try:
        with _open(source, limits) as data:
            digest = hashlib.sha256(data).hexdigest()
            findings, fmt, container = _scan_bytes(data, claimed, limits, name or "file")
            return _verdict(findings, fmt, container, data, digest)
    except LimitExceeded as exc:
        return _verdict([_limit(exc)], claimed, None, b"")
    except OSError as exc:
        if exc.errno == errno.ENOMEM:  # mapping the file passed the address-space limit
            finding = Finding(Code.LIMIT_EXCEEDED, "memory", "ran out of memory while scanning")
        else:
            msg = f"cannot read the file: {exc.strerror or exc}"
            finding = Finding(Code.UNREADABLE, "file", msg)
        return _verdict([finding], claimed, None, b"")


def _verdict(
    findings: list[Finding],
    fmt: ModelFormat | None,
    container: str | None,
    data: Any,
    digest: str | None = None,
) -> Verdict:
    return Verdict(
        outcome=outcome_of(findings),
        findings=tuple(findings),
        format=fmt.value if fmt else None,
        container=container,
        sha256=digest,
        size=len(data),
        scanner_version=scanner_version(),
    )


@functools.cache
def scanner_version() -> str:
    """``<rules version>+<sha256 prefix of the allowlist data files>``, stored with verdicts."""
    digest = hashlib.sha256()
    folder = resources.files("modelport.core.scan")
    for name in (*allowlist_files.DATA_FILES, "keras_allowlist.toml"):
        digest.update(folder.joinpath(name).read_bytes())
    return f"{SCANNER_VERSION}+{digest.hexdigest()[:12]}"


def _claimed(expected: ModelFormat | str | None, name: str | None) -> ModelFormat | None:
    if expected is not None:
        return ModelFormat(expected)
    if name is None:
        return None
    suffix = extension(name)
    if not suffix:
        return None
    fmt = format_for(suffix)
    if fmt is None:
        raise ValueError(
            f"not a model file: unsupported file type {suffix!r}; supported: "
            + ", ".join(SUPPORTED_EXTENSIONS)
        )
    return fmt


@contextmanager
def _open(source: Source, limits: Limits) -> Iterator[memoryview]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        _check_size(len(view), limits)
        yield view
        return
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            _check_size(size, limits)
            if size == 0:
                yield memoryview(b"")
                return
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            view = memoryview(mapped)
            try:
                yield view
            finally:
                try:
                    view.release()
                    mapped.close()
                except BufferError:
                    pass  # a slice outlived the scan (a traceback); the GC unmaps it
        return
    data = source.read(limits.max_file_bytes + 1)
    _check_size(len(data), limits)
    yield memoryview(data)


def _check_size(size: int, limits: Limits) -> None:
    if size > limits.max_file_bytes:
        raise LimitExceeded(
            "max_file_bytes", f"file exceeds max_file_bytes={limits.max_file_bytes}"
        )


def _limit(exc: LimitExceeded) -> Finding:
    return Finding(Code.LIMIT_EXCEEDED, exc.limit, exc.message)


def _scan_bytes(
    data: memoryview, claimed: ModelFormat | None, limits: Limits, location: str
) -> tuple[list[Finding], ModelFormat | None, str | None]:
    deadline = Deadline(limits.max_seconds)
    head = bytes(data[:SNIFF_BYTES])
    found = sniff(head)
    container = found.container.value
    wrapper = _wrapper(data, head, found.container, claimed)
    if wrapper:
        return [Finding(Code.WRAPPER_ARCHIVE, location, wrapper)], claimed, container
    fmt = claimed or found.format
    if found.family is None or fmt is None:
        msg = f"not a model file ({found.detail})"
        return [Finding(Code.UNSUPPORTED_FORMAT, location, msg)], claimed, container
    if found.family is not fmt.family:
        msg = f"named as {fmt.value} but the content is {found.family.value} ({found.detail})"
        return [Finding(Code.FORMAT_MISMATCH, location, msg)], fmt, container
    polyglot = _polyglot(data, found)
    if polyglot:
        return [Finding(Code.POLYGLOT, location, polyglot)], fmt, container
    try:
        findings = _scanner_of(fmt)(data, limits, deadline, location)
    except LimitExceeded as exc:
        findings = [_limit(exc)]
    except ModuleNotFoundError as exc:
        findings = [Finding(Code.MISSING_DEPENDENCY, location, str(exc))]
    except MemoryError:
        findings = [Finding(Code.LIMIT_EXCEEDED, "memory", "ran out of memory while scanning")]
    except RecursionError:
        findings = [Finding(Code.LIMIT_EXCEEDED, "max_depth", "structure nested too deeply")]
    except Exception as exc:  # fail closed on anything the parsers did not foresee
        findings = [Finding(Code.UNREADABLE, location, f"scanner error: {type(exc).__name__}")]
    return findings, fmt, container


def _wrapper(
    data: memoryview, head: bytes, container: Container, claimed: ModelFormat | None
) -> str | None:
    for offset, magic, what in _WRAPPERS:
        if head[offset : offset + len(magic)] == magic:
            return f"{what}: upload the model file itself, not an archive of it"
    if claimed is None or container in spec_for(claimed).containers:
        return None
    if container in COMPRESSED:
        return f"{container.value}-compressed {claimed.value}: only joblib files may be compressed"
    if container is Container.ZIP:
        return f"zip archive named as {claimed.value}"
    return None


def _polyglot(data: memoryview, found: Sniffed) -> str | None:
    if found.container is not Container.ZIP and _has_zip_directory(data):
        return "ends with a zip directory: the file reads as two formats"
    # A Keras archive's weights are an HDF5 file stored as is, which may begin at one of these
    # offsets: its scanner allows that one and refuses the others.
    if found.container is not Container.HDF5 and found.family is not Family.KERAS:
        for offset in HDF5_OFFSETS:
            if bytes(data[offset : offset + 8]) == HDF5_SIGNATURE:
                return f"HDF5 signature at offset {offset}: the file reads as two formats"
    return None


def _has_zip_directory(data: memoryview) -> bool:
    """An end-of-central-directory record in the last 64 KiB whose directory precedes it."""
    start = max(0, len(data) - 65557)
    tail = bytes(data[start:])
    idx = tail.find(b"PK\x05\x06")
    while idx >= 0:
        pos = start + idx
        if pos + 22 <= len(data):
            (cd_size,) = struct.unpack_from("<I", data, pos + 12)
            cd = pos - cd_size
            if cd >= 0 and bytes(data[cd : cd + 4]) in (b"PK\x01\x02", b"PK\x05\x06"):
                return True
            if bytes(data[pos - 20 : pos - 16]) == b"PK\x06\x07":  # zip64 locator
                return True
        idx = tail.find(b"PK\x05\x06", idx + 1)
    return False


def _scanner_of(fmt: ModelFormat) -> Callable[[memoryview, Limits, Deadline, str], list[Finding]]:
    """The format's scanner, as the registry names it (``module:function``)."""
    module, _, function = spec_for(fmt).scanner.partition(":")
    entry: Callable[[memoryview, Limits, Deadline, str], list[Finding]]
    entry = getattr(importlib.import_module(module), function)
    return entry
