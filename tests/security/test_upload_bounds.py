"""Upload body bounds: every byte of the body counts against the limit, the form takes only its
own fields, and a new version's body is read only for the model's owner. Each refusal leaves
nothing behind: no spool folder, no stored object, no row."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from testing.payloads import onnx_add_one
from tests.api.conftest import LiveApi, MakeApi, User, count_rows, spool_entries

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

BOUNDARY = "mpbound"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def _part(name: str, value: bytes, *, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n"
    return head.encode() + value + b"\r\n"


def _form(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _model_file() -> bytes:
    return _part("file", onnx_add_one(), filename="model.onnx")


class Counted:
    """A chunked request body (no Content-Length) that counts how much of it was sent."""

    def __init__(self, head: bytes, padding: bytes, total: int, tail: bytes = b"") -> None:
        self.head, self.padding, self.total, self.tail = head, padding, total, tail
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        while self.sent < self.total:
            self.sent += len(self.padding)
            yield self.padding
        yield self.tail


def _post_chunked(api: LiveApi, user: User, path: str, body: Counted) -> httpx.Response | None:
    """POST ``body`` chunked; None when the server closed the connection while it was sent."""
    try:
        return api.client.post(
            path, headers={**user.headers, "Content-Type": MULTIPART}, content=body
        )
    except httpx.TransportError:
        return None


def _left_behind(api: LiveApi) -> tuple[object, ...]:
    tables = ("models", "model_versions", "stored_artifacts")
    return (
        len(spool_entries(api)),
        len(api.objects()),
        *(count_rows(api.ctx.db, t) for t in tables),
    )


def _nothing_left(api: LiveApi, before: tuple[object, ...]) -> None:
    assert spool_entries(api) == []
    assert _left_behind(api) == before


def test_chunked_body_over_limit_refused(make_api: MakeApi) -> None:
    """A small model file followed by megabytes after the closing boundary (an epilogue that the
    multipart parser skips): the file part is under the limit, the body is not."""
    api = make_api(max_upload_bytes=64 << 10)
    user = api.user()
    before = _left_behind(api)
    form = _form(_part("modelName", b"padded"), _model_file())
    body = Counted(form, b"\r\n" * (32 << 10), total=64 << 20)
    r = _post_chunked(api, user, "/api/v1/models", body)
    if r is not None:
        assert r.status_code == 413, r.text
        err = r.json()["error"]
        assert err["code"] == "too_large" and err["details"]["maxBytes"] == 64 << 10
    assert body.sent < 16 << 20  # the server stopped reading near the limit, not at the end
    _nothing_left(api, before)


def test_unknown_form_field_refused(api: LiveApi) -> None:
    user = api.user()
    before = _left_behind(api)
    r = api.client.post(
        "/api/v1/models",
        headers=user.headers,
        files={"file": ("model.onnx", onnx_add_one(), "application/octet-stream")},
        data={"modelName": "m", "storageKey": "models/other/v1.mpa"},
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "bad_upload"
    assert "storageKey" in err["message"] and err["details"]["field"] == "storageKey"
    _nothing_left(api, before)

    # A new version takes the file alone: a model's name is a field it does not know.
    assert api.upload(user, onnx_add_one()).status_code == 201
    model_id = api.client.get("/api/v1/models", headers=user.headers).json()["items"][0]["id"]
    before = _left_behind(api)
    r = api.client.post(
        f"/api/v1/models/{model_id}/versions",
        headers=user.headers,
        files={"file": ("model.onnx", onnx_add_one(), "application/octet-stream")},
        data={"modelName": "renamed"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["field"] == "modelName"
    _nothing_left(api, before)


def test_repeated_form_field_refused(api: LiveApi) -> None:
    user = api.user()
    before = _left_behind(api)
    body = _form(_part("modelName", b"first"), _part("modelName", b"second"), _model_file())
    r = api.client.post(
        "/api/v1/models", headers={**user.headers, "Content-Type": MULTIPART}, content=body
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert "modelName" in err["message"] and err["details"]["field"] == "modelName"
    _nothing_left(api, before)


@pytest.mark.parametrize("whose", ["another user's", "a missing"])
def test_version_upload_to_foreign_model_not_read(api: LiveApi, whose: str) -> None:
    """64 MiB sent as a new version of a model the caller does not own: 404 before the body is
    read, and no spool folder is ever made for it."""
    owner, stranger = api.user(), api.user()
    r = api.upload(owner, onnx_add_one())
    assert r.status_code == 201, r.text
    model_id = r.json()["modelId"] if whose == "another user's" else "m" + "0" * 16
    before = _left_behind(api)
    spool = api.ctx.settings.spool_dir
    assert spool is not None
    spool_changed = spool.stat().st_mtime_ns
    body = Counted(
        _model_file()[:-2], b"\0" * (1 << 20), total=64 << 20, tail=b"\r\n--mpbound--\r\n"
    )
    r2 = _post_chunked(api, stranger, f"/api/v1/models/{model_id}/versions", body)
    if r2 is not None:
        assert r2.status_code == 404, r2.text
        assert r2.json()["error"]["code"] == "not_found"
    assert body.sent < 32 << 20
    assert spool.stat().st_mtime_ns == spool_changed  # no folder was made there, nor removed
    _nothing_left(api, before)


def test_file_path_reveals_no_storage_location(api: LiveApi) -> None:
    """``filePath`` (the seed's field) is an opaque artifact reference: no bucket, prefix, key or
    URI of the store in any model response."""
    user = api.user()
    created = api.upload(user, onnx_add_one())
    assert created.status_code == 201, created.text
    model_id = created.json()["modelId"]
    from modelport.api.db.tables import StoredArtifact

    def storage() -> list[str]:
        with api.ctx.db.sessions() as session:
            rows = session.query(StoredArtifact).all()
            return [s for a in rows for s in (a.storage_key, a.storage_uri)]

    def responses() -> dict[str, object]:
        get = api.client.get
        return {
            "upload": created.json(),
            "show": get(f"/api/v1/models/{model_id}", headers=user.headers).json(),
            "list": get("/api/v1/models", headers=user.headers).json(),
            "versions": get(f"/api/v1/models/{model_id}/versions", headers=user.headers).json(),
        }

    first = responses()
    reference = first["show"]["filePath"]  # type: ignore[index]
    assert reference == first["list"]["items"][0]["filePath"]  # type: ignore[index]
    version = api.upload(user, onnx_add_one(), model_id=model_id)
    assert version.status_code == 201, version.text
    second = responses() | {"version upload": version.json()}
    assert second["show"]["filePath"] != reference  # type: ignore[index]
    api.client.post(
        f"/api/v1/models/{model_id}/rollback", headers=user.headers, json={"version": 1}
    )
    assert responses()["show"]["filePath"] == reference  # type: ignore[index]

    for name, body in (first | second).items():
        text = json.dumps(body)
        for secret in [api.bucket, "artifacts/", "s3://", ".mpa", *storage()]:
            assert secret not in text, (name, secret)


def test_model_logs_reveal_no_storage_location(make_api: MakeApi) -> None:
    """The runtime's log, which ``GET /api/v1/models/{id}/logs`` gives the owner, does not name
    the artifact's bucket, prefix, storage key or URI either."""
    api = make_api(local_runtimes=True)
    user = api.user()
    created = api.upload(user, onnx_add_one())
    assert created.status_code == 201, created.text
    model_id = created.json()["modelId"]
    from modelport.api.db.tables import StoredArtifact

    with api.ctx.db.sessions() as session:
        rows = session.query(StoredArtifact).all()
        stored = [s for a in rows for s in (a.storage_key, a.storage_uri)]

    def logs() -> list[str]:
        r = api.client.get(f"/api/v1/models/{model_id}/logs", headers=user.headers)
        assert r.status_code == 200, r.text
        lines: list[str] = r.json()["lines"]
        return lines

    deadline = time.monotonic() + 120
    while not any("ready" in line for line in logs()):
        assert time.monotonic() < deadline, logs()
        time.sleep(0.5)
    text = "\n".join(logs())
    for secret in [api.bucket, "artifacts/", "s3://", ".mpa", *stored]:
        assert secret not in text, (secret, text)


def test_failed_load_reason_reveals_no_storage_location(make_api: MakeApi) -> None:
    """A runtime that cannot fetch its artifact says so to the model's owner (the model's
    message, its logs) without naming the artifact's bucket, prefix, storage key or URI."""
    api = make_api(local_runtimes=True)
    user = api.user()
    created = api.upload(user, onnx_add_one())
    assert created.status_code == 201, created.text
    model_id = created.json()["modelId"]
    first = api.objects()
    assert api.upload(user, onnx_add_one(), model_id=model_id).status_code == 201
    for key in first:  # version 1's object is gone from the store
        api.s3.client().delete_object(Bucket=api.bucket, Key=key)
    r = api.client.post(
        f"/api/v1/models/{model_id}/rollback", headers=user.headers, json={"version": 1}
    )
    assert r.status_code == 200, r.text

    def shown() -> str:
        get = api.client.get
        model = get(f"/api/v1/models/{model_id}", headers=user.headers).json()
        logs = get(f"/api/v1/models/{model_id}/logs", headers=user.headers).json()
        return json.dumps([model.get("message"), logs["lines"]])

    deadline = time.monotonic() + 120
    while "failed to load" not in shown():
        assert time.monotonic() < deadline, shown()
        time.sleep(0.5)
    text = shown()
    for secret in [api.bucket, "artifacts/", "s3://", ".mpa", *first]:
        assert secret not in text, (secret, text)


def test_store_failure_reveals_no_storage_location(api: LiveApi) -> None:
    """When the artifact store fails (here its bucket is gone), the caller learns that it failed
    and to retry, not the bucket, key or URI it failed on; the operator's log has those."""
    user = api.user()
    api.s3.client().delete_bucket(Bucket=api.bucket)  # empty: nothing was uploaded yet
    refused = api.upload(user, onnx_add_one())
    assert refused.status_code == 500, refused.text
    assert refused.json()["error"]["code"] == "storage_failed"
    assert api.bucket not in refused.text and "s3://" not in refused.text, refused.text
    assert "retry" in refused.json()["error"]["message"].lower()


def test_store_failure_on_delete_reveals_no_storage_location(api: LiveApi) -> None:
    """Any path that meets a store failure answers without naming where the artifact is."""
    user = api.user()
    created = api.upload(user, onnx_add_one())
    assert created.status_code == 201, created.text
    client = api.s3.client()
    for key in api.objects():
        client.delete_object(Bucket=api.bucket, Key=key)
    client.delete_bucket(Bucket=api.bucket)
    gone = api.client.delete(f"/api/v1/models/{created.json()['modelId']}", headers=user.headers)
    assert api.bucket not in gone.text and "s3://" not in gone.text, gone.text
