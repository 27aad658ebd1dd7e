"""Modelport's version, read once from the installed package's metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

#: Shown when the code runs from a source tree that was never installed.
UNKNOWN = "0+unknown"


def installed_version(distribution: str = "modelport") -> str:
    """The installed distribution's version, or :data:`UNKNOWN` when it is not installed."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return UNKNOWN


VERSION = installed_version()
