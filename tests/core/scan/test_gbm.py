"""XGBoost and LightGBM scikit-learn API models: accepted as saved, refused when tampered with."""

from __future__ import annotations

import collections
import importlib
import os
import pickle
import warnings
from typing import Any

import numpy as np
import pytest
from modelport.core.scan import Outcome, scan

from tests.core.scan.conftest import joblib_bytes

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

MODELS = [
    "xgb_classifier", "xgb_binary", "xgb_regressor", "xgb_early_stopped",
    "lgbm_classifier", "lgbm_regressor", "lgbm_early_stopped", "lgbm_string_labels",
]  # fmt: skip
COMPRESSIONS: list[Any] = [0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3),
                           ("lz4", 3)]  # fmt: skip


@pytest.fixture(scope="module")
def gbm_models() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4))
    y3 = np.digitize(x[:, 0], [-0.5, 0.5])
    y2 = (x[:, 0] + x[:, 1] > 0).astype(int)
    yr = 2.0 * x[:, 0] + x[:, 2]
    fit, valid = slice(0, 60), slice(60, None)
    small: dict[str, Any] = {"n_estimators": 3, "max_depth": 2}
    lgbm: dict[str, Any] = {
        "n_estimators": 3,
        "num_leaves": 4,
        "min_child_samples": 5,
        "verbose": -1,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "xgb_classifier": xgboost.XGBClassifier(**small).fit(x, y3),
            "xgb_binary": xgboost.XGBClassifier(**small).fit(x, y2),
            "xgb_regressor": xgboost.XGBRegressor(**small).fit(x, yr),
            # Early stopping records evals_result_ and best_iteration in the model.
            "xgb_early_stopped": xgboost.XGBClassifier(
                n_estimators=20, max_depth=2, early_stopping_rounds=2
            ).fit(x[fit], y2[fit], eval_set=[(x[valid], y2[valid])], verbose=False),
            "lgbm_classifier": lightgbm.LGBMClassifier(**lgbm).fit(x, y3),
            "lgbm_regressor": lightgbm.LGBMRegressor(**lgbm).fit(x, yr),
            # best_score_ becomes a filled defaultdict(OrderedDict).
            "lgbm_early_stopped": lightgbm.LGBMClassifier(**{**lgbm, "n_estimators": 20}).fit(
                x[fit],
                y2[fit],
                eval_set=[(x[valid], y2[valid])],
                callbacks=[lightgbm.early_stopping(2, verbose=False)],
            ),
            "lgbm_string_labels": lightgbm.LGBMClassifier(**lgbm, class_weight="balanced").fit(
                x, np.where(y2 == 1, "yes", "no")
            ),
        }


def _assert_safe(verdict: Any) -> None:
    assert verdict.outcome is Outcome.SAFE, verdict.findings
    assert verdict.findings == ()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_gbm_pickles_are_safe(gbm_models: dict[str, Any], name: str, protocol: int) -> None:
    _assert_safe(scan(pickle.dumps(gbm_models[name], protocol=protocol), expected_format="pkl"))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("compress", COMPRESSIONS, ids=str)
def test_gbm_joblib_files_are_safe(gbm_models: dict[str, Any], name: str, compress: Any) -> None:
    verdict = scan(joblib_bytes(gbm_models[name], compress), expected_format="joblib")
    _assert_safe(verdict)


def test_early_stopping_fixtures_hold_what_the_allowlist_was_written_for(
    gbm_models: dict[str, Any],
) -> None:
    best = gbm_models["lgbm_early_stopped"].booster_.best_score
    assert type(best) is collections.defaultdict
    assert best.default_factory is collections.OrderedDict
    assert best["valid_0"]  # filled: its pickle sets items on the defaultdict
    assert gbm_models["xgb_early_stopped"].evals_result()["validation_0"]


class _Gadget:
    """Unpickling this would run a shell command."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("true",))


def _dump(model: Any, kind: str) -> tuple[bytes, str]:
    if kind == "joblib":
        return joblib_bytes(model), "joblib"
    return pickle.dumps(model, protocol=int(kind.removeprefix("pkl"))), "pkl"


@pytest.mark.parametrize(
    ("name", "booster", "field"),
    [
        ("xgb_classifier", "xgboost.core.Booster", "handle"),
        ("xgb_regressor", "xgboost.core.Booster", "handle"),
        ("lgbm_classifier", "lightgbm.basic.Booster", "_handle"),
        ("lgbm_regressor", "lightgbm.basic.Booster", "_handle"),
    ],
)
@pytest.mark.parametrize("kind", ["pkl2", "pkl5", "joblib"])
def test_booster_state_swapped_for_a_gadget_is_refused(
    gbm_models: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    booster: str,
    field: str,
    kind: str,
) -> None:
    """The Booster class stays allowlisted, but its state may only be data."""
    module, _, cls = booster.rpartition(".")
    booster_cls = getattr(importlib.import_module(module), cls)
    monkeypatch.setattr(booster_cls, "__getstate__", lambda self: {field: _Gadget()})
    data, fmt = _dump(gbm_models[name], kind)
    assert booster.rpartition(".")[2].encode() in data  # the tampered model still names it
    verdict = scan(data, expected_format=fmt)
    assert verdict.outcome is Outcome.UNSAFE, verdict
    refused = [f for f in verdict.findings if f.code.value == "disallowed_global"]
    assert refused and "system" in refused[0].message, verdict.findings


def test_defaultdict_with_another_factory_is_refused(
    gbm_models: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """defaultdict is admitted for best_score_ only with OrderedDict as its factory: another
    allowlisted name in that place would be called on every missing key."""
    model = gbm_models["lgbm_early_stopped"]
    factory: Any = np.dtype  # allowlisted, but not as a defaultdict's factory
    monkeypatch.setattr(model.booster_, "best_score", collections.defaultdict(factory, {"v": {}}))
    verdict = scan(pickle.dumps(model, protocol=4), expected_format="pkl")
    assert verdict.outcome is Outcome.UNSAFE, verdict
    assert any("defaultdict" in f.message for f in verdict.findings), verdict.findings
