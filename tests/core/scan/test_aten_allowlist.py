"""The ATen allowlist: generated from the installed torch by a rule, and shared by the
TorchScript and export checks."""

from __future__ import annotations

import pytest
from modelport.core.scan._generate_aten import OUTPUT, generate, refusal
from modelport.core.scan.aten import aten_ops


def test_committed_list_is_current_for_the_installed_torch() -> None:
    pytest.importorskip("torch")
    assert OUTPUT.read_text() == generate(), (
        "aten_ops.txt is stale: run python -m modelport.core.scan._generate_aten"
    )


@pytest.mark.parametrize(
    "op",
    ["linear.default", "conv2d.default", "relu.default", "_softmax.default", "add.Tensor",
     "max_pool2d.default", "native_layer_norm.default", "view.default", "sum.dim_IntList",
     "index.Tensor", "eq.Scalar", "mm.default", "dropout.default", "_local_scalar_dense.default"],
)  # fmt: skip
def test_inference_ops_are_allowed(op: str) -> None:
    assert aten_ops().overload(op) is None


@pytest.mark.parametrize(
    "op",
    ["from_file.default", "_load_from_file.default", "save.default", "set_.source_Storage",
     "normal.Tensor_float", "bernoulli.p", "uniform_.default", "rand.default",
     "manual_seed.default", "wait.default", "_sparse_coo_tensor_unsafe.default", "no_such_op.x"],
)  # fmt: skip
def test_side_effecting_ops_are_refused(op: str) -> None:
    assert aten_ops().overload(op) is not None


def test_a_name_is_allowed_only_when_every_overload_is() -> None:
    assert aten_ops().name("linear") is None
    assert aten_ops().name("set_") is not None
    assert aten_ops().name("from_file") is not None


def test_rule_reasons() -> None:
    assert refusal("from_file", ["str"]) == "reads or writes files"
    assert refusal("set_", ["Tensor", "Storage"]) == "takes or returns a Storage"
    assert refusal("native_dropout", ["Tensor", "float", "Optional[bool]"]) is None
    assert refusal("poisson_nll_loss", ["Tensor"]) is None
