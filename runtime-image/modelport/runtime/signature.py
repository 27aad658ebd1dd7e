"""A model's signature: the named, typed, shaped tensors it takes and gives.

Datatypes are the Open Inference Protocol's names (``FP32``, ``INT64``, ``BYTES``, ...). A shape
uses ``-1`` for a dimension of any size; ``None`` means the rank itself is unknown (a TorchScript
archive declares names but no shapes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: OIP datatype → numpy dtype. BYTES tensors are object arrays of ``bytes``.
NUMPY_OF: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

_DATATYPE_OF_KIND: dict[tuple[str, int], str] = {
    (np.dtype(dt).kind, np.dtype(dt).itemsize): name
    for name, dt in NUMPY_OF.items()
    if name != "BYTES"
}

NUMERIC = frozenset(NUMPY_OF) - {"BYTES", "BOOL"}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The OIP datatype of a numpy dtype; strings and objects are ``BYTES``."""
    if dtype.kind in "OSU":
        return "BYTES"
    try:
        return _DATATYPE_OF_KIND[(dtype.kind, dtype.itemsize)]
    except KeyError:
        raise ValueError(f"numpy dtype {dtype} has no Open Inference Protocol datatype") from None


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output."""

    name: str
    datatype: str
    shape: tuple[int, ...] | None

    def metadata(self) -> dict[str, Any]:
        """The OIP ``$metadata_tensor`` (an unknown rank is shown as ``[-1]``)."""
        shape = list(self.shape) if self.shape is not None else [-1]
        return {"name": self.name, "datatype": self.datatype, "shape": shape}

    @property
    def batched(self) -> bool:
        """Whether the first dimension is free, so requests can be stacked along it."""
        return self.shape is not None and len(self.shape) > 0 and self.shape[0] == -1


@dataclass(frozen=True)
class ModelSignature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    output_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_names", tuple(o.name for o in self.outputs))

    def output(self, name: str) -> TensorSpec | None:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        return None
