"""The upload pipeline: stream → private spool → format check → scan → encrypt into the store →
rows + deployment, atomically.

Where plaintext lives: only in a folder made by :func:`tempfile.mkdtemp` (mode 0700, under
``spool_dir`` or the system temporary folder), as one file (mode 0600) that the scanner reads.
The folder is removed when the request ends, on every path: success, refusal, error, a client
that goes away. What leaves the process is only ciphertext.

Atomicity: the encrypted object is written first under a fresh key; the rows are inserted and the
deployment applied in one transaction; any failure rolls the transaction back, removes the
deployment and deletes the object, so that nothing is left behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from modelport.api.context import AppContext
from modelport.api.db.tables import Model, ModelVersion, StoredArtifact, User
from modelport.api.errors import ModelsLimitReached, StorageFailed
from modelport.api.schemas import DeploymentSettings, UploadResponse
from modelport.api.services import audit
from modelport.api.services.models import deploy, new_model_id, owned
from modelport.api.services.users import Principal
from modelport.core import crypto
from modelport.core.errors import BadInput, ModelportError, NotReady, TooLarge
from modelport.core.formats import SNIFF_BYTES, ModelFormat, ensure_servable, resolve_format
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request

log = logging.getLogger(__name__)

#: Room for the form's text fields and boundaries on top of the file itself.
FORM_OVERHEAD = 1 << 20
_MAX_FIELD = 64 << 10
_FEED_BYTES = 1 << 20
_FILE_FIELD = "file"


@dataclass
class SpooledUpload:
    """A received upload: the plaintext file in its private folder, and the form's text fields."""

    workdir: Path
    path: Path
    filename: str
    size: int
    sha256: str
    head: bytes
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class UploadRefused(BadInput):
    code = "bad_upload"


class ClientGone(BadInput):
    code = "client_disconnected"


# --- receiving ---------------------------------------------------------------------------------


class _FormReader:
    """Feeds request-body bytes to a streaming multipart parser; spools the file part to disk."""

    def __init__(self, boundary: bytes, workdir: Path, max_file: int) -> None:
        self.workdir = workdir
        self.max_file = max_file
        self.fields: dict[str, str] = {}
        self.path = workdir / "model"
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = bytearray()
        self._file: int | None = None
        self._filename: str | None = None
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
                "no file part: send the model as multipart field 'file'",
                details={"expectedFields": ["file", "modelName", "description"]},
            )
        return SpooledUpload(
            workdir=self.workdir,
            path=self.path,
            filename=self._filename,
            size=self._size,
            sha256=self._hash.hexdigest(),
            head=bytes(self._head),
            fields=self.fields,
        )

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
        self._part_name = name
        if name != _FILE_FIELD:
            return
        if self._filename is not None:
            raise UploadRefused("send exactly one file per upload")
        filename = options.get(b"filename", b"").decode("utf-8", "replace")
        self._filename = os.path.basename(filename.replace("\\", "/")) or "model"
        self._part_is_file = True
        self._file = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if not self._part_is_file:
            self._field_buf += chunk
            if len(self._field_buf) > _MAX_FIELD:
                raise UploadRefused(f"form field {self._part_name!r} is longer than 64 KiB")
            return
        self._size += len(chunk)
        if self._size > self.max_file:
            raise TooLarge(
                f"the model file is larger than the limit of {self.max_file} bytes",
                details={"maxBytes": self.max_file},
            )
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
        elif self._part_name:
            self.fields[self._part_name] = self._field_buf.decode("utf-8", "replace")

    def _end(self) -> None:
        self._done = True


async def receive(request: Request, *, max_file: int, spool_dir: Path | None) -> SpooledUpload:
    """Read a multipart upload as it streams in; refuse a too-large body without reading it all."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadRefused("send the model as multipart/form-data (fields file, modelName)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_file + FORM_OVERHEAD:
        raise TooLarge(
            f"the upload is larger than the limit of {max_file} bytes",
            details={"maxBytes": max_file},
        )
    workdir = Path(tempfile.mkdtemp(prefix="modelport-upload-", dir=spool_dir))
    reader = _FormReader(boundary, workdir, max_file)
    try:
        pending: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            pending.append(chunk)
            size += len(chunk)
            if size >= _FEED_BYTES:
                await anyio.to_thread.run_sync(reader.feed, b"".join(pending))
                pending, size = [], 0
        if pending:
            await anyio.to_thread.run_sync(reader.feed, b"".join(pending))
        return await anyio.to_thread.run_sync(reader.finish)
    except BaseException:
        reader.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise


async def handle(
    request: Request, ctx: AppContext, *, caller: Principal, model_id: str | None = None
) -> UploadResponse:
    """The whole upload request: receive, then check, store and deploy in a worker thread; the
    spool folder is removed whatever happens. Counts outcomes in the API's metrics."""
    try:
        if model_id is None:
            await anyio.to_thread.run_sync(lambda: precheck(ctx, caller=caller))
        received = await receive(
            request, max_file=ctx.settings.max_upload_bytes, spool_dir=ctx.settings.spool_dir
        )
        try:
            if model_id is None:
                result = await anyio.to_thread.run_sync(
                    lambda: create_model(ctx, caller=caller, upload=received)
                )
            else:
                result = await anyio.to_thread.run_sync(
                    lambda: add_version(ctx, caller=caller, model_id=model_id, upload=received)
                )
        finally:
            received.discard()
    except ModelportError as exc:
        ctx.metrics.uploads.labels(exc.code).inc()
        raise
    ctx.metrics.uploads.labels("ok").inc()
    ctx.metrics.upload_bytes.inc(received.size)
    return result


# --- checking ----------------------------------------------------------------------------------


def _form_fields(upload: SpooledUpload) -> tuple[str, str]:
    name = upload.fields.get("modelName", "").strip()
    if any("\x00" in v for v in upload.fields.values()) or "\x00" in upload.filename:
        raise UploadRefused("form fields and the file name must not contain NUL characters")
    if not name or len(name) > 200:
        raise UploadRefused(
            "modelName is required (1 to 200 characters)", details={"field": "modelName"}
        )
    description = upload.fields.get("description", "")
    if len(description) > 10_000:
        raise UploadRefused("description is longer than 10 000 characters")
    return name, description


def check_file(upload: SpooledUpload) -> ModelFormat:
    """Format from name and content, the security scanner, then servability.

    The scanner comes before anything else parses the file (the servability check opens zip
    archives), so only bytes it has passed reach another reader.
    """
    if upload.size == 0:
        raise UploadRefused("the model file is empty")
    fmt, _ = resolve_format(upload.filename, upload.head)
    _scan(upload.path, fmt)
    ensure_servable(upload.path, fmt)
    return fmt


def _scan(path: Path, fmt: ModelFormat) -> None:
    try:
        from modelport.core import scan
    except ImportError as exc:  # pragma: no cover - the scanner ships with core
        raise NotReady("the security scanner is unavailable; uploads are refused") from exc
    scan.ensure_safe(path, fmt)


# --- storing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stored:
    key: str
    uri: str
    wrapped: str


def _store(ctx: AppContext, upload: SpooledUpload, key: str) -> _Stored:
    """Encrypt the spooled file into the artifact store under ``key``; 500 with retry advice."""
    data_key = crypto.generate_data_key()
    wrapped = ctx.keys.wrap(data_key)
    try:
        with upload.path.open("rb") as source:
            stored = crypto.encrypt_to_store(
                ctx.store, key, source, data_key, key_id=ctx.keys.current_id
            )
    except Exception as exc:
        _forget_object(ctx, key)
        if isinstance(exc, StorageFailed):
            raise
        log.warning("storing %s failed: %s", key, type(exc).__name__)
        raise StorageFailed(
            "the artifact store failed while saving the model; nothing was kept. "
            "Retry the upload in a few seconds.",
            details={"retryAfterSeconds": 5},
            headers={"Retry-After": "5"},
        ) from exc
    if stored.sha256 != upload.sha256 or stored.size != upload.size:
        _forget_object(ctx, key)
        raise StorageFailed("the spooled upload changed while it was stored; retry the upload")
    return _Stored(key=key, uri=stored.uri, wrapped=wrapped.encode())


def _forget_object(ctx: AppContext, key: str) -> None:
    try:
        ctx.store.delete(key)
    except Exception as exc:  # the store may be down: report, never mask the first error
        log.warning("could not delete %s after a failed upload: %s", key, type(exc).__name__)


def _check_models_limit(session: Session, caller: Principal, *, lock: bool) -> None:
    query = select(User.models_limit).where(User.id == caller.id)
    limit = session.scalar(query.with_for_update() if lock else query)
    count = session.scalar(
        select(func.count()).select_from(Model).where(Model.owner_id == caller.id)
    )
    if limit is not None and (count or 0) >= limit:
        raise ModelsLimitReached(
            f"your subscription allows {limit} models and you have {count}; delete one or "
            "upgrade your subscription",
            details={"modelsLimit": limit, "models": count},
        )


def precheck(ctx: AppContext, *, caller: Principal) -> None:
    """Refuse before reading the body when the user is already at the models limit."""
    with ctx.db.sessions() as session:
        _check_models_limit(session, caller, lock=False)


def _artifact_row(
    upload: SpooledUpload, stored: _Stored, fmt: ModelFormat, version_id: str
) -> StoredArtifact:
    return StoredArtifact(
        id="a" + os.urandom(8).hex(),
        version_id=version_id,
        original_name=upload.filename[:255],
        storage_key=stored.key,
        storage_uri=stored.uri,
        size=upload.size,
        sha256=upload.sha256,
        format=fmt.value,
        wrapped_data_key=stored.wrapped,
        master_key_id=stored.wrapped.partition(":")[0],
    )


def create_model(ctx: AppContext, *, caller: Principal, upload: SpooledUpload) -> UploadResponse:
    """Check, store and deploy a new model; all or nothing."""
    name, description = _form_fields(upload)
    fmt = check_file(upload)
    model_id = new_model_id()
    stored = _store(ctx, upload, f"models/{model_id}/v1.mpa")
    try:
        with ctx.db.sessions() as session:
            _check_models_limit(session, caller, lock=True)
            model = Model(
                id=model_id,
                owner_id=caller.id,
                name=name,
                description=description,
                format=fmt.value,
                endpoint_url=ctx.deployer.endpoint_url(model_id),
                active_version=1,
                settings=DeploymentSettings().model_dump(mode="json"),
            )
            version = ModelVersion(id="v" + os.urandom(8).hex(), model_id=model_id, number=1)
            session.add_all([model, version])
            session.add(_artifact_row(upload, stored, fmt, version.id))
            audit.record(
                session,
                actor_id=caller.id,
                action="model.upload",
                target=model_id,
                details={"format": fmt.value, "size": upload.size, "sha256": upload.sha256},
            )
            session.flush()
            deploy(session, ctx=ctx, model=model)
            session.commit()
    except BaseException:
        _undeploy(ctx, model_id)
        _forget_object(ctx, stored.key)
        raise
    return UploadResponse(
        model_id=model_id,
        endpoint_url=model.endpoint_url,
        status="success",
        message=f"model {name!r} ({fmt.value}, {upload.size} bytes) is deploying",
    )


def _undeploy(ctx: AppContext, model_id: str) -> None:
    try:
        ctx.deployer.remove(model_id)
    except Exception as exc:
        log.warning("could not remove the deployment of %s: %s", model_id, type(exc).__name__)


def add_version(
    ctx: AppContext, *, caller: Principal, model_id: str, upload: SpooledUpload
) -> UploadResponse:
    """Store a new version of a model and roll it out (the old one serves until it is ready)."""
    with ctx.db.sessions() as session:
        owned(session, caller=caller, model_id=model_id)
    fmt = check_file(upload)
    stored = _store(ctx, upload, f"models/{model_id}/v-{os.urandom(6).hex()}.mpa")
    try:
        with ctx.db.sessions() as session:
            model = owned(session, caller=caller, model_id=model_id)
            number = (
                session.scalar(
                    select(func.max(ModelVersion.number)).where(ModelVersion.model_id == model_id)
                )
                or 0
            ) + 1
            previous = model.active_version
            version = ModelVersion(id="v" + os.urandom(8).hex(), model_id=model_id, number=number)
            session.add(version)
            session.add(_artifact_row(upload, stored, fmt, version.id))
            model.active_version = number
            model.format = fmt.value
            audit.record(
                session,
                actor_id=caller.id,
                action="model.version",
                target=model_id,
                details={"version": number, "format": fmt.value, "sha256": upload.sha256},
            )
            session.flush()
            try:
                deploy(session, ctx=ctx, model=model)
            except BaseException:
                session.rollback()
                _redeploy_previous(ctx, model_id, previous)
                raise
            session.commit()
            endpoint = model.endpoint_url
    except BaseException:
        _forget_object(ctx, stored.key)
        raise
    return UploadResponse(
        model_id=model_id,
        endpoint_url=endpoint,
        status="success",
        message=f"version {number} ({fmt.value}, {upload.size} bytes) is rolling out",
    )


def _redeploy_previous(ctx: AppContext, model_id: str, previous: int) -> None:
    try:
        with ctx.db.sessions() as session:
            model = session.get(Model, model_id)
            if model is not None and model.active_version == previous:
                deploy(session, ctx=ctx, model=model)
    except Exception as exc:
        log.warning("could not restore version %s of %s: %s", previous, model_id, exc)
