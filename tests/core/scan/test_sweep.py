"""Every scikit-learn estimator, fitted with defaults and saved every way a user saves it, scans
as safe: pickle protocols 2, 4 and 5, and joblib with every compression joblib writes."""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from modelport.core.scan import Outcome, scan
from modelport.core.scan._estimators import (
    Fitted,
    all_estimator_classes,
    composite_models,
    fit_one,
    option_variants,
)

from tests.core.scan.conftest import joblib_bytes
from tests.core.scan.test_benign import COMPRESSIONS

#: Estimators that cannot fit with default parameters on small generic data, and why.
CANNOT_FIT = {
    "GaussianRandomProjection": "n_components='auto' (Johnson-Lindenstrauss, eps=0.1) needs more "
    "than 3000 features for 40 samples",
    "SparseRandomProjection": "n_components='auto' (Johnson-Lindenstrauss, eps=0.1) needs more "
    "than 3000 features for 40 samples",
}
ESTIMATORS = [name for name, _ in all_estimator_classes()]


@pytest.fixture(scope="session")
def fitted() -> Callable[[str], Fitted]:
    """Fit each estimator once per test session, on first use (xdist workers fit their share)."""
    classes = dict(all_estimator_classes())

    @functools.cache
    def get(name: str) -> Fitted:
        return fit_one(name, classes[name])

    return get


@pytest.fixture(scope="session")
def composites() -> dict[str, Any]:
    return {**composite_models(), **option_variants()}


def _assert_accepted(model: Any) -> None:
    for protocol in (2, 4, 5):
        verdict = scan(pickle.dumps(model, protocol=protocol), expected_format="pkl")
        assert verdict.outcome is Outcome.SAFE, (protocol, verdict.findings)
    for compress in COMPRESSIONS:
        verdict = scan(joblib_bytes(model, compress), expected_format="joblib")
        assert verdict.outcome is Outcome.SAFE, (compress, verdict.findings)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_every_estimator_is_accepted(fitted: Callable[[str], Fitted], name: str) -> None:
    result = fitted(name)
    if name in CANNOT_FIT:
        assert result.model is None, f"{name} fits now: sweep it (remove it from CANNOT_FIT)"
        pytest.skip(CANNOT_FIT[name])
    assert result.model is not None, f"{name} did not fit: {result.skipped}"
    _assert_accepted(result.model)


@pytest.mark.parametrize(
    "name",
    [
        "pipeline_column_transformer",
        "function_transformer_log1p",
        "calibrated_forest",
        "calibrated_isotonic",
        "stacking",
        "voting_soft",
        "pipeline_hist_gradient_boosting",
        "KNeighborsClassifier_ball_tree",
        "NearestNeighbors_kd_tree",
    ],
)
def test_composite_models_are_accepted(composites: dict[str, Any], name: str) -> None:
    _assert_accepted(composites[name])


def test_the_sweep_covers_what_all_estimators_lists() -> None:
    assert len(ESTIMATORS) > 150
    assert set(CANNOT_FIT) <= set(ESTIMATORS)
