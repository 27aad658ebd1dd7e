"""Development-time only: every scikit-learn estimator, fitted with defaults on tiny data.

The allowlist generator records what these models' pickles import, and the sweep test scans
them. Inputs and targets are chosen from each estimator's own tags (positive-only, strings,
dicts, 1-D labels, multi-output, ...), and a required parameter is filled by its name (a base
estimator, a parameter grid, ...), never by the estimator's name, so a new scikit-learn release
is swept without edits. Nothing here runs at scan time.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

#: Tiny data: enough rows for 5-fold CV with three classes and TSNE's default perplexity (30).
N_SAMPLES = 40
N_FEATURES = 4


@dataclass(frozen=True)
class Fitted:
    """One estimator class and what became of fitting it with defaults."""

    name: str
    model: Any | None
    skipped: str | None = None


@dataclass(frozen=True)
class Data:
    """The inputs one estimator is fitted on: X and, when the estimator needs one, y."""

    x: Any
    y: Any | None


def all_estimator_classes() -> list[tuple[str, type]]:
    from sklearn.utils import all_estimators

    return list(all_estimators())


def fit_all() -> dict[str, Fitted]:
    """Every estimator from ``all_estimators()``, fitted (or the reason it could not be)."""
    return {name: fit_one(name, cls) for name, cls in all_estimator_classes()}


def fit_one(name: str, cls: type) -> Fitted:
    """Fit ``cls`` with default parameters on the first data shape it accepts.

    A meta-estimator whose ``estimator`` defaults to None and cannot fit so is given a base
    estimator, as for a required one.
    """
    import numpy as np

    errors: list[str] = []
    for fill in (False, True):
        # Estimators with random_state=None draw from NumPy's global generator: seed it per fit,
        # so what a model holds (and so the generated allowlist) does not depend on test order.
        np.random.seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return _fit_first(name, cls, required_arguments(cls, fill_none=fill), errors)
            except _NoFit:
                if fill is True or "estimator" not in inspect.signature(cls).parameters:
                    break
    return Fitted(name, None, "; ".join(dict.fromkeys(errors)) or "no data shape applies")


class _NoFit(Exception):
    pass


def _fit_first(name: str, cls: type, kwargs: dict[str, Any], errors: list[str]) -> Fitted:
    try:
        datasets = list(_datasets(cls, kwargs))
    except (AttributeError, ValueError, TypeError) as exc:
        errors.append(_reason(exc))
        raise _NoFit from None
    from sklearn.exceptions import NotFittedError

    for data in datasets:
        model = cls(**kwargs)
        try:
            _fit(model, data)
        except NotFittedError as exc:
            # A wrapper of a fitted model (FrozenEstimator): fit the wrapped one first.
            errors.append(_reason(exc))
            if "estimator" not in kwargs:
                continue
            model = cls(**{**kwargs, "estimator": _fit(kwargs["estimator"], data)})
            _fit(model, data)
        except (AttributeError, ValueError, TypeError) as exc:
            errors.append(_reason(exc))
            continue
        return Fitted(name, model)
    raise _NoFit


def _fit(model: Any, data: Data) -> Any:
    return model.fit(data.x) if data.y is None else model.fit(data.x, data.y)


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def _rng() -> Any:
    import numpy as np

    return np.random.default_rng(0)


def _features(positive: bool) -> Any:
    x = _rng().normal(size=(N_SAMPLES, N_FEATURES))
    return abs(x) if positive else x


def _classes(n_classes: int) -> Any:
    import numpy as np

    return np.arange(N_SAMPLES) % n_classes


def _datasets(cls: type, kwargs: dict[str, Any]) -> Iterator[Data]:
    """The inputs to try, from the estimator's tags: multi-class first, then binary."""
    import numpy as np
    from sklearn.utils import get_tags

    tags = get_tags(cls(**kwargs))
    inputs, targets = tags.input_tags, tags.target_tags
    x: Any
    if inputs.string and not inputs.two_d_array:
        x = [f"word{i % 5} token{i % 3} red" for i in range(N_SAMPLES)]
    elif inputs.dict and not inputs.two_d_array:
        x = [{"a": float(i % 3), "b": float(i % 5)} for i in range(N_SAMPLES)]
    elif inputs.three_d_array:
        x = _rng().random((3, 8, 8))
    elif inputs.pairwise:
        f = _features(False)
        x = f @ f.T
    elif inputs.categorical and inputs.positive_only:
        x = _rng().integers(0, 3, size=(N_SAMPLES, N_FEATURES))
    elif not inputs.two_d_array and inputs.one_d_array:
        x = _features(False)[:, 0]
    else:
        x = _features(inputs.positive_only)
    if not inputs.two_d_array and not inputs.one_d_array and not inputs.string and not inputs.dict:
        # Label transformers take the labels as their only input.
        if targets.two_d_labels:
            yield Data([["a", "b"], ["b"], ["c"]] * 3, None)
        else:
            yield Data(np.array(["a", "b", "c", "a"] * 10), None)
        return
    regression = tags.estimator_type == "regressor"
    # Regression targets are positive (Poisson and Gamma losses need y > 0).
    single = _rng().uniform(1.0, 3.0, size=N_SAMPLES) if regression else _classes(3)
    two_columns = np.column_stack([single, single[::-1]])
    if targets.single_output:
        yield Data(x, single)
        if not regression:
            yield Data(x, _classes(2))
    # Two target columns last (PLS needs as many as its default n_components).
    yield Data(x, two_columns)
    if not targets.required:
        yield Data(x, None)


def required_arguments(cls: type, *, fill_none: bool = False) -> dict[str, Any]:
    """Values for the parameters that have no default, chosen by parameter name.

    With ``fill_none``, also for an ``estimator`` parameter whose default is None.
    """
    out: dict[str, Any] = {}
    for param in inspect.signature(cls).parameters.values():
        optional = param.default is not inspect.Parameter.empty
        if fill_none and param.name == "estimator" and param.default is None:
            optional = False
        if optional or param.kind in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        ):
            continue
        make = _REQUIRED.get(param.name)
        if make is None:
            raise LookupError(f"{cls.__name__}: no value for required parameter {param.name!r}")
        out[param.name] = make(cls)
    return out


def _is_regressor(cls: type) -> bool:
    from sklearn.base import RegressorMixin

    return issubclass(cls, RegressorMixin)


def _base_estimator(cls: type) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    return Ridge() if _is_regressor(cls) else LogisticRegression()


def _base_estimators(cls: type) -> Any:
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeRegressor

    if _is_regressor(cls):
        return [("a", _base_estimator(cls)), ("b", DecisionTreeRegressor())]
    return [("a", _base_estimator(cls)), ("b", GaussianNB())]


def _transformers(cls: type) -> Any:
    from sklearn.preprocessing import StandardScaler

    return [("scale", StandardScaler(), [0, 1]), ("rest", "passthrough", [2, 3])]


def _transformer_list(cls: type) -> Any:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    return [("pca", PCA(n_components=1)), ("scale", StandardScaler())]


def _steps(cls: type) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    return [("scale", StandardScaler()), ("clf", LogisticRegression())]


def _grid(cls: type) -> Any:
    return {"C": [0.1, 1.0]}


def _dictionary(cls: type) -> Any:
    return _rng().normal(size=(3, N_FEATURES))


_REQUIRED: dict[str, Callable[[type], Any]] = {
    "estimator": _base_estimator,
    "estimators": _base_estimators,
    "transformers": _transformers,
    "transformer_list": _transformer_list,
    "steps": _steps,
    "param_grid": _grid,
    "param_distributions": _grid,
    "dictionary": _dictionary,
}


def composite_models() -> dict[str, Any]:
    """The compositions users build most: pipelines, column transformers, ensembles."""
    import numpy as np
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        RandomForestClassifier,
        StackingClassifier,
        VotingClassifier,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    x = _features(True)
    y = _classes(3)
    frame = np.empty((N_SAMPLES, 3), dtype=object)
    frame[:, 0] = x[:, 0]
    frame[:, 1] = np.where(x[:, 1] > 0.5, "up", "down")
    frame[:, 2] = x[:, 2]
    frame[::7, 2] = np.nan
    columns = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), [0, 2]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), [1]),
        ]
    )
    base = [("lr", LogisticRegression()), ("nb", GaussianNB())]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "pipeline_column_transformer": make_pipeline(columns, LogisticRegression()).fit(
                frame, y
            ),
            "function_transformer_log1p": make_pipeline(
                FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression()
            ).fit(x, y),
            "calibrated_forest": CalibratedClassifierCV(
                RandomForestClassifier(n_estimators=3, random_state=0)
            ).fit(x, y),
            "calibrated_isotonic": CalibratedClassifierCV(GaussianNB(), method="isotonic").fit(
                x, y
            ),
            "stacking": StackingClassifier(base).fit(x, y),
            "voting_soft": VotingClassifier(base, voting="soft").fit(x, y),
            "pipeline_hist_gradient_boosting": make_pipeline(
                StandardScaler(), HistGradientBoostingClassifier(max_iter=5)
            ).fit(x, y),
        }


def sklearn_models() -> dict[str, Any]:
    """Small fitted models of every estimator family the scanner promises to accept."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC, SVR
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    yr = x[:, 0] * 2.0 + x[:, 2]
    models: dict[str, Any] = {
        "logistic_regression": LogisticRegression().fit(x, y),
        "random_forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        "random_forest_regressor": RandomForestRegressor(n_estimators=2, random_state=0).fit(x, yr),
        "gradient_boosting": GradientBoostingClassifier(n_estimators=3).fit(x, y),
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "hist_gradient_boosting_regressor": HistGradientBoostingRegressor(max_iter=3).fit(x, yr),
        "svc": SVC(probability=True).fit(x, y),
        "svr": SVR().fit(x, yr),
        "kmeans": KMeans(n_clusters=2, n_init=1, random_state=0).fit(x),
        "mlp": MLPClassifier(hidden_layer_sizes=(3,), max_iter=20).fit(x, y),
        "mlp_regressor": MLPRegressor(hidden_layer_sizes=(3,), max_iter=20).fit(x, yr),
        "linear_regression": LinearRegression().fit(x, yr),
        "ridge": Ridge().fit(x, yr),
        "decision_tree": DecisionTreeClassifier().fit(x, y),
        **_more_models(x, y, yr),
        "pipeline": _pipeline(
            x,
            y,
            ColumnTransformer,
            OneHotEncoder,
            StandardScaler,
            SimpleImputer,
            Pipeline,
            LogisticRegression,
        ),
    }
    return models


def _more_models(x: Any, y: Any, yr: Any) -> dict[str, Any]:
    """Further common estimators, so that everyday models pass without review."""
    import numpy as np
    import scipy.sparse
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA, TruncatedSVD
    from sklearn.ensemble import AdaBoostClassifier, ExtraTreesClassifier, IsolationForest
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.naive_bayes import GaussianNB, MultinomialNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import LabelEncoder, MinMaxScaler, PolynomialFeatures

    texts = ["red apple", "green apple", "blue sky", "red sky"] * 5
    return {
        "knn_kd": KNeighborsClassifier(n_neighbors=2, algorithm="kd_tree").fit(x, y),
        "knn_ball": KNeighborsClassifier(n_neighbors=2, algorithm="ball_tree").fit(x, y),
        "extra_trees": ExtraTreesClassifier(n_estimators=2).fit(x, y),
        "adaboost": AdaBoostClassifier(n_estimators=2).fit(x, y),
        "isolation_forest": IsolationForest(n_estimators=2, random_state=0).fit(x),
        "pca": PCA(n_components=2).fit(x),
        "svd": TruncatedSVD(n_components=2).fit(x),
        "sgd": SGDClassifier(max_iter=5).fit(x, y),
        "gaussian_nb": GaussianNB().fit(x, y),
        "multinomial_nb": MultinomialNB().fit(np.abs(x), y),
        "calibrated": CalibratedClassifierCV(GaussianNB(), cv=2).fit(x, y),
        "label_encoder": LabelEncoder().fit(["a", "b", "c"]),
        "minmax": MinMaxScaler().fit(x),
        "poly": PolynomialFeatures().fit(x),
        "tfidf": TfidfVectorizer().fit(texts),
        "sparse": scipy.sparse.csr_matrix(np.eye(3)),
    }


def _pipeline(x: Any, y: Any, *classes: Any) -> Any:
    import numpy as np

    column_transformer, one_hot, scaler, imputer, pipeline, logistic = classes
    frame = np.empty((len(x), 3), dtype=object)
    frame[:, 0] = x[:, 0]
    frame[:, 1] = np.where(x[:, 1] > 0, "up", "down")
    frame[:, 2] = x[:, 2]
    frame[::7, 2] = np.nan
    pre = column_transformer(
        [
            ("num", pipeline([("imp", imputer()), ("sc", scaler())]), [0, 2]),
            ("cat", one_hot(handle_unknown="ignore"), [1]),
        ]
    )
    return pipeline([("pre", pre), ("clf", logistic())]).fit(frame, y)


def option_variants() -> dict[str, Any]:
    """Estimators fitted with the non-default options that change what their pickle holds."""
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

    x, y = _features(False), _classes(3)
    return {
        f"{cls.__name__}_{algorithm}": cls(algorithm=algorithm).fit(x, y)
        for cls in (KNeighborsClassifier, NearestNeighbors)
        for algorithm in ("ball_tree", "kd_tree")
    }
