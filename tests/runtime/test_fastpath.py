"""The scikit-learn fast path returns exactly scikit-learn's results, or declines to compile."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelport.runtime.fastpath import (
    CompiledClassifier,
    CompiledModel,
    compile_estimator,
    identical,
)
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

CLASSIFIERS: dict[str, Any] = {
    "logistic": lambda: LogisticRegression(max_iter=500),
    "tree": lambda: DecisionTreeClassifier(random_state=0),
    "extra-tree": lambda: ExtraTreeClassifier(random_state=0),
    "forest": lambda: RandomForestClassifier(n_estimators=12, random_state=0),
    "extra-trees": lambda: ExtraTreesClassifier(n_estimators=12, random_state=0),
    "scaled-logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    "scaled-forest": lambda: make_pipeline(
        StandardScaler(), RandomForestClassifier(n_estimators=8, random_state=0)
    ),
}
REGRESSORS: dict[str, Any] = {
    "linear": LinearRegression,
    "ridge": Ridge,
    "ridge-no-intercept": lambda: Ridge(fit_intercept=False),
    "lasso": lambda: Lasso(alpha=0.01),
    "elastic-net": lambda: ElasticNet(alpha=0.01),
    "tree": lambda: DecisionTreeRegressor(random_state=0),
    "extra-tree": lambda: ExtraTreeRegressor(random_state=0),
    "forest": lambda: RandomForestRegressor(n_estimators=12, random_state=0),
    "extra-trees": lambda: ExtraTreesRegressor(n_estimators=12, random_state=0),
    "scaled-ridge": lambda: make_pipeline(StandardScaler(), Ridge()),
}
DTYPES = (np.float64, np.float32)


def make_data(
    seed: int, n_samples: int, n_features: int, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """Features either continuous (wide ranges) or discrete (many rows land on thresholds)."""
    rng = np.random.default_rng(seed)
    if kind == "discrete":
        x = rng.integers(0, 4, size=(n_samples, n_features)).astype(np.float64)
    else:
        scales = 10.0 ** rng.uniform(-3, 3, size=n_features)
        x = rng.normal(size=(n_samples, n_features)) * scales + rng.normal(size=n_features)
    weights = rng.normal(size=n_features)
    signal = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-12) @ weights
    return x, signal + 0.3 * rng.normal(size=n_samples)


def to_classes(signal: np.ndarray, n_classes: int) -> np.ndarray:
    edges = np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1])
    return np.searchsorted(edges, signal)


def assert_same(compiled: CompiledModel, estimator: Any, x: np.ndarray) -> None:
    """Fast path used (no fallback) and bit-for-bit equal to scikit-learn."""
    fast = compiled.fast_predict(x)
    assert fast is not None
    assert identical(fast, estimator.predict(x))
    assert identical(compiled.predict(x), estimator.predict(x))
    if hasattr(estimator, "predict_proba"):
        assert isinstance(compiled, CompiledClassifier)
        proba = compiled.fast_predict_proba(x)
        assert proba is not None
        assert identical(proba, estimator.predict_proba(x))


def is_tree_model(estimator: Any) -> bool:
    return hasattr(estimator, "tree_") or hasattr(estimator, "estimators_")


def tie_rows(estimator: Any, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows with one feature set exactly at a split threshold or one float32 step off it."""
    trees = getattr(estimator, "estimators_", None) or [estimator]
    rows = []
    for tree in trees[:3]:
        internal = np.flatnonzero(tree.tree_.children_left >= 0)[:20]
        for node in internal:
            feature, thr = tree.tree_.feature[node], tree.tree_.threshold[node]
            for value in (thr, np.nextafter(np.float32(thr), np.float32(np.inf))):
                row = x[rng.integers(len(x))].copy()
                row[feature] = value
                rows.append(row)
    return np.array(rows)


# --------------------------------------------------------------------------------------------
# Equality on many random data sets
# --------------------------------------------------------------------------------------------

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    name=st.sampled_from(sorted(CLASSIFIERS)),
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(20, 200),
    n_features=st.integers(1, 12),
    n_classes=st.integers(2, 4),
    data_kind=st.sampled_from(["continuous", "discrete"]),
    batch=st.integers(1, 64),
    string_labels=st.booleans(),
)
def test_classifiers_equal_sklearn(
    name: str,
    seed: int,
    n_samples: int,
    n_features: int,
    n_classes: int,
    data_kind: str,
    batch: int,
    string_labels: bool,
) -> None:
    x, signal = make_data(seed, n_samples, n_features, data_kind)
    y = to_classes(signal, n_classes)
    if string_labels:
        y = np.array(["class-" + str(v) for v in y])
    estimator = CLASSIFIERS[name]().fit(x, y)
    compiled = compile_estimator(estimator)
    assert compiled is not None
    rng = np.random.default_rng(seed)
    rows = np.concatenate([x[rng.integers(len(x), size=batch)], x.max(axis=0, keepdims=True)])
    if is_tree_model(estimator):
        rows = np.concatenate([rows, tie_rows(estimator, x, rng)])
    for dtype in DTYPES:
        assert_same(compiled, estimator, rows[: max(batch, 1)].astype(dtype))
        assert_same(compiled, estimator, rows.astype(dtype))


@SETTINGS
@given(
    name=st.sampled_from(sorted(REGRESSORS)),
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(20, 200),
    n_features=st.integers(1, 12),
    data_kind=st.sampled_from(["continuous", "discrete"]),
    batch=st.integers(1, 64),
)
def test_regressors_equal_sklearn(
    name: str, seed: int, n_samples: int, n_features: int, data_kind: str, batch: int
) -> None:
    x, y = make_data(seed, n_samples, n_features, data_kind)
    estimator = REGRESSORS[name]().fit(x, y)
    compiled = compile_estimator(estimator)
    assert compiled is not None
    assert not isinstance(compiled, CompiledClassifier)
    rng = np.random.default_rng(seed)
    rows = x[rng.integers(len(x), size=batch)]
    if is_tree_model(estimator):
        rows = np.concatenate([rows, tie_rows(estimator, x, rng)])
    for dtype in DTYPES:
        assert_same(compiled, estimator, rows.astype(dtype))


@pytest.mark.parametrize("make", [LinearRegression, Ridge, lambda: Lasso(alpha=0.01)])
@pytest.mark.parametrize("fit_dtype", DTYPES)
def test_multi_output_and_float32_fitted_linear_models(make: Any, fit_dtype: Any) -> None:
    """Two targets (2-D coef_), and models fitted on float32 data (float32 coef_)."""
    x, signal = make_data(17, 120, 5, "continuous")
    targets = np.stack([signal, -2 * signal + 1], axis=1)
    estimator = make().fit(x.astype(fit_dtype), targets.astype(fit_dtype))
    compiled = compile_estimator(estimator)
    assert compiled is not None
    for dtype in DTYPES:
        assert_same(compiled, estimator, x[:9].astype(dtype))


def test_benchmark_sized_forest_equals_sklearn() -> None:
    """100 trees on 20 features, as served by the runtime benchmark, in batches of 1 to 64."""
    x, signal = make_data(7, 1000, 20, "continuous")
    estimator = RandomForestClassifier(n_estimators=100, random_state=0).fit(x, signal > 0)
    compiled = compile_estimator(estimator)
    assert compiled is not None
    rng = np.random.default_rng(1)
    for batch in (1, 2, 8, 64):
        for dtype in DTYPES:
            rows = rng.normal(size=(batch, 20)) * x.std(axis=0) + x.mean(axis=0)
            assert_same(compiled, estimator, rows.astype(dtype))


# --------------------------------------------------------------------------------------------
# Thresholds, float32 casting
# --------------------------------------------------------------------------------------------


def test_float64_input_is_cast_to_float32_before_comparing() -> None:
    """1.5 + 1e-12 is above the 1.5 threshold as a double but equal to it as float32: left."""
    estimator = DecisionTreeClassifier().fit(np.array([[1.0], [2.0]]), np.array([0, 1]))
    assert estimator.tree_.threshold[0] == 1.5
    compiled = compile_estimator(estimator)
    assert compiled is not None
    rows = np.array([[1.5], [1.5 + 1e-12], [np.nextafter(np.float32(1.5), np.float32(2))]])
    assert compiled.predict(rows).tolist() == [0, 0, 1]
    assert_same(compiled, estimator, rows)
    assert_same(compiled, estimator, rows.astype(np.float32))


def test_threshold_that_float32_cannot_hold() -> None:
    """A threshold between two adjacent float32 values: the comparison must stay exact."""
    low = np.float32(1000.0)
    high = np.nextafter(low, np.float32(2))
    estimator = DecisionTreeRegressor().fit(np.array([[low], [high]]), np.array([-1.0, 1.0]))
    threshold = estimator.tree_.threshold[0]
    assert np.float32(threshold) != threshold
    compiled = compile_estimator(estimator)
    assert compiled is not None
    rows = np.array([[low], [high], [threshold], [np.nextafter(threshold, 2.0)]])
    for dtype in DTYPES:
        assert_same(compiled, estimator, rows.astype(dtype))


# --------------------------------------------------------------------------------------------
# Unsupported estimators and inputs outside the fast path
# --------------------------------------------------------------------------------------------


def _fitted(estimator: Any) -> Any:
    x, signal = make_data(3, 60, 4, "continuous")
    return estimator.fit(x, signal > 0)


@pytest.mark.parametrize(
    "estimator",
    [
        SVC(),
        KNeighborsClassifier(),
        GradientBoostingClassifier(n_estimators=5),
        SGDClassifier(),
        make_pipeline(PCA(2), LogisticRegression()),
        make_pipeline(MinMaxScaler(), RandomForestClassifier(n_estimators=3)),
    ],
    ids=lambda e: type(e).__name__ if not isinstance(e, Pipeline) else "pipeline",
)
def test_unsupported_estimators_give_none(estimator: Any) -> None:
    assert compile_estimator(_fitted(estimator)) is None


def test_scaler_with_set_output_gives_none() -> None:
    pipeline = _fitted(make_pipeline(StandardScaler(), LogisticRegression()))
    pipeline[0].set_output(transform="pandas")  # would hand the model a DataFrame
    assert compile_estimator(pipeline) is None


def test_multi_output_forest_gives_none() -> None:
    x, signal = make_data(3, 60, 4, "continuous")
    y = np.stack([signal > 0, signal > 1], axis=1)
    assert compile_estimator(RandomForestClassifier(n_estimators=3).fit(x, y)) is None


def test_sparse_coefficients_give_none() -> None:
    estimator = _fitted(LogisticRegression()).sparsify()
    assert compile_estimator(estimator) is None


def test_a_one_ulp_difference_is_caught_at_compile_time() -> None:
    estimator = _fitted(RandomForestClassifier(n_estimators=5, random_state=0))
    honest = estimator.predict_proba

    def off_by_one_ulp(x: Any) -> np.ndarray:
        proba: np.ndarray = honest(x)
        proba[-1, 0] = np.nextafter(proba[-1, 0], 2.0)
        return proba

    estimator.predict_proba = off_by_one_ulp
    assert compile_estimator(estimator) is None


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("make", [CLASSIFIERS["forest"], CLASSIFIERS["scaled-logistic"]])
def test_inputs_outside_the_fast_path_behave_like_sklearn(make: Any) -> None:
    x, signal = make_data(5, 80, 3, "continuous")
    estimator = make().fit(x, signal > 0)
    compiled = compile_estimator(estimator, max_rows=16)
    assert compiled is not None
    # Not ndarrays, int dtype, Fortran order, a strided view, more rows than max_rows: served
    # by scikit-learn, same answer.
    odd_layouts = (np.asfortranarray(x[:5]), x[:10:2])
    for rows in (x[:3].tolist(), x[:3].astype(np.int64), *odd_layouts, x[:40]):
        assert compiled.fast_predict(rows) is None
        assert identical(compiled.predict(rows), estimator.predict(rows))
    # NaN (served by forests, refused by linear models), overflow to float32 inf, wrong width:
    # scikit-learn's own answer or its own error.
    nan, wide, narrow = np.array([[np.nan, 0.0, 0.0]]), np.array([[1e39, 0.0, 0.0]]), x[:2, :2]
    assert compiled.fast_predict(nan) is None
    assert compiled.fast_predict(narrow) is None
    for odd in (nan, wide, narrow):
        assert outcome(compiled.predict, odd) == outcome(estimator.predict, odd)


def outcome(predict: Any, x: np.ndarray) -> tuple[str, Any]:
    try:
        return "result", predict(x).tolist()
    except ValueError as exc:
        return "error", str(exc)


def test_parallel_forest_equals_its_sequential_result() -> None:
    x, signal = make_data(9, 300, 6, "continuous")
    estimator = RandomForestClassifier(n_estimators=20, n_jobs=2, random_state=0)
    estimator.fit(x, signal > 0)
    compiled = compile_estimator(estimator)
    assert compiled is not None
    sequential = RandomForestClassifier(n_estimators=20, n_jobs=1, random_state=0)
    sequential.fit(x, signal > 0)
    assert_same(compiled, sequential, x[:50])


def test_concurrent_calls_agree() -> None:
    x, signal = make_data(11, 300, 8, "continuous")
    estimator = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, signal > 0)
    compiled = compile_estimator(estimator)
    assert isinstance(compiled, CompiledClassifier)
    expected = estimator.predict_proba(x[:32])
    failures: list[int] = []

    def work(offset: int) -> None:
        for i in range(20):
            start = (offset + i) % 16
            if not identical(compiled.predict_proba(x[start : start + 16]), expected[start:][:16]):
                failures.append(offset)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_description_names_the_model() -> None:
    compiled = compile_estimator(_fitted(RandomForestClassifier(n_estimators=4)))
    assert compiled is not None
    assert "RandomForestClassifier: 4 trees" in compiled.description
    assert compiled.verified_rows > 0


def test_tree_results_do_not_depend_on_the_batch() -> None:
    """Trees may be batched by the runtime: each row's result equals scikit-learn's on it alone."""
    x, signal = make_data(13, 300, 6, "continuous")
    estimator = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=10))
    estimator.fit(x, signal > 0)
    compiled = compile_estimator(estimator)
    assert isinstance(compiled, CompiledClassifier)
    assert compiled.rows_independent
    together = compiled.predict_proba(x[:40])
    for i in range(40):
        assert identical(together[i : i + 1], estimator.predict_proba(x[i : i + 1]))


def test_linear_models_are_not_declared_batch_independent() -> None:
    compiled = compile_estimator(_fitted(LogisticRegression()))
    assert compiled is not None
    assert not compiled.rows_independent
