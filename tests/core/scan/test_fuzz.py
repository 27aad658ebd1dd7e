"""Fuzzing the pickle walker, joblib reader and zip reader: every input gets a verdict within
the limits, and no input reaches an error path the parsers did not foresee."""

from __future__ import annotations

import io
import pickle
import zipfile
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelport.core.scan import Limits, Outcome, scan

from tests.core.scan.conftest import joblib_bytes

LIMITS = Limits(max_seconds=5, max_opcodes=100_000, max_decompressed_bytes=16 << 20)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _seed_pickle() -> bytes:
    value = {"w": np.arange(6.0).reshape(2, 3), "names": ["a", "b"], "n": 3, "t": (1.5, None),
             "s": {1, 2}, "b": b"xyz"}  # fmt: skip
    return pickle.dumps(value, protocol=5)


def _seed_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))
        z.writestr("archive/version", "3\n")
        z.writestr(zipfile.ZipInfo("archive/data/0"), b"\x00" * 16)
    return buf.getvalue()


SEEDS: dict[str, bytes] = {
    "pkl": _seed_pickle(),
    "joblib": joblib_bytes({"w": np.arange(8.0), "k": "v"}),
    "pt": _seed_zip(),
}


def _check(data: bytes, fmt: str) -> None:
    verdict = scan(data, expected_format=fmt, limits=LIMITS)
    assert verdict.outcome in (Outcome.SAFE, Outcome.UNSAFE, Outcome.UNDECIDABLE)
    for finding in verdict.findings:
        assert not finding.message.startswith("scanner error"), (finding, data[:64])


@st.composite
def mutated(draw: Any, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[pos:]
    return bytes(data)


@pytest.mark.parametrize("fmt", ["pkl", "joblib", "pt"])
@FUZZ
@given(data=st.data())
def test_mutated_files_always_get_a_verdict(fmt: str, data: st.DataObject) -> None:
    _check(data.draw(mutated(SEEDS[fmt])), fmt)


@pytest.mark.parametrize("fmt", ["pkl", "joblib", "pt", "pth"])
@FUZZ
@given(body=st.binary(max_size=512))
def test_random_pickle_bodies_always_get_a_verdict(fmt: str, body: bytes) -> None:
    _check(b"\x80\x04" + body, fmt)


@FUZZ
@given(ops=st.lists(st.sampled_from(list(b"()]}NtRb\x93\x94\x85\x86\x87aesu\x8f\x90\x910.")),
                    max_size=64), names=st.lists(st.text(max_size=8), max_size=4))  # fmt: skip
def test_random_opcode_programs_always_get_a_verdict(ops: list[int], names: list[str]) -> None:
    strings = b"".join(b"\x8c" + bytes([len(n.encode())]) + n.encode() for n in names)
    _check(b"\x80\x04" + strings + bytes(ops) + b".", "pkl")


@FUZZ
@given(body=st.binary(max_size=256))
def test_random_bytes_of_any_claimed_format_get_a_verdict(body: bytes) -> None:
    for fmt in ("pkl", "joblib", "pt", "onnx"):
        _check(body, fmt)
