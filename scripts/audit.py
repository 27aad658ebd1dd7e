#!/usr/bin/env python3
"""Audit the images' locks for known vulnerabilities and print one table.

    python scripts/audit.py            # report only: exits 0 whatever it finds (CI)
    python scripts/audit.py --strict   # exits 1 on a vulnerability that has a fixed release

Each lock goes through pip-audit (`--no-deps --disable-pip -r LOCK`: PyPI's advisories for each
pinned release). Where pip-audit cannot audit a pin (PyPI's per-release endpoint does not answer,
as on a network that only mirrors the package index), the project's JSON on PyPI is asked
instead: its `vulnerabilities` are those of the project's latest release, so it audits a pin that
is the latest release, and the pin is reported as not audited otherwise. Nothing here fails
because a service is unreachable: such pins are counted in the summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.lock import Pin, canonical, load_targets, read_lock

PROJECT_JSON = "https://pypi.org/pypi/{name}/json"


@dataclass(frozen=True)
class Finding:
    """A known vulnerability in one pinned release."""

    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]


def fails_build(finding: Finding, *, strict: bool) -> bool:
    """The audit's policy (docs/security.md, "Supply chain"). Every finding is reported. One that
    has a fixed release fails a strict run (re-lock to take the fix); one with no fix never fails
    (there is nothing to upgrade to: it is assessed by hand). CI runs without --strict, because
    advisories are published every day and a build must not fail on what a service published
    after the commit it tests."""
    return strict and bool(finding.fixed_in)


def run_pip_audit(lock: Path) -> dict[tuple[str, str], list[Finding]]:
    """pip-audit's answer for the pins it could audit, keyed by (name, version)."""
    command = [sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip", "-r", str(lock)]
    done = subprocess.run(
        [*command, "--format", "json", "--progress-spinner", "off", "-s", "pypi"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"audit: pip-audit failed on {lock.name}: {done.stderr.strip()[-300:]}")
        return {}
    audited: dict[tuple[str, str], list[Finding]] = {}
    for dep in report["dependencies"]:
        if "skip_reason" in dep:
            continue
        name, version = canonical(dep["name"]), dep["version"]
        audited[name, version] = [
            Finding(name, version, v["id"], tuple(v["aliases"]), tuple(v["fix_versions"]))
            for v in dep["vulns"]
        ]
    return audited


def fetch_project(name: str) -> dict[str, Any] | None:
    url = PROJECT_JSON.format(name=name)
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 (a constant https URL)
            project: dict[str, Any] = json.load(answer)
            return project
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError):
        return None


def from_project_json(pin: Pin, project: dict[str, Any] | None) -> list[Finding] | None:
    """The pin's vulnerabilities when it is the project's latest release, else None."""
    if project is None or project["info"]["version"] != pin.version:
        return None
    return [
        Finding(pin.name, pin.version, v["id"], tuple(v["aliases"]), tuple(v["fixed_in"] or ()))
        for v in project.get("vulnerabilities", [])
        if not v.get("withdrawn")
    ]


def audit(
    pins: Iterable[Pin],
    audited: dict[tuple[str, str], list[Finding]],
    fetch: Callable[[str], dict[str, Any] | None] = fetch_project,
) -> tuple[list[Finding], list[Pin]]:
    """Findings for every pin, and the pins that no source could audit."""
    findings: list[Finding] = []
    unaudited: list[Pin] = []
    for pin in pins:
        found = audited.get((pin.name, pin.version))
        if found is None:
            found = from_project_json(pin, fetch(pin.name))
        if found is None:
            unaudited.append(pin)
        else:
            findings += found
    return findings, unaudited


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strict", action="store_true", help="exit 1 on a fixable finding")
    args = parser.parse_args(argv)
    locks = [t.lock for t in load_targets().values() if t.lock.exists()]
    pins: dict[tuple[str, str], Pin] = {}
    where: dict[tuple[str, str], set[str]] = {}
    for lock in locks:
        for pin in read_lock(lock):
            pins.setdefault((pin.name, pin.version), pin)
            where.setdefault((pin.name, pin.version), set()).add(lock.stem)
    audited: dict[tuple[str, str], list[Finding]] = {}
    for lock in locks:
        audited |= run_pip_audit(lock)
    findings, unaudited = audit(pins.values(), audited)
    rows = [["package", "version", "advisory", "aliases", "fixed in", "locks"]]
    for f in findings:
        aliases, fixed = ",".join(f.aliases) or "-", ",".join(f.fixed_in) or "none"
        locked_in = ",".join(sorted(where[f.package, f.version]))
        rows.append([f.package, f.version, f.advisory, aliases, fixed, locked_in])
    print(table(rows) if findings else "audit: no known vulnerabilities in the audited pins")
    print(
        f"audit: {len(pins) - len(unaudited)} of {len(pins)} pinned releases audited"
        f" ({len(locks)} locks: {', '.join(lk.name for lk in locks)})"
    )
    if unaudited:
        names = ", ".join(f"{p.name}=={p.version}" for p in unaudited)
        print(f"audit: not audited (no advisory data for that release reachable): {names}")
    failing = [f for f in findings if fails_build(f, strict=args.strict)]
    for finding in failing:
        fixed = ", ".join(finding.fixed_in)
        print(
            f"audit: {finding.package}=={finding.version} has {finding.advisory}, fixed in {fixed}:"
            " re-lock with python scripts/lock.py",
            file=sys.stderr,
        )
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
