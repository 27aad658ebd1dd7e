"""ONNX models through onnxruntime: the CUDA execution provider when a GPU is visible."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from modelport.core.formats import ModelFormat
from modelport.runtime.loaders.base import ModelLoadError, ServedModel, Tensors, require
from modelport.runtime.loaders.gate import PickleGate
from modelport.runtime.signature import ModelSignature, TensorSpec

log = logging.getLogger("modelport.runtime")

#: onnxruntime's ``tensor(...)`` element types → OIP datatypes.
_DATATYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def load(data: bytes, fmt: ModelFormat, *, gate: PickleGate) -> ServedModel:
    ort = require("onnxruntime", framework="onnxruntime", extra="onnx")
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelLoadError(f"onnxruntime could not load the model: {exc}") from exc
    _release_model_bytes(session)
    log.info("onnxruntime providers: %s", ", ".join(session.get_providers()))
    return OnnxModel(session)


def _release_model_bytes(session: Any) -> None:
    """Stop onnxruntime's Python wrapper from holding the plaintext for the process's life.

    It keeps the model bytes only to re-create the session on another provider after a failure;
    with that fallback off they are dead weight as large as the model.
    """
    session.disable_fallback()
    if getattr(session, "_model_bytes", None) is not None:
        session._model_bytes = None


class OnnxModel(ServedModel):
    platform = "onnxruntime"

    def __init__(self, session: Any) -> None:
        self.session = session
        inputs = tuple(_spec(arg) for arg in session.get_inputs())
        outputs = tuple(_spec(arg) for arg in session.get_outputs())
        super().__init__(ModelSignature(inputs=inputs, outputs=outputs))
        self._probabilities = _probabilities_output(outputs)

    @property
    def confidence_output(self) -> str | None:
        return self._probabilities

    def predict(self, inputs: Tensors, outputs: Sequence[str]) -> dict[str, np.ndarray[Any, Any]]:
        feeds = {k: _feed(v) for k, v in inputs.items()}
        values = self.session.run(list(outputs), feeds)
        return {name: _as_array(value) for name, value in zip(outputs, values, strict=True)}


def _spec(arg: Any) -> TensorSpec:
    datatype = _DATATYPES.get(arg.type)
    shape: tuple[int, ...] | None
    if datatype is None:
        # skl2onnx's ZipMap output: a sequence of {label: probability} maps, served as rows.
        datatype = "FP32"
        shape = (-1, -1)
    else:
        shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, datatype, shape)


def _probabilities_output(outputs: Sequence[TensorSpec]) -> str | None:
    for spec in outputs:
        if "prob" in spec.name.lower() and spec.shape is not None and len(spec.shape) == 2:
            return spec.name
    return None


def _feed(value: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if value.dtype == object:
        return np.array(
            [v.decode() if isinstance(v, bytes) else v for v in value.ravel()], dtype=object
        ).reshape(value.shape)
    return value


def _as_array(value: Any) -> np.ndarray[Any, Any]:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        keys = sorted(value[0])
        return np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
    return np.asarray(value)
