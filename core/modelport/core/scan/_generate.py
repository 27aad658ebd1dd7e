"""Maintainer tool: list the globals real models pickle, to review into ``allowlist.toml``.

``python -m modelport.core.scan._generate`` trains small models of the classes Modelport
promises to accept, pickles them (pickle and joblib), walks the streams with a recording
allowlist and prints every global with the uses seen. Nothing here runs at scan time; the output
is reviewed by hand before it goes into the data file.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from modelport.core.scan.joblib import walk_joblib
from modelport.core.scan.limits import Deadline, Limits
from modelport.core.scan.pickle import Recorder, walk_single


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


def record(models: dict[str, Any]) -> Recorder:
    """Pickle and joblib-dump every model at every protocol/compression we accept; record."""
    import joblib
    from modelport.core.scan import compression

    rec = Recorder()
    limits = Limits()
    for name, model in models.items():
        for proto in (2, 3, 4, 5):
            data = pickle.dumps(model, protocol=proto)
            findings = walk_single(data, rec, limits, Deadline(60), location=name)
            _fail_on(findings, name)
        for compress in (0, ("zlib", 3), ("lz4", 1)):
            buf = io.BytesIO()
            joblib.dump(model, buf, compress=compress)
            raw = buf.getvalue()
            kind = compression.detect(raw[:8])
            if kind is not None:
                raw = bytes(compression.decompress(memoryview(raw), kind, limits, Deadline(60)))
            _fail_on(walk_joblib(raw, rec, limits, Deadline(60), location=name), name)
    return rec


def _fail_on(findings: list[Any], name: str) -> None:
    if findings:
        raise SystemExit(f"{name}: the walker refused a real model: {findings}")


def main() -> None:
    rec = record(sklearn_models())
    print("# globals and their uses")
    for qualname in sorted(rec.seen):
        print(f'"{qualname}" = "{" ".join(sorted(rec.seen[qualname]))}"')
    print("\n# names passed straight to calls (the [arguments] table)")
    for callee in sorted(rec.arguments):
        rules = ", ".join(
            f"{i} = {sorted(names)}" for i, names in sorted(rec.arguments[callee].items())
        )
        print(f'"{callee}" = {{ {rules} }}')


if __name__ == "__main__":
    main()
