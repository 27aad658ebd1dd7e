"""Bounded scanning: long decompressed streams are walked through a window, never held whole, and
the scan in a child process is stopped by its CPU, memory and wall-clock limits."""

from __future__ import annotations

import os
import pickle
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelport.core.scan import Code, Limits, Outcome, Verdict, scan
from modelport.core.scan.limits import LimitExceeded, MiB
from modelport.core.scan.sandbox import (
    ProcessLimits,
    child_environment,
    run_isolated,
    scan_isolated,
)
from modelport.core.scan.window import Window

from testing.bombs import opcode_storm, string_hoard, zlib_joblib_bomb
from tests.core.scan.conftest import joblib_bytes
from tests.core.scan.test_fuzz import mutated

#: A window small enough that every file below is walked through it in 4 KiB decoder chunks.
SMALL = Limits(window_bytes=16 << 10)


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("true",))


def _same(data: bytes, fmt: str = "joblib") -> Verdict:
    """The verdict through the small window, checked equal to the one held in memory."""
    whole = scan(data, expected_format=fmt)
    windowed = scan(data, expected_format=fmt, limits=SMALL)
    assert (windowed.outcome, windowed.findings) == (whole.outcome, whole.findings)
    return windowed


BIG = np.arange(8192.0)  # 64 KiB of array bytes: four windows


@pytest.mark.parametrize("compress", ["zlib", "gzip", "bz2", "xz", "lzma", "lz4"])
def test_long_streams_get_the_verdict_they_get_in_memory(compress: str) -> None:
    pytest.importorskip("lz4") if compress == "lz4" else None
    benign = {"a": BIG, "b": [BIG + 1, {"c": BIG * 2}], "s": "x" * 5000, "o": np.array([1, "a"])}
    assert _same(joblib_bytes(benign, (compress, 3))).outcome is Outcome.SAFE
    for evil in (
        {"a": BIG, "z": _Payload()},  # after an array
        {"a": BIG, "o": np.array([BIG, _Payload()], dtype=object)},  # inside an object array
        [BIG, BIG, BIG, _Payload()],  # past several windows
    ):
        verdict = _same(joblib_bytes(evil, (compress, 3)))
        assert verdict.outcome is Outcome.UNSAFE
        assert "os.system" in verdict.findings[0].message or "posix.system" in str(verdict.findings)


_SEED = pickle.dumps({"w": BIG[:3000], "n": ["a", "b"], "t": (1.5, None), "k": "v" * 300}, 4)
assert len(_SEED) > SMALL.window_bytes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_long_streams_agree_with_memory(data: st.DataObject) -> None:
    """Whatever the decompressed bytes, the window changes nothing in the verdict."""
    _same(zlib.compress(data.draw(mutated(_SEED)), 1))


def test_a_read_behind_the_window_is_undecidable_not_wrong() -> None:
    chunks = iter([bytes(range(256)) * 16] * 64)  # 256 KiB in 4 KiB chunks
    window = Window(chunks, 256 << 10, 16 << 10)
    assert window[100_000] == 100_000 % 256
    assert window[100_000:100_004] == bytes(b % 256 for b in range(100_000, 100_004))
    with pytest.raises(LimitExceeded, match="behind its window"):
        window[10]
    with pytest.raises(IndexError):
        window[256 << 10]


def test_bomb_is_refused_holding_no_more_than_the_window() -> None:
    bomb = zlib_joblib_bomb(1536 * MiB)  # 1.5 MB that decompresses to 1.5 GiB
    assert len(bomb) < 2 * MiB
    tracemalloc.start()
    try:
        verdict = scan(bomb, expected_format="joblib")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert verdict.outcome is Outcome.UNDECIDABLE
    assert verdict.findings[0].location == "max_ratio"
    # The first pass keeps at most the window (64 MiB) and a decoder chunk (4 MiB).
    assert peak < Limits().window_bytes + 16 * MiB, peak


def test_bomb_below_the_ratio_is_still_refused_by_size_without_the_memory() -> None:
    bomb = zlib_joblib_bomb(96 * MiB)
    limits = Limits(max_ratio=10_000, max_decompressed_bytes=80 * MiB)
    verdict = scan(bomb, expected_format="joblib", limits=limits)
    assert verdict.findings[0].location == "max_decompressed_bytes"


# --- the child process -------------------------------------------------------------------------


def _file(tmp_path: Path, data: bytes, name: str = "m.joblib") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_isolated_scan_gives_the_in_process_verdict(tmp_path: Path) -> None:
    good = _file(tmp_path, joblib_bytes({"w": BIG}, ("zlib", 3)))
    bad = _file(tmp_path, joblib_bytes({"w": BIG, "z": _Payload()}), "bad.joblib")
    for path in (good, bad):
        assert scan_isolated(path) == scan(path)


def _only(verdict: Verdict) -> Any:
    assert verdict.outcome is Outcome.UNDECIDABLE, verdict
    [finding] = verdict.findings
    assert finding.code is Code.LIMIT_EXCEEDED
    return finding


def test_cpu_limit_stops_the_child(tmp_path: Path) -> None:
    path = _file(tmp_path, opcode_storm(8_000_000))
    run = run_isolated(path, limits=ProcessLimits(cpu_seconds=1))
    finding = _only(run.verdict)
    assert finding.location == "cpu_seconds"
    assert finding.message == "the scan used more than 1 s of CPU time"
    assert run.cpu_seconds < 3


def test_memory_limit_stops_the_child(tmp_path: Path) -> None:
    """The walker holds every string it appends; the address-space limit stops it."""
    path = _file(tmp_path, string_hoard(384))
    run = run_isolated(path, limits=ProcessLimits(memory_bytes=256 * MiB))
    finding = _only(run.verdict)
    assert finding.location == "memory"
    assert finding.message == "the scan needed more than 256 MiB of memory"


def test_wall_clock_limit_stops_the_child(tmp_path: Path) -> None:
    path = _file(tmp_path, opcode_storm(8_000_000))
    finding = _only(scan_isolated(path, limits=ProcessLimits(wall_seconds=0.2)))
    assert finding.message == "the scan took longer than 0.2 s"


def test_bomb_in_the_child_stays_within_its_limits(tmp_path: Path) -> None:
    path = _file(tmp_path, zlib_joblib_bomb(1536 * MiB))
    run = run_isolated(path, limits=ProcessLimits(memory_bytes=512 * MiB))
    assert _only(run.verdict).location == "max_ratio"
    # The window (64 MiB) and a decoder chunk over the interpreter: far below the limit.
    assert run.peak_rss_bytes is not None
    assert run.peak_rss_bytes < 256 * MiB


def test_a_missing_file_is_undecidable(tmp_path: Path) -> None:
    verdict = scan_isolated(tmp_path / "absent.pkl")
    assert verdict.outcome is Outcome.UNDECIDABLE
    assert verdict.findings[0].code is Code.UNREADABLE


def test_the_scan_child_inherits_none_of_the_callers_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control API keeps its master keys, JWT secret and database URL in its environment;
    the child that parses untrusted bytes gets none of them, yet still scans."""
    secrets = {
        "MODELPORT_API_MASTER_KEYS": "k1:" + "A" * 44,
        "MODELPORT_API_JWT_SECRET": "j" * 40,
        "MODELPORT_API_DATABASE_URL": "postgresql://u:p@db/modelport",
        "AWS_SECRET_ACCESS_KEY": "s3-secret",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    passed = child_environment(os.environ)
    assert not set(secrets) & set(passed)
    assert passed["PATH"] == os.environ["PATH"]
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    assert scan_isolated(path, expected_format="pkl").outcome is Outcome.SAFE
