"""The Modelport security scanner: refuse malicious model files before they are stored or loaded.

``scan(path_or_bytes_or_stream) -> Verdict`` never imports, calls or unpickles anything from the
file. It walks every pickle opcode by opcode against an allowlist (``allowlist.toml``), reads zip
archives strictly, parses Keras configs and ONNX graphs, and fails closed: ``undecidable`` (a
limit hit, an unreadable file) counts as unsafe wherever a verdict is used.

``ensure_safe`` is the one call loaders make before deserialising: it raises
:class:`UnsafeModel` (HTTP 400, code ``unsafe_model``) unless the verdict is ``safe``.
"""

from __future__ import annotations

from modelport.core.errors import BadInput
from modelport.core.formats import ModelFormat
from modelport.core.scan.limits import Limits
from modelport.core.scan.scanner import SCANNER_VERSION, Source, scan, scanner_version
from modelport.core.scan.verdict import Code, Finding, Outcome, Verdict

__all__ = [
    "SCANNER_VERSION",
    "Code",
    "Finding",
    "Limits",
    "Outcome",
    "UnsafeModel",
    "Verdict",
    "ensure_safe",
    "scan",
    "scanner_version",
]


class UnsafeModel(BadInput):
    """The scanner refused a model file (unsafe or undecidable); details list the findings."""

    code = "unsafe_model"

    def __init__(self, verdict: Verdict) -> None:
        first = verdict.findings[0].message if verdict.findings else verdict.outcome.value
        super().__init__(
            f"the security scanner refused the model file ({verdict.outcome.value}): {first}",
            details=[f.to_dict() for f in verdict.findings],
        )
        self.verdict = verdict


def ensure_safe(
    source: Source,
    expected_format: ModelFormat | str | None,
    *,
    limits: Limits | None = None,
) -> Verdict:
    """Scan and return the verdict if it is safe; raise :class:`UnsafeModel` otherwise."""
    verdict = scan(source, expected_format=expected_format, limits=limits)
    if verdict.outcome is not Outcome.SAFE:
        raise UnsafeModel(verdict)
    return verdict
