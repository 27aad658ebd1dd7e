"""The lock audit's policy and its fallback to the project's JSON, on made-up advisories (no
network: what a vulnerability service publishes tomorrow must not change these answers)."""

from __future__ import annotations

from typing import Any

from scripts.audit import Finding, audit, fails_build, table
from scripts.lock import Pin

FIXED = Finding("jinja2", "3.1.0", "PYSEC-1", ("CVE-1",), ("3.1.1",))
UNFIXED = Finding("jinja2", "3.1.0", "GHSA-2", (), ())


def test_only_a_strict_run_fails_and_only_on_a_fixed_vulnerability() -> None:
    assert fails_build(FIXED, strict=True)
    assert not fails_build(UNFIXED, strict=True)
    assert not fails_build(FIXED, strict=False)


def project(version: str, vulnerabilities: list[dict[str, Any]]) -> dict[str, Any]:
    return {"info": {"version": version}, "vulnerabilities": vulnerabilities}


def test_pins_pip_audit_skipped_are_audited_from_the_latest_release_or_reported() -> None:
    latest = Pin("jinja2", "3.1.0", None, ("sha256:x",))
    older = Pin("numpy", "1.0", None, ("sha256:y",))
    gone = Pin("boto3", "1.0", None, ("sha256:z",))
    advisories: list[dict[str, Any]] = [
        {"id": "PYSEC-1", "aliases": ["CVE-1"], "fixed_in": ["3.1.1"], "withdrawn": None},
        {"id": "PYSEC-9", "aliases": [], "fixed_in": [], "withdrawn": "2026-01-01T00:00:00Z"},
    ]
    projects = {"jinja2": project("3.1.0", advisories), "numpy": project("2.0", [])}
    findings, unaudited = audit(
        [latest, older, gone],
        audited={("boto3", "1.0"): []},
        fetch=projects.get,
    )
    assert findings == [FIXED]
    assert unaudited == [older]


def test_table_aligns_columns() -> None:
    assert table([["a", "bb"], ["ccc", "d"]]).splitlines() == ["a    bb", "ccc  d"]
