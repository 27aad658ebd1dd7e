"""Upload: the whole flow and each refusal, against real PostgreSQL and a real S3 server."""

from __future__ import annotations

import concurrent.futures
import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest
from modelport.api.deployers.base import DeploymentSpec, NoDeployer
from modelport.core.crypto import KeyBinding, WrappedKey, decrypt_stream

from testing.bombs import opcode_storm, zlib_joblib_bomb
from testing.malicious import CASES
from testing.memory import peak_rss, reset_peak_rss
from testing.models import ModelFile
from testing.payloads import malicious_pickle, onnx_add_one, torch_export_pt2, torch_state_dict
from tests.api.conftest import LiveApi, MakeApi, count_rows, spool_entries

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def test_upload_stores_encrypted_artifact_and_metadata(api: LiveApi) -> None:
    user = api.user()
    content = onnx_add_one()
    r = api.upload(user, content, name="adder")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "success"
    model_id = body["modelId"]
    assert body["endpointUrl"] == f"{api.url}/models/{model_id}"

    meta = api.client.get(f"/api/v1/models/{model_id}", headers=user.headers).json()
    assert meta["name"] == "adder"
    assert meta["fileFormat"] == "onnx"
    assert meta["userId"] == user.id
    assert meta["status"] == "active"
    assert meta["requestCount"] == 0

    # The store holds ciphertext only; the wrapped data key opens it to the exact upload.
    [key] = api.objects()
    stored = api.s3.client().get_object(Bucket=api.bucket, Key=key)["Body"].read()
    assert content not in stored
    from modelport.api.db.tables import StoredArtifact

    with api.ctx.db.sessions() as session:
        artifact = session.query(StoredArtifact).filter(StoredArtifact.id == meta["filePath"]).one()
        assert artifact.storage_uri.startswith(f"s3://{api.bucket}/artifacts/models/{model_id}/")
        wrapped = artifact.wrapped_data_key
        bound_to = KeyBinding(artifact_id=artifact.id, model_id=model_id, sha256=artifact.sha256)
    assert wrapped is not None
    data_key = api.ctx.keys.unwrap(WrappedKey.decode(wrapped), bound_to)
    assert b"".join(decrypt_stream([stored], data_key)) == content
    assert spool_entries(api) == []
    metrics = api.metrics()
    assert 'modelport_api_uploads_total{outcome="ok"} 1.0' in metrics


def test_unsupported_extension_lists_formats(api: LiveApi) -> None:
    r = api.upload(api.user(), b"hello", filename="model.txt")
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "unsupported_format"
    assert ".onnx" in err["message"] and ".pkl" in err["message"]
    assert set(err["details"]["supportedFormats"]) >= {".onnx", ".pkl", ".joblib", ".h5", ".pt"}
    assert "timestamp" in err
    metrics = api.metrics()
    assert 'modelport_api_uploads_total{outcome="unsupported_format"} 1.0' in metrics


def test_content_that_is_not_the_named_format_is_refused(api: LiveApi) -> None:
    r = api.upload(api.user(), b"\x89HDF\r\n\x1a\n" + b"\0" * 100, filename="model.onnx")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "format_mismatch"


def test_malicious_pickle_is_refused_with_findings(api: LiveApi) -> None:
    before = count_rows(api.ctx.db, "models")
    r = api.upload(api.user(), malicious_pickle(), filename="model.pkl")
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "unsafe_model"
    assert "system" in str(err.get("details", "")) + err["message"]
    assert count_rows(api.ctx.db, "models") == before
    assert api.objects() == []
    assert spool_entries(api) == []


def test_decompression_bomb_is_undecidable_and_the_api_does_not_grow(api: LiveApi) -> None:
    """1.5 MB of zlib that decompresses to 1.5 GiB: refused by the ratio limit, in the child."""
    user = api.user()
    bomb = zlib_joblib_bomb(1536 << 20)
    before = count_rows(api.ctx.db, "models")
    measured = reset_peak_rss()
    start = peak_rss()
    r = api.upload(user, bomb, filename="model.joblib")
    growth = peak_rss() - start
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "unsafe_model"
    assert "(undecidable)" in err["message"] and "max_ratio=1000" in err["message"]
    assert [d["location"] for d in err["details"]] == ["max_ratio"]
    if measured:  # the API is served from this process; the scan ran in another
        assert growth < 64 << 20, growth
    assert count_rows(api.ctx.db, "models") == before
    assert api.objects() == [] and spool_entries(api) == []


def test_scan_past_its_cpu_limit_is_undecidable_not_an_error(make_api: MakeApi) -> None:
    api = make_api(scan_cpu_seconds=1)
    before = count_rows(api.ctx.db, "models")
    r = api.upload(api.user(), opcode_storm(8_000_000), filename="model.joblib")
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "unsafe_model"
    assert "(undecidable): the scan used more than 1 s of CPU time" in err["message"]
    assert count_rows(api.ctx.db, "models") == before
    assert api.objects() == [] and spool_entries(api) == []


def test_torch_state_dict_is_refused_with_export_advice(api: LiveApi) -> None:
    r = api.upload(api.user(), torch_state_dict(), filename="weights.pth")
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert "state_dict" in err["message"]
    assert "torch.jit" in err["message"]
    assert api.objects() == []


def test_a_keras_archive_is_accepted_and_its_attacks_refused(
    api: LiveApi, keras_model_files: dict[str, ModelFile]
) -> None:
    user = api.user()
    saved = keras_model_files["keras3_keras"].path.read_bytes()
    r = api.upload(user, saved, filename="model.keras", name="keras archive")
    assert r.status_code == 201, r.text
    meta = api.client.get(f"/api/v1/models/{r.json()['modelId']}", headers=user.headers).json()
    assert meta["fileFormat"] == "keras"
    stored = api.objects()

    refusals = {
        "keras-archive-lambda": ("unsafe_model", "keras_lambda"),
        "keras-archive-extra-member": ("unsafe_model", "unexpected_member"),
        "keras-archive-torch": ("format_mismatch", None),
    }
    for case in (c for c in CASES if c.name in refusals):
        code, finding = refusals[case.name]
        r = api.upload(user, case.build("true"), filename=case.filename)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == code, err
        if finding is not None:
            assert finding in {f["code"] for f in err["details"]}
    assert api.objects() == stored
    r = api.upload(user, saved, filename="model.pt")
    assert r.status_code == 400
    assert "its content is keras" in r.json()["error"]["message"]


def test_torch_export_pt2_is_accepted_and_torchscript_pt2_refused(api: LiveApi) -> None:
    user = api.user()
    r = api.upload(user, torch_export_pt2(), filename="program.pt2")
    assert r.status_code == 201, r.text
    meta = api.client.get(f"/api/v1/models/{r.json()['modelId']}", headers=user.headers).json()
    assert meta["fileFormat"] == "pt2"

    import io

    import torch

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), buf)
    r = api.upload(user, buf.getvalue(), filename="script.pt2")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "pt2_not_export_program"


def test_too_large_upload_answers_413_with_the_limit(make_api: MakeApi) -> None:
    api = make_api(max_upload_bytes=1000)
    r = api.upload(api.user(), onnx_add_one() + b"\0" * 2000)
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["details"]["maxBytes"] == 1000
    assert "1000" in err["message"]
    assert api.objects() == [] and spool_entries(api) == []


def test_too_large_streamed_upload_stops_reading(make_api: MakeApi) -> None:
    """Without a Content-Length the limit is enforced while reading, not after."""
    api = make_api(max_upload_bytes=64 * 1024)
    user = api.user()
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="m.onnx"\r\n\r\n'
        yield head
        for _ in range(2_000):  # 128 MB if the server read it all
            sent += 65536
            yield b"\x08\x07" + b"\0" * 65534

    try:
        r = api.client.post(
            "/api/v1/models",
            headers={**user.headers, "Content-Type": "multipart/form-data; boundary=b"},
            content=body(),
        )
        assert r.status_code == 413
    except httpx.TransportError:
        pass  # the server may close the connection while the client still writes
    assert sent < 1_000 * 65536
    assert api.objects() == [] and spool_entries(api) == []


def test_models_limit_is_a_clear_refusal(api: LiveApi) -> None:
    user = api.user()
    admin_patch = {"modelsLimit": 1}
    _set_limits(api, user.id, admin_patch)
    assert api.upload(user, onnx_add_one()).status_code == 201
    r = api.upload(user, onnx_add_one())
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "models_limit_reached"
    assert err["details"]["modelsLimit"] == 1
    assert len(api.objects()) == 1


def _set_limits(api: LiveApi, user_id: str, change: dict[str, int]) -> None:
    from modelport.api.db.tables import User

    with api.ctx.db.sessions() as session:
        user = session.get(User, user_id)
        assert user is not None
        user.models_limit = change.get("modelsLimit", user.models_limit)
        user.requests_per_minute = change.get("requestsPerMinute", user.requests_per_minute)
        session.commit()


def test_missing_model_name_and_missing_file(api: LiveApi) -> None:
    user = api.user()
    r = api.client.post(
        "/api/v1/models",
        headers=user.headers,
        files={"file": ("m.onnx", onnx_add_one(), "application/octet-stream")},
    )
    assert r.status_code == 400 and "modelName" in r.json()["error"]["message"]
    r = api.client.post("/api/v1/models", headers=user.headers, data={"modelName": "x"}, files={})
    assert r.status_code == 400
    r = api.client.post("/api/v1/models", headers=user.headers, json={"modelName": "x"})
    assert r.status_code == 400
    assert api.objects() == [] and spool_entries(api) == []


def test_upload_needs_authentication(api: LiveApi) -> None:
    r = api.client.post("/api/v1/models", files={"file": ("m.onnx", b"x")})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = api.client.post(
        "/api/v1/models",
        headers={"Authorization": "Bearer mp_000000000000_nope"},
        files={"file": ("m.onnx", b"x")},
    )
    assert r.status_code == 401


def test_twenty_concurrent_uploads(api: LiveApi) -> None:
    users = [api.user() for _ in range(4)]
    for u in users:
        _set_limits(api, u.id, {"modelsLimit": 10, "requestsPerMinute": 100})
    content = onnx_add_one()

    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=api.url, timeout=120) as client:
            return client.post(
                "/api/v1/models",
                headers=users[i % 4].headers,
                files={"file": ("m.onnx", content + b"", "application/octet-stream")},
                data={"modelName": f"model {i}"},
            )

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(one, range(20)))
    assert [r.status_code for r in responses] == [201] * 20
    ids = {r.json()["modelId"] for r in responses}
    assert len(ids) == 20
    assert len(api.objects()) == 20
    for u in users:
        listing = api.client.get("/api/v1/models", headers=u.headers).json()
        assert listing["total"] == 5
    assert spool_entries(api) == []


def test_client_aborting_mid_upload_leaves_nothing(api: LiveApi) -> None:
    user = api.user()
    before = count_rows(api.ctx.db, "models")
    boundary = "abort"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="modelName"\r\n\r\nx\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="m.onnx"\r\n'
        "\r\n"
    ).encode()
    declared = 50 << 20
    request = (
        f"POST /api/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {user.token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", api.server.port)) as sock:
        sock.sendall(request + head + onnx_add_one() + b"\0" * (4 << 20))
        _wait_for(lambda: len(spool_entries(api)) == 1)  # the server is spooling
    # The socket is closed mid-body: the spool folder goes, nothing is stored.
    _wait_for(lambda: spool_entries(api) == [])
    assert api.objects() == []
    assert count_rows(api.ctx.db, "models") == before


def _wait_for(condition, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_s3_stopped_during_upload_is_500_and_leaves_nothing(api: LiveApi) -> None:
    user = api.user()
    before = count_rows(api.ctx.db, "models")
    with api.s3.stopped():
        r = api.upload(user, onnx_add_one())
    assert r.status_code == 500, r.text
    err = r.json()["error"]
    assert "retry" in err["message"].lower()
    assert count_rows(api.ctx.db, "models") == before
    assert count_rows(api.ctx.db, "stored_artifacts") == count_rows(api.ctx.db, "model_versions")
    assert spool_entries(api) == []


def test_s3_server_stopped_mid_upload_is_500_and_leaves_nothing(api: LiveApi) -> None:
    """The S3 server process is stopped while the artifact streams into it."""
    import threading

    user = api.user()
    before = count_rows(api.ctx.db, "models")
    result: dict[str, httpx.Response] = {}
    upload = threading.Thread(
        target=lambda: result.setdefault("r", api.upload(user, onnx_add_one(padding=64 << 20)))
    )
    upload.start()
    s3 = api.s3.client()
    _wait_for(lambda: bool(s3.list_multipart_uploads(Bucket=api.bucket).get("Uploads")), 120)
    api.s3.stop()
    try:
        upload.join(timeout=180)
    finally:
        api.s3.start()
    r = result["r"]
    assert r.status_code == 500, r.text
    assert "retry" in r.json()["error"]["message"].lower()
    assert count_rows(api.ctx.db, "models") == before
    assert spool_entries(api) == []


def test_s3_failing_mid_multipart_upload_leaves_no_object(make_api: MakeApi, s3_server) -> None:
    """A store that fails after some parts were written: the multipart upload is aborted."""
    api = make_api()
    user = api.user()
    big = onnx_add_one(padding=12 << 20)  # more than one 8 MiB part
    failing = _FailingStore(api.ctx.store, fail_after=1)
    api.ctx.store = failing
    r = api.upload(user, big)
    assert r.status_code == 500, r.text
    assert api.objects() == []
    uploads = s3_server.client().list_multipart_uploads(Bucket=api.bucket)
    assert uploads.get("Uploads", []) == []


class _FailingStore:
    """Passes writes to a real store but breaks the stream after ``fail_after`` chunks."""

    def __init__(self, inner, fail_after: int) -> None:
        self.inner = inner
        self.fail_after = fail_after

    def put_stream(self, key, chunks):
        def broken() -> Iterator[bytes]:
            for i, chunk in enumerate(chunks):
                if i > self.fail_after:
                    raise OSError("connection reset by the store")
                yield chunk

        return self.inner.put_stream(key, broken())

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_postgres_stopped_is_503_then_recovers(api: LiveApi, postgres_server) -> None:
    user = api.user()
    assert api.client.get("/api/v1/models", headers=user.headers).status_code == 200
    with postgres_server.stopped():
        r = api.client.get("/api/v1/models", headers=user.headers)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "database_unavailable"
        assert api.client.get("/readyz").status_code == 503
        r = api.upload(user, onnx_add_one())
        assert r.status_code == 503
    _wait_for(lambda: api.client.get("/readyz").status_code == 200)
    assert api.client.get("/api/v1/models", headers=user.headers).status_code == 200
    assert api.upload(user, onnx_add_one()).status_code == 201
    assert spool_entries(api) == []


def test_unknown_id_formats_are_404(api: LiveApi) -> None:
    user = api.user()
    r = api.client.get(f"/api/v1/models/{uuid.uuid4().hex}", headers=user.headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


class _BreakingDeployer(NoDeployer):
    """Records what it is asked to apply and remove; refuses every apply while ``broken``."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1")
        self.broken = False
        self.applied: list[tuple[str, int]] = []
        self.removed: list[str] = []

    def apply(self, spec: DeploymentSpec) -> None:
        self.applied.append((spec.model_id, spec.version))
        if self.broken:
            raise RuntimeError("the cluster refused the deployment")

    def remove(self, model_id: str) -> None:
        self.removed.append(model_id)


def test_deploy_failure_leaves_no_model_behind(make_api: MakeApi) -> None:
    deployer = _BreakingDeployer()
    api = make_api(deployer)
    user = api.user()
    before = count_rows(api.ctx.db, "models")
    deployer.broken = True
    r = api.upload(user, onnx_add_one())
    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"] == "deploy_failed"
    [(model_id, version)] = deployer.applied
    assert version == 1 and deployer.removed == [model_id]
    assert count_rows(api.ctx.db, "models") == before
    assert count_rows(api.ctx.db, "stored_artifacts") == count_rows(api.ctx.db, "model_versions")
    assert api.objects() == [] and spool_entries(api) == []
    assert 'modelport_api_uploads_total{outcome="deploy_failed"} 1.0' in api.metrics()


def test_version_deploy_failure_keeps_the_previous_version(make_api: MakeApi) -> None:
    deployer = _BreakingDeployer()
    api = make_api(deployer)
    user = api.user()
    model_id = api.upload(user, onnx_add_one()).json()["modelId"]
    [stored] = api.objects()
    deployer.broken = True
    r = api.upload(user, onnx_add_one(), model_id=model_id)
    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"] == "deploy_failed"
    # The new version was tried, then version 1 applied again; nothing of version 2 remains.
    assert deployer.applied == [(model_id, 1), (model_id, 2), (model_id, 1)]
    assert deployer.removed == []
    versions = api.client.get(f"/api/v1/models/{model_id}/versions", headers=user.headers)
    assert [(v["number"], v["active"]) for v in versions.json()["items"]] == [(1, True)]
    assert api.objects() == [stored] and spool_entries(api) == []


def test_rollback_deploy_failure_keeps_the_active_version(make_api: MakeApi) -> None:
    deployer = _BreakingDeployer()
    api = make_api(deployer)
    user = api.user()
    model_id = api.upload(user, onnx_add_one()).json()["modelId"]
    assert api.upload(user, onnx_add_one(), model_id=model_id).status_code == 201
    deployer.broken = True
    r = api.client.post(
        f"/api/v1/models/{model_id}/rollback", headers=user.headers, json={"version": 1}
    )
    assert r.status_code == 500, r.text
    assert deployer.applied[-2:] == [(model_id, 1), (model_id, 2)]
    meta = api.client.get(f"/api/v1/models/{model_id}", headers=user.headers).json()
    assert meta["version"] == 2
