"""Keras files: ``.h5`` (HDF5) and ``.keras`` (Keras 3's zip). The HDF5 structure and the model
configuration JSON.

HDF5 objects must be plain groups and datasets (no external, soft or virtual links, no external
storage, only the standard filters). ``model_config`` and ``training_config`` are parsed and walked
to any depth: every ``class_name`` must be a built-in Keras class; ``Lambda`` and its relatives,
custom objects (a ``module`` outside Keras, a ``registered_name`` of a package), code-loading
layers and unknown function names are refused wherever they appear, however nested or wrapped.

A ``.keras`` archive is read with the strict zip reader and must hold exactly ``metadata.json``,
``config.json`` and ``model.weights.h5`` (anything more, assets included, Keras would extract to
disk and hand to layers). ``config.json`` is walked as ``model_config`` is; ``model.weights.h5``
must be weights alone: the same HDF5 rules, no model configuration, plain attribute values only.
"""

from __future__ import annotations

import functools
import io
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from modelport.core.formats.keras import ARCHIVE_MEMBERS, HDF5_OFFSETS, HDF5_SIGNATURE
from modelport.core.scan.limits import Deadline, LimitExceeded, Limits
from modelport.core.scan.verdict import Code, Finding
from modelport.core.scan.zipread import Entry, ZipViolation, member_bytes, read_entries

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


_CONFIG_ATTRS = ("model_config", "training_config")
# Attribute types Keras writes and reads as plain values: numbers, booleans and strings.
_PLAIN_KINDS = frozenset("biufSU")


def scan_h5(data: memoryview, limits: Limits, deadline: Deadline, location: str) -> list[Finding]:
    def configs(handle: Any, h5py: Any, findings: list[Finding]) -> None:
        for key in _CONFIG_ATTRS:
            if key in handle.attrs:
                text = handle.attrs[key]
                raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
                check_config(raw, f"{location}:{key}", limits, findings)

    return _scan_hdf5(data, limits, deadline, location, configs)


def _scan_hdf5(
    data: memoryview,
    limits: Limits,
    deadline: Deadline,
    location: str,
    then: Callable[[Any, Any, list[Finding]], None],
) -> list[Finding]:
    """Open the bytes as HDF5 in memory, check every object, then ``then(handle, h5py, out)``."""
    try:
        import h5py
    except ImportError as exc:
        raise ModuleNotFoundError("h5py is not installed; cannot scan Keras files") from exc
    findings: list[Finding] = []
    try:
        handle = h5py.File(io.BytesIO(bytes(data)), "r")
    except (OSError, ValueError) as exc:
        return [Finding(Code.MALFORMED, location, f"not a readable HDF5 file ({exc})")]
    with handle:
        _check_objects(handle, h5py, limits, deadline, location, findings)
        then(handle, h5py, findings)
    return findings


def scan_keras(
    data: memoryview, limits: Limits, deadline: Deadline, location: str
) -> list[Finding]:
    """A ``.keras`` archive: its three members and nothing else, each read as Keras reads it."""
    try:
        entries = {e.name: e for e in read_entries(data, limits)}
    except ZipViolation as exc:
        return [Finding(Code.ZIP_VIOLATION, location, str(exc))]
    findings = [
        Finding(
            Code.UNEXPECTED_MEMBER,
            f"{location}:{name}",
            f"{name!r} is not a member of a Keras archive (only {', '.join(ARCHIVE_MEMBERS)}; "
            "assets and other files are not accepted)",
        )
        for name in sorted(set(entries) - set(ARCHIVE_MEMBERS))
    ]
    missing = [name for name in ARCHIVE_MEMBERS if name not in entries]
    if missing:
        why = f"no {', '.join(missing)} in the archive"
        findings.append(Finding(Code.MALFORMED, location, why))
    if findings:
        return findings
    _check_hdf5_offsets(data, entries["model.weights.h5"], location, findings)
    budget = [limits.max_decompressed_bytes]
    content: dict[str, memoryview] = {}
    for name in ARCHIVE_MEMBERS:
        try:
            content[name] = member_bytes(data, entries[name], limits, deadline, budget)
        except ZipViolation as exc:
            return [*findings, Finding(Code.ZIP_VIOLATION, f"{location}:{name}", str(exc))]
    _check_metadata(bytes(content["metadata.json"]), f"{location}:metadata.json", limits, findings)
    check_config(bytes(content["config.json"]), f"{location}:config.json", limits, findings)
    where = f"{location}:model.weights.h5"
    findings += _scan_weights(content["model.weights.h5"], limits, deadline, where)
    return findings


def _check_hdf5_offsets(
    data: memoryview, weights: Entry, location: str, findings: list[Finding]
) -> None:
    """HDF5 readers look for a file at these offsets too: only the weights member may be there."""
    for offset in HDF5_OFFSETS:
        if bytes(data[offset : offset + 8]) == HDF5_SIGNATURE and offset != weights.data_offset:
            why = f"HDF5 signature at offset {offset}: the file reads as two formats"
            findings.append(Finding(Code.POLYGLOT, location, why))


def _check_metadata(raw: bytes, where: str, limits: Limits, findings: list[Finding]) -> None:
    doc = _parse_json(raw, where, "metadata", limits)
    if not isinstance(doc, dict) or not isinstance(doc.get("keras_version"), str):
        findings.append(Finding(Code.MALFORMED, where, "not a JSON object with a keras_version"))


def _scan_weights(
    data: memoryview, limits: Limits, deadline: Deadline, location: str
) -> list[Finding]:
    """``model.weights.h5``: groups of datasets, no model configuration, plain attributes."""

    def weights_only(handle: Any, h5py: Any, findings: list[Finding]) -> None:
        for key in _CONFIG_ATTRS:
            if key in handle.attrs:
                why = f"a weights file carries {key} (the model's configuration is config.json)"
                findings.append(Finding(Code.UNEXPECTED_MEMBER, f"{location}:{key}", why))
        objects: list[tuple[str, Any]] = [("/", handle)]
        handle.visititems(lambda name, obj: objects.append((f"/{name}", obj)))
        for name, obj in objects:
            for key in obj.attrs:
                dtype = obj.attrs.get_id(key).dtype
                if dtype.kind not in _PLAIN_KINDS and h5py.check_string_dtype(dtype) is None:
                    why = f"attribute {key!r} is not a number or a string (HDF5 type {dtype})"
                    findings.append(Finding(Code.MALFORMED, f"{location}:{name}", why))
            deadline.check()

    return _scan_hdf5(data, limits, deadline, location, weights_only)


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


_NOT_JSON = object()


def _parse_json(raw: bytes, where: str, what: str, limits: Limits) -> Any:
    """The parsed document, or ``_NOT_JSON``; text over ``max_json_bytes`` is not parsed."""
    if len(raw) > limits.max_json_bytes:
        raise LimitExceeded("max_json_bytes", f"{where}: {what} exceeds max_json_bytes")
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def check_config(raw: bytes, where: str, limits: Limits, findings: list[Finding]) -> None:
    """Walk a Keras config JSON to any depth."""
    doc = _parse_json(raw, where, "config", limits)
    if doc is _NOT_JSON:
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
