"""The one load hook every pickle-based loader passes its bytes through before unpickling.

The security scanner (``modelport.core.scan``, part of the core every image installs) is the gate.
It fails closed: an unsafe or undecidable verdict raises, and nothing is unpickled.
"""

from __future__ import annotations

from typing import Protocol

from modelport.core.formats import ModelFormat


class PickleGate(Protocol):
    """Raises when the bytes must not be unpickled; returns when they may."""

    def check(self, data: bytes, fmt: ModelFormat) -> None: ...


class ScannerGate:
    """The security scanner's verdict: ``modelport.core.scan.ensure_safe``."""

    def check(self, data: bytes, fmt: ModelFormat) -> None:
        from modelport.core.scan import ensure_safe

        ensure_safe(data, fmt)


def default_gate() -> PickleGate:
    return ScannerGate()
