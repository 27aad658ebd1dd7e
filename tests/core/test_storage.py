"""Artifact stores: FileStore on disk, S3Store against a real S3-API server, URIs, streaming."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import stat
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelport.core import crypto
from modelport.core.storage import (
    ArtifactNotFound,
    ArtifactStore,
    BadArtifactKey,
    ByteReader,
    FileStore,
    S3Options,
    S3Store,
    StorageError,
    open_uri,
    parse_uri,
    rechunk,
    store_for_uri,
)

from testing.s3 import S3Server

MIB = 1 << 20


class Boom(Exception):
    """Raised by a test source mid-stream."""


def failing_after(chunks: list[bytes]) -> Iterator[bytes]:
    yield from chunks
    raise Boom("source failed")


# --------------------------------------------------------------------------- stream helpers


@settings(deadline=None)  # no timing asserts: the CI box may be busy
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=40), max_size=12),
    size=st.integers(min_value=1, max_value=16),
)
def test_rechunk_makes_full_blocks_and_flags_only_the_last(sizes: list[int], size: int) -> None:
    data = os.urandom(sum(sizes))
    pieces = [data[a:b] for a, b in itertools.pairwise(itertools.accumulate([0, *sizes]))]
    blocks = list(rechunk(pieces, size))
    assert b"".join(b for b, _ in blocks) == data
    assert [last for _, last in blocks] == [False] * (len(blocks) - 1) + [True]
    assert all(len(b) == size for b, _ in blocks[:-1])
    assert 0 < len(blocks[-1][0]) <= size or data == b""


@settings(deadline=None)  # no timing asserts: the CI box may be busy
@given(
    data=st.binary(max_size=200),
    reads=st.lists(st.integers(min_value=0, max_value=50), max_size=10),
    cut=st.integers(min_value=1, max_value=60),
)
def test_byte_reader_reads_exact_counts(data: bytes, reads: list[int], cut: int) -> None:
    reader = ByteReader(data[i : i + cut] for i in range(0, len(data), cut))
    pos = 0
    for n in reads:
        assert reader.read(n) == data[pos : pos + n]
        pos = min(len(data), pos + n)
    assert reader.at_eof() == (pos == len(data))
    assert reader.read(len(data)) == data[pos:]
    assert reader.at_eof()


# --------------------------------------------------------------------------- URIs


@pytest.mark.parametrize(
    ("uri", "scheme", "location", "key"),
    [
        ("s3://models/a/b/model.enc", "s3", "models", "a/b/model.enc"),
        ("file:///var/lib/modelport/m1.enc", "file", "/var/lib/modelport", "m1.enc"),
        ("file://localhost/srv/a%20b.enc", "file", "/srv", "a b.enc"),
    ],
)
def test_parse_uri(uri: str, scheme: str, location: str, key: str) -> None:
    parsed = parse_uri(uri)
    assert (parsed.scheme, parsed.location, parsed.key) == (scheme, location, key)


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/model.onnx",
        "s3://bucket",
        "s3://bucket/",
        "s3://bucket/a/../../b",
        "s3:///key",
        "file://remote-host/x.enc",
        "file:///srv/../etc/passwd",
        "file:///srv/dir/",
        "file:///srv/x.enc?version=2",
        "/srv/x.enc",
    ],
)
def test_parse_uri_refuses(uri: str) -> None:
    with pytest.raises(BadArtifactKey) as info:
        parse_uri(uri)
    assert info.value.status == 400


# --------------------------------------------------------------------------- file://


def test_file_store_round_trip_and_uri(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    assert isinstance(store, ArtifactStore)
    data = os.urandom(3 * MIB + 5)
    written = store.put_stream(
        "m1/model.enc", (data[i : i + 70_000] for i in range(0, len(data), 70_000))
    )
    assert written == len(data)
    path = tmp_path / "m1" / "model.enc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    chunks = list(store.get_stream("m1/model.enc", chunk_size=MIB))
    assert [len(c) for c in chunks] == [MIB, MIB, MIB, 5]
    uri = store.uri_for("m1/model.enc")
    assert uri == path.as_uri()
    assert b"".join(open_uri(uri)) == data
    assert store.exists("m1/model.enc")
    store.delete("m1/model.enc")
    store.delete("m1/model.enc")  # deleting twice is fine
    assert not store.exists("m1/model.enc")
    with pytest.raises(ArtifactNotFound):
        store.get_stream("m1/model.enc")


def test_file_store_failed_write_keeps_the_old_object_and_no_temp_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put_stream("m.enc", [b"old contents"])
    with pytest.raises(Boom):
        store.put_stream("m.enc", failing_after([b"new ", b"partial"]))
    assert b"".join(store.get_stream("m.enc")) == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.enc"]


def test_file_store_replaces_atomically(tmp_path: Path) -> None:
    """A reader that opened the old file keeps reading it whole while a new one is written."""
    store = FileStore(tmp_path)
    store.put_stream("m.enc", [b"A" * MIB])
    reader = store.get_stream("m.enc", chunk_size=1000)
    first = next(reader)
    store.put_stream("m.enc", [b"B" * MIB])
    assert first + b"".join(reader) == b"A" * MIB
    assert b"".join(store.get_stream("m.enc")) == b"B" * MIB


@pytest.mark.parametrize(
    "key",
    ["../escape.enc", "a/../../escape.enc", "/etc/passwd", "a//b", "./a", "", "a\\..\\b", "a/."],
)
def test_file_store_refuses_keys_escaping_the_root(tmp_path: Path, key: str) -> None:
    store = FileStore(tmp_path / "root")
    with pytest.raises(BadArtifactKey):
        store.put_stream(key, [b"x"])
    assert not (tmp_path / "escape.enc").exists()


def test_file_store_refuses_symlinks_out_of_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    store = FileStore(root)
    with pytest.raises(BadArtifactKey, match="escapes"):
        store.put_stream("link/model.enc", [b"x"])
    assert list(outside.iterdir()) == []


def test_file_store_io_failure_is_a_storage_error_with_retry_advice(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "m").write_bytes(b"a file where a directory should be")
    with pytest.raises(StorageError) as info:
        FileStore(root).put_stream("m/model.enc", [b"x"])
    assert info.value.status == 500 and "retry" in info.value.message
    assert info.value.body()["error"]["code"] == "storage_error"


def test_encrypt_to_a_store_from_a_file_object(tmp_path: Path) -> None:
    store, key = store_for_uri((tmp_path / "model.enc").as_uri())
    data = os.urandom(2 * MIB + 3)
    data_key = crypto.generate_data_key()
    stored = crypto.encrypt_to_store(store, key, io.BytesIO(data), data_key, key_id="k1")
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.size == len(data)
    assert stored.uri == (tmp_path / "model.enc").as_uri()
    assert data[:4096] not in (tmp_path / "model.enc").read_bytes()
    assert b"".join(crypto.decrypt_stream(open_uri(stored.uri), data_key)) == data


# --------------------------------------------------------------------------- s3://

needs_s3 = pytest.mark.s3


def pending_uploads(server: S3Server, bucket: str) -> list[object]:
    listing = server.client().list_multipart_uploads(Bucket=bucket)
    return list(listing.get("Uploads", []))


@needs_s3
def test_s3_multipart_round_trip(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    store = S3Store(bucket, prefix="artifacts", options=s3_server.options(part_size=5 * MIB))
    data = os.urandom(11 * MIB + 123)
    sent = (data[i : i + 300_000] for i in range(0, len(data), 300_000))
    assert store.put_stream("m1/model.enc", sent) == len(data)

    head = s3_server.client().head_object(Bucket=bucket, Key="artifacts/m1/model.enc")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    assert pending_uploads(s3_server, bucket) == []

    chunks = list(store.get_stream("m1/model.enc", chunk_size=MIB))
    assert len(chunks) >= 11 and all(len(c) <= MIB for c in chunks)
    assert b"".join(chunks) == data
    uri = store.uri_for("m1/model.enc")
    assert uri == f"s3://{bucket}/artifacts/m1/model.enc"
    assert b"".join(open_uri(uri, s3=s3_server.options())) == data


@needs_s3
def test_s3_upload_memory_is_bounded_by_a_few_parts(s3_server: S3Server) -> None:
    """48 MiB in 5 MiB parts: the upload never holds more than about four parts."""
    store = S3Store(s3_server.create_bucket(), options=s3_server.options(part_size=5 * MIB))
    block = os.urandom(MIB)
    _ = store.client  # build the client outside the measurement
    tracemalloc.start()
    try:
        sent = store.put_stream("big.enc", itertools.repeat(block, 48))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sent == 48 * MIB
    assert peak < 28 * MIB
    assert sum(len(c) for c in store.get_stream("big.enc")) == 48 * MIB


@needs_s3
def test_s3_small_object_exists_and_delete(s3_store: S3Store) -> None:
    assert s3_store.put_stream("small.enc", [b"tiny", b" object"]) == 11
    assert s3_store.exists("small.enc")
    assert b"".join(s3_store.get_stream("small.enc")) == b"tiny object"
    s3_store.delete("small.enc")
    s3_store.delete("small.enc")
    assert not s3_store.exists("small.enc")
    with pytest.raises(ArtifactNotFound) as info:
        s3_store.get_stream("small.enc")
    assert s3_store.uri_for("small.enc") in info.value.message


@needs_s3
def test_s3_empty_object(s3_store: S3Store) -> None:
    assert s3_store.put_stream("empty", []) == 0
    assert b"".join(s3_store.get_stream("empty")) == b""


@needs_s3
def test_s3_failed_source_aborts_the_multipart_upload(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    store = S3Store(bucket, options=s3_server.options(part_size=5 * MIB))
    with pytest.raises(Boom):
        store.put_stream("m.enc", failing_after([os.urandom(MIB)] * 12))
    assert not store.exists("m.enc")
    assert pending_uploads(s3_server, bucket) == []


def test_s3_options_never_show_secrets() -> None:
    text = repr(
        S3Options(access_key_id="AKIDEXAMPLE", secret_access_key="s3cr3t", session_token="t0k")
    )
    assert "AKIDEXAMPLE" in text and "s3cr3t" not in text and "t0k" not in text


@needs_s3
def test_s3_refuses_escaping_keys(s3_store: S3Store) -> None:
    with pytest.raises(BadArtifactKey):
        s3_store.put_stream("../other", [b"x"])


@needs_s3
def test_encrypted_artifact_through_s3(s3_store: S3Store) -> None:
    data = os.urandom(3 * MIB + 17)
    data_key = crypto.generate_data_key()
    stored = crypto.encrypt_to_store(s3_store, "m/model.enc", [data], data_key, key_id="k1")
    assert stored.stored_size == crypto.ciphertext_size(len(data), key_id="k1")
    assert b"".join(crypto.decrypt_from_store(s3_store, "m/model.enc", data_key)) == data
    with pytest.raises(crypto.WrongKeyError):
        list(crypto.decrypt_from_store(s3_store, "m/model.enc", crypto.generate_data_key()))


@needs_s3
def test_s3_server_stopped_during_upload(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    store = S3Store(bucket, options=s3_server.options(part_size=5 * MIB))

    def source() -> Iterator[bytes]:
        yield os.urandom(6 * MIB)  # the first part goes out while the server is up
        s3_server.stop()
        yield os.urandom(6 * MIB)

    try:
        with pytest.raises(StorageError) as info:
            store.put_stream("m.enc", source())
    finally:
        s3_server.start()
    assert type(info.value) is StorageError
    assert info.value.status == 500 and "retry" in info.value.message
    assert "secret" not in info.value.message.lower()


@needs_s3
def test_s3_server_hanging_is_a_storage_error(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    store = S3Store(bucket, options=s3_server.options(read_timeout=1.0))
    store.put_stream("m.enc", [b"kept"])
    with s3_server.frozen(), pytest.raises(StorageError, match="retry"):
        store.get_stream("m.enc")
    assert b"".join(store.get_stream("m.enc")) == b"kept"  # state survived the freeze


@needs_s3
def test_s3_server_reset_drops_buckets(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    s3_server.reset()
    names = [b["Name"] for b in s3_server.client().list_buckets().get("Buckets", [])]
    assert bucket not in names
