"""Loader details: the pickle gate, text pipelines (BYTES), ZipMap outputs, several inputs."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from modelport.core.errors import ModelportError
from modelport.core.formats import ModelFormat
from modelport.runtime.app import create_app, load_served_model
from modelport.runtime.loaders import load_model
from modelport.runtime.metrics import RuntimeMetrics
from modelport.runtime.settings import RuntimeSettings

from testing.models import classification_data, sample_rows
from tests.runtime.helpers import encrypt_file, settings_for


class RecordingGate:
    def __init__(self) -> None:
        self.seen: list[tuple[int, ModelFormat]] = []

    def check(self, data: bytes, fmt: ModelFormat) -> None:
        self.seen.append((len(data), fmt))


class RefusingGate:
    def check(self, data: bytes, fmt: ModelFormat) -> None:
        raise PermissionError("refused by the test gate")


class _Exploit:
    """Unpickling this runs a shell command (it must never get the chance)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_every_pickle_based_loader_passes_the_gate_first(sklearn_model_files, torch_model_files):
    gate = RecordingGate()
    for name, fmt in (
        ("sklearn_logreg_pkl", ModelFormat.PKL),
        ("sklearn_forest_joblib", ModelFormat.JOBLIB),
    ):
        data = sklearn_model_files[name].path.read_bytes()
        load_model(data, fmt, gate=gate)
    data = torch_model_files["torchscript_pt"].path.read_bytes()
    load_model(data, ModelFormat.PT, gate=gate)
    assert [fmt for _, fmt in gate.seen] == [ModelFormat.PKL, ModelFormat.JOBLIB, ModelFormat.PT]
    with pytest.raises(PermissionError):
        load_model(
            sklearn_model_files["sklearn_logreg_pkl"].path.read_bytes(),
            ModelFormat.PKL,
            gate=RefusingGate(),
        )


def test_a_malicious_pickle_is_refused_before_it_runs(tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Exploit(marker)))
    settings = settings_for(encrypt_file(evil, tmp_path, "pkl"))
    with pytest.raises(ModelportError, match=r"(?i)unsafe|refused"):
        load_served_model(settings, RuntimeMetrics("m"))
    assert not marker.exists()


async def test_text_pipeline_takes_bytes_tensors():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = ["good movie", "great film", "bad movie", "awful film", "great acting", "bad plot"]
    labels = ["pos", "pos", "neg", "neg", "pos", "neg"]
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    model = load_model(buffer.getvalue(), ModelFormat.JOBLIB, gate=RecordingGate())
    assert model.signature.inputs[0].metadata() == {
        "name": "input-0",
        "datatype": "BYTES",
        "shape": [-1],
    }
    assert model.signature.outputs[0].metadata() == {
        "name": "predict",
        "datatype": "BYTES",
        "shape": [-1],
    }
    settings = RuntimeSettings(
        model_name="t", artifact_uri="file:///x", format="joblib", auth_required=False
    )
    app = create_app(settings, model=model)
    queries = ["great movie", "awful plot"]
    want = pipeline.predict(queries).tolist()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        request = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": queries}]}
        body = (await client.post("/v2/models/t/infer", json=request)).json()
        predict = {o["name"]: o for o in body["outputs"]}["predict"]
        assert predict == {"name": "predict", "datatype": "BYTES", "shape": [2], "data": want}
        v1 = (await client.post("/v1/models/t:predict", json={"instances": queries})).json()
        assert v1 == {"predictions": want}
        one = (await client.post("/predict", json={"inputData": "great movie"})).json()
        assert one["predictions"] == [pipeline.predict(["great movie"])[0]]


def test_onnx_zipmap_output_is_served_as_rows_of_probabilities():
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = classification_data()
    estimator = LogisticRegression(max_iter=500).fit(x.astype(np.float32), y)
    proto = to_onnx(estimator, x[:1].astype(np.float32))  # ZipMap on, the converter's default
    model = load_model(proto.SerializeToString(), ModelFormat.ONNX, gate=RecordingGate())
    rows = sample_rows().astype(np.float32)
    names = model.signature.output_names
    out = model.predict({model.signature.inputs[0].name: rows}, names)
    probabilities = out[names[1]]
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities, estimator.predict_proba(rows), rtol=1e-4, atol=1e-5)


async def test_several_inputs_by_name_through_v2_and_v1(tmp_path: Path):
    import torch

    class Two(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a * 2 + b.sum(dim=1, keepdim=True)

    example = (torch.ones(2, 3), torch.ones(2, 2))
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(Two(), example, dynamic_shapes={"a": {0: batch}, "b": {0: batch}})
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    model = load_model(buffer.getvalue(), ModelFormat.PT, gate=RecordingGate())
    assert [s.metadata() for s in model.signature.inputs] == [
        {"name": "a", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "b", "datatype": "FP32", "shape": [-1, 2]},
    ]
    settings = RuntimeSettings(
        model_name="two", artifact_uri="file:///x", format="pt", auth_required=False
    )
    app = create_app(settings, model=model)
    a, b = [[1.0, 2.0, 3.0]], [[10.0, 20.0]]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        request = {
            "inputs": [
                {"name": "b", "shape": [1, 2], "datatype": "FP32", "data": b},
                {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": a},
            ]
        }
        body = (await client.post("/v2/models/two/infer", json=request)).json()
        assert body["outputs"][0]["data"] == [32.0, 34.0, 36.0]
        v1 = (
            await client.post(
                "/v1/models/two:predict", json={"instances": [{"a": a[0], "b": b[0]}]}
            )
        ).json()
        assert v1 == {"predictions": [[32.0, 34.0, 36.0]]}
        missing = await client.post("/v2/models/two/infer", json={"inputs": request["inputs"][:1]})
        assert missing.status_code == 400
        assert {"input": "a", "error": "missing input"} in missing.json()["error"]["details"][
            "errors"
        ]


@pytest.mark.parametrize("memory_short", [False, True], ids=["in-memory", "memory-short"])
def test_a_keras_archive_loads_from_memory_and_writes_nothing(
    keras_model_files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_short: bool
):
    """Keras extracts to disk when it judges memory short or finds assets: from bytes it never
    gets the chance, and the gate sees the archive first."""
    import tempfile

    from keras.src.saving import saving_lib

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(scratch)
    if memory_short:
        monkeypatch.setattr(saving_lib, "is_memory_sufficient", lambda model: False)
    mf = keras_model_files["keras3_keras"]
    gate = RecordingGate()
    model = load_model(mf.path.read_bytes(), ModelFormat.KERAS, gate=gate)
    assert gate.seen == [(mf.path.stat().st_size, ModelFormat.KERAS)]
    assert list(scratch.iterdir()) == []
    got = model.predict({"features": mf.sample_input}, ["probabilities"])["probabilities"]
    np.testing.assert_allclose(got, mf.expected_output, rtol=1e-5, atol=1e-6)
    assert model.keras_version.startswith("3.")  # type: ignore[attr-defined]
    with pytest.raises(PermissionError):
        load_model(mf.path.read_bytes(), ModelFormat.KERAS, gate=RefusingGate())


def test_a_keras_archive_with_a_lambda_is_refused_before_keras_sees_it(tmp_path: Path):
    from testing.malicious import CASES

    marker = tmp_path / "pwned"
    case = next(c for c in CASES if c.name == "keras-archive-lambda")
    evil = tmp_path / "evil.keras"
    evil.write_bytes(case.build(f"touch {marker}"))
    settings = settings_for(encrypt_file(evil, tmp_path, "keras"))
    with pytest.raises(ModelportError, match="Lambda"):
        load_served_model(settings, RuntimeMetrics("m"))
    assert not marker.exists()
