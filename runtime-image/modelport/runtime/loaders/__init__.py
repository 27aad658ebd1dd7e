"""Loaders, one module per format family, all behind :func:`load_model`.

The format registry (``modelport.core.formats``) names each format's loader module. Each module
imports its framework lazily, so an image without torch serves sklearn and ONNX.
"""

from __future__ import annotations

import importlib

from modelport.core.formats import ModelFormat, spec_for
from modelport.runtime.loaders.base import MissingFramework, ModelLoadError, ServedModel
from modelport.runtime.loaders.gate import PickleGate, default_gate

__all__ = ["MissingFramework", "ModelLoadError", "ServedModel", "load_model"]


def load_model(data: bytes, fmt: ModelFormat, *, gate: PickleGate | None = None) -> ServedModel:
    """Deserialise plaintext model bytes of the given format into a servable model."""
    module = importlib.import_module(spec_for(fmt).loader)
    model: ServedModel = module.load(data, fmt, gate=gate or default_gate())
    return model
