"""Session-scoped builders of real, tiny models (frameworks are imported once, lazily)."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def sklearn_models() -> dict[str, Any]:
    from modelport.core.scan._estimators import sklearn_models as build

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build()


@pytest.fixture(scope="session")
def torch_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("torch")

    from testing.torch_model import Net

    net = Net().eval()
    example = torch.randn(3, 4)
    files = {
        "state_dict": folder / "state_dict.pt",
        "state_dict_pth": folder / "state_dict.pth",
        "legacy": folder / "legacy.pth",
        "torchscript": folder / "script.pt",
        "traced": folder / "traced.pt",
        "export": folder / "program.pt2",
        "onnx": folder / "torch.onnx",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(net.state_dict(), files["state_dict"])
        torch.save({"model": net.state_dict(), "epoch": 3}, files["state_dict_pth"])
        torch.save(net.state_dict(), files["legacy"], _use_new_zipfile_serialization=False)
        torch.jit.save(torch.jit.script(net), files["torchscript"])
        torch.jit.save(torch.jit.trace(net, example), files["traced"])
        torch.export.save(torch.export.export(net, (example,)), files["export"])
        torch.onnx.export(net, (example,), files["onnx"], dynamo=False)
    return files


@pytest.fixture(scope="session")
def keras_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    tf_keras = pytest.importorskip("tf_keras")
    folder = tmp_path_factory.mktemp("keras")
    files: dict[str, Path] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tag, k in (("keras3", keras), ("tf_keras", tf_keras)):
            seq = k.Sequential(
                [
                    k.layers.Input((4,)),
                    k.layers.Dense(3, activation="relu"),
                    k.layers.Dropout(0.1),
                    k.layers.Dense(1, activation="sigmoid"),
                ]
            )
            seq.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
            files[f"{tag}_sequential"] = folder / f"{tag}_sequential.h5"
            seq.save(files[f"{tag}_sequential"])
            if k is keras:
                files[f"{tag}_sequential_keras"] = folder / f"{tag}_sequential.keras"
                seq.save(files[f"{tag}_sequential_keras"])
            inp = k.layers.Input((8,))
            x = k.layers.BatchNormalization()(k.layers.Dense(4)(inp))
            out = k.layers.Dense(2, activation="softmax")(k.layers.Concatenate()([x, inp]))
            func = k.Model(inp, out)
            func.compile(optimizer=k.optimizers.SGD(), loss="categorical_crossentropy")
            files[f"{tag}_functional"] = folder / f"{tag}_functional.h5"
            func.save(files[f"{tag}_functional"])
            if k is keras:
                files[f"{tag}_functional_keras"] = folder / f"{tag}_functional.keras"
                func.save(files[f"{tag}_functional_keras"])
    return files


@pytest.fixture(scope="session")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("skl2onnx")
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder = tmp_path_factory.mktemp("onnx")
    x = np.random.default_rng(0).random((30, 3)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(int)
    files = {}
    for name, model in (
        ("logistic", LogisticRegression()),
        ("forest", RandomForestClassifier(n_estimators=2, random_state=0)),
        ("pipeline", make_pipeline(StandardScaler(), LogisticRegression())),
    ):
        path = folder / f"{name}.onnx"
        path.write_bytes(to_onnx(model.fit(x, y), x[:1]).SerializeToString())
        files[name] = path
    return files


def joblib_bytes(obj: Any, compress: Any = 0) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf, compress=compress)
    return buf.getvalue()
