"""The strict zip reader: every way two zip readers could disagree is refused."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile

import pytest
from modelport.core.scan import Limits, scan
from modelport.core.scan.limits import Deadline
from modelport.core.scan.zipread import ZipViolation, member_bytes, read_entries


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buf.getvalue()


GOOD = [("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2)), ("archive/version", b"3\n")]


def _read(raw: bytes) -> list[bytes]:
    view = memoryview(raw)
    budget = [1 << 30]
    return [
        bytes(member_bytes(view, e, Limits(), Deadline(5), budget))
        for e in read_entries(view, Limits())
    ]


def _violation(raw: bytes) -> str:
    with pytest.raises(ZipViolation) as info:
        _read(raw)
    return str(info.value)


def test_plain_and_deflated_archives_read_back() -> None:
    assert _read(_zip(GOOD)) == [d for _, d in GOOD]
    assert _read(_zip(GOOD, zipfile.ZIP_DEFLATED)) == [d for _, d in GOOD]
    assert scan(_zip(GOOD), expected_format="pt").safe


def test_bytes_after_the_end_record() -> None:
    assert "end-of-central-directory" in _violation(_zip(GOOD) + b"x")


def test_archive_comment() -> None:
    buf = io.BytesIO(_zip(GOOD))
    with zipfile.ZipFile(buf, "a") as z:
        z.comment = b"hello"
    assert _violation(buf.getvalue())


def test_gap_between_members() -> None:
    raw = _zip(GOOD)
    second = raw.index(b"PK\x03\x04", 4)
    padded = raw[:second] + b"\x00" * 8 + raw[second:]
    # Fix the offsets the directory and end record hold so only the gap is wrong.
    cd = padded.index(b"PK\x01\x02")
    cd2 = padded.index(b"PK\x01\x02", cd + 4)
    out = bytearray(padded)
    struct.pack_into("<I", out, cd2 + 42, second + 8)
    eocd = out.rindex(b"PK\x05\x06")
    struct.pack_into("<I", out, eocd + 16, cd)
    assert "unaccounted" in _violation(bytes(out))


def test_local_name_differs_from_directory() -> None:
    raw = bytearray(_zip(GOOD))
    pos = raw.index(b"archive/data.pkl")  # the first occurrence is the local header's
    raw[pos + 8 : pos + 16] = b"DATA.PKL"
    assert "different file" in _violation(bytes(raw))


def test_unknown_method_and_symlink() -> None:
    raw = bytearray(_zip(GOOD))
    cd = raw.index(b"PK\x01\x02")
    raw[cd + 10] = 12  # bzip2
    assert "method" in _violation(bytes(raw))
    raw = bytearray(_zip(GOOD))
    cd = raw.index(b"PK\x01\x02")
    raw[cd + 5] = 3  # made by Unix
    struct.pack_into("<I", raw, cd + 38, 0o120777 << 16)
    assert "symbolic link" in _violation(bytes(raw))


def test_backslash_and_absolute_names() -> None:
    assert "forbidden" in _violation(_zip([("archive\\data.pkl", b"x")]))
    assert "absolute" in _violation(_zip([("/archive/data.pkl", b"x")]))


def test_member_count_limit_is_undecidable() -> None:
    members = [(f"archive/extra/{i}", b"") for i in range(20)]
    verdict = scan(_zip(GOOD + members), expected_format="pt", limits=Limits(max_zip_members=5))
    assert verdict.outcome.value == "undecidable"
    assert verdict.findings[0].location == "max_zip_members"


def test_torch_archive_without_data_pkl_is_refused() -> None:
    verdict = scan(_zip([("archive/version", b"3\n")]), expected_format="pt")
    assert [f.code.value for f in verdict.findings] == ["unexpected_member"]
