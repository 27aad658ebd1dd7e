"""The one load hook every pickle-based loader passes its bytes through before unpickling.

The security scanner (``modelport.core.scan``) is the gate. Where that module is absent the
runtime still loads the model but logs a warning on every load, so an unscanned image shows up.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Protocol

from modelport.core.formats import ModelFormat

log = logging.getLogger("modelport.runtime")


class PickleGate(Protocol):
    """Raises when the bytes must not be unpickled; returns when they may."""

    def check(self, data: bytes, fmt: ModelFormat) -> None: ...


class ScannerGate:
    """The security scanner's verdict: ``modelport.core.scan.ensure_safe``."""

    def __init__(self) -> None:
        self._scan = importlib.import_module("modelport.core.scan")

    def check(self, data: bytes, fmt: ModelFormat) -> None:
        self._scan.ensure_safe(data, fmt)


class UnscannedGate:
    """Used only where the scanner is not installed: lets everything through, loudly."""

    def check(self, data: bytes, fmt: ModelFormat) -> None:
        log.warning(
            "security scanner (modelport.core.scan) is not installed: "
            "loading a %s artifact without scanning it",
            fmt.value,
        )


def default_gate() -> PickleGate:
    """The scanner when it is importable, otherwise the warning gate."""
    if importlib.util.find_spec("modelport.core.scan") is None:
        return UnscannedGate()
    gate = ScannerGate()
    return gate if hasattr(gate._scan, "ensure_safe") else UnscannedGate()
