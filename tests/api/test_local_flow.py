"""The whole flow with real local runtimes: upload → deploy → predict through the API's own
address → usage → key revocation → delete. Real PostgreSQL, real S3, real runtime processes."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from modelport.api.settings import SubscriptionLimits

from testing.payloads import onnx_add_one
from tests.api.conftest import LiveApi, MakeApi

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]


def wait_for(check: Callable[[], bool], timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def _key(api: LiveApi, headers: dict[str, str], name: str = "k") -> str:
    r = api.client.post("/api/v1/keys", headers=headers, json={"name": name})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def _phase(api: LiveApi, model_id: str, headers: dict[str, str]) -> str:
    return str(api.client.get(f"/api/v1/models/{model_id}", headers=headers).json()["phase"])


@pytest.fixture
def local_api(make_api: MakeApi) -> LiveApi:
    # These tests poll the API several times a second: lift the per-user limit.
    return make_api(
        local_runtimes=True, free=SubscriptionLimits(requests_per_minute=0, models_limit=10)
    )


def test_upload_predict_usage_revoke_delete(local_api: LiveApi) -> None:
    api = local_api
    owner = api.user()
    key = _key(api, owner.headers)
    r = api.upload(owner, onnx_add_one(), name="adder")
    assert r.status_code == 201, r.text
    model_id, endpoint = r.json()["modelId"], r.json()["endpointUrl"]
    wait_for(lambda: _phase(api, model_id, owner.headers) == "Ready", what="the runtime")

    auth = {"Authorization": f"Bearer {key}"}
    r = httpx.post(f"{endpoint}/predict", json={"inputData": [[1.0, 2.0]]}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [[2.0, 3.0]]
    infer = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [5.0, 6.0]}]}
    r = httpx.post(f"{endpoint}/v2/models/{model_id}/infer", json=infer, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [6.0, 7.0]

    # No key, or another user's key: refused by the runtime.
    assert httpx.post(f"{endpoint}/predict", json={"inputData": [[1.0, 2.0]]}).status_code == 401
    stranger = api.user()
    stranger_key = _key(api, stranger.headers)
    r = httpx.post(
        f"{endpoint}/predict",
        json={"inputData": [[1.0, 2.0]]},
        headers={"X-API-Key": stranger_key},
    )
    assert r.status_code == 401
    assert api.client.get(f"/api/v1/models/{model_id}", headers=stranger.headers).status_code == 404

    # Usage reaches the control API within a minute.
    def counted() -> bool:
        meta = api.client.get(f"/api/v1/models/{model_id}", headers=owner.headers).json()
        return meta["requestCount"] >= 2 and meta["lastUsed"] is not None

    wait_for(counted, timeout=60, what="usage report")
    usage = api.client.get(f"/api/v1/models/{model_id}/usage?window=1h", headers=owner.headers)
    assert usage.status_code == 200
    assert usage.json()["requests"] >= 2
    assert usage.json()["latencyMs"]["p50"] is not None

    # Revoking the key reaches the runtime within a minute.
    key_id = key.split("_")[1]
    assert api.client.delete(f"/api/v1/keys/{key_id}", headers=owner.headers).status_code == 204

    def refused() -> bool:
        r = httpx.post(f"{endpoint}/predict", json={"inputData": [[1.0, 2.0]]}, headers=auth)
        return r.status_code == 401

    wait_for(refused, timeout=60, what="revocation")

    # Delete removes the runtime, the key material and the artifact.
    run_dir = api.ctx.settings.data_dir / "run" / model_id
    assert run_dir.is_dir()
    assert api.client.delete(f"/api/v1/models/{model_id}", headers=owner.headers).status_code == 204
    assert not run_dir.exists()
    assert api.objects() == []
    assert api.client.get(f"/api/v1/models/{model_id}", headers=owner.headers).status_code == 404
    assert httpx.post(f"{endpoint}/predict", json={"inputData": [[1.0]]}).status_code == 404


def test_new_version_rolls_out_and_rollback(local_api: LiveApi) -> None:
    api = local_api
    owner = api.user()
    key = _key(api, owner.headers)
    auth = {"Authorization": f"Bearer {key}"}
    r = api.upload(owner, onnx_add_one(), name="adder")
    model_id, endpoint = r.json()["modelId"], r.json()["endpointUrl"]
    wait_for(lambda: _phase(api, model_id, owner.headers) == "Ready", what="the runtime")

    r = api.upload(owner, onnx_add_one(padding=64), model_id=model_id)
    assert r.status_code == 201, r.text
    # The endpoint keeps answering while version 2 starts.
    for _ in range(10):
        r = httpx.post(f"{endpoint}/predict", json={"inputData": [[0.0, 0.0]]}, headers=auth)
        assert r.status_code == 200, r.text
        time.sleep(0.2)
    versions = api.client.get(f"/api/v1/models/{model_id}/versions", headers=owner.headers)
    assert [v["active"] for v in versions.json()["items"]] == [False, True]

    r = api.client.post(
        f"/api/v1/models/{model_id}/rollback", headers=owner.headers, json={"version": 1}
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    wait_for(lambda: _phase(api, model_id, owner.headers) == "Ready", what="rollback")
    r = httpx.post(f"{endpoint}/predict", json={"inputData": [[0.0, 0.0]]}, headers=auth)
    assert r.status_code == 200

    # Deactivating stops serving; reactivating serves again.
    r = api.client.patch(
        f"/api/v1/models/{model_id}", headers=owner.headers, json={"status": "inactive"}
    )
    assert r.status_code == 200 and r.json()["phase"] == "Inactive"
    r = httpx.post(f"{endpoint}/predict", json={"inputData": [[0.0, 0.0]]}, headers=auth)
    assert r.status_code == 503


def _runtime_pids(api: LiveApi, model_id: str) -> list[int]:
    """Runtime processes of one model (their environment names the model's key folder)."""
    from pathlib import Path

    marker = str(api.ctx.settings.data_dir.resolve() / "run" / model_id).encode()
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids


def test_a_dead_runtime_is_restarted(local_api: LiveApi) -> None:
    import os
    import signal

    api = local_api
    owner = api.user()
    key = _key(api, owner.headers)
    model_id = api.upload(owner, onnx_add_one()).json()["modelId"]
    wait_for(lambda: _phase(api, model_id, owner.headers) == "Ready", what="the runtime")
    [pid] = _runtime_pids(api, model_id)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _runtime_pids(api, model_id) not in ([], [pid]), what="a new runtime")
    wait_for(lambda: _phase(api, model_id, owner.headers) == "Ready", what="readiness again")
    r = httpx.post(
        f"{api.url}/models/{model_id}/predict",
        json={"inputData": [[1.0, 1.0]]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200, r.text


def _dict_joblib() -> bytes:
    """A joblib file holding a dict: the scanner lets it through, the runtime cannot serve it."""
    import io

    import joblib

    buf = io.BytesIO()
    joblib.dump({"coef": [1.0, 2.0], "intercept": 0.5}, buf)
    return buf.getvalue()


def test_a_model_that_fails_to_load_says_why_and_stops_restarting(local_api: LiveApi) -> None:
    from modelport.api.deployers.local.supervisor import MAX_FAILED_STARTS

    api = local_api
    owner = api.user()
    r = api.upload(owner, _dict_joblib(), filename="settings.joblib", name="settings")
    assert r.status_code == 201, r.text
    model_id = r.json()["modelId"]
    url = f"/api/v1/models/{model_id}"
    uploaded = time.monotonic()
    wait_for(lambda: _phase(api, model_id, owner.headers) == "Failed", timeout=60, what="Failed")
    print(f"upload to Failed: {time.monotonic() - uploaded:.1f} s")  # for the record (-s)

    meta = api.client.get(url, headers=owner.headers).json()
    assert meta["reason"] == "LoadFailed"
    assert meta["message"].startswith("model failed to load: the joblib file holds a dict")
    assert "which has no predict()" in meta["message"]

    r = api.client.get(f"{url}/logs", params={"tail": 1000}, headers=owner.headers)
    assert r.status_code == 200, r.text
    assert r.json()["modelId"] == model_id
    lines = r.json()["lines"]
    assert any("the joblib file holds a dict" in line for line in lines), lines

    def starts() -> int:
        r = api.client.get(f"{url}/logs", params={"tail": 1000}, headers=owner.headers)
        return sum("failed to load, exiting" in line for line in r.json()["lines"])

    # Started again with back-off (1 s, 2 s), MAX_FAILED_STARTS times in all, then left alone.
    wait_for(lambda: starts() == MAX_FAILED_STARTS, timeout=90, what="the last start")
    wait_for(lambda: _runtime_pids(api, model_id) == [], timeout=30, what="no runtime")
    time.sleep(6)  # longer than the next back-off (4 s) would be
    assert starts() == MAX_FAILED_STARTS
    assert _runtime_pids(api, model_id) == []
    assert _phase(api, model_id, owner.headers) == "Failed"

    r = api.client.get(f"{url}/logs", params={"tail": 3}, headers=owner.headers)
    assert len(r.json()["lines"]) == 3
    for bad in (0, 1001, -1):
        r = api.client.get(f"{url}/logs", params={"tail": bad}, headers=owner.headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"
    stranger = api.user()
    r = api.client.get(f"{url}/logs", headers=stranger.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    # A new version starts afresh and clears the failure.
    assert api.upload(owner, onnx_add_one(), model_id=model_id).status_code == 201
    wait_for(lambda: _phase(api, model_id, owner.headers) == "Ready", what="the new version")
    meta = api.client.get(url, headers=owner.headers).json()
    assert meta["reason"] is None and meta["message"] is None
