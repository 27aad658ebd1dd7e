"""Tiny model files built at test time (no binary blobs in the repository)."""

from __future__ import annotations

import io
import os
import pickle


def onnx_add_one(padding: int = 0) -> bytes:
    """An ONNX model: ``y = x + 1`` for float inputs of shape [N, 2]; ``padding`` bytes of unused
    weights make it as large as a test needs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    one = numpy_helper.from_array(np.ones((1, 2), dtype=np.float32), name="one")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])],
        "add_one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=[one]
        + (
            [numpy_helper.from_array(np.zeros(padding // 4, dtype=np.float32), name="pad")]
            if padding
            else []
        ),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def malicious_pickle() -> bytes:
    """A pickle that would run a shell command when loaded."""
    return pickle.dumps(_Evil(), protocol=4)


def torch_state_dict() -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(2, 2)}, buf)
    return buf.getvalue()


def sklearn_pickle() -> bytes:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0, 0.0], [1.0, 1.0], [2.0, 1.0]], [0.0, 1.0, 2.0])
    return pickle.dumps(model, protocol=4)


def torch_export_pt2() -> bytes:
    """A tiny torch.export program as torch.export.save writes it (``.pt2``)."""
    import torch

    buf = io.BytesIO()
    module = torch.nn.Linear(2, 1)
    torch.export.save(torch.export.export(module, (torch.zeros(1, 2),)), buf)
    return buf.getvalue()
