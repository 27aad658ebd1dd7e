"""Malicious files built at test time: each is refused with the expected reason code, and
scanning them runs nothing (the payloads would create a marker file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from modelport.core.scan import Outcome, scan

from testing.malicious import CASES, Case, system, write_all


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    folder = tmp_path_factory.mktemp("malicious")
    marker = folder / "MARKER"
    files = {case.name: path for case, path in write_all(folder, marker)}
    return files, marker


def test_there_are_at_least_thirty_techniques() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_malicious_file_is_refused(built: tuple[dict[str, Path], Path], case: Case) -> None:
    files, marker = built
    verdict = scan(files[case.name])
    assert verdict.outcome is Outcome.UNSAFE, verdict
    codes = {f.code.value for f in verdict.findings}
    assert case.code in codes, verdict.findings
    assert not marker.exists()


def test_scanning_everything_leaves_no_marker(built: tuple[dict[str, Path], Path]) -> None:
    files, marker = built
    for path in files.values():
        scan(path)
    assert not marker.exists()


def _load_in_subprocess(code: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, timeout=120)


@pytest.mark.parametrize(
    ("case_name", "loader"),
    [
        ("os.system", "import pickle; pickle.load(open(p, 'rb'))"),
        ("joblib-after-array", "import joblib; joblib.load(p)"),
        ("joblib-xz", "import joblib; joblib.load(p)"),
        ("broken-after-payload", "import pickle; pickle.load(open(p, 'rb'))"),
        ("unaligned-joblib-pkl", "import pickle; pickle.load(open(p, 'rb'))"),
    ],
)
def test_payloads_are_live(tmp_path: Path, case_name: str, loader: str) -> None:
    """The builders make real exploits: the real loader creates the marker, the scanner not."""
    case = next(c for c in CASES if c.name == case_name)
    marker = tmp_path / "PWNED"
    path = tmp_path / case.filename
    path.write_bytes(case.build(f"touch {marker}"))
    assert scan(path).outcome is Outcome.UNSAFE
    assert not marker.exists()
    _load_in_subprocess(f"p = {str(path)!r}\n{loader}", tmp_path)
    assert marker.exists()


def test_undecidable_counts_as_refused(tmp_path: Path) -> None:
    from modelport.core.scan import Limits

    verdict = scan(system("true"), expected_format="pkl", limits=Limits(max_file_bytes=10))
    assert verdict.outcome is Outcome.UNDECIDABLE
    assert verdict.findings[0].code.value == "limit_exceeded"
    assert "max_file_bytes" in verdict.findings[0].message


def test_joblib_array_bytes_are_data_for_joblib(tmp_path: Path) -> None:
    """As .joblib the same bytes are array data to joblib: safe, and loading runs nothing."""
    case = next(c for c in CASES if c.name == "unaligned-joblib-pkl")
    marker = tmp_path / "PWNED"
    path = tmp_path / "m.joblib"
    path.write_bytes(case.build(f"touch {marker}"))
    assert scan(path).outcome is Outcome.SAFE
    _load_in_subprocess(f"p = {str(path)!r}\nimport joblib; joblib.load(p)", tmp_path)
    assert not marker.exists()
