"""Tensors shared by every protocol: JSON parsing, checking arrays against the signature, rows.

No pydantic on this path: a request is parsed with orjson, each tensor becomes one numpy array,
and every mismatch with the signature is collected into one 400 with all the schema errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from modelport.core.errors import BadInput
from modelport.runtime.protocols.types import Array
from modelport.runtime.signature import NUMERIC, NUMPY_OF, ModelSignature, TensorSpec, datatype_of

#: numpy kinds of integer (and boolean) arrays, and of every number.
INT_KINDS = frozenset("iub")
NUMBER_KINDS = frozenset("iubf")


class SchemaError(BadInput):
    code = "invalid_input"


class SchemaErrors:
    """Collects schema errors; raises them all at once."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, where: str, message: str) -> None:
        self.items.append({"input": where, "error": message})

    def raise_if_any(self, signature: ModelSignature) -> None:
        if self.items:
            raise SchemaError(
                "the request does not match the model's signature",
                details={
                    "errors": self.items,
                    "expected": [s.metadata() for s in signature.inputs],
                },
            )


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"the request body is not valid JSON: {exc}") from None


def flatten(data: Any) -> list[Any]:
    """Nested lists as one flat list (a scalar as a list of one)."""
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    out: list[Any] = []
    for row in data:
        out.extend(flatten(row))
    return out


def match_inputs(given: dict[str, Array], signature: ModelSignature) -> dict[str, Array]:
    """Check named arrays against the signature; cast them to the model's datatypes."""
    errors = SchemaErrors()
    specs = signature.inputs
    if len(specs) == 1 and len(given) == 1 and specs[0].name not in given:
        # One input each side: accept any name, as KServe's and MLServer's servers do.
        given = {specs[0].name: next(iter(given.values()))}
    out: dict[str, Array] = {}
    for spec in specs:
        array = given.get(spec.name)
        if array is None:
            errors.add(spec.name, "missing input")
            continue
        checked = _check(spec, array, errors)
        if checked is not None:
            out[spec.name] = checked
    for name in given.keys() - {s.name for s in specs}:
        errors.add(name, "the model has no input of this name")
    errors.raise_if_any(signature)
    return out


def _check(spec: TensorSpec, array: Array, errors: SchemaErrors) -> Array | None:
    got = "BYTES" if array.dtype == object else datatype_of(array.dtype)
    if spec.datatype == "BYTES" and got != "BYTES":
        errors.add(spec.name, f"expected BYTES (strings), got {got}")
        return None
    if spec.datatype != "BYTES" and got == "BYTES":
        errors.add(spec.name, f"expected {spec.datatype}, got BYTES")
        return None
    if spec.shape is not None:
        if array.ndim != len(spec.shape):
            errors.add(spec.name, f"expected shape {list(spec.shape)}, got {list(array.shape)}")
            return None
        for want, have in zip(spec.shape, array.shape, strict=True):
            if want != -1 and want != have:
                errors.add(spec.name, f"expected shape {list(spec.shape)}, got {list(array.shape)}")
                return None
    if spec.datatype in NUMERIC or spec.datatype == "BOOL":
        return array.astype(NUMPY_OF[spec.datatype], copy=False)
    return array


# ---------------------------------------------------------------- rows (KServe v1 and /predict)


def decode_instances(data: Any, signature: ModelSignature) -> tuple[dict[str, Array], bool]:
    """Rows (``instances``/``inputData``) into named arrays.

    Returns the arrays and whether a single instance was given without a batch dimension.
    """
    specs = signature.inputs
    if isinstance(data, dict):
        given = {k: _instance_array(v, k) for k, v in data.items()}
    elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        names = {k for row in data for k in row}
        given = {k: _instance_array([row.get(k) for row in data], k) for k in names}
    elif len(specs) == 1:
        given = {specs[0].name: _instance_array(data, specs[0].name)}
    else:
        raise SchemaError(
            f"the model has {len(specs)} inputs: send an object mapping each input to its rows",
            details={"expected": [s.metadata() for s in specs]},
        )
    single = _promote_single(given, specs)
    return match_inputs(given, signature), single


def _instance_array(value: Any, name: str) -> Array:
    if not isinstance(value, list):
        value = [value]
    flat = flatten(value)
    if flat and all(isinstance(v, str) for v in flat):
        try:
            return np.array(value, dtype=object)
        except ValueError:
            raise SchemaError(f"input {name!r}: rows are ragged") from None
    try:
        array = np.asarray(value)
    except ValueError:
        raise SchemaError(f"input {name!r}: rows are ragged") from None
    if array.size and array.dtype.kind not in NUMBER_KINDS:
        raise SchemaError(f"input {name!r}: values must be numbers or strings")
    return array


def _promote_single(given: dict[str, Array], specs: Sequence[TensorSpec]) -> bool:
    """A lone row without its batch dimension gets one."""
    promoted = False
    for spec in specs:
        array = given.get(spec.name)
        if array is None and len(specs) == 1 and len(given) == 1:
            key = next(iter(given))
            array, name = given[key], key
        else:
            name = spec.name
        if array is None or spec.shape is None:
            continue
        if array.ndim == len(spec.shape) - 1:
            given[name] = array[np.newaxis, ...]
            promoted = True
    return promoted


def to_jsonable(array: Array) -> Any:
    """Rows of an output as nested lists (orjson serialises numeric arrays natively)."""
    if array.dtype.kind in "OSU":
        return np.vectorize(
            lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v),
            otypes=[object],
        )(array).tolist()
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return np.ascontiguousarray(array)
