"""Keras models: HDF5 (``.h5``, by Keras 3 or by tf.keras 2.x) and Keras 3 archives (``.keras``).

``.h5``: the file's own ``keras_version`` attribute picks the loader: ``2.x`` files go to
``tf_keras`` (the tf.keras 2 line), others to Keras 3. The bytes are opened with h5py's in-memory
driver, so the plaintext never lands on disk.

``.keras``: Keras 3's archive reader is given the bytes as a ``BytesIO``, never a path. It reads
``config.json`` into memory and ``model.weights.h5`` either into a second in-memory buffer or,
when Keras judges memory short, straight from the archive: its only on-disk route (extracting
the weights next to the archive file) needs a file name, which a ``BytesIO`` has not, and Keras
falls back to reading in memory. Assets, which Keras would extract under ``TMPDIR``, are refused
by the scanner before loading, so nothing of the model is written anywhere (in a runtime pod
``TMPDIR`` is a memory-backed ``/tmp`` in any case).
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from modelport.core.formats import ModelFormat
from modelport.runtime.loaders.base import ModelLoadError, ServedModel, Tensors, require
from modelport.runtime.loaders.gate import PickleGate
from modelport.runtime.signature import ModelSignature, TensorSpec, datatype_of

log = logging.getLogger("modelport.runtime")


def load(data: bytes, fmt: ModelFormat, *, gate: PickleGate) -> ServedModel:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    h5py = require("h5py", framework="h5py", extra="keras")
    gate.check(data, fmt)
    if fmt is ModelFormat.KERAS:
        return _load_archive(data)
    with h5py.File(io.BytesIO(data), "r") as h5:
        version = _attr(h5, "keras_version")
        if "model_config" not in h5.attrs:
            raise ModelLoadError(
                "the .h5 file holds weights only, no model architecture: save the whole model "
                "with model.save('model.h5')"
            )
        model = _load_tf_keras(h5) if version.startswith("2.") else _load_keras3(h5)
    return KerasModel(model, keras_version=version or "unknown")


def _load_archive(data: bytes) -> KerasModel:
    require("keras", framework="Keras", extra="keras")
    from keras.src.saving import saving_lib

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        metadata = json.loads(archive.read("metadata.json"))
    model = saving_lib.load_model(io.BytesIO(data), compile=False, safe_mode=True)
    return KerasModel(model, keras_version=str(metadata.get("keras_version", "unknown")))


def _attr(h5: Any, name: str) -> str:
    value = h5.attrs.get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def _load_keras3(h5: Any) -> Any:
    require("keras", framework="Keras", extra="keras")
    from keras.src.legacy.saving import legacy_h5_format
    from keras.src.saving.serialization_lib import SafeModeScope

    with SafeModeScope(True):
        return legacy_h5_format.load_model_from_hdf5(h5, compile=False)


def _load_tf_keras(h5: Any) -> Any:
    tf_keras = require("tf_keras", framework="tf.keras 2.x (tf_keras)", extra="keras")
    return tf_keras.models.load_model(h5, compile=False)


class KerasModel(ServedModel):
    platform = "keras"

    def __init__(self, model: Any, *, keras_version: str) -> None:
        self.model = model
        self.keras_version = keras_version
        inputs = tuple(
            _spec(name, t) for name, t in zip(_input_names(model), model.inputs, strict=True)
        )
        outputs = tuple(
            _spec(name, t) for name, t in zip(_output_names(model), model.outputs, strict=True)
        )
        super().__init__(ModelSignature(inputs=inputs, outputs=outputs))
        self._input_order = [s.name for s in inputs]

    @property
    def confidence_output(self) -> str | None:
        last = self.model.layers[-1] if self.model.layers else None
        activation = last.get_config().get("activation") if last is not None else None
        return self.primary_output if activation in {"softmax", "sigmoid"} else None

    def predict(self, inputs: Tensors, outputs: Sequence[str]) -> dict[str, np.ndarray[Any, Any]]:
        args = [inputs[name] for name in self._input_order]
        result = self.model(args[0] if len(args) == 1 else args, training=False)
        values = result if isinstance(result, list | tuple) else [result]
        named = dict(zip(self.signature.output_names, values, strict=True))
        return {name: np.asarray(named[name]) for name in outputs}

    def warm_up(self) -> None:
        feeds: dict[str, np.ndarray[Any, Any]] = {}
        for spec in self.signature.inputs:
            if spec.shape is None or -1 in spec.shape[1:] or spec.datatype == "BYTES":
                return
            feeds[spec.name] = np.zeros((1, *spec.shape[1:]), dtype=_numpy(spec.datatype))
        self.predict(feeds, self.signature.output_names)


def _numpy(datatype: str) -> np.dtype[Any]:
    from modelport.runtime.signature import NUMPY_OF

    return NUMPY_OF[datatype]


def _input_names(model: Any) -> list[str]:
    names = getattr(model, "input_names", None)
    if names:
        return list(names)
    return [_clean(t.name) for t in model.inputs]


def _output_names(model: Any) -> list[str]:
    names = getattr(model, "output_names", None)
    if names:
        return list(names)
    return [f"output-{i}" for i in range(len(model.outputs))]


def _clean(name: str) -> str:
    return name.split(":")[0]


def _spec(name: str, tensor: Any) -> TensorSpec:
    dtype = getattr(tensor.dtype, "name", tensor.dtype)
    shape = tuple(-1 if d is None else int(d) for d in tensor.shape)
    return TensorSpec(name, datatype_of(np.dtype(str(dtype))), shape)
