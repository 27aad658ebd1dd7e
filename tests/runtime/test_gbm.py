"""XGBoost and LightGBM models served through the app: loaded past the real scanner gate, every
protocol answers exactly what the library itself predicts."""

from __future__ import annotations

import io
import pickle
import sys
import warnings
from typing import Any

import joblib
import numpy as np
import pytest
from modelport.core.formats import ModelFormat
from modelport.runtime.app import create_app
from modelport.runtime.fastpath import compile_estimator
from modelport.runtime.loaders import MissingFramework, ServedModel, load_model

from testing.models import classification_data, sample_rows
from tests.runtime.test_app import client_for, make_settings, v2_request

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

CLASSIFIERS = ["xgb_classifier", "lgbm_classifier"]
REGRESSORS = ["xgb_regressor", "lgbm_regressor"]
MODELS = CLASSIFIERS + REGRESSORS
FORMATS = [ModelFormat.PKL, ModelFormat.JOBLIB]


@pytest.fixture(scope="module")
def estimators() -> dict[str, Any]:
    x, y = classification_data()
    yr = x @ np.array([1.0, -2.0, 0.5, 3.0])
    lgbm: dict[str, Any] = {
        "n_estimators": 5,
        "num_leaves": 4,
        "min_child_samples": 5,
        "verbose": -1,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "xgb_classifier": xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y),
            "xgb_regressor": xgboost.XGBRegressor(n_estimators=5, max_depth=2).fit(x, yr),
            "lgbm_classifier": lightgbm.LGBMClassifier(**lgbm).fit(x, y),
            "lgbm_regressor": lightgbm.LGBMRegressor(**lgbm).fit(x, yr),
        }


def saved(estimator: Any, fmt: ModelFormat) -> bytes:
    if fmt is ModelFormat.PKL:
        return pickle.dumps(estimator, protocol=5)
    buf = io.BytesIO()
    joblib.dump(estimator, buf, compress=3)
    return buf.getvalue()


def served(estimator: Any, fmt: ModelFormat) -> ServedModel:
    """Through the loader with the default gate: the security scanner decides first."""
    return load_model(saved(estimator, fmt), fmt)


@pytest.fixture(params=FORMATS, ids=lambda f: f.value)
def fmt(request: pytest.FixtureRequest) -> ModelFormat:
    format_: ModelFormat = request.param
    return format_


def rows_for(n: int) -> np.ndarray:
    return sample_rows(n) + 0.25  # off the training points, between split thresholds


@pytest.mark.parametrize("name", MODELS)
async def test_v2_answers_what_the_library_predicts(estimators, name: str, fmt: ModelFormat):
    estimator = estimators[name]
    model = served(estimator, fmt)
    rows = rows_for(5)
    async with client_for(create_app(make_settings(format=fmt.value), model=model)) as c:
        meta = (await c.get("/v2/models/iris")).json()
        response = await c.post("/v2/models/iris/infer", json=v2_request(rows))
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    expected = {"predict": estimator.predict(rows)}
    if name in CLASSIFIERS:
        expected["predict_proba"] = estimator.predict_proba(rows)
    assert set(outputs) == set(expected)
    declared = {o["name"]: o["datatype"] for o in meta["outputs"]}
    for out, want in expected.items():
        got = np.array(outputs[out]["data"], dtype=want.dtype).reshape(outputs[out]["shape"])
        np.testing.assert_array_equal(got, want)
        assert outputs[out]["datatype"] == declared[out]  # what metadata promised


@pytest.mark.parametrize("name", MODELS)
async def test_v1_and_predict_answer_what_the_library_predicts(
    estimators, name: str, fmt: ModelFormat
):
    estimator = estimators[name]
    model = served(estimator, fmt)
    rows = rows_for(4)
    want = estimator.predict(rows)
    async with client_for(create_app(make_settings(format=fmt.value), model=model)) as c:
        v1 = await c.post("/v1/models/iris:predict", json={"instances": rows.tolist()})
        simple = await c.post("/predict", json={"inputData": rows.tolist()})
    assert v1.status_code == 200, v1.text
    assert set(v1.json()) == {"predictions"}
    # JSON carries each float32 as its shortest repr, which reads back to the same float32.
    np.testing.assert_array_equal(as_array(v1.json()["predictions"], want), want)
    body = simple.json()
    assert body["status"] == "success", body
    np.testing.assert_array_equal(as_array(body["predictions"], want), want)
    if name in CLASSIFIERS:
        confidence = estimator.predict_proba(rows).max(axis=1)
        np.testing.assert_array_equal(as_array(body["confidence"], confidence), confidence)


def as_array(data: list[Any], like: np.ndarray) -> np.ndarray:
    got = np.array(data, dtype=like.dtype)
    assert got.shape == like.shape
    return got


@pytest.mark.parametrize("name", MODELS)
def test_the_fast_path_does_not_claim_them(estimators, name: str):
    """The fast path proves scikit-learn's own trees and linear models only; these keep the
    library's own predict, and are never batched (no proof that rows are independent)."""
    assert compile_estimator(estimators[name]) is None
    model = served(estimators[name], ModelFormat.JOBLIB)
    assert not model.batchable


@pytest.mark.parametrize(
    ("name", "module", "framework"),
    [("xgb_classifier", "xgboost", "XGBoost"), ("lgbm_regressor", "lightgbm", "LightGBM")],
)
def test_a_missing_framework_says_which_extra_to_install(
    estimators, monkeypatch: pytest.MonkeyPatch, name: str, module: str, framework: str
):
    data = saved(estimators[name], ModelFormat.PKL)
    for loaded in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, loaded, None)  # import of <module> now fails
    with pytest.raises(MissingFramework, match=rf"install modelport\[{module}\]") as caught:
        load_model(data, ModelFormat.PKL)
    assert caught.value.details == {"framework": framework, "extra": module}
