"""The one small interface every format's loader implements."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from modelport.core.errors import ModelportError
from modelport.runtime.signature import ModelSignature

Tensors = Mapping[str, np.ndarray[Any, Any]]


class ModelLoadError(ModelportError):
    """The artifact could not be turned into a servable model."""

    status = 500
    code = "model_load_failed"


class MissingFramework(ModelLoadError):
    """The framework a format needs is not installed in this image."""

    code = "framework_missing"

    def __init__(self, framework: str, extra: str) -> None:
        super().__init__(
            f"serving this model needs {framework}, which is not installed: "
            f"install modelport[{extra}] (or use the runtime image built for {extra})",
            details={"framework": framework, "extra": extra},
        )


class ServedModel(abc.ABC):
    """A loaded model: its signature and one call that maps named inputs to named outputs."""

    #: Framework name shown as ``platform`` in model metadata.
    platform: str = ""

    def __init__(self, signature: ModelSignature) -> None:
        self.signature = signature

    @abc.abstractmethod
    def predict(self, inputs: Tensors, outputs: Sequence[str]) -> dict[str, np.ndarray[Any, Any]]:
        """Run the model; ``inputs`` match the signature, ``outputs`` are names it declares."""

    @property
    def primary_output(self) -> str:
        """The output KServe v1 and ``/predict`` answer with."""
        return self.signature.outputs[0].name

    @property
    def confidence_output(self) -> str | None:
        """An output of class probabilities (rows of scores), if the model has one."""
        return None

    @property
    def batchable(self) -> bool:
        """Whether requests may be stacked along a free first dimension."""
        sig = self.signature
        return all(s.batched for s in sig.inputs) and all(s.batched for s in sig.outputs)

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Optional: run once after loading so the first request is not the slow one."""


def require(module: str, *, framework: str, extra: str) -> Any:
    """Import a framework lazily, or raise a clear "install modelport[extra]" error."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingFramework(framework, extra) from exc
