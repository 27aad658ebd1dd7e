"""The compiled model handed to the runtime: a verified fast path with scikit-learn behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from modelport.runtime.fastpath._kernels import FAST_DTYPES, AnyArray, Kernel, Transform

#: Default largest batch the fast path takes; bigger batches go to scikit-learn, whose compiled
#: loops win once the per-call overhead no longer matters.
DEFAULT_MAX_ROWS = 1024


class CompiledModel:
    """A scikit-learn estimator with a faster, verified-equal ``predict``.

    Inputs the fast path was not verified for (anything but a finite, C-contiguous, 2-D
    float32/float64 ndarray of the right width with 1 to ``max_rows`` rows) go to the estimator
    itself, so results, errors and warnings are always scikit-learn's.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        transforms: Sequence[Transform],
        kernel: Kernel,
        max_rows: int = DEFAULT_MAX_ROWS,
        probe_rows: int = 0,
    ) -> None:
        self.estimator = estimator
        self._transforms = tuple(transforms)
        self._kernel = kernel
        self.max_rows = max_rows
        self.n_features_in_ = kernel.n_features
        #: How many probe rows the fast path was checked on at compile time.
        self.verified_rows = probe_rows
        #: True where a row's result does not depend on the other rows of its batch (trees,
        #: forests; checked at compile time). Then merging requests into one call (adaptive
        #: batching) returns every request exactly what scikit-learn returns for it alone. Not
        #: so for linear models: BLAS rounds a many-row matmul differently from a one-row one.
        self.rows_independent = False

    @property
    def description(self) -> str:
        """One line for the runtime's start-up log."""
        steps = f"{len(self._transforms)} scaler(s) + " if self._transforms else ""
        return f"{steps}{self._kernel.describe()}; verified on {self.verified_rows} rows"

    def predict(self, x: Any) -> AnyArray:
        """Exactly ``estimator.predict(x)``."""
        fast = self.fast_predict(x)
        if fast is not None:
            return fast
        result: AnyArray = self.estimator.predict(x)
        return result

    def fast_predict(self, x: Any) -> AnyArray | None:
        """The fast path alone: the prediction, or ``None`` where scikit-learn must answer."""
        z = self._prepare(x)
        return None if z is None else self._kernel.predict(z)

    def _prepare(self, x: Any) -> npt.NDArray[np.floating[Any]] | None:
        if not self.accepts(x):
            return None
        z: npt.NDArray[np.floating[Any]] = x
        for step in self._transforms:
            z = step.transform(z)
        return z

    def accepts(self, x: Any) -> bool:
        """Whether ``x`` is in the domain the fast path was verified on (finiteness aside).

        C-contiguous only: the probes are, and a matmul may round differently on another layout.
        """
        return (
            isinstance(x, np.ndarray)
            and x.ndim == 2
            and x.flags.c_contiguous
            and x.dtype in FAST_DTYPES
            and x.shape[1] == self.n_features_in_
            and 0 < x.shape[0] <= self.max_rows
        )


class CompiledClassifier(CompiledModel):
    """A compiled model whose estimator has ``predict_proba``."""

    @property
    def classes_(self) -> AnyArray:
        classes: AnyArray = self.estimator.classes_
        return classes

    def predict_proba(self, x: Any) -> npt.NDArray[np.float64]:
        """Exactly ``estimator.predict_proba(x)``."""
        fast = self.fast_predict_proba(x)
        if fast is not None:
            return fast
        result: npt.NDArray[np.float64] = self.estimator.predict_proba(x)
        return result

    def fast_predict_proba(self, x: Any) -> npt.NDArray[np.float64] | None:
        """The fast path alone: the probabilities, or ``None`` where scikit-learn must answer."""
        z = self._prepare(x)
        return None if z is None else self._kernel.predict_proba(z)
