"""Loaders, one module per format family, all behind :func:`load_model`.

Each module imports its framework lazily, so an image without torch serves sklearn and ONNX.
"""

from __future__ import annotations

import importlib

from modelport.core.formats import Family, ModelFormat
from modelport.runtime.loaders.base import MissingFramework, ModelLoadError, ServedModel
from modelport.runtime.loaders.gate import PickleGate, default_gate

__all__ = ["MissingFramework", "ModelLoadError", "ServedModel", "load_model"]

_MODULES: dict[Family, str] = {
    Family.PICKLE: "modelport.runtime.loaders.sklearn",
    Family.HDF5: "modelport.runtime.loaders.keras",
    Family.ONNX: "modelport.runtime.loaders.onnx",
    Family.TORCH: "modelport.runtime.loaders.torch",
}


def load_model(data: bytes, fmt: ModelFormat, *, gate: PickleGate | None = None) -> ServedModel:
    """Deserialise plaintext model bytes of the given format into a servable model."""
    module = importlib.import_module(_MODULES[fmt.family])
    model: ServedModel = module.load(data, fmt, gate=gate or default_gate())
    return model
