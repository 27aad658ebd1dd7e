"""Every format, stored encrypted (file:// and the real S3 server), loaded through the runtime's
own start-up path and served through all three protocols."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from modelport.runtime.app import create_app, load_served_model
from modelport.runtime.loaders import ModelLoadError
from modelport.runtime.metrics import RuntimeMetrics

from testing.models import ModelFile
from tests.runtime.helpers import Artifact, encrypt_file, encrypt_to_s3, settings_for

FIXTURES = {
    "sklearn": "sklearn_model_files",
    "onnx": "onnx_model_files",
    "torch": "torch_model_files",
    "keras": "keras_model_files",
}

SERVABLE = [
    ("sklearn", "sklearn_logreg_pkl"),
    ("sklearn", "sklearn_logreg_joblib"),
    ("sklearn", "sklearn_forest_pkl"),
    ("sklearn", "sklearn_forest_joblib"),
    ("onnx", "onnx_sklearn_logreg"),
    ("onnx", "onnx_torch_mlp"),
    ("torch", "torchscript_pt"),
    ("torch", "torchscript_pth"),
    ("torch", "torch_export_pt"),
    ("torch", "torch_export_pt2"),
    ("keras", "keras3_h5"),
    ("keras", "keras3_keras"),
    ("keras", "tf_keras_h5"),
]


def model_file(request: pytest.FixtureRequest, family: str, name: str) -> ModelFile:
    files: dict[str, ModelFile] = request.getfixturevalue(FIXTURES[family])
    return files[name]


def v2_tensor(name: str, rows: np.ndarray) -> dict[str, Any]:
    datatype = "FP64" if rows.dtype == np.float64 else "FP32"
    return {
        "name": name,
        "shape": list(rows.shape),
        "datatype": datatype,
        "data": rows.ravel().tolist(),
    }


async def serve_and_check(artifact: Artifact, mf: ModelFile, **overrides: str) -> None:
    settings = settings_for(artifact, model_name="m", **overrides)
    model = load_served_model(settings, RuntimeMetrics("m"))
    app = create_app(settings, model=model)
    rows = mf.sample_input
    assert rows is not None and mf.expected_output is not None
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as client:
        meta = (await client.get("/v2/models/m")).json()
        [spec] = meta["inputs"]
        assert spec["shape"][-1] in (rows.shape[-1], -1)
        assert mf.output_name in [o["name"] for o in meta["outputs"]]

        # Open Inference Protocol v2: every output the framework computed, by name.
        request = {"inputs": [v2_tensor(spec["name"], rows)]}
        response = await client.post("/v2/models/m/infer", json=request)
        assert response.status_code == 200, response.text
        outputs = {o["name"]: o for o in response.json()["outputs"]}
        for name, expected in (mf.outputs or {}).items():
            got = np.array(outputs[name]["data"]).reshape(outputs[name]["shape"])
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

        # KServe v1: the primary output, row by row.
        response = await client.post("/v1/models/m:predict", json={"instances": rows.tolist()})
        assert response.status_code == 200, response.text
        predictions = np.array(response.json()["predictions"])
        np.testing.assert_allclose(predictions, mf.expected_output, rtol=1e-5, atol=1e-6)

        # The design's /predict.
        response = await client.post("/predict", json={"inputData": rows.tolist()})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success"
        np.testing.assert_allclose(
            np.array(body["predictions"]), mf.expected_output, rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize(("family", "name"), SERVABLE)
async def test_served_from_encrypted_file(request, tmp_path: Path, family: str, name: str):
    mf = model_file(request, family, name)
    await serve_and_check(encrypt_file(mf.path, tmp_path, mf.format.value), mf)


@pytest.mark.s3
@pytest.mark.parametrize(("family", "name"), SERVABLE)
async def test_served_from_encrypted_s3_object(
    request, s3_server, s3_store, monkeypatch, tmp_path: Path, family: str, name: str
):
    for variable, value in s3_server.env().items():  # credentials as a pod gets them
        monkeypatch.setenv(variable, value)
    mf = model_file(request, family, name)
    artifact = encrypt_to_s3(mf.path, s3_store, tmp_path, mf.format.value)
    await serve_and_check(artifact, mf, s3_endpoint_url=s3_server.endpoint_url)


def test_a_bare_state_dict_is_refused_with_how_to_export(torch_model_files, tmp_path: Path):
    mf = torch_model_files["state_dict_pth"]
    settings = settings_for(encrypt_file(mf.path, tmp_path, "pth"))
    with pytest.raises(ModelLoadError) as caught:
        load_served_model(settings, RuntimeMetrics("m"))
    message = caught.value.message
    assert "state_dict" in message and "no architecture" in message
    assert "torch.jit.script" in message and "torch.export" in message


def test_a_format_that_disagrees_with_the_content_is_refused(sklearn_model_files, tmp_path: Path):
    mf = sklearn_model_files["sklearn_logreg_joblib"]
    settings = settings_for(encrypt_file(mf.path, tmp_path, "onnx"))
    with pytest.raises(ModelLoadError, match="configured as onnx"):
        load_served_model(settings, RuntimeMetrics("m"))
