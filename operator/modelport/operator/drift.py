"""Has a child drifted from what the operator applied? Pure comparison, no I/O.

The API server adds defaults (``protocol: TCP``, ``terminationMessagePath``, ...) and writes
quantities in canonical form (``1000m`` comes back as ``1``), so "drifted" means: some field the
operator sets is missing from the live object or holds a different value. Extra fields are
ignored; lists must keep their length and match element by element.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]{0,2})$")


def parse_quantity(value: object) -> Decimal | None:
    """A Kubernetes quantity as a number, or None when `value` is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if not match or match.group(2) not in _SUFFIXES:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except InvalidOperation:
        return None


def _same_scalar(want: object, have: object) -> bool:
    if want == have:
        return True
    a, b = parse_quantity(want), parse_quantity(have)
    return a is not None and a == b


def differences(want: Any, have: Any, path: str = "") -> list[str]:
    """Paths where `have` does not carry what `want` says (empty: no drift)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [path or "."]
        out: list[str] = []
        for key, value in want.items():
            if key not in have:
                if value in ({}, [], None):
                    continue  # the server drops empty values
                out.append(f"{path}.{key}")
            else:
                out += differences(value, have[key], f"{path}.{key}")
        return out
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return [path]
        out = []
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            out += differences(w, h, f"{path}[{i}]")
        return out
    return [] if _same_scalar(want, have) else [path]


def drifted(desired: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Where `live` differs from `desired` in what the operator owns (metadata and spec)."""
    want = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind", "status")}
    return differences(want, live)
