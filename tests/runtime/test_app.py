"""The runtime's HTTP interface, in-process through the app factory (sklearn model)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from modelport.core.metrics_server import metrics_app
from modelport.runtime.app import create_app
from modelport.runtime.loaders.sklearn import SklearnModel
from modelport.runtime.settings import RuntimeSettings
from sklearn.linear_model import LogisticRegression

from testing.models import classification_data, sample_rows
from tests.runtime.helpers import write_keys


@pytest.fixture(scope="module")
def estimator() -> LogisticRegression:
    x, y = classification_data()
    return LogisticRegression(max_iter=500).fit(x, y)


def make_settings(**overrides: Any) -> RuntimeSettings:
    values: dict[str, Any] = {
        "model_name": "iris",
        "artifact_uri": "file:///unused",
        "format": "joblib",
        "auth_required": False,
    }
    values.update(overrides)
    return RuntimeSettings(**values)


def client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://runtime")


@pytest.fixture
async def client(estimator):
    app = create_app(make_settings(), model=SklearnModel(estimator))
    async with client_for(app) as c:
        yield c


def v2_request(rows: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ],
        **extra,
    }


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["timestamp"].endswith("Z")
    error: dict[str, Any] = body["error"]
    return error


# ------------------------------------------------------------------------- health, metadata


async def test_health_and_server_metadata(client):
    assert (await client.get("/v2/health/live")).json() == {"live": True}
    assert (await client.get("/v2/health/ready")).json() == {"ready": True}
    assert (await client.get("/v2/models/iris/ready")).json() == {"name": "iris", "ready": True}
    meta = (await client.get("/v2")).json()
    assert meta["name"] == "modelport" and "binary_tensor_data" in meta["extensions"]
    assert (await client.get("/v1/models")).json() == {"models": ["iris"]}
    assert (await client.get("/v1/models/iris")).json() == {"name": "iris", "ready": True}


async def test_model_metadata_has_the_real_signature(client):
    meta = (await client.get("/v2/models/iris")).json()
    assert meta["name"] == "iris"
    assert meta["platform"] == "sklearn"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
    ]


async def test_unknown_model_and_route_are_404(client):
    assert_error(await client.get("/v2/models/nope"), 404, "not_found")
    assert_error(await client.get("/v2/models/nope/ready"), 404, "not_found")
    rows = sample_rows(1)
    assert_error(
        await client.post("/v2/models/nope/infer", json=v2_request(rows)), 404, "not_found"
    )
    assert_error(await client.get("/no/such/route"), 404, "not_found")


async def test_not_ready_is_503_without_a_model():
    app = create_app(make_settings())  # no model, and no lifespan ran to load one
    async with client_for(app) as c:
        assert (await c.get("/v2/health/live")).status_code == 200
        assert_error(await c.get("/v2/health/ready"), 503, "not_ready")
        assert_error(await c.get("/v2/models/iris/ready"), 503, "not_ready")
        response = await c.post("/v2/models/iris/infer", json=v2_request(sample_rows(1)))
        assert_error(response, 503, "not_ready")


# ------------------------------------------------------------------------- inference


async def test_v2_infer_returns_every_output_and_echoes_the_id(client, estimator):
    rows = sample_rows(3)
    response = await client.post("/v2/models/iris/infer", json=v2_request(rows, id="req-7"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "iris" and body["id"] == "req-7"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["datatype"] == "INT64" and outputs["predict"]["shape"] == [3]
    assert outputs["predict"]["data"] == estimator.predict(rows).tolist()
    assert outputs["predict_proba"]["shape"] == [3, 3]
    np.testing.assert_array_equal(
        np.array(outputs["predict_proba"]["data"]).reshape(3, 3), estimator.predict_proba(rows)
    )


async def test_v2_output_selection_and_nested_data(client, estimator):
    rows = sample_rows(2)
    request = v2_request(rows, outputs=[{"name": "predict_proba"}])
    request["inputs"][0]["data"] = rows.tolist()  # nested rows are as good as flat data
    body = (await client.post("/v2/models/iris/infer", json=request)).json()
    assert [o["name"] for o in body["outputs"]] == ["predict_proba"]
    assert "id" not in body


async def test_v2_accepts_fp32_and_int_tensors_for_an_fp64_model(client, estimator):
    rows = np.round(sample_rows(2))
    request = v2_request(rows)
    request["inputs"][0]["datatype"] = "INT32"
    request["inputs"][0]["data"] = rows.astype(int).ravel().tolist()
    body = (await client.post("/v2/models/iris/infer", json=request)).json()
    assert body["outputs"][0]["data"] == estimator.predict(rows).tolist()


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r["inputs"][0].update(shape=[1, 3]), "holds 3 elements"),
        (lambda r: r["inputs"][0].update(shape=[4, 1]), "expected shape [-1, 4]"),
        (lambda r: r["inputs"][0].update(datatype="BYTES", data=["a"] * 4), "expected FP64"),
        (lambda r: r["inputs"][0].update(data=["x"] * 4), "must be numbers"),
        (lambda r: r["inputs"][0].update(datatype="INT64"), "must be integers"),
        (lambda r: r["inputs"][0].update(datatype="FP128"), "unknown datatype"),
        (lambda r: r["inputs"][0].pop("data"), "no data"),
        (lambda r: r["inputs"].append(dict(r["inputs"][0], name="extra")), "no input of this"),
    ],
)
async def test_v2_schema_errors_are_400_with_details(client, mutate, fragment):
    request = v2_request(sample_rows(1) + 0.5)
    mutate(request)
    error = assert_error(
        await client.post("/v2/models/iris/infer", json=request), 400, "invalid_input"
    )
    assert fragment in str(error["details"]["errors"])
    assert error["details"]["expected"] == [
        {"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}
    ]


async def test_v2_missing_inputs_unknown_output_and_bad_json_are_400(client):
    assert_error(
        await client.post("/v2/models/iris/infer", json={"inputs": []}), 400, "invalid_input"
    )
    request = v2_request(sample_rows(1), outputs=[{"name": "nope"}])
    assert_error(await client.post("/v2/models/iris/infer", json=request), 400, "invalid_input")
    response = await client.post("/v2/models/iris/infer", content=b"{not json")
    assert_error(response, 400, "bad_input")


async def test_v2_binary_tensor_data_in_and_out(client, estimator):
    rows = sample_rows(2)
    blob = rows.astype("<f8").tobytes()
    header = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 4],
                "datatype": "FP64",
                "parameters": {"binary_data_size": len(blob)},
            }
        ],
        "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}}],
    }
    import orjson

    head = orjson.dumps(header)
    response = await client.post(
        "/v2/models/iris/infer",
        content=head + blob,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert response.status_code == 200, response.text
    n = int(response.headers["inference-header-content-length"])
    doc = orjson.loads(response.content[:n])
    size = doc["outputs"][0]["parameters"]["binary_data_size"]
    proba = np.frombuffer(response.content[n : n + size], dtype="<f8").reshape(2, 3)
    np.testing.assert_array_equal(proba, estimator.predict_proba(rows))


async def test_kserve_v1_predict(client, estimator):
    rows = sample_rows(3)
    response = await client.post("/v1/models/iris:predict", json={"instances": rows.tolist()})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": estimator.predict(rows).tolist()}
    bad = await client.post("/v1/models/iris:predict", json={"instances": [[1, 2]]})
    assert_error(bad, 400, "invalid_input")
    assert_error(await client.post("/v1/models/iris:predict", json={"rows": []}), 400, "bad_input")


async def test_predict_shape_with_confidence(client, estimator):
    rows = sample_rows(2)
    body = (await client.post("/predict", json={"inputData": rows.tolist()})).json()
    assert body["status"] == "success"
    assert body["predictions"] == estimator.predict(rows).tolist()
    assert body["confidence"] == pytest.approx(estimator.predict_proba(rows).max(axis=1).tolist())
    assert isinstance(body["processingTime"], float)
    one = (await client.post("/predict", json={"inputData": rows[0].tolist()})).json()
    assert one["predictions"] == int(estimator.predict(rows[:1])[0])
    assert isinstance(one["confidence"], float)
    error = assert_error(
        await client.post("/predict", json={"inputData": [[1.0]]}), 400, "invalid_input"
    )
    assert "expected shape" in str(error["details"])


async def test_request_body_limit_is_413(estimator):
    app = create_app(make_settings(max_request_bytes=100), model=SklearnModel(estimator))
    async with client_for(app) as c:
        response = await c.post("/v2/models/iris/infer", json=v2_request(sample_rows(10)))
        assert_error(response, 413, "too_large")


# ------------------------------------------------------------------------- timeout, metrics


async def test_prediction_past_its_timeout_is_504(estimator):
    settings = make_settings(predict_timeout_seconds=0.2, debug_predict_delay_seconds=1.0)
    app = create_app(settings, model=SklearnModel(estimator))
    async with client_for(app) as c:
        response = await c.post("/v2/models/iris/infer", json=v2_request(sample_rows(1)))
        error = assert_error(response, 504, "timeout")
        assert error["details"] == {"timeoutSeconds": 0.2}


async def test_metrics_count_requests_errors_latency_and_in_flight(estimator):
    app = create_app(make_settings(), model=SklearnModel(estimator))
    scraper = httpx.AsyncClient(  # Prometheus addresses the pod by its IP
        transport=httpx.ASGITransport(app=metrics_app(app.state.metrics.registry)),
        base_url="http://10.0.0.7:9090",
    )
    async with client_for(app) as client, scraper as m:
        await client.post("/v2/models/iris/infer", json=v2_request(sample_rows(1)))
        await client.post("/v1/models/iris:predict", json={"instances": [[1.0]]})
        assert_error(await client.get("/metrics"), 404, "not_found")
        text = (await m.get("/metrics")).text
    assert 'modelport_runtime_requests_total{code="200",model="iris",protocol="v2"} 1.0' in text
    assert 'modelport_runtime_requests_total{code="400",model="iris",protocol="v1"} 1.0' in text
    errors = 'request_errors_total{error="invalid_input",model="iris",protocol="v1"} 1.0'
    assert f"modelport_runtime_{errors}" in text
    assert (
        'modelport_runtime_request_duration_seconds_count{model="iris",protocol="v2"} 1.0' in text
    )
    assert 'modelport_runtime_in_flight_requests{model="iris"} 0.0' in text
    assert "modelport_runtime_model_ready" in text


# ------------------------------------------------------------------------- auth


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "auth-keys.json"
    write_keys(path, {"k_open": ("secret-open", None), "k_tight": ("secret-tight", 2)})
    return path


async def test_auth_missing_or_wrong_key_is_401(estimator, keys_file):
    app = create_app(
        make_settings(auth_required=True, auth_keys_file=keys_file), model=SklearnModel(estimator)
    )
    request = v2_request(sample_rows(1))
    async with client_for(app) as c:
        error = assert_error(
            await c.post("/v2/models/iris/infer", json=request), 401, "unauthenticated"
        )
        assert "API key" in error["message"]
        wrong = {"Authorization": "Bearer secret-wrong"}
        refused = assert_error(
            await c.post("/v2/models/iris/infer", json=request, headers=wrong),
            401,
            "unauthenticated",
        )
        # Says which key an endpoint takes: a newcomer's first guess is the account key.
        assert "inference key" in refused["message"]
        assert_error(
            await c.post("/predict", json={"inputData": [[1, 2, 3, 4]]}), 401, "unauthenticated"
        )
        ok = await c.post(
            "/v2/models/iris/infer", json=request, headers={"Authorization": "Bearer secret-open"}
        )
        assert ok.status_code == 200
        ok = await c.post(
            "/v1/models/iris:predict",
            json={"instances": [[1, 2, 3, 4]]},
            headers={"X-API-Key": "secret-open"},
        )
        assert ok.status_code == 200
        # Health stays open for the kubelet's probes.
        assert (await c.get("/v2/health/ready")).status_code == 200


async def test_rate_limit_is_429_with_retry_after_per_key(estimator, keys_file):
    settings = make_settings(
        auth_required=True, auth_keys_file=keys_file, rate_limit_per_minute=1000
    )
    app = create_app(settings, model=SklearnModel(estimator))
    request = v2_request(sample_rows(1))
    tight = {"X-API-Key": "secret-tight"}
    async with client_for(app) as c:
        for _ in range(2):
            assert (
                await c.post("/v2/models/iris/infer", json=request, headers=tight)
            ).status_code == 200
        limited = await c.post("/v2/models/iris/infer", json=request, headers=tight)
        error = assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["Retry-After"]) >= 1
        assert error["details"] == {"limitPerMinute": 2}
        # Another key has its own bucket (and the default limit).
        other = {"X-API-Key": "secret-open"}
        assert (
            await c.post("/v2/models/iris/infer", json=request, headers=other)
        ).status_code == 200


async def test_revoked_key_stops_working_after_reload(estimator, keys_file):
    app = create_app(
        make_settings(auth_required=True, auth_keys_file=keys_file), model=SklearnModel(estimator)
    )
    request = v2_request(sample_rows(1))
    headers = {"X-API-Key": "secret-open"}
    async with client_for(app) as c:
        assert (
            await c.post("/v2/models/iris/infer", json=request, headers=headers)
        ).status_code == 200
        write_keys(keys_file, {"k_new": ("secret-new", None)})
        app.state.keys.reload()
        assert_error(
            await c.post("/v2/models/iris/infer", json=request, headers=headers),
            401,
            "unauthenticated",
        )
        ok = await c.post(
            "/v2/models/iris/infer", json=request, headers={"X-API-Key": "secret-new"}
        )
        assert ok.status_code == 200
        assert hashlib.sha256(b"secret-new").hexdigest() in keys_file.read_text()


# ------------------------------------------------------------------------- usage


async def test_usage_window_counts_requests_errors_and_keys(estimator, keys_file):
    app = create_app(
        make_settings(auth_required=True, auth_keys_file=keys_file), model=SklearnModel(estimator)
    )
    request = v2_request(sample_rows(1))
    async with client_for(app) as c:
        await asyncio.gather(
            *(
                c.post("/v2/models/iris/infer", json=request, headers={"X-API-Key": "secret-open"})
                for _ in range(3)
            )
        )
        await c.post(
            "/v2/models/iris/infer", json={"inputs": []}, headers={"X-API-Key": "secret-open"}
        )
    report = app.state.usage.window.report("iris")
    assert report["requests"] == 4 and report["errors"] == 1
    assert report["byKey"] == {"k_open": 4}
    assert report["model"] == "iris" and report["lastUsed"].endswith("Z")
    assert report["latencyMs"]["p99"] >= report["latencyMs"]["p50"] > 0


async def test_versioned_paths_answer_like_the_unversioned_ones(client, estimator):
    rows = sample_rows(1)
    response = await client.post("/v2/models/iris/versions/1/infer", json=v2_request(rows))
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == estimator.predict(rows).tolist()
    assert (await client.get("/v2/models/iris/versions/1")).json()["name"] == "iris"
    assert (await client.get("/v2/models/iris/versions/1/ready")).json()["ready"] is True
