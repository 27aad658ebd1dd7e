"""A verified fast path for scikit-learn models.

``compile_estimator(estimator)`` turns a fitted linear model, decision tree, random/extra-trees
forest, or a ``StandardScaler`` pipeline ending in one of those, into a :class:`CompiledModel`
whose ``predict`` (and ``predict_proba``) return exactly what scikit-learn returns, bit for bit,
at a fraction of the per-call cost for small batches. Anything it cannot prove equal at compile
time gives ``None``: serve the estimator itself.

Trees are flattened into contiguous arrays and walked for all trees and all rows at once, one
level per NumPy step; linear models are the estimator's own matmul and link function without
the per-call validation. Inputs outside the verified domain (not a finite 2-D float32/float64
ndarray of the right width and size, C-contiguous) go to scikit-learn unchanged.
"""

from modelport.runtime.fastpath._compile import compile_estimator, identical
from modelport.runtime.fastpath._model import DEFAULT_MAX_ROWS, CompiledClassifier, CompiledModel

__all__ = [
    "DEFAULT_MAX_ROWS",
    "CompiledClassifier",
    "CompiledModel",
    "compile_estimator",
    "identical",
]
