"""The strict zip reader: every way two zip readers could disagree is refused."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from typing import Any

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


def _with_descriptors(members: list[tuple[str, bytes]]) -> bytes:
    """Python's zipfile writes a data descriptor (flag bit 3) when it writes to a stream."""

    class Stream(io.RawIOBase):
        def __init__(self) -> None:
            self.out = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.out += b
            return len(b)

    stream = Stream()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            with z.open(name, "w") as f:
                f.write(data)
    return bytes(stream.out)


def test_descriptor_values_no_loader_reads_are_not_compared() -> None:
    """Some torch releases write a data descriptor whose CRC disagrees with the directory; torch
    and Python's zipfile never read it, so neither does the scanner."""
    raw = bytearray(_with_descriptors(GOOD))
    first = raw.index(b"PK\x07\x08")
    raw[first + 4 : first + 16] = b"\xff" * 12  # CRC and both sizes
    assert _read(bytes(raw)) == [d for _, d in GOOD]
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        assert [z.read(n) for n in z.namelist()] == [d for _, d in GOOD]


def test_bytes_beyond_one_descriptor_are_refused() -> None:
    raw = _with_descriptors(GOOD)
    second = raw.index(b"PK\x03\x04", 4)
    padded = bytearray(raw[:second] + b"\x00" * 4 + raw[second:])
    cd = padded.index(b"PK\x01\x02")
    cd2 = padded.index(b"PK\x01\x02", cd + 4)
    struct.pack_into("<I", padded, cd2 + 42, second + 4)
    eocd = padded.rindex(b"PK\x05\x06")
    struct.pack_into("<I", padded, eocd + 16, cd)
    assert "not one data descriptor" in _violation(bytes(padded))


def test_overlapping_members_are_refused() -> None:
    raw = bytearray(_zip(GOOD))
    cd = raw.index(b"PK\x01\x02")
    size = struct.unpack_from("<I", raw, cd + 20)[0]
    for off in (20, 24):  # the first member's sizes in the directory, into the second member
        struct.pack_into("<I", raw, cd + off, size + 8)
    assert _violation(bytes(raw))


def test_archive_written_without_crcs_reads_as_torch_reads_it() -> None:
    """torch.serialization.set_crc32_options(False) records CRC 0 for every member."""
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.serialization.set_crc32_options(False)
    try:
        torch.save({"w": torch.arange(4.0)}, buf)
    finally:
        torch.serialization.set_crc32_options(True)
    assert scan(buf.getvalue(), expected_format="pt").safe
    assert torch.load(io.BytesIO(buf.getvalue()))["w"].tolist() == [0.0, 1.0, 2.0, 3.0]
