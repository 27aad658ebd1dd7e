"""``compile_estimator``: build a kernel for a known estimator, then prove it equal on probes."""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from modelport.runtime.fastpath._kernels import (
    FAST_DTYPES,
    AnyArray,
    Kernel,
    LinearKernel,
    ScalerTransform,
    Transform,
    flatten_trees,
)
from modelport.runtime.fastpath._model import DEFAULT_MAX_ROWS, CompiledClassifier, CompiledModel

log = logging.getLogger(__name__)

#: Random probe rows per compile (tie rows at split thresholds come on top for trees).
_RANDOM_PROBE_ROWS = 128
#: Batch sizes checked besides the whole probe set (each verification call costs a scikit-learn
#: call, which is what start-up pays for).
_SMALL_BATCHES = (1, 64)
#: Rows whose one-row result is compared with their result inside the whole probe batch.
_INDEPENDENCE_ROWS = 8


class Unsupported(Exception):
    """The estimator (or one of its steps) has no kernel; scikit-learn keeps serving it."""


def compile_estimator(
    estimator: Any, *, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0
) -> CompiledModel | None:
    """Return a verified fast path for ``estimator``, or ``None`` to keep scikit-learn's own.

    Supported: ``LogisticRegression``, ``LinearRegression``, ``Ridge``, ``Lasso``, ``ElasticNet``,
    single decision/extra trees and random/extra-trees forests (one output), and ``Pipeline``s of
    ``StandardScaler`` steps ending in one of those. The result is checked at compile time
    against the estimator on probe rows (random rows over the features' split ranges, rows
    exactly at and one float32 step either side of split thresholds, float32 and float64, whole
    and in small batches); any difference, bit for bit, gives ``None``.
    """
    try:
        transforms, kernel = _build(estimator)
    except Unsupported as exc:
        log.info("fast path off for %s: %s", type(estimator).__name__, exc)
        return None
    except (AttributeError, TypeError, ValueError, IndexError) as exc:
        log.warning("fast path off for %s: cannot read it (%s)", type(estimator).__name__, exc)
        return None
    cls = CompiledClassifier if kernel.has_proba else CompiledModel
    compiled = cls(estimator, transforms=transforms, kernel=kernel, max_rows=max_rows)
    try:
        rows = _probe_rows(transforms, kernel, np.random.default_rng(seed))
        mismatch = _first_mismatch(compiled, _sequential(estimator), rows)
        independent = mismatch is None and kernel.rows_independent
        independent = independent and _rows_independent(compiled, rows)
    except Exception as exc:  # verification must never take the runtime down
        log.warning("fast path off for %s: verification failed (%r)", type(estimator).__name__, exc)
        return None
    if mismatch is not None:
        log.warning("fast path off for %s: %s", type(estimator).__name__, mismatch)
        return None
    compiled.verified_rows = int(rows.shape[0])
    compiled.rows_independent = independent
    log.info("fast path on: %s", compiled.description)
    return compiled


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


def _build(estimator: Any) -> tuple[list[Transform], Kernel]:
    from sklearn.pipeline import Pipeline

    if type(estimator) is not Pipeline:
        return [], _kernel_for(estimator)
    steps = [step for _, step in estimator.steps]
    transforms: list[Transform] = [_transform_for(step) for step in steps[:-1] if _is_real(step)]
    if not _is_real(steps[-1]):
        raise Unsupported("the pipeline ends in passthrough")
    kernel = _kernel_for(steps[-1])
    return transforms, kernel


def _is_real(step: Any) -> bool:
    return step is not None and not (isinstance(step, str) and step == "passthrough")


def _transform_for(step: Any) -> Transform:
    from sklearn.preprocessing import StandardScaler

    if type(step) is not StandardScaler:
        raise Unsupported(f"no fast path for pipeline step {type(step).__name__}")
    _require_default_output(step)
    return ScalerTransform.from_estimator(step)


def _require_default_output(step: Any) -> None:
    config = getattr(step, "_sklearn_output_config", {})
    if config.get("transform", "default") != "default":
        raise Unsupported("a pipeline step has set_output() configured")


def _kernel_for(estimator: Any) -> Kernel:
    builders: tuple[Callable[[Any], Kernel | None], ...] = (_linear_kernel, _tree_kernel)
    for builder in builders:
        kernel = builder(estimator)
        if kernel is not None:
            return kernel
    raise Unsupported(f"no fast path for {type(estimator).__name__}")


def _linear_kernel(estimator: Any) -> LinearKernel | None:
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge

    kind = type(estimator)
    if kind not in (LogisticRegression, LinearRegression, Ridge, Lasso, ElasticNet):
        return None
    coef = estimator.coef_
    if not isinstance(coef, np.ndarray) or coef.ndim not in (1, 2):
        raise Unsupported("coef_ is not a dense array")
    classifier = kind is LogisticRegression
    return LinearKernel(
        n_features=int(estimator.n_features_in_),
        coef_t=coef.T if coef.ndim == 2 else coef,
        intercept=estimator.intercept_,
        classes=estimator.classes_ if classifier else None,
        has_proba=classifier,
        name=kind.__name__,
    )


def _tree_kernel(estimator: Any) -> Kernel | None:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import (
        DecisionTreeClassifier,
        DecisionTreeRegressor,
        ExtraTreeClassifier,
        ExtraTreeRegressor,
    )

    kind = type(estimator)
    classifiers = (DecisionTreeClassifier, ExtraTreeClassifier)
    forests = (
        RandomForestClassifier,
        RandomForestRegressor,
        ExtraTreesClassifier,
        ExtraTreesRegressor,
    )
    if kind in (*classifiers, DecisionTreeRegressor, ExtraTreeRegressor):
        trees = [estimator]
    elif kind in forests:
        trees = list(estimator.estimators_)
    else:
        return None
    if int(estimator.n_outputs_) != 1:
        raise Unsupported("multi-output trees")
    is_classifier = kind in (*classifiers, RandomForestClassifier, ExtraTreesClassifier)
    return flatten_trees(
        trees,
        n_features=int(estimator.n_features_in_),
        classes=estimator.classes_ if is_classifier else None,
        is_forest=kind in forests,
        name=kind.__name__,
    )


# --------------------------------------------------------------------------------------------
# Verifying
# --------------------------------------------------------------------------------------------


def _probe_rows(
    transforms: list[Transform], kernel: Kernel, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    rows = kernel.probe_rows(rng, _RANDOM_PROBE_ROWS)
    for step in reversed(transforms):
        rows = step.inverse(rows)
    return rows


def _sequential(estimator: Any) -> Any:
    """A shallow copy that predicts with one job: the reference the fast path must equal.

    With several jobs, a forest adds its trees' outputs in whatever order the threads finish,
    so its own result can move by an ulp from call to call; with one job the order is fixed.
    """
    from sklearn.pipeline import Pipeline

    if type(estimator) is Pipeline:
        reference = copy.copy(estimator)
        name, final = estimator.steps[-1]
        reference.steps = [*estimator.steps[:-1], (name, _sequential(final))]
        return reference
    if getattr(estimator, "n_jobs", None) in (None, 1):
        return estimator
    reference = copy.copy(estimator)
    reference.n_jobs = 1
    return reference


def _first_mismatch(
    compiled: CompiledModel, reference: Any, rows: npt.NDArray[np.float64]
) -> str | None:
    """Describe the first probe where the fast path and the reference differ, if any."""
    checks: list[tuple[str, Callable[[Any], AnyArray | None], Callable[[Any], AnyArray]]] = [
        ("predict", compiled.fast_predict, reference.predict)
    ]
    if isinstance(compiled, CompiledClassifier):
        checks.append(("predict_proba", compiled.fast_predict_proba, reference.predict_proba))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dtype in FAST_DTYPES:
            for batch in _batches(rows.astype(dtype), compiled.max_rows):
                for method, fast, slow in checks:
                    got = fast(batch)
                    if got is None:
                        return f"{method} declined a finite {dtype} probe of {len(batch)} rows"
                    if not identical(got, slow(batch)):
                        return f"{method} differs on a {dtype} probe of {len(batch)} rows"
    return None


def _rows_independent(compiled: CompiledModel, rows: npt.NDArray[np.float64]) -> bool:
    """Whether a row's result inside a batch is bit for bit its result alone (fast path only)."""
    methods: list[Callable[[Any], AnyArray | None]] = [compiled.fast_predict]
    if isinstance(compiled, CompiledClassifier):
        methods.append(compiled.fast_predict_proba)
    for dtype in FAST_DTYPES:
        batch = np.ascontiguousarray(rows[: compiled.max_rows].astype(dtype))
        for method in methods:
            together = method(batch)
            for i in range(min(_INDEPENDENCE_ROWS, batch.shape[0])):
                alone = method(batch[i : i + 1])
                if together is None or alone is None or not identical(alone, together[i : i + 1]):
                    return False
    return True


def _batches(x: npt.NDArray[Any], max_rows: int) -> list[npt.NDArray[Any]]:
    whole = [x[i : i + max_rows] for i in range(0, x.shape[0], max_rows)]
    small, start = [], 0
    for size in _SMALL_BATCHES:
        small.append(x[start : start + size])
        start += size
    return [np.ascontiguousarray(b) for b in whole + small if 0 < b.shape[0] <= max_rows]


def identical(a: Any, b: Any) -> bool:
    """Bit-for-bit equality of two prediction arrays: shape, dtype and every byte."""
    left, right = np.asarray(a), np.asarray(b)
    if left.shape != right.shape or left.dtype != right.dtype:
        return False
    if left.dtype.kind == "O":
        return all(
            type(x) is type(y) and x == y
            for x, y in zip(left.ravel().tolist(), right.ravel().tolist(), strict=True)
        )
    return np.ascontiguousarray(left).tobytes() == np.ascontiguousarray(right).tobytes()
