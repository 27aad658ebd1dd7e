"""Ids in paths: anything that cannot be an id is simply not found (never a database error)."""

from __future__ import annotations

import re

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None
