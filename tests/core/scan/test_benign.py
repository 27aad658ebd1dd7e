"""False positives: real models of every promised kind must scan as safe."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from modelport.core.scan import Outcome, scan

from tests.core.scan.conftest import joblib_bytes

SKLEARN = [
    "logistic_regression", "random_forest", "gradient_boosting", "hist_gradient_boosting", "svc",
    "kmeans", "mlp", "pipeline", "random_forest_regressor", "hist_gradient_boosting_regressor",
    "svr", "mlp_regressor", "linear_regression", "ridge", "decision_tree", "knn_kd", "knn_ball",
    "extra_trees", "adaboost", "isolation_forest", "pca", "sgd", "gaussian_nb", "calibrated",
    "label_encoder", "minmax", "tfidf", "sparse",
]  # fmt: skip
COMPRESSIONS: list[Any] = [0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3),
                           ("lz4", 3)]  # fmt: skip


def _assert_safe(verdict: Any) -> None:
    assert verdict.outcome is Outcome.SAFE, verdict.findings
    assert verdict.findings == ()


@pytest.mark.parametrize("name", SKLEARN)
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_sklearn_pickles_are_safe(sklearn_models: dict[str, Any], name: str, protocol: int) -> None:
    data = pickle.dumps(sklearn_models[name], protocol=protocol)
    _assert_safe(scan(data, expected_format="pkl"))


@pytest.mark.parametrize("name", SKLEARN)
@pytest.mark.parametrize("compress", COMPRESSIONS, ids=str)
def test_sklearn_joblib_files_are_safe(
    sklearn_models: dict[str, Any], name: str, compress: Any
) -> None:
    verdict = scan(joblib_bytes(sklearn_models[name], compress), expected_format="joblib")
    _assert_safe(verdict)
    assert verdict.format == "joblib"


@pytest.mark.parametrize("name", SKLEARN)
def test_joblib_dumps_named_pkl_are_safe(sklearn_models: dict[str, Any], name: str) -> None:
    """joblib.dump(model, "model.pkl") is common: its aligned array records read the same way
    under joblib and (up to a clean error) under plain pickle."""
    _assert_safe(scan(joblib_bytes(sklearn_models[name]), expected_format="pkl"))


def test_verdict_hashes_the_scanned_bytes(sklearn_models: dict[str, Any], tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "model.joblib"
    path.write_bytes(joblib_bytes(sklearn_models["random_forest"], ("xz", 3)))
    verdict = scan(path)
    assert verdict.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert verdict.size == path.stat().st_size
    assert verdict.container == "xz"


@pytest.mark.parametrize(
    "name", ["state_dict", "state_dict_pth", "legacy", "torchscript", "traced", "export"]
)
def test_torch_files_are_safe(torch_files: dict[str, Path], name: str) -> None:
    verdict = scan(torch_files[name], expected_format="pt")
    _assert_safe(verdict)


def test_torch_onnx_export_is_safe(torch_files: dict[str, Path]) -> None:
    _assert_safe(scan(torch_files["onnx"]))


def test_whole_module_pickles_are_refused(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    verdict = scan(path)
    assert verdict.outcome is Outcome.UNSAFE
    assert any("torch.nn.modules.linear.Linear" in f.message for f in verdict.findings)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["keras3_sequential", "keras3_functional", "tf_keras_sequential", "tf_keras_functional"],
)
def test_keras_h5_files_are_safe(keras_files: dict[str, Path], name: str) -> None:
    _assert_safe(scan(keras_files[name]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["keras3_sequential_keras", "keras3_functional_keras"])
def test_keras_archives_are_safe(keras_files: dict[str, Path], name: str) -> None:
    verdict = scan(keras_files[name])
    _assert_safe(verdict)
    assert (verdict.format, verdict.container) == ("keras", "zip")


@pytest.mark.parametrize("name", ["logistic", "forest", "pipeline"])
def test_skl2onnx_models_are_safe(onnx_files: dict[str, Path], name: str) -> None:
    _assert_safe(scan(onnx_files[name]))


@pytest.mark.parametrize("dynamo", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_torch_onnx_exports_of_a_bigger_model_are_safe(tmp_path: Path, dynamo: bool) -> None:
    torch = pytest.importorskip("torch")
    if dynamo:
        pytest.importorskip("onnxscript")
    import warnings

    from testing.torch_model import Attention

    path = tmp_path / "attention.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = {"dynamo": True, "external_data": False} if dynamo else {"dynamo": False}
        torch.onnx.export(Attention().eval(), (torch.randn(1, 3, 8, 8),), path, **kwargs)
    _assert_safe(scan(path))


@pytest.mark.slow
def test_onnx_with_weights_in_a_side_file_is_refused(tmp_path: Path) -> None:
    """A single uploaded .onnx cannot carry its external data: export with external_data=False."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    import warnings

    from testing.torch_model import Attention

    path = tmp_path / "attention.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Attention().eval(), (torch.randn(1, 3, 8, 8),), path, dynamo=True)
    verdict = scan(path)
    assert verdict.outcome is Outcome.UNSAFE
    assert {f.code.value for f in verdict.findings} == {"onnx_external_data"}
