"""Artifact storage behind one small interface.

``s3://bucket/key`` through boto3 (:class:`S3Store`), ``file:///abs/path`` for the embedded mode
(:class:`FileStore`). Both stream: uploads read an iterator of chunks with bounded memory,
downloads yield chunks. :func:`open_uri` turns an artifact URI into a byte stream; resolving a URI
is kept apart from decrypting and deserialising it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import posixpath
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from modelport.core.errors import ModelportError

if TYPE_CHECKING:
    from botocore.client import BaseClient

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 1 << 20
DEFAULT_PART_SIZE = 8 << 20
MIN_PART_SIZE = 5 << 20  # S3's minimum size for every part but the last
_NOT_FOUND = ("NoSuchKey", "404", "NotFound")
_RETRY = "the artifact store may be briefly unavailable; retry the request in a few seconds"


# --------------------------------------------------------------------------- errors


class StorageError(ModelportError):
    """The artifact store failed; the message carries retry advice."""

    status = 500
    code = "storage_error"

    def __init__(self, message: str, *, details: Any = None, retry: bool = True) -> None:
        super().__init__(f"{message}; {_RETRY}" if retry else message, details=details)


class ArtifactNotFound(StorageError):
    """No object is stored under the key."""

    code = "artifact_not_found"

    def __init__(self, uri: str) -> None:
        super().__init__(f"no artifact is stored at {uri}", details={"uri": uri}, retry=False)


class BadArtifactKey(StorageError):
    """A key or URI is malformed or would escape the store (``..``, absolute paths)."""

    status = 400
    code = "bad_artifact_key"

    def __init__(self, message: str) -> None:
        super().__init__(message, retry=False)


# --------------------------------------------------------------------------- streams


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """Re-cut a stream of chunks of any sizes into blocks of exactly ``size`` bytes.

    Yields ``(block, is_last)``; every block but the last is full, the last holds the remainder
    (``b""`` only for an empty stream, which yields exactly one empty last block). Holds at most
    two blocks in memory, whatever the input chunking.
    """
    if size < 1:
        raise ValueError("block size must be positive")
    pending: bytes | None = None
    buf = bytearray()
    for chunk in chunks:
        view = memoryview(chunk)
        pos = 0
        while pos < len(view):
            if pending is not None:
                yield pending, False
                pending = None
            if not buf and len(view) - pos >= size:
                whole = pos == 0 and len(view) == size and isinstance(chunk, bytes)
                pending = chunk if whole else bytes(view[pos : pos + size])  # no copy if whole
                pos += size
                continue
            take = min(size - len(buf), len(view) - pos)
            buf += view[pos : pos + take]
            pos += take
            if len(buf) == size:
                pending = bytes(buf)
                buf.clear()
    # A pending block always follows an emptied buffer, so at most one of them holds data here.
    yield (pending, True) if pending is not None else (bytes(buf), True)


class ByteReader:
    """Reads exact byte counts from an iterator of chunks of any sizes."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = b""
        self._pos = 0

    def _pull(self) -> bytes | None:
        for chunk in self._chunks:
            if chunk:
                return bytes(chunk)
        return None

    def read(self, n: int) -> bytes:
        """Return ``n`` bytes, or fewer only at the end of the stream."""
        available = len(self._buf) - self._pos
        if available >= n:
            out = self._buf[self._pos : self._pos + n]
            self._pos += n
            return out
        # Views, so that the join below is the only copy.
        parts = [memoryview(self._buf)[self._pos :]]
        chunk = b""
        while available < n:
            pulled = self._pull()
            if pulled is None:
                self._buf, self._pos = b"", 0
                return b"".join(parts)
            chunk = pulled
            parts.append(memoryview(chunk))
            available += len(chunk)
        keep = len(chunk) - (available - n)
        parts[-1] = parts[-1][:keep]
        self._buf, self._pos = chunk, keep
        return b"".join(parts)

    def at_eof(self) -> bool:
        """Whether the stream is exhausted (pulls at most one more chunk)."""
        if self._pos < len(self._buf):
            return False
        chunk = self._pull()
        if chunk is None:
            return True
        self._buf, self._pos = chunk, 0
        return False


def iter_file(fileobj: IO[bytes] | Any, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """Stream a binary file object in chunks."""
    while chunk := fileobj.read(chunk_size):
        yield chunk


# --------------------------------------------------------------------------- keys


def check_key(key: str) -> str:
    """Refuse keys that are empty, absolute, or contain ``.``/``..``/empty segments."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise BadArtifactKey(f"invalid artifact key {key!r}: use a relative path like 'a/b.enc'")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BadArtifactKey(f"invalid artifact key {key!r}: no empty, '.' or '..' segments")
    return key


# --------------------------------------------------------------------------- interface


@runtime_checkable
class ArtifactStore(Protocol):
    """Where encrypted artifacts live. Keys are relative ``/``-separated paths."""

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the chunks under ``key`` (atomically: all or nothing); return bytes written."""
        ...

    def get_stream(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """Stream the object; raises :class:`ArtifactNotFound` at call time when missing."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""
        ...

    def exists(self, key: str) -> bool: ...

    def uri_for(self, key: str) -> str:
        """The ``s3://`` or ``file://`` URI :func:`open_uri` resolves back to this object."""
        ...


# --------------------------------------------------------------------------- file://


class FileStore:
    """Objects as files under ``root``: atomic writes (temp file + rename), mode 0600."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def path_for(self, key: str) -> Path:
        """The file behind ``key``; refuses keys that resolve outside the root (symlinks too)."""
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise BadArtifactKey(f"artifact key {key!r} escapes the store root")
        return path

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self.path_for(key)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as exc:
            raise StorageError(f"cannot write {self.uri_for(key)}: {exc.strerror}") from exc
        try:
            written = _write_all(fd, chunks)
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise StorageError(f"cannot write {self.uri_for(key)}: {exc.strerror}") from exc
            raise
        _fsync_dir(path.parent)
        return written

    def get_stream(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        path = self.path_for(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ArtifactNotFound(self.uri_for(key)) from None
        except OSError as exc:
            raise StorageError(f"cannot read {self.uri_for(key)}: {exc.strerror}") from exc
        return _read_file(handle, chunk_size, self.uri_for(key))

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {self.uri_for(key)}: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def uri_for(self, key: str) -> str:
        return (self.root / check_key(key)).as_uri()


def _write_all(fd: int, chunks: Iterable[bytes]) -> int:
    written = 0
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        for chunk in chunks:
            out.write(chunk)
            written += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return written


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_file(handle: IO[bytes], chunk_size: int, uri: str) -> Iterator[bytes]:
    with handle:
        try:
            yield from iter_file(handle, chunk_size)
        except OSError as exc:
            raise StorageError(f"cannot read {uri}: {exc.strerror}") from exc


# --------------------------------------------------------------------------- s3://


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3-API server. Unset credentials fall back to boto3's default chain."""

    endpoint_url: str | None = None
    region_name: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    part_size: int = DEFAULT_PART_SIZE
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 3
    path_style: bool | None = None  # None: path style exactly when an endpoint URL is set

    def make_client(self) -> BaseClient:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise StorageError(
                "s3:// artifacts need boto3: install modelport[s3]", retry=False
            ) from None
        path_style = self.endpoint_url is not None if self.path_style is None else self.path_style
        config = Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
            s3={"addressing_style": "path" if path_style else "auto"},
        )
        client: BaseClient = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            config=config,
        )
        return client


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _is_boto_error(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, BotoCoreError | ClientError)


class S3Store:
    """Objects in one S3 bucket (optionally under a key prefix), streamed both ways.

    Uploads of more than one part use a multipart upload with parts of ``options.part_size``
    bytes (two parts in memory at most) and abort it on any failure, so a failed upload leaves
    neither an object nor a pending upload behind.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        options: S3Options | None = None,
        client: BaseClient | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.options = options or S3Options()
        if self.options.part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts must be at least {MIN_PART_SIZE} bytes")
        self._client = client

    @property
    def client(self) -> BaseClient:
        if self._client is None:
            self._client = self.options.make_client()
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _fail(self, action: str, key: str, exc: BaseException) -> StorageError:
        uri = self.uri_for(key)
        if _error_code(exc) in _NOT_FOUND:
            return ArtifactNotFound(uri)
        code = _error_code(exc) or type(exc).__name__
        return StorageError(f"cannot {action} {uri} ({code})", details={"uri": uri})

    @contextlib.contextmanager
    def _translated(self, action: str, key: str) -> Iterator[None]:
        """Turn boto3/botocore (and socket) errors into :class:`StorageError`s."""
        try:
            yield
        except Exception as exc:
            if _is_boto_error(exc) or isinstance(exc, OSError):
                raise self._fail(action, key, exc) from exc
            raise

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        blocks = rechunk(chunks, self.options.part_size)
        first, last = next(blocks)
        if last:
            with self._translated("write", key):
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=first)
            return len(first)
        return self._put_multipart(key, first, blocks)

    def _put_multipart(self, key: str, first: bytes, rest: Iterator[tuple[bytes, bool]]) -> int:
        s3_key = self._key(key)
        with self._translated("write", key):
            upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=s3_key)
        upload_id: str = upload["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            total = 0
            for number, (body, _) in enumerate(itertools.chain([(first, False)], rest), start=1):
                response = self.client.upload_part(
                    Bucket=self.bucket, Key=s3_key, UploadId=upload_id, PartNumber=number, Body=body
                )
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
                total += len(body)
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=s3_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException as exc:
            self._abort(s3_key, upload_id)
            if isinstance(exc, Exception) and _is_boto_error(exc):
                raise self._fail("write", key, exc) from exc
            raise  # the source's own error (or a cancellation) passes through unchanged
        return total

    def _abort(self, s3_key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=s3_key, UploadId=upload_id)
        except Exception as exc:
            log.warning(
                "could not abort multipart upload of s3://%s/%s (%s); a bucket lifecycle rule "
                "for incomplete uploads will remove it",
                self.bucket,
                s3_key,
                _error_code(exc) or type(exc).__name__,
            )

    def get_stream(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        with self._translated("read", key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        return self._iter_body(key, response["Body"], chunk_size)

    def _iter_body(self, key: str, body: Any, chunk_size: int) -> Iterator[bytes]:
        try:
            with self._translated("read", key):
                yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        with self._translated("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        try:
            with self._translated("look up", key):
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ArtifactNotFound:
            return False
        return True


# --------------------------------------------------------------------------- URIs


@dataclass(frozen=True)
class ArtifactUri:
    """A parsed artifact URI: ``scheme`` is ``s3`` or ``file``; ``location`` the bucket or the
    directory; ``key`` the object key or file name."""

    scheme: str
    location: str
    key: str


def parse_uri(uri: str) -> ArtifactUri:
    """Split ``s3://bucket/key`` or ``file:///abs/dir/name``; refuse anything else."""
    parts = urlsplit(uri)
    if parts.query or parts.fragment:
        raise BadArtifactKey(f"artifact URI {uri!r} must not have a query or fragment")
    if parts.scheme == "s3":
        key = parts.path.lstrip("/")
        if not parts.netloc or not key:
            raise BadArtifactKey(f"artifact URI {uri!r} must read s3://bucket/key")
        return ArtifactUri("s3", parts.netloc, check_key(key))
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise BadArtifactKey(f"artifact URI {uri!r} must name a local file (file:///path)")
        path = unquote(parts.path)
        if not path.startswith("/") or path.endswith("/"):
            raise BadArtifactKey(f"artifact URI {uri!r} must name an absolute file path")
        normal = posixpath.normpath(path)
        if normal != path:
            raise BadArtifactKey(f"artifact URI {uri!r} must be a normalised path")
        directory, name = posixpath.split(normal)
        return ArtifactUri("file", directory, check_key(name))
    raise BadArtifactKey(f"unsupported artifact URI {uri!r}: use s3:// or file://")


def store_for_uri(uri: str, *, s3: S3Options | None = None) -> tuple[ArtifactStore, str]:
    """The store holding ``uri`` and the object's key in it."""
    parsed = parse_uri(uri)
    if parsed.scheme == "s3":
        return S3Store(parsed.location, options=s3), parsed.key
    return FileStore(parsed.location), parsed.key


def open_uri(
    uri: str, *, s3: S3Options | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """Stream the bytes behind an artifact URI (s3:// or file://)."""
    store, key = store_for_uri(uri, s3=s3)
    return store.get_stream(key, chunk_size=chunk_size)
