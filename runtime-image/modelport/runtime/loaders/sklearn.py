"""scikit-learn estimators and pipelines saved with pickle or joblib (``.pkl``, ``.joblib``).

This includes the scikit-learn API models of XGBoost and LightGBM (``XGBClassifier``,
``LGBMRegressor``, ...): they unpickle and answer like any estimator, and need their own extra.
Outputs are named after the estimator's methods: ``predict`` always, ``predict_proba`` where the
estimator has it. Where the fast path (``modelport.runtime.fastpath``) compiles the estimator into
an equivalent form, that form answers instead.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from modelport.core.formats import ModelFormat
from modelport.runtime.loaders.base import ModelLoadError, ServedModel, Tensors, require
from modelport.runtime.loaders.gate import PickleGate
from modelport.runtime.signature import ModelSignature, TensorSpec, datatype_of

log = logging.getLogger("modelport.runtime")

INPUT_NAME = "input-0"
PREDICT = "predict"
PREDICT_PROBA = "predict_proba"

_TEXT_VECTORIZERS = ("CountVectorizer", "TfidfVectorizer", "HashingVectorizer")
#: Libraries a pickle may import beyond scikit-learn: top-level module -> (framework, extra).
_FRAMEWORKS = {"xgboost": ("XGBoost", "xgboost"), "lightgbm": ("LightGBM", "lightgbm")}
#: Libraries whose estimators predict in float32 (XGBoost's booster computes in float32).
_FLOAT32_FRAMEWORKS = ("xgboost",)


def load(data: bytes, fmt: ModelFormat, *, gate: PickleGate) -> ServedModel:
    """Unpickle (after the gate) and wrap an estimator."""
    joblib = require("joblib", framework="scikit-learn", extra="sklearn")
    require("sklearn", framework="scikit-learn", extra="sklearn")
    gate.check(data, fmt)
    try:
        estimator = joblib.load(io.BytesIO(data))
    except ModuleNotFoundError as exc:
        _require_framework_of(exc)
        raise
    if not callable(getattr(estimator, PREDICT, None)):
        raise ModelLoadError(
            f"the {fmt.value} file holds a {type(estimator).__name__}, which has no predict(): "
            "save a fitted scikit-learn estimator or pipeline",
        )
    return SklearnModel(estimator)


class SklearnModel(ServedModel):
    platform = "sklearn"

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self._has_proba = _has_method(estimator, PREDICT_PROBA)
        self._fast = _compile(estimator)
        self._takes_text = _takes_text(estimator)
        super().__init__(_signature(estimator, has_proba=self._has_proba, text=self._takes_text))
        self._derive_predict = self._has_proba and _predict_is_argmax_of_proba(estimator)

    @property
    def primary_output(self) -> str:
        return PREDICT

    @property
    def confidence_output(self) -> str | None:
        return PREDICT_PROBA if self._has_proba else None

    @property
    def batchable(self) -> bool:
        """Only where one row's answer cannot depend on its batch-mates: the fast path proves
        that at compile time (trees yes; linear models no, BLAS sums a one-row product in
        another order than a many-row one). Elsewhere each request keeps its own call."""
        independent = self._fast is not None and bool(self._fast.rows_independent)
        return independent and super().batchable

    def predict(self, inputs: Tensors, outputs: Sequence[str]) -> dict[str, np.ndarray[Any, Any]]:
        x = inputs[INPUT_NAME]
        if self._takes_text:
            x = np.array([v.decode() if isinstance(v, bytes) else v for v in x], dtype=object)
        impl = self._fast if self._fast is not None else self.estimator
        result: dict[str, np.ndarray[Any, Any]] = {}
        if PREDICT_PROBA in outputs:
            result[PREDICT_PROBA] = np.asarray(impl.predict_proba(x))
        if PREDICT in outputs:
            if self._derive_predict and PREDICT_PROBA in result:
                # Exactly what ForestClassifier.predict does with the same probabilities.
                proba = result[PREDICT_PROBA]
                result[PREDICT] = self.estimator.classes_.take(np.argmax(proba, axis=1), axis=0)
            else:
                result[PREDICT] = np.asarray(impl.predict(x))
        return result

    def warm_up(self) -> None:
        spec = self.signature.inputs[0]
        if spec.shape is None or spec.datatype == "BYTES" or -1 in spec.shape[1:]:
            return
        row = np.zeros((1, *spec.shape[1:]), dtype=np.float64)
        try:
            self.predict({INPUT_NAME: row}, self.signature.output_names)
        except Exception:
            log.debug("warm-up on a row of zeros failed; the first request warms up instead")


def _require_framework_of(exc: ModuleNotFoundError) -> None:
    """Turn "no module named xgboost" while unpickling into the "install modelport[...]" error."""
    root = (exc.name or "").partition(".")[0]
    if root in _FRAMEWORKS:
        framework, extra = _FRAMEWORKS[root]
        require(root, framework=framework, extra=extra)


def _compile(estimator: Any) -> Any:
    """The fast path's compiled form of the estimator, or None."""
    try:
        from modelport.runtime.fastpath import compile_estimator
    except ImportError:
        return None
    compiled = compile_estimator(estimator)
    if compiled is not None:
        log.info("serving %s through the compiled fast path", type(estimator).__name__)
    return compiled


def _has_method(estimator: Any, name: str) -> bool:
    try:
        return callable(getattr(estimator, name))
    except AttributeError:  # e.g. SVC(probability=False) hides predict_proba this way
        return False


def _predict_is_argmax_of_proba(estimator: Any) -> bool:
    """True where the estimator's own predict() is ``classes_.take(argmax(predict_proba))``."""
    try:
        from sklearn.ensemble._forest import ForestClassifier
    except ImportError:
        return False
    classes = getattr(estimator, "classes_", None)
    single_output = isinstance(classes, np.ndarray) and classes.ndim == 1
    return single_output and type(estimator).predict is ForestClassifier.predict


def _final_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _first_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return _first_step(steps[0][1]) if steps else estimator


def _takes_text(estimator: Any) -> bool:
    return type(_first_step(estimator)).__name__ in _TEXT_VECTORIZERS


def _signature(estimator: Any, *, has_proba: bool, text: bool) -> ModelSignature:
    if text:
        inputs = (TensorSpec(INPUT_NAME, "BYTES", (-1,)),)
    else:
        n = getattr(estimator, "n_features_in_", None)
        inputs = (TensorSpec(INPUT_NAME, "FP64", (-1, int(n) if n is not None else -1)),)
    final = _final_step(estimator)
    classes = getattr(final, "classes_", None)
    n_outputs = getattr(final, "n_outputs_", 1)
    library = type(final).__module__.partition(".")[0]
    real = "FP32" if library in _FLOAT32_FRAMEWORKS else "FP64"
    if isinstance(classes, np.ndarray) and classes.ndim == 1:
        predict = TensorSpec(PREDICT, datatype_of(classes.dtype), (-1,))
    else:
        shape = (-1,) if n_outputs == 1 else (-1, int(n_outputs))
        predict = TensorSpec(PREDICT, real, shape)
    outputs = [predict]
    if has_proba:
        n_classes = len(classes) if isinstance(classes, np.ndarray) and classes.ndim == 1 else -1
        outputs.append(TensorSpec(PREDICT_PROBA, real, (-1, n_classes)))
    return ModelSignature(inputs=inputs, outputs=tuple(outputs))
