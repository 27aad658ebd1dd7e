"""docs/security.md's threat model and this folder agree: every attack test is listed beside its
boundary, and every test the table names exists."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[1] / "docs" / "security.md"


def _table() -> str:
    text = DOC.read_text()
    start = text.index("## Threat model")
    return text[start : text.index("\n## ", start + 1)]


def _tests() -> dict[str, set[str]]:
    return {
        path.name: set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M))
        for path in HERE.glob("test_*.py")
        if path.name != Path(__file__).name
    }


def test_every_attack_test_is_in_the_threat_model() -> None:
    table = _table()
    listed = set(re.findall(r"::(test_\w+)", table)) | set(re.findall(r"`(test_\w+)`", table))
    listed |= set(re.findall(r"`::(test_\w+)`", table))
    missing = [f"{f}::{t}" for f, tests in _tests().items() for t in sorted(tests - listed)]
    assert not missing, "tests/security tests missing from docs/security.md:\n" + "\n".join(missing)


def test_the_threat_model_names_only_tests_that_exist() -> None:
    defined = set().union(*_tests().values())
    named = set(re.findall(r"::(test_\w+)", _table()))
    assert named, "the threat model names its tests"
    assert named <= defined, sorted(named - defined)
