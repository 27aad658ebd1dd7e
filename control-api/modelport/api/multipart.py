"""The upload form on the wire: a streaming multipart parser that spools the model file.

This is the only module that knows multipart (and imports python-multipart). The two forms (a new
model, :data:`MODEL_FORM`; a new version, :data:`VERSION_FORM`) and their limits are declared here
once: the parser enforces them, and the upload routes describe the same forms in OpenAPI.

What the body may hold is bounded before it is read: every byte of it (the file, the text fields,
part headers, boundaries, anything before or after them; chunked or not) counts against
``max_upload_bytes`` plus :data:`FORM_OVERHEAD`, and only the form's own fields are accepted, each
at most once.

Where plaintext lives: only in a folder made by :func:`tempfile.mkdtemp` (mode 0700, under
``spool_dir`` or the system temporary folder), as one file (mode 0600) that the scanner reads.
:func:`spooled` removes the folder when its block ends, on every path: success, refusal, error, a
client that goes away.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from modelport.api.errors import UploadRefused
from modelport.api.schemas import ModelCreate
from modelport.api.services.artifacts import ReceivedFile
from modelport.api.settings import ApiSettings
from modelport.core.errors import ModelportError, TooLarge
from modelport.core.formats import SNIFF_BYTES
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

FILE_FIELD = "file"
NAME_FIELD = "modelName"
DESCRIPTION_FIELD = "description"
NAME_MAX_CHARS = 200
DESCRIPTION_MAX_CHARS = 10_000
#: The most a text field may hold.
FIELD_MAX_BYTES = 64 << 10
#: Room for the form's text fields, part headers (python-multipart holds each part to 8 lines of
#: 4 KiB) and boundaries on top of the file itself: the whole body may be at most
#: ``max_upload_bytes + FORM_OVERHEAD`` bytes.
FORM_OVERHEAD = 256 << 10
_FEED_BYTES = 1 << 20


@dataclass(frozen=True)
class Form:
    """The fields one upload form takes (any other field, or one sent twice, is refused)."""

    fields: frozenset[str]
    required: tuple[str, ...]

    def openapi(self) -> dict[str, Any]:
        """The form as the upload route's ``openapi_extra``."""
        schema = {
            "type": "object",
            "required": list(self.required),
            "properties": {f: _FIELD_SCHEMAS[f] for f in sorted(self.fields)},
            "additionalProperties": False,
        }
        content = {"multipart/form-data": {"schema": schema}}
        return {"requestBody": {"required": True, "content": content}}


_FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    FILE_FIELD: {"type": "string", "format": "binary"},
    NAME_FIELD: {
        "type": "string",
        "minLength": 1,
        "maxLength": NAME_MAX_CHARS,
        "pattern": "^[^\\x00]*\\S[^\\x00]*$",
    },
    DESCRIPTION_FIELD: {
        "type": "string",
        "maxLength": DESCRIPTION_MAX_CHARS,
        "pattern": "^[^\\x00]*$",
    },
}

#: ``POST /api/v1/models``: the model file, its name and an optional description.
MODEL_FORM = Form(
    fields=frozenset({FILE_FIELD, NAME_FIELD, DESCRIPTION_FIELD}), required=(FILE_FIELD, NAME_FIELD)
)
#: ``POST /api/v1/models/{id}/versions``: the new version's file alone.
VERSION_FORM = Form(fields=frozenset({FILE_FIELD}), required=(FILE_FIELD,))


@dataclass(frozen=True)
class SpooledUpload:
    """A received upload form: the model file in its private spool, and the form's text fields."""

    file: ReceivedFile
    fields: Mapping[str, str]

    def new_model(self) -> ModelCreate:
        """The new model's name and description, checked against the form's limits."""
        name = self.fields.get(NAME_FIELD, "").strip()
        if any("\x00" in v for v in self.fields.values()) or "\x00" in self.file.filename:
            raise UploadRefused("form fields and the file name must not contain NUL characters")
        if not name or len(name) > NAME_MAX_CHARS:
            raise UploadRefused(
                f"{NAME_FIELD} is required (1 to {NAME_MAX_CHARS} characters)",
                details={"field": NAME_FIELD},
            )
        description = self.fields.get(DESCRIPTION_FIELD, "")
        if len(description) > DESCRIPTION_MAX_CHARS:
            limit = f"{DESCRIPTION_MAX_CHARS:,}".replace(",", " ")
            raise UploadRefused(f"{DESCRIPTION_FIELD} is longer than {limit} characters")
        return ModelCreate(name=name, description=description)


@contextmanager
def closing_on_refusal() -> Iterator[None]:
    """An upload refused in the block answers with ``Connection: close``: the rest of its body
    may be unread, and the client should stop sending it rather than the server read it to the
    end to keep the connection."""
    try:
        yield
    except ModelportError as exc:
        exc.headers = {**exc.headers, "Connection": "close"}
        raise


@asynccontextmanager
async def spooled(
    request: Request, settings: ApiSettings, form: Form
) -> AsyncIterator[SpooledUpload]:
    """Read the request's multipart body as it streams in (a body larger than the limit, or one
    with a field that ``form`` does not take, is refused without reading the rest) and yield it;
    the spool folder is removed when the block ends."""
    max_file = settings.max_upload_bytes
    boundary = _boundary(request, max_file)
    workdir = Path(tempfile.mkdtemp(prefix="modelport-upload-", dir=settings.spool_dir))
    try:
        yield await _receive(request, _FormReader(boundary, workdir, max_file, form))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _too_large(max_file: int, what: str = "the upload") -> TooLarge:
    return TooLarge(
        f"{what} is larger than the limit of {max_file} bytes",
        details={"maxBytes": max_file, "maxBodyBytes": max_file + FORM_OVERHEAD},
    )


def _boundary(request: Request, max_file: int) -> bytes:
    """The body's multipart boundary, once the headers say the body may be an upload."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadRefused(
            f"send the model as multipart/form-data (fields {FILE_FIELD}, {NAME_FIELD})"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_file + FORM_OVERHEAD:
        raise _too_large(max_file)
    return boundary


async def _receive(request: Request, reader: _FormReader) -> SpooledUpload:
    """Feed the body to ``reader`` in a worker thread, about a MiB at a time, counting every byte
    of it (chunked bodies declare no length) against the limit as it arrives."""
    limit = reader.max_file + FORM_OVERHEAD
    try:
        pending: list[bytes] = []
        size = total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise _too_large(reader.max_file)
            pending.append(chunk)
            size += len(chunk)
            if size >= _FEED_BYTES:
                await anyio.to_thread.run_sync(reader.feed, b"".join(pending))
                pending, size = [], 0
        if pending:
            await anyio.to_thread.run_sync(reader.feed, b"".join(pending))
        return await anyio.to_thread.run_sync(reader.finish)
    finally:
        reader.close()


class _FormReader:
    """Feeds request-body bytes to a streaming multipart parser; spools the file part to disk."""

    def __init__(self, boundary: bytes, workdir: Path, max_file: int, form: Form) -> None:
        self.max_file = max_file
        self.form = form
        self.fields: dict[str, str] = {}
        self.path = workdir / "model"
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = bytearray()
        self._file: int | None = None
        self._filename: str | None = None
        self._seen: set[str] = set()
        self._part_name: str | None = None
        self._part_is_file = False
        self._field_buf = bytearray()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._done = False
        callbacks = {
            "on_part_begin": self._part_begin,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_end": self._end,
        }
        self._parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]

    def feed(self, data: bytes) -> None:
        try:
            self._parser.write(data)
        except ModelportError:
            raise
        except Exception as exc:  # python-multipart's parse errors
            raise UploadRefused(f"malformed multipart body: {exc}") from None

    def finish(self) -> SpooledUpload:
        self._parser.finalize()
        self.close()
        if not self._done:
            raise UploadRefused("the multipart body ended early")
        if self._filename is None:
            raise UploadRefused(
                f"no file part: send the model as multipart field {FILE_FIELD!r}",
                details={"expectedFields": sorted(self.form.fields)},
            )
        received = ReceivedFile(
            path=self.path,
            filename=self._filename,
            size=self._size,
            sha256=self._hash.hexdigest(),
            head=bytes(self._head),
        )
        return SpooledUpload(file=received, fields=self.fields)

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None

    # python-multipart callbacks

    def _part_begin(self) -> None:
        self._headers = {}
        self._part_name = None
        self._part_is_file = False
        self._field_buf = bytearray()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field = bytearray()
        self._header_value = bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._check_field(name)
        self._part_name = name
        if name != FILE_FIELD:
            return
        filename = options.get(b"filename", b"").decode("utf-8", "replace")
        self._filename = os.path.basename(filename.replace("\\", "/")) or "model"
        self._part_is_file = True
        self._file = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def _check_field(self, name: str) -> None:
        """Refuse a part that is not one of the form's fields, or repeats one, before its data."""
        expected = sorted(self.form.fields)
        if name not in self.form.fields:
            raise UploadRefused(
                f"unknown form field {name!r}: this upload takes {', '.join(expected)}",
                details={"field": name, "expectedFields": expected},
            )
        if name in self._seen:
            what = "send exactly one file per upload" if name == FILE_FIELD else "send it once"
            raise UploadRefused(
                f"form field {name!r} is sent more than once: {what}",
                details={"field": name, "expectedFields": expected},
            )
        self._seen.add(name)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if not self._part_is_file:
            self._field_buf += chunk
            if len(self._field_buf) > FIELD_MAX_BYTES:
                raise UploadRefused(
                    f"form field {self._part_name!r} is longer than {FIELD_MAX_BYTES >> 10} KiB"
                )
            return
        self._size += len(chunk)
        if self._size > self.max_file:
            raise _too_large(self.max_file, "the model file")
        if len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
        self._hash.update(chunk)
        assert self._file is not None
        view = memoryview(chunk)
        while view:
            written = os.write(self._file, view)
            view = view[written:]

    def _part_end(self) -> None:
        if self._part_is_file:
            self.close()
        elif self._part_name is not None:
            self.fields[self._part_name] = self._field_buf.decode("utf-8", "replace")

    def _end(self) -> None:
        self._done = True
