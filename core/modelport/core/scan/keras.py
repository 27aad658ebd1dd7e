"""Keras ``.h5`` files: the HDF5 structure and the model configuration JSON.

HDF5 objects must be plain groups and datasets (no external, soft or virtual links, no external
storage, only the standard filters). ``model_config`` and ``training_config`` are parsed and walked
to any depth: every ``class_name`` must be a built-in Keras class; ``Lambda`` and its relatives,
custom objects (a ``module`` outside Keras, a ``registered_name`` of a package), code-loading
layers and unknown function names are refused wherever they appear, however nested or wrapped.
"""

from __future__ import annotations

import functools
import io
import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from modelport.core.scan.limits import Deadline, LimitExceeded, Limits
from modelport.core.scan.verdict import Code, Finding

# deflate, shuffle, fletcher32, szip, nbit, scaleoffset, lzf
_FILTERS = frozenset({1, 2, 3, 4, 5, 6, 32000})
_FUNCTION_SLOTS = frozenset(
    {
        "activation", "recurrent_activation", "kernel_initializer", "bias_initializer",
        "recurrent_initializer", "embeddings_initializer", "gamma_initializer",
        "beta_initializer", "moving_mean_initializer", "moving_variance_initializer",
        "depthwise_initializer", "pointwise_initializer", "alpha_initializer",
        "kernel_regularizer", "bias_regularizer", "activity_regularizer",
        "recurrent_regularizer", "kernel_constraint", "bias_constraint",
        "recurrent_constraint", "loss", "metrics", "weighted_metrics", "function",
        "output_shape",
    }
)  # fmt: skip


_TF_KERAS_OPTIMIZERS = frozenset(
    {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion",
     "Adafactor"}
)  # fmt: skip


@dataclass(frozen=True)
class KerasNames:
    classes: frozenset[str]
    functions: frozenset[str]
    lambdas: frozenset[str]
    code: frozenset[str]


@functools.cache
def names() -> KerasNames:
    text = resources.files("modelport.core.scan").joinpath("keras_allowlist.toml").read_text()
    doc = tomllib.loads(text)
    return KerasNames(
        frozenset(doc["classes"]),
        frozenset(doc["functions"]),
        frozenset(doc["lambda_classes"]),
        frozenset(doc["code_classes"]),
    )


def scan_h5(data: memoryview, limits: Limits, deadline: Deadline, location: str) -> list[Finding]:
    try:
        import h5py
    except ImportError as exc:
        raise ModuleNotFoundError("h5py is not installed; cannot scan .h5 files") from exc
    findings: list[Finding] = []
    try:
        handle = h5py.File(io.BytesIO(bytes(data)), "r")
    except (OSError, ValueError) as exc:
        return [Finding(Code.MALFORMED, location, f"not a readable HDF5 file ({exc})")]
    with handle:
        _check_objects(handle, h5py, limits, deadline, location, findings)
        for key in ("model_config", "training_config"):
            if key in handle.attrs:
                text = handle.attrs[key]
                raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
                check_config(raw, f"{location}:{key}", limits, findings)
    return findings


def _check_objects(
    handle: Any,
    h5py: Any,
    limits: Limits,
    deadline: Deadline,
    location: str,
    findings: list[Finding],
) -> None:
    count = 0
    declared = 0
    pending = [("", handle)]
    while pending:
        path, group = pending.pop()
        for key in group:
            count += 1
            if count > limits.max_hdf5_objects:
                raise LimitExceeded("max_hdf5_objects", "too many HDF5 objects")
            name = f"{path}/{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink | h5py.SoftLink):
                findings.append(
                    Finding(Code.HDF5_LINK, f"{location}:{name}", f"{type(link).__name__}")
                )
                continue
            obj = group[key]
            if isinstance(obj, h5py.Group):
                pending.append((name, obj))
            elif isinstance(obj, h5py.Dataset):
                _check_dataset(obj, f"{location}:{name}", findings)
                declared += int(obj.size or 0) * int(obj.dtype.itemsize)
                if declared > limits.max_decompressed_bytes:
                    raise LimitExceeded(
                        "max_decompressed_bytes",
                        "HDF5 datasets declare more than max_decompressed_bytes="
                        f"{limits.max_decompressed_bytes}",
                    )
        deadline.check()


def _check_dataset(ds: Any, where: str, findings: list[Finding]) -> None:
    if ds.is_virtual:
        findings.append(Finding(Code.HDF5_LINK, where, "virtual dataset"))
    if ds.external:
        findings.append(Finding(Code.HDF5_LINK, where, "dataset with external storage"))
    plist = ds.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        fid = plist.get_filter(i)[0]
        if fid not in _FILTERS:
            findings.append(Finding(Code.HDF5_LINK, where, f"unknown HDF5 filter {fid}"))


def check_config(raw: bytes, where: str, limits: Limits, findings: list[Finding]) -> None:
    """Walk a Keras config JSON to any depth."""
    if len(raw) > limits.max_json_bytes:
        raise LimitExceeded("max_json_bytes", f"{where}: config exceeds max_json_bytes")
    try:
        doc = json.loads(raw)
    except ValueError:
        findings.append(Finding(Code.MALFORMED, where, "config is not JSON"))
        return
    known = names()
    stack: list[tuple[Any, str, int]] = [(doc, "$", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > limits.max_json_depth:
            raise LimitExceeded("max_json_depth", f"{where}: config nested too deeply")
        if isinstance(node, dict):
            _check_object(node, f"{where}:{path}", known, findings)
            for key, value in node.items():
                if key in _FUNCTION_SLOTS and isinstance(value, str):
                    _check_function_name(value, f"{where}:{path}.{key}", known, findings)
                stack.append((value, f"{path}.{key}", depth + 1))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))


def _check_object(node: dict[str, Any], where: str, known: KerasNames, out: list[Finding]) -> None:
    cls = node.get("class_name")
    if cls is None:
        return
    if not isinstance(cls, str):
        out.append(Finding(Code.KERAS_UNKNOWN_CLASS, where, "class_name is not a string"))
        return
    if cls in known.lambdas:
        out.append(Finding(Code.KERAS_LAMBDA, where, f"{cls} layer carries Python code"))
        return
    if cls in known.code:
        out.append(Finding(Code.KERAS_CUSTOM_OBJECT, where, f"{cls} loads code or files"))
        return
    module = node.get("module")
    registered = node.get("registered_name")
    if cls.startswith("Custom>") and cls.removeprefix("Custom>") in _TF_KERAS_OPTIMIZERS:
        cls = cls.removeprefix("Custom>")  # tf_keras names its built-in optimizers this way
    if cls == "function":
        # Keras 3 spells a built-in function as {"class_name": "function", "config": "relu"}.
        name = node.get("config")
        if not isinstance(name, str) or name not in known.functions:
            out.append(Finding(Code.KERAS_CUSTOM_OBJECT, where, f"function {name!r}"))
        if registered not in (None, name):
            out.append(Finding(Code.KERAS_CUSTOM_OBJECT, where, f"registered as {registered!r}"))
        registered = None
    if module is not None and not (
        isinstance(module, str) and (module == "keras" or module.startswith("keras."))
    ):
        out.append(Finding(Code.KERAS_CUSTOM_OBJECT, where, f"{cls} from module {module!r}"))
    elif registered is not None and registered != cls:
        out.append(Finding(Code.KERAS_CUSTOM_OBJECT, where, f"{cls} registered as {registered!r}"))
    elif cls not in known.classes and cls != "function":
        out.append(Finding(Code.KERAS_UNKNOWN_CLASS, where, f"{cls} is not a built-in class"))


def _check_function_name(value: str, where: str, known: KerasNames, out: list[Finding]) -> None:
    if value not in known.functions and value.lower() not in known.functions:
        out.append(Finding(Code.KERAS_CUSTOM_OBJECT, where, f"unknown function {value!r}"))
