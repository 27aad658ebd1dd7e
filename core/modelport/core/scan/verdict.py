"""What a scan decides: an outcome, the findings behind it, and what was scanned."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    """``undecidable`` counts as unsafe wherever a verdict is used: the scanner fails closed."""

    SAFE = "safe"
    UNSAFE = "unsafe"
    UNDECIDABLE = "undecidable"


class Code(enum.StrEnum):
    """Machine-readable reason codes of findings."""

    # Pickle
    DISALLOWED_GLOBAL = "disallowed_global"
    DISALLOWED_CALL = "disallowed_call"
    DISALLOWED_BUILD = "disallowed_build"
    DISALLOWED_MUTATION = "disallowed_mutation"
    DISALLOWED_OPCODE = "disallowed_opcode"
    UNRESOLVED_GLOBAL = "unresolved_global"
    FRAME_VIOLATION = "frame_violation"
    MISPLACED_PROTO = "misplaced_proto"
    MALFORMED = "malformed"
    TRAILING_DATA = "trailing_data"
    EXTRA_PICKLE = "extra_pickle"
    BAD_ARRAY_RECORD = "bad_array_record"
    BAD_PERSISTENT_ID = "bad_persistent_id"
    # Containers
    ZIP_VIOLATION = "zip_violation"
    UNEXPECTED_MEMBER = "unexpected_member"
    TORCHSCRIPT_CALL = "torchscript_call"
    EXPORT_TARGET = "export_target"
    # Keras / HDF5
    KERAS_LAMBDA = "keras_lambda"
    KERAS_CUSTOM_OBJECT = "keras_custom_object"
    KERAS_UNKNOWN_CLASS = "keras_unknown_class"
    HDF5_LINK = "hdf5_link"
    # ONNX
    ONNX_EXTERNAL_DATA = "onnx_external_data"
    ONNX_CUSTOM_DOMAIN = "onnx_custom_domain"
    ONNX_UNKNOWN_OP = "onnx_unknown_op"
    ONNX_OPSET = "onnx_opset"
    ONNX_INVALID = "onnx_invalid"
    # Any format
    FORMAT_MISMATCH = "format_mismatch"
    UNSUPPORTED_FORMAT = "unsupported_format"
    POLYGLOT = "polyglot"
    WRAPPER_ARCHIVE = "wrapper_archive"
    # Could not decide
    LIMIT_EXCEEDED = "limit_exceeded"
    UNREADABLE = "unreadable"
    MISSING_DEPENDENCY = "missing_dependency"


#: Codes that mean "could not finish", not "found something bad".
UNDECIDABLE_CODES = frozenset({Code.LIMIT_EXCEEDED, Code.UNREADABLE, Code.MISSING_DEPENDENCY})


@dataclass(frozen=True)
class Finding:
    """One reason a file is not safe: a stable code, where it was found, and why."""

    code: Code
    location: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "location": self.location, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Finding:
        return cls(Code(data["code"]), data["location"], data["message"])


@dataclass(frozen=True)
class Verdict:
    """The scanner's answer for one file.

    ``sha256`` and ``size`` describe exactly the bytes that were scanned, so that a later loader
    can check that it loads those same bytes; ``sha256`` is None when no byte was read (a file
    type the scanner does not take, an unreadable file, a limit reached first).
    """

    outcome: Outcome
    findings: tuple[Finding, ...]
    format: str | None
    container: str | None
    sha256: str | None
    size: int
    scanner_version: str = field(default="")

    @property
    def safe(self) -> bool:
        return self.outcome is Outcome.SAFE

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "format": self.format,
            "container": self.container,
            "sha256": self.sha256,
            "size": self.size,
            "scannerVersion": self.scanner_version,
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """The verdict :meth:`to_dict` described (a scan in another process sends it so)."""
        return cls(
            outcome=Outcome(data["outcome"]),
            findings=tuple(Finding.from_dict(f) for f in data["findings"]),
            format=data["format"],
            container=data["container"],
            sha256=data["sha256"],
            size=int(data["size"]),
            scanner_version=data["scannerVersion"],
        )


def outcome_of(findings: tuple[Finding, ...] | list[Finding]) -> Outcome:
    """Unsafe beats undecidable beats safe."""
    if not findings:
        return Outcome.SAFE
    if all(f.code in UNDECIDABLE_CODES for f in findings):
        return Outcome.UNDECIDABLE
    return Outcome.UNSAFE
