"""Budgets every scan runs under; crossing one gives an ``undecidable`` verdict naming it."""

from __future__ import annotations

import time
from dataclasses import dataclass

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Limits:
    """Scanner limits. The defaults suit a control API that accepts models up to 10 GiB."""

    #: Largest file accepted at all.
    max_file_bytes: int = 10 * GiB
    #: Largest decompressed stream (joblib compression, zip members together).
    max_decompressed_bytes: int = 4 * GiB
    #: Largest decompressed/compressed ratio once the output passes 64 MiB.
    max_ratio: int = 1000
    #: Decompressed bytes held in memory at once. A stream up to this size is kept whole; a
    #: longer one is decoded twice, once to check it and once, through a window, as it is walked.
    window_bytes: int = 64 * MiB
    #: Pickle opcodes per pickle stream.
    max_opcodes: int = 10_000_000
    #: Nesting of MARKs and of values inspected recursively.
    max_depth: int = 256
    #: Entries in the pickle memo.
    max_memo: int = 1_000_000
    #: Values on the pickle stack.
    max_stack: int = 100_000
    #: Elements added to pickle containers, all together.
    max_elements: int = 10_000_000
    #: One decoded string.
    max_string_bytes: int = 64 * MiB
    #: One integer's encoding (LONG1/LONG4).
    max_long_bytes: int = 1024
    #: Pickle streams nested inside other streams (joblib object arrays).
    max_nested_pickles: int = 10_000
    #: Members in a zip archive.
    max_zip_members: int = 10_000
    #: JSON configuration text (Keras) and its nesting.
    max_json_bytes: int = 16 * MiB
    max_json_depth: int = 64
    #: HDF5 objects visited.
    max_hdf5_objects: int = 100_000
    #: Wall-clock seconds for one file.
    max_seconds: float = 120.0


class LimitExceeded(Exception):
    """Raised when a budget runs out; carries the limit's name for the finding."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message


class Deadline:
    """Wall-clock budget shared by everything one scan does."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise LimitExceeded("max_seconds", f"the scan took longer than {self.seconds:g} s")


def require(limit: str, value: int, maximum: int, what: str) -> None:
    """Raise :class:`LimitExceeded` when ``value`` passes ``maximum``."""
    if value > maximum:
        raise LimitExceeded(limit, f"{what}: {value} exceeds the limit {limit}={maximum}")
