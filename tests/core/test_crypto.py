"""Envelope encryption: round trips, every tamper case with its own error, wrapping, rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelport.core import crypto
from modelport.core.crypto import (
    BadHeaderError,
    CryptoError,
    KeyFormatError,
    MasterKey,
    ReorderedError,
    SplicedError,
    TamperedError,
    TrailingDataError,
    TruncatedError,
    UnknownKeyIdError,
    WrappedKey,
    WrongKeyError,
)
from modelport.core.errors import ModelportError
from modelport.core.keys import KeyRing, format_master_key, new_master_key_entry, parse_key_ring
from modelport.core.storage import FileStore

SEG = 64
KEY = crypto.generate_data_key()
HEADER_TAIL = crypto.KEY_CHECK_BYTES + crypto.HEADER_MAC_BYTES + 1  # from the key id's last char


def encrypt(data: bytes, key: bytes = KEY, *, seg: int = SEG, key_id: str = "k1") -> bytes:
    return b"".join(crypto.encrypt_stream([data], key, segment_size=seg, key_id=key_id))


def decrypt(blob: bytes, key: bytes = KEY) -> bytes:
    return b"".join(crypto.decrypt_stream([blob], key))


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def segments(blob: bytes, *, seg: int = SEG, key_id: str = "k1") -> tuple[bytes, list[bytes]]:
    """Cut a ciphertext into its header and its segment records."""
    header_len = crypto.ciphertext_size(0, segment_size=seg, key_id=key_id) - 17 - 16
    header, body = blob[:header_len], blob[header_len:]
    records = []
    while body:
        (length,) = struct.unpack(">I", body[13:17])
        records.append(body[: 17 + length + 16])
        body = body[17 + length + 16 :]
    return header, records


def raises_exactly(error: type[CryptoError], blob: bytes, key: bytes = KEY) -> CryptoError:
    with pytest.raises(CryptoError) as info:
        decrypt(blob, key)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    return info.value


# --------------------------------------------------------------------------- round trips

BOUNDARY_SIZES = [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG - 1, 2 * SEG, 2 * SEG + 1, 5 * SEG]


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_round_trip_at_segment_boundaries(size: int) -> None:
    data = os.urandom(size)
    blob = encrypt(data)
    assert len(blob) == crypto.ciphertext_size(size, segment_size=SEG, key_id="k1")
    assert decrypt(blob) == data
    _, records = segments(blob)
    assert len(records) == max(1, -(-size // SEG))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=6 * 48),
    seg=st.integers(min_value=1, max_value=48),
    in_cuts=st.lists(st.integers(min_value=0), max_size=12),
    out_cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_round_trip_any_chunking(
    data: bytes, seg: int, in_cuts: list[int], out_cuts: list[int]
) -> None:
    pieces = crypto.encrypt_stream(split_at(data, in_cuts), KEY, segment_size=seg)
    blob = b"".join(pieces)
    assert len(blob) == crypto.ciphertext_size(len(data), segment_size=seg)
    assert b"".join(crypto.decrypt_stream(split_at(blob, out_cuts), KEY)) == data


@settings(max_examples=60, deadline=None)
@given(size=st.sampled_from(BOUNDARY_SIZES), data=st.data())
def test_any_single_bit_flip_is_refused(size: int, data: st.DataObject) -> None:
    blob = bytearray(encrypt(os.urandom(size)))
    bit = data.draw(st.integers(min_value=0, max_value=len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CryptoError):
        decrypt(bytes(blob))


def test_each_encryption_is_fresh() -> None:
    data = b"same plaintext" * 10
    assert encrypt(data) != encrypt(data)


def test_encrypt_streams_lazily_from_an_endless_source() -> None:
    consumed = 0

    def endless() -> Iterator[bytes]:
        nonlocal consumed
        while True:
            consumed += 1000
            yield b"x" * 1000

    stream = crypto.encrypt_stream(endless(), KEY, segment_size=4096)
    first = list(itertools.islice(stream, 6))  # header + 5 segments
    assert len(first) == 6
    assert consumed <= 7 * 4096


def test_memory_stays_within_a_few_segments() -> None:
    """32 MiB through encrypt and decrypt with 1 MiB segments never holds more than a few."""
    block = os.urandom(1 << 20)
    tracemalloc.start()
    try:
        plain = crypto.encrypt_stream(itertools.repeat(block, 32), KEY)
        total = sum(len(piece) for piece in crypto.decrypt_stream(plain, KEY))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 32 << 20
    assert peak < 8 << 20


def test_decrypt_yields_verified_segments_as_they_arrive() -> None:
    data = os.urandom(10 * SEG)
    blob = encrypt(data)
    header, records = segments(blob)

    def source() -> Iterator[bytes]:
        yield header
        yield from records[:3]
        raise OSError("connection reset")

    stream = crypto.decrypt_stream(source(), KEY)
    got = [next(stream) for _ in range(3)]
    assert b"".join(got) == data[: 3 * SEG]
    with pytest.raises(OSError, match="connection reset"):
        next(stream)


def test_bad_arguments_fail_at_call_time() -> None:
    with pytest.raises(KeyFormatError):
        crypto.encrypt_stream([b"x"], b"short")
    with pytest.raises(ValueError):
        crypto.encrypt_stream([b"x"], KEY, segment_size=0)
    with pytest.raises(KeyFormatError):
        crypto.encrypt_stream([b"x"], KEY, key_id="no spaces")
    with pytest.raises(KeyFormatError):
        crypto.decrypt_stream([b"x"], KEY[:16])


def test_format_matches_the_documented_layout() -> None:
    """Re-derive everything from the layout in crypto's docstring with bare primitives."""
    data = os.urandom(2 * 16 + 5)
    blob = encrypt(data, seg=16, key_id="k7")

    magic, version, seg, file_id, id_len = struct.unpack(">8sBI16sB", blob[:30])
    assert (magic, version, seg, id_len) == (b"\x89MPENC\r\n", 1, 16, 2)
    assert blob[30:32] == b"k7"
    key_check, mac = blob[32:48], blob[48:80]
    header, body = blob[:80], blob[80:]

    def hkdf(salt: bytes | None, info: bytes, length: int = 32) -> bytes:
        return HKDF(hashes.SHA256(), length, salt, b"modelport/v1/" + info).derive(KEY)

    assert key_check == hkdf(None, b"key-check", 16)
    assert mac == hmac.digest(hkdf(file_id, b"header"), blob[:48], "sha256")

    aead, digest, out = AESGCM(hkdf(file_id, b"segment")), hashlib.sha256(header).digest(), b""
    for index in range(3):
        framing, body = body[:17], body[17:]
        tag, found, last, length = struct.unpack(">8sIBI", framing)
        assert (tag, found, last, length) == (file_id[:8], index, index == 2, [16, 16, 5][index])
        nonce = file_id[:7] + struct.pack(">IB", index, last)
        out += aead.decrypt(nonce, body[: length + 16], digest + framing)
        body = body[length + 16 :]
    assert out == data and body == b""


# --------------------------------------------------------------------------- tampering


@pytest.fixture
def blob() -> bytes:
    return encrypt(os.urandom(4 * SEG + 10))


def test_truncated_at_a_segment_boundary(blob: bytes) -> None:
    header, records = segments(blob)
    err = raises_exactly(TruncatedError, header + b"".join(records[:-1]))
    assert "without its final segment" in err.message


@pytest.mark.parametrize("cut", [1, 17, 40, SEG + 16 + 17 - 1])
def test_truncated_inside_a_segment(blob: bytes, cut: int) -> None:
    header, records = segments(blob)
    raises_exactly(TruncatedError, header + records[0] + records[1][:cut])


@pytest.mark.parametrize("keep", [0, 3, 8, 30, 60])
def test_truncated_inside_the_header(blob: bytes, keep: int) -> None:
    raises_exactly(TruncatedError, blob[:keep])


def test_header_only(blob: bytes) -> None:
    header, _ = segments(blob)
    raises_exactly(TruncatedError, header)


@pytest.mark.parametrize(
    "order", [[1, 0, 2, 3, 4], [0, 2, 1, 3, 4], [0, 1, 3, 4], [0, 0, 1, 2, 3, 4]]
)
def test_reordered_dropped_or_repeated_segments(blob: bytes, order: list[int]) -> None:
    header, records = segments(blob)
    raises_exactly(ReorderedError, header + b"".join(records[i] for i in order))


@pytest.mark.parametrize("same_key", [True, False])
def test_segment_spliced_from_another_file(blob: bytes, same_key: bool) -> None:
    other_key = KEY if same_key else crypto.generate_data_key()
    other = encrypt(os.urandom(4 * SEG + 10), other_key)
    header, records = segments(blob)
    _, foreign = segments(other)
    records[2] = foreign[2]
    raises_exactly(SplicedError, header + b"".join(records))


def test_flipped_bit_in_a_segment(blob: bytes) -> None:
    header, records = segments(blob)
    record = bytearray(records[1])
    record[17 + 5] ^= 0x04
    records[1] = bytes(record)
    err = raises_exactly(TamperedError, header + b"".join(records))
    assert "segment 1" in err.message


def test_flipped_bit_in_a_tag(blob: bytes) -> None:
    tampered = bytearray(blob)
    tampered[-1] ^= 0x80
    raises_exactly(TamperedError, bytes(tampered))


def test_last_flag_moved_to_an_earlier_segment(blob: bytes) -> None:
    """Cutting the file and marking the new final segment as last must not pass."""
    header, records = segments(blob)
    record = bytearray(records[2])
    record[12] = 1
    raises_exactly(TamperedError, header + records[0] + records[1] + bytes(record))


def test_header_field_altered(blob: bytes) -> None:
    header, records = segments(blob)
    altered = bytearray(header)
    altered[-HEADER_TAIL] = ord("2")  # the key id "k1" becomes "k2"
    raises_exactly(TamperedError, bytes(altered) + b"".join(records))


def test_trailing_data(blob: bytes) -> None:
    raises_exactly(TrailingDataError, blob + b"\x00")


def test_wrong_data_key(blob: bytes) -> None:
    raises_exactly(WrongKeyError, blob, crypto.generate_data_key())


def test_bad_magic_and_version(blob: bytes) -> None:
    raises_exactly(BadHeaderError, b"PK\x03\x04" + blob[4:])
    versioned = bytearray(blob)
    versioned[len(crypto.MAGIC)] = 9
    err = raises_exactly(BadHeaderError, bytes(versioned))
    assert "version 9" in err.message


def test_empty_input_is_truncated() -> None:
    raises_exactly(TruncatedError, b"")


def test_errors_are_modelport_errors_with_distinct_codes() -> None:
    classes = [
        BadHeaderError,
        TruncatedError,
        TamperedError,
        TrailingDataError,
        ReorderedError,
        SplicedError,
        WrongKeyError,
        UnknownKeyIdError,
        KeyFormatError,
    ]
    assert all(issubclass(c, ModelportError) for c in classes)
    assert len({c.code for c in classes}) == len(classes)
    assert ModelportError("x").body()["error"]["code"] == "internal_error"
    assert TamperedError("x").body()["error"]["code"] == "artifact_tampered"


def test_read_header_reports_the_master_key_id(blob: bytes) -> None:
    header = crypto.read_header([blob])
    assert (header.key_id, header.segment_size, header.version) == ("k1", SEG, 1)


# --------------------------------------------------------------------------- wrapping


def master(key_id: str) -> MasterKey:
    return crypto.generate_master_key(key_id)


BIND = crypto.KeyBinding(artifact_id="a0123456789abcdef", model_id="m01234567", sha256="ab" * 32)


def test_wrap_round_trip_and_text_form() -> None:
    k1 = master("k1")
    wrapped = crypto.wrap_data_key(KEY, k1, BIND)
    assert wrapped.key_id == "k1" and KEY not in wrapped.blob
    assert crypto.unwrap_data_key(WrappedKey.decode(wrapped.encode()), [k1], BIND) == KEY
    assert crypto.wrap_data_key(KEY, k1, BIND) != wrapped


def test_unwrap_with_unknown_key_id() -> None:
    wrapped = crypto.wrap_data_key(KEY, master("k1"), BIND)
    with pytest.raises(UnknownKeyIdError, match=r"'k1'.*configured ids: k2, k3"):
        crypto.unwrap_data_key(wrapped, [master("k2"), master("k3")], BIND)


def test_unwrap_with_a_different_key_under_the_same_id() -> None:
    wrapped = crypto.wrap_data_key(KEY, master("k1"), BIND)
    with pytest.raises(WrongKeyError):
        crypto.unwrap_data_key(wrapped, [master("k1")], BIND)


def test_wrapped_key_relabelled_to_another_id_is_refused() -> None:
    k1 = master("k1")
    wrapped = crypto.wrap_data_key(KEY, k1, BIND)
    relabelled = WrappedKey("k2", wrapped.blob)
    # "k2" has the same bytes as "k1" here: only the id bound into the wrap catches the relabel.
    with pytest.raises(WrongKeyError):
        crypto.unwrap_data_key(relabelled, [k1, MasterKey("k2", k1.key)], BIND)


def test_altered_wrapped_blob() -> None:
    k1 = master("k1")
    blob = bytearray(crypto.wrap_data_key(KEY, k1, BIND).blob)
    blob[20] ^= 1
    with pytest.raises(WrongKeyError):
        crypto.unwrap_data_key(WrappedKey("k1", bytes(blob)), [k1], BIND)
    with pytest.raises(KeyFormatError):
        crypto.unwrap_data_key(WrappedKey("k1", bytes(blob[:-1])), [k1], BIND)


def test_keys_never_show_in_repr() -> None:
    k1 = master("k1")
    wrapped = crypto.wrap_data_key(KEY, k1, BIND)
    ring = KeyRing.of([k1])
    for text in (repr(k1), repr(wrapped), repr(ring), str(ring)):
        assert repr(k1.key) not in text and base64.b64encode(k1.key).decode() not in text


def test_rotation_rewraps_without_touching_the_artifact(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    old_ring = parse_key_ring(new_master_key_entry("k1"))
    data_key = crypto.generate_data_key()
    wrapped = old_ring.wrap(data_key, BIND)
    stored = crypto.encrypt_to_store(
        store, "m/model.enc", [b"weights" * 1000], data_key, key_id=old_ring.current_id
    )
    before = (tmp_path / "m/model.enc").read_bytes()

    new_ring = KeyRing.of([*old_ring, crypto.generate_master_key("k2")])
    assert new_ring.current_id == "k2" and new_ring.needs_rewrap(wrapped)
    rotated = new_ring.rewrap(wrapped, BIND)
    assert rotated.key_id == "k2" and not new_ring.needs_rewrap(rotated)
    assert new_ring.rewrap(rotated, BIND) is rotated

    # Same as the free function, with the old keys for unwrapping only.
    rewrapped = crypto.rewrap(wrapped, old_ring, new_ring.current, BIND)
    assert crypto.unwrap_data_key(rewrapped, new_ring, BIND)

    retired = KeyRing.of([new_ring.get("k2")])
    with pytest.raises(UnknownKeyIdError):
        retired.unwrap(wrapped, BIND)
    key = retired.unwrap(rotated, BIND)
    assert (tmp_path / "m/model.enc").read_bytes() == before
    plaintext = b"".join(crypto.decrypt_from_store(store, "m/model.enc", key))
    assert plaintext == b"weights" * 1000
    assert stored.size == len(plaintext) and stored.stored_size == len(before)
    assert crypto.read_header(store.get_stream("m/model.enc")).key_id == "k1"


# --------------------------------------------------------------------------- key settings


def test_parse_key_ring() -> None:
    e1, e2 = new_master_key_entry("k1"), new_master_key_entry("k-2.b")
    ring = parse_key_ring(f" {e1} ,\n{e2},")
    assert list(ring.masters) == ["k1", "k-2.b"] and ring.current_id == "k-2.b"
    assert parse_key_ring(f"{e1},{e2}", "k1").current.key_id == "k1"
    assert format_master_key(ring.get("k1")) == e1


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "no master key"),
        ("k1", "must read"),
        ("k1:not base64!", "not valid base64"),
        ("k1:" + base64.b64encode(b"x" * 16).decode(), "32 bytes, got 16"),
        ("k1:" + base64.b64encode(bytes(32)).decode(), "placeholder"),
        # A fixed key: random parameters would differ between xdist workers' collections.
        ("bad id:" + base64.b64encode(bytes(range(32))).decode(), "invalid master-key id"),
    ],
)
def test_parse_key_ring_refuses(spec: str, match: str) -> None:
    with pytest.raises(KeyFormatError, match=match) as info:
        parse_key_ring(spec)
    assert spec.partition(":")[2] == "" or spec.partition(":")[2] not in info.value.message


def test_parse_key_ring_refuses_duplicates_and_unknown_current() -> None:
    e1 = new_master_key_entry("k1")
    with pytest.raises(KeyFormatError, match="twice"):
        parse_key_ring(f"{e1},{new_master_key_entry('k1')}")
    with pytest.raises(KeyFormatError, match="not in the ring"):
        parse_key_ring(e1, "k9")


def test_read_data_key_file(tmp_path: Path) -> None:
    path = tmp_path / "data-key"
    path.write_text(crypto.encode_data_key(KEY) + "\n")
    assert crypto.read_data_key_file(path) == KEY
    path.write_text(base64.b64encode(os.urandom(31)).decode())
    with pytest.raises(KeyFormatError, match="32 bytes, got 31"):
        crypto.read_data_key_file(path)
    path.write_text("%%%")
    with pytest.raises(KeyFormatError, match="not valid base64"):
        crypto.read_data_key_file(path)
    with pytest.raises(KeyFormatError, match="cannot read"):
        crypto.read_data_key_file(tmp_path / "missing")
