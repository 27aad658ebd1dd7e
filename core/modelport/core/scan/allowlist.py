"""The allowlists, loaded from the data files beside this module.

``allowlist.toml`` holds the hand-reviewed groups (Python builtins, NumPy arrays, torch, ...);
``allowlist_generated.toml`` is written by ``python -m modelport.core.scan._generate`` from rules
over the installed scikit-learn, SciPy and NumPy. Both use one format and are merged: a name's
uses are the union of its entries, and ``[arguments]`` rules merge per callee and position.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from modelport.core.scan.pickle import USES

#: The policies the data files define.
POLICIES = ("sklearn", "torch")
#: The data files, merged in this order.
DATA_FILES = ("allowlist.toml", "allowlist_generated.toml")


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


def parse(*texts: str) -> dict[str, NameAllowlist]:
    """Parse the data files into one allowlist per policy (all files merged)."""
    merged: dict[str, dict[tuple[str, str], frozenset[str]]] = {p: {} for p in POLICIES}
    arguments: dict[str, dict[str, dict[int, frozenset[str]]]] = {p: {} for p in POLICIES}
    groups = [item for text in texts for item in tomllib.loads(text).items()]
    for group_name, group in groups:
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
        for policy_name in POLICIES:
            rule = out[policy_name].setdefault(callee, {})
            for pos, names in positions.items():
                rule[int(pos)] = rule.get(int(pos), frozenset()) | frozenset(names)


def _read(name: str) -> str:
    return resources.files("modelport.core.scan").joinpath(name).read_text("utf-8")


@functools.cache
def load() -> dict[str, NameAllowlist]:
    return parse(*(_read(name) for name in DATA_FILES))


def hand_reviewed_names() -> dict[str, set[str]]:
    """Every name in ``allowlist.toml`` with its uses, over all policies (for the generator)."""
    out: dict[str, set[str]] = {}
    for table in parse(_read(DATA_FILES[0])).values():
        for (module, name), uses in table.entries.items():
            out.setdefault(f"{module}.{name}", set()).update(uses)
    return out


def policy(name: str) -> NameAllowlist:
    return load()[name]
