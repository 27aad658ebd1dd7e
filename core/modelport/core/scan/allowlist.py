"""The allowlists, loaded from the reviewed data file ``allowlist.toml`` beside this module."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources

from modelport.core.scan.pickle import USES

#: The policies the data file defines.
POLICIES = ("sklearn", "torch")


@dataclass(frozen=True)
class NameAllowlist:
    """Exact ``module.name`` -> the uses allowed (call, new, build, setitems, appends, additems).

    A name with no uses may still appear as a value (a class passed as an argument, say).
    """

    policy: str
    entries: dict[tuple[str, str], frozenset[str]]

    def uses(self, module: str, name: str) -> frozenset[str] | None:
        return self.entries.get((module, name))

    def with_modules(self, prefix: str, uses: frozenset[str]) -> PrefixAllowlist:
        return PrefixAllowlist(self, prefix, uses)


@dataclass(frozen=True)
class PrefixAllowlist:
    """An allowlist plus every name under one module prefix (TorchScript's ``__torch__``)."""

    base: NameAllowlist
    prefix: str
    prefix_uses: frozenset[str]

    def uses(self, module: str, name: str) -> frozenset[str] | None:
        if module == self.prefix or module.startswith(self.prefix + "."):
            return self.prefix_uses
        return self.base.uses(module, name)


def _split(qualname: str) -> tuple[str, str]:
    module, _, name = qualname.rpartition(".")
    if not module or not name:
        raise ValueError(f"allowlist entry {qualname!r} is not module.name")
    return module, name


def parse(text: str) -> dict[str, NameAllowlist]:
    """Parse the data file into one allowlist per policy."""
    doc = tomllib.loads(text)
    merged: dict[str, dict[tuple[str, str], frozenset[str]]] = {p: {} for p in POLICIES}
    for group_name, group in doc.items():
        if not isinstance(group, dict) or "allow" not in group:
            continue
        if not group.get("why"):
            raise ValueError(f"allowlist group {group_name!r} has no 'why'")
        policies = group.get("policies", ["sklearn"])
        for qualname, uses_text in group["allow"].items():
            uses = frozenset(str(uses_text).split())
            if not uses <= USES:
                raise ValueError(f"{qualname}: unknown uses {sorted(uses - USES)}")
            key = _split(qualname)
            for policy in policies:
                table = merged[policy]
                table[key] = table.get(key, frozenset()) | uses
    return {p: NameAllowlist(p, entries) for p, entries in merged.items()}


@functools.cache
def load() -> dict[str, NameAllowlist]:
    text = resources.files("modelport.core.scan").joinpath("allowlist.toml").read_text("utf-8")
    return parse(text)


def policy(name: str) -> NameAllowlist:
    return load()[name]
