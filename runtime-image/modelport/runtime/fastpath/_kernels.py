"""The building blocks of a compiled model: transforms and final kernels.

A *kernel* computes exactly what one scikit-learn estimator computes, operation for operation, but
without scikit-learn's per-call validation and thread-pool set-up. Every kernel method returns
``None`` when its input leaves the domain it was written for (a non-finite value where the
estimator would raise, say); the caller then hands the whole call to scikit-learn, so that errors
and warnings stay scikit-learn's own.

Kernels hold only arrays they never write to and are safe to call from several threads at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating[Any]]
AnyArray = npt.NDArray[Any]

#: Input dtypes a kernel may be handed (checked before any kernel runs).
FAST_DTYPES: tuple[np.dtype[Any], ...] = (np.dtype(np.float64), np.dtype(np.float32))


class Transform(Protocol):
    """A preprocessing step of a pipeline."""

    def transform(self, x: FloatArray) -> FloatArray:
        """Return the transformed copy of ``x`` (same dtype rules as the estimator)."""
        ...

    def inverse(self, z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Map probe rows from this step's output space back to its input space."""
        ...


class Kernel(Protocol):
    """The final estimator of a compiled model."""

    @property
    def n_features(self) -> int:
        """Width of the rows the kernel takes."""
        ...

    @property
    def has_proba(self) -> bool:
        """Whether the estimator has ``predict_proba``."""
        ...

    @property
    def rows_independent(self) -> bool:
        """Whether each row's result is computed on its own (no arithmetic across rows)."""
        ...

    def predict(self, x: FloatArray) -> AnyArray | None:
        """``estimator.predict(x)`` or ``None`` outside the kernel's domain."""
        ...

    def predict_proba(self, x: FloatArray) -> npt.NDArray[np.float64] | None:
        """``estimator.predict_proba(x)`` or ``None`` outside the kernel's domain."""
        ...

    def probe_rows(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        """Rows that exercise the kernel: random rows plus edge cases, in its input space."""
        ...

    def describe(self) -> str:
        """One line for logs."""
        ...


# --------------------------------------------------------------------------------------------
# StandardScaler
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalerTransform:
    """``StandardScaler.transform``: ``x -= mean; x /= scale`` in the input's own float dtype."""

    mean: dict[np.dtype[Any], FloatArray] | None
    scale: dict[np.dtype[Any], FloatArray] | None
    mean64: npt.NDArray[np.float64]
    scale64: npt.NDArray[np.float64]

    @classmethod
    def from_estimator(cls, scaler: Any) -> ScalerTransform:
        n = int(scaler.n_features_in_)
        mean = _per_dtype(scaler.mean_) if scaler.with_mean else None
        scale = _per_dtype(scaler.scale_) if scaler.with_std else None
        mean64 = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean else np.zeros(n)
        scale64 = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std else np.ones(n)
        return cls(mean=mean, scale=scale, mean64=mean64, scale64=scale64)

    def transform(self, x: FloatArray) -> FloatArray:
        # scikit-learn validates with copy=True (np.array's "K" order) and casts mean_/scale_ to
        # x.dtype first.
        out = np.array(x, copy=True)
        if self.mean is not None:
            out -= self.mean[out.dtype]
        if self.scale is not None:
            out /= self.scale[out.dtype]
        return out

    def inverse(self, z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        result: npt.NDArray[np.float64] = z * self.scale64 + self.mean64
        return result


def _per_dtype(values: Any) -> dict[np.dtype[Any], FloatArray]:
    table: dict[np.dtype[Any], FloatArray] = {}
    for dtype in FAST_DTYPES:
        arr = np.asarray(values).astype(dtype)
        arr.setflags(write=False)
        table[dtype] = arr
    return table


# --------------------------------------------------------------------------------------------
# Linear models
# --------------------------------------------------------------------------------------------

#: Range of the random probe rows for a linear model that has no scaler in front of it.
_LINEAR_PROBE_RANGE = 4.0


@dataclass(frozen=True)
class LinearKernel:
    """Linear models: one matmul plus the estimator's own link function.

    ``coef_t`` and ``intercept`` are the estimator's own objects (or the same views of them that
    scikit-learn builds), so that NumPy picks the same BLAS call and the same type promotion
    (a Python ``float`` intercept and a NumPy ``float64`` one promote differently).
    """

    n_features: int
    coef_t: Any
    intercept: Any
    classes: AnyArray | None
    has_proba: bool
    name: str
    #: BLAS sums a one-row product (gemv) in another order than a many-row one (gemm), so a
    #: row's scores can differ by an ulp with the batch it comes in, in scikit-learn as here.
    rows_independent: bool = False

    def _scores(self, x: FloatArray) -> AnyArray | None:
        if not np.isfinite(x).all():
            return None
        scores: AnyArray = x @ self.coef_t + self.intercept
        return scores

    def _decision(self, x: FloatArray) -> AnyArray | None:
        scores = self._scores(x)
        if scores is not None and scores.ndim > 1 and scores.shape[1] == 1:
            return scores.reshape((-1,))
        return scores

    def predict(self, x: FloatArray) -> AnyArray | None:
        if self.classes is None:
            return self._scores(x)
        scores = self._decision(x)
        if scores is None:
            return None
        binary = scores.ndim == 1
        indices = (scores > 0).astype(np.intp) if binary else np.argmax(scores, axis=1)
        labels: AnyArray = np.take(self.classes, indices, axis=0)
        return labels

    def predict_proba(self, x: FloatArray) -> npt.NDArray[np.float64] | None:
        from scipy.special import expit

        scores = self._decision(x)
        if scores is None:
            return None
        if self.classes is not None and self.classes.size <= 2:
            prob = expit(scores, out=scores)
            if prob.ndim == 1:
                stacked: npt.NDArray[np.float64] = np.stack([1 - prob, prob], axis=1)
                return stacked
            return _ovr_normalise(prob)
        return _softmax_inplace(scores)

    def probe_rows(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        rows = rng.uniform(-_LINEAR_PROBE_RANGE, _LINEAR_PROBE_RANGE, size=(n, self.n_features))
        # A few rows far out, where the link function saturates.
        rows[: max(1, n // 16)] *= 1e3
        return rows

    def describe(self) -> str:
        return f"{self.name}: {self.n_features} features, one matmul"


def _softmax_inplace(x: AnyArray) -> npt.NDArray[np.float64]:
    """``sklearn.utils.extmath.softmax(x, copy=False)`` for NumPy arrays."""
    max_prob = np.reshape(np.max(x, axis=1), (-1, 1))
    x -= max_prob
    np.exp(x, out=x)
    sum_prob = np.reshape(np.sum(x, axis=1), (-1, 1))
    x /= sum_prob
    return x


def _ovr_normalise(prob: AnyArray) -> npt.NDArray[np.float64]:
    """The one-vs-rest normalisation of ``LinearClassifierMixin._predict_proba_lr``."""
    prob_sum = prob.sum(axis=1)
    all_zero = prob_sum == 0
    if np.any(all_zero):
        prob[all_zero, :] = 1
        prob_sum[all_zero] = prob.shape[1]
    prob /= np.reshape(prob_sum, (prob.shape[0], -1))
    return prob


# --------------------------------------------------------------------------------------------
# Decision trees and forests of them
# --------------------------------------------------------------------------------------------

#: Levels walked between checks for (tree, row) pairs that have reached their leaf.
_COMPACT_EVERY = 4
#: Internal nodes whose thresholds become exact-tie probe values (sampled if there are more).
_MAX_TIE_NODES = 128


@dataclass(frozen=True)
class TreeEnsembleKernel:
    """All trees of a forest (or one tree) flattened into contiguous arrays.

    Nodes are addressed by *slot*: node ``i`` owns slots ``2 * i`` (left) and ``2 * i + 1``
    (right), and every per-node table is stored once per slot, so one step of the walk, for all
    trees and all rows at once, is ``slot = child[slot + (x[feature[slot]] > threshold[slot])]``.
    A leaf's children are the leaf itself, so every row can take ``depth`` steps whatever the
    depth of its own leaf.

    scikit-learn casts x to float32 and compares ``x <= threshold`` as a double against the
    float64 threshold. For a float32 ``x`` that is the same as ``x <= t32`` with ``t32`` the
    largest float32 not above the threshold, so the walk compares float32 with float32.

    ``values`` holds, per node, what the tree's own ``predict``/``predict_proba`` returns for a
    row that ends in it. A forest sums its trees in estimator order starting from zero and then
    divides by the number of trees, exactly as ``_accumulate_prediction`` does with one job.
    """

    n_features: int
    roots: npt.NDArray[np.intp]
    feature: npt.NDArray[np.intp]
    threshold: npt.NDArray[np.float64]
    slot_feature: npt.NDArray[np.intp]
    slot_threshold: npt.NDArray[np.float32]
    slot_child: npt.NDArray[np.intp]
    slot_is_leaf: npt.NDArray[np.bool_]
    is_leaf: npt.NDArray[np.bool_]
    depth: int
    values: npt.NDArray[np.float64]
    classes: AnyArray | None
    is_forest: bool
    name: str

    @property
    def has_proba(self) -> bool:
        return self.classes is not None

    @property
    def rows_independent(self) -> bool:
        return True

    @property
    def n_trees(self) -> int:
        return int(self.roots.shape[0])

    # -- evaluation ---------------------------------------------------------------------------

    def leaves(self, x: FloatArray) -> npt.NDArray[np.intp] | None:
        """Leaf node ids, shape ``(n_trees, n_rows)``, or ``None`` for non-finite input."""
        with np.errstate(over="ignore"):
            x32 = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(x32).all():
            return None
        flat = x32.reshape(-1)
        n_rows = x32.shape[0]
        slot = self._walk_one_row(flat) if n_rows == 1 else self._walk_rows(flat, n_rows)
        node: npt.NDArray[np.intp] = (slot >> 1).reshape(self.n_trees, n_rows)
        return node

    def _walk_one_row(self, flat: npt.NDArray[np.float32]) -> npt.NDArray[np.intp]:
        """One row: all trees step together; stop once every tree sits in a leaf."""
        slot = 2 * self.roots
        for level in range(self.depth):
            x = flat.take(self.slot_feature.take(slot))
            slot = self.slot_child.take(slot + (x > self.slot_threshold.take(slot)))
            if level % _COMPACT_EVERY == _COMPACT_EVERY - 1 and self.slot_is_leaf.take(slot).all():
                break
        return slot

    def _walk_rows(self, flat: npt.NDArray[np.float32], n_rows: int) -> npt.NDArray[np.intp]:
        """Several rows: (tree, row) pairs step together; every few levels the pairs that have
        reached a leaf are set aside, so that deep paths do not drag the shallow ones along."""
        slot = np.repeat(2 * self.roots, n_rows)  # tree-major, like the (n_trees, n_rows) result
        row_base = np.tile(np.arange(n_rows, dtype=np.intp) * self.n_features, self.n_trees)
        done = slot.copy()
        where = np.arange(slot.shape[0])
        for level in range(self.depth):
            x = flat.take(row_base + self.slot_feature.take(slot))
            slot = self.slot_child.take(slot + (x > self.slot_threshold.take(slot)))
            if level % _COMPACT_EVERY == _COMPACT_EVERY - 1:
                walking = np.flatnonzero(~self.slot_is_leaf.take(slot))
                if walking.shape[0] < slot.shape[0]:
                    done[where] = slot
                    where, slot, row_base = where[walking], slot[walking], row_base[walking]
                    if not walking.shape[0]:
                        return done
        done[where] = slot
        return done

    def _raw(self, x: FloatArray) -> npt.NDArray[np.float64] | None:
        node = self.leaves(x)
        if node is None:
            return None
        per_tree = self.values.take(node, axis=0)  # (n_trees, n_rows[, n_classes])
        if not self.is_forest:
            single: npt.NDArray[np.float64] = per_tree[0]
            return single
        # Sequential sum in tree order; "+ 0.0" turns a -0.0 into the +0.0 that summing from a
        # zero-initialised accumulator gives.
        total: npt.NDArray[np.float64] = np.cumsum(per_tree, axis=0)[-1] + 0.0
        total /= self.n_trees
        return total

    def predict(self, x: FloatArray) -> AnyArray | None:
        raw = self._raw(x)
        if raw is None or self.classes is None:
            return raw
        labels: AnyArray = self.classes.take(np.argmax(raw, axis=1), axis=0)
        return labels

    def predict_proba(self, x: FloatArray) -> npt.NDArray[np.float64] | None:
        return self._raw(x)

    # -- probing ------------------------------------------------------------------------------

    def probe_rows(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        lo, hi = self._feature_ranges()
        rows = rng.uniform(lo, hi, size=(n, self.n_features))
        internal = np.flatnonzero(~self.is_leaf)
        if internal.size == 0:
            return rows
        picked = rng.choice(internal, size=min(_MAX_TIE_NODES, internal.size), replace=False)
        ties = rng.uniform(lo, hi, size=(3 * picked.size, self.n_features))
        for k, node in enumerate(picked):
            feature = int(self.feature[node])
            thr = float(self.threshold[node])
            thr32 = np.float32(thr)
            # The float64 threshold itself (cast to float32 by the model, like any input) and the
            # float32 values on either side of it.
            ties[3 * k, feature] = thr
            ties[3 * k + 1, feature] = float(np.nextafter(thr32, np.float32(-np.inf)))
            ties[3 * k + 2, feature] = float(np.nextafter(thr32, np.float32(np.inf)))
        stacked: npt.NDArray[np.float64] = np.concatenate([rows, ties])
        return stacked

    def _feature_ranges(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        lo = np.full(self.n_features, -1.0)
        hi = np.full(self.n_features, 1.0)
        internal = ~self.is_leaf
        for f in range(self.n_features):
            thr = self.threshold[internal & (self.feature == f)]
            if thr.size:
                span = float(thr.max() - thr.min()) or 1.0
                lo[f] = float(thr.min()) - 0.1 * span
                hi[f] = float(thr.max()) + 0.1 * span
        return lo, hi

    def describe(self) -> str:
        nodes = int(self.feature.shape[0])
        return f"{self.name}: {self.n_trees} trees, {nodes} nodes, depth {self.depth}"


def flatten_trees(
    trees: list[Any], *, n_features: int, classes: AnyArray | None, is_forest: bool, name: str
) -> TreeEnsembleKernel:
    """Concatenate the ``tree_`` arrays of fitted trees into one :class:`TreeEnsembleKernel`."""
    features, thresholds, lefts, rights, leaves, values, roots = [], [], [], [], [], [], []
    offset = 0
    depth = 0
    for estimator in trees:
        tree = estimator.tree_
        count = int(tree.node_count)
        own = np.arange(count, dtype=np.intp) + offset
        leaf = np.asarray(tree.children_left) < 0
        lefts.append(np.where(leaf, own, np.asarray(tree.children_left, dtype=np.intp) + offset))
        rights.append(np.where(leaf, own, np.asarray(tree.children_right, dtype=np.intp) + offset))
        features.append(np.where(leaf, 0, np.asarray(tree.feature, dtype=np.intp)))
        thresholds.append(np.where(leaf, 0.0, np.asarray(tree.threshold, dtype=np.float64)))
        leaves.append(leaf)
        values.append(_leaf_values(estimator, classes))
        roots.append(offset)
        depth = max(depth, int(tree.max_depth))
        offset += count
    feature = np.concatenate(features)
    threshold = np.concatenate(thresholds)
    slot_child = np.stack([np.concatenate(lefts), np.concatenate(rights)], axis=1) * 2
    return TreeEnsembleKernel(
        n_features=n_features,
        roots=_frozen(np.asarray(roots, dtype=np.intp)),
        feature=_frozen(feature),
        threshold=_frozen(threshold),
        slot_feature=_frozen(np.repeat(feature, 2)),
        slot_threshold=_frozen(np.repeat(float32_floor(threshold), 2)),
        slot_child=_frozen(slot_child.reshape(-1)),
        slot_is_leaf=_frozen(np.repeat(np.concatenate(leaves), 2)),
        is_leaf=_frozen(np.concatenate(leaves)),
        depth=depth,
        values=_frozen(np.concatenate(values)),
        classes=classes,
        is_forest=is_forest,
        name=name,
    )


def float32_floor(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """The largest float32 not above each float64 value (-inf below float32's range)."""
    with np.errstate(over="ignore"):
        nearest = values.astype(np.float32)
    above = nearest.astype(np.float64) > values
    floor: npt.NDArray[np.float32] = np.where(
        above, np.nextafter(nearest, np.float32(-np.inf)), nearest
    )
    return floor


def _leaf_values(estimator: Any, classes: AnyArray | None) -> npt.NDArray[np.float64]:
    """What ``tree.predict_proba`` (classifier) or ``tree.predict`` (regressor) returns per node."""
    value = np.asarray(estimator.tree_.value, dtype=np.float64)  # (nodes, outputs, classes)
    if classes is not None:
        return np.ascontiguousarray(value[:, 0, : int(estimator.n_classes_)])
    return np.ascontiguousarray(value[:, 0, 0])


def _frozen(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    arr.setflags(write=False)
    return arr
