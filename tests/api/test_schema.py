"""A model's schema, read from its runtime, and the per-model OpenAPI document built from it."""

from __future__ import annotations

import httpx
import jsonschema
import pytest
from modelport.api.settings import SubscriptionLimits

from testing.payloads import onnx_add_one
from tests.api.conftest import LiveApi, MakeApi
from tests.api.test_local_flow import _key, _phase, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


# Runs first: an API with local runtimes restores the active models already in the module's
# database, and models stored by an API with another master key would not open.
@pytest.mark.slow
def test_schema_and_openapi_come_from_the_runtime(make_api: MakeApi) -> None:
    api = make_api(
        local_runtimes=True, free=SubscriptionLimits(requests_per_minute=0, models_limit=10)
    )
    owner = api.user()
    # The key first: the runtime starts with it (a later key reaches it within seconds).
    auth = {"Authorization": f"Bearer {_key(api, owner.headers)}"}
    r = api.upload(owner, onnx_add_one(), name="adder")
    model_id, endpoint = r.json()["modelId"], r.json()["endpointUrl"]
    wait_for(lambda: _phase(api, model_id, owner.headers) == "Ready", what="the runtime")

    schema = api.client.get(f"/api/v1/models/{model_id}/schema", headers=owner.headers)
    assert schema.status_code == 200, schema.text
    assert schema.json()["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]
    assert schema.json()["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}]

    doc = api.client.get(f"/api/v1/models/{model_id}/openapi.json", headers=owner.headers).json()
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": endpoint}]
    predict = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert predict["example"] == {"inputData": [[0.0, 0.0]]}
    rows = predict["schema"]["properties"]["inputData"]
    assert rows["items"] == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 2,
        "maxItems": 2,
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"inputData": [[0.0, 0.0, 0.0, 0.0]]}, predict["schema"])

    # Every example in the document validates against its schema and is answered by the model.
    for path in ("/predict", f"/v1/models/{model_id}:predict", f"/v2/models/{model_id}/infer"):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        jsonschema.validate(body["example"], body["schema"])
        answer = httpx.post(f"{endpoint}{path}", json=body["example"], headers=auth)
        assert answer.status_code == 200, (path, answer.text)
    # The module's database outlives this API, whose master key opens this model's data key.
    assert api.client.delete(f"/api/v1/models/{model_id}", headers=owner.headers).status_code == 204


def test_schema_is_not_ready_without_a_runtime(api: LiveApi) -> None:
    owner = api.user()
    r = api.upload(owner, onnx_add_one(), name="adder")
    model_id = r.json()["modelId"]
    answer = api.client.get(f"/api/v1/models/{model_id}/schema", headers=owner.headers)
    assert answer.status_code == 503
    assert "Ready" in answer.json()["error"]["message"]
    stranger = api.user()
    for path in ("schema", "openapi.json"):
        r = api.client.get(f"/api/v1/models/{model_id}/{path}", headers=stranger.headers)
        assert r.status_code == 404, path
