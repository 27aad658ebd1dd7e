"""The allowlists, loaded from the reviewed data file ``allowlist.toml`` beside this module."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
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
    #: callee -> argument position -> the names that may be passed there.
    arguments: dict[str, dict[int, frozenset[str]]] = field(default_factory=dict)

    def uses(self, module: str, name: str) -> frozenset[str] | None:
        return self.entries.get((module, name))

    def argument_ok(self, callee: str, index: int, argument: str) -> bool:
        return argument in self.arguments.get(callee, {}).get(index, frozenset())

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

    def argument_ok(self, callee: str, index: int, argument: str) -> bool:
        return self.base.argument_ok(callee, index, argument)


def _split(qualname: str) -> tuple[str, str]:
    module, _, name = qualname.rpartition(".")
    if not module or not name:
        raise ValueError(f"allowlist entry {qualname!r} is not module.name")
    return module, name


def parse(text: str) -> dict[str, NameAllowlist]:
    """Parse the data file into one allowlist per policy."""
    doc = tomllib.loads(text)
    merged: dict[str, dict[tuple[str, str], frozenset[str]]] = {p: {} for p in POLICIES}
    arguments: dict[str, dict[str, dict[int, frozenset[str]]]] = {p: {} for p in POLICIES}
    for group_name, group in doc.items():
        if not isinstance(group, dict) or "allow" not in group:
            continue
        if group_name == "arguments":
            _parse_arguments(group, arguments)
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
                names = merged[policy]
                names[key] = names.get(key, frozenset()) | uses
    for policy_name, rules in arguments.items():
        for callee in [c for c in rules if _split(c) not in merged[policy_name]]:
            del rules[callee]  # a rule for a name this policy does not list
        for callee, positions in rules.items():
            for allowed in positions.values():
                unknown = [n for n in allowed if _split(n) not in merged[policy_name]]
                if unknown:
                    raise ValueError(f"{callee}: argument names not allowlisted: {unknown}")
    return {p: NameAllowlist(p, entries, arguments[p]) for p, entries in merged.items()}


def _parse_arguments(
    group: dict[str, object], out: dict[str, dict[str, dict[int, frozenset[str]]]]
) -> None:
    if not group.get("why"):
        raise ValueError("allowlist group 'arguments' has no 'why'")
    allow = group["allow"]
    if not isinstance(allow, dict):
        raise ValueError("arguments.allow must be a table")
    for callee, positions in allow.items():
        _split(callee)
        if not isinstance(positions, dict):
            raise ValueError(f"{callee}: argument rule must map positions to names")
        rule = {int(pos): frozenset(names) for pos, names in positions.items()}
        for policy_name in POLICIES:
            out[policy_name][callee] = rule


@functools.cache
def load() -> dict[str, NameAllowlist]:
    text = resources.files("modelport.core.scan").joinpath("allowlist.toml").read_text("utf-8")
    return parse(text)


def policy(name: str) -> NameAllowlist:
    return load()[name]
