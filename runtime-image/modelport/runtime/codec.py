"""Tensors in and out of the wire formats, validated against the model's signature by hand.

No pydantic on this path: a request is parsed with orjson, each tensor becomes one numpy array,
and every mismatch with the signature is collected into one 400 with all the schema errors.
Binary tensor data (the OIP binary extension that tritonclient uses by default) is supported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
from modelport.core.errors import BadInput
from modelport.runtime.signature import NUMERIC, NUMPY_OF, ModelSignature, TensorSpec, datatype_of

Array = np.ndarray[Any, Any]

#: Header naming the JSON part's length when binary tensor data follows it.
BINARY_HEADER = "inference-header-content-length"

_INT_KINDS = frozenset("iub")
_NUMBER_KINDS = frozenset("iubf")


class SchemaError(BadInput):
    code = "invalid_input"


class _Errors:
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


# ---------------------------------------------------------------- Open Inference Protocol v2


def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, memoryview | None]:
    """Split a body into its JSON part and the binary tensor data after it."""
    if header_length is None:
        return body, None
    try:
        n = int(header_length)
    except ValueError:
        raise BadInput("Inference-Header-Content-Length is not an integer") from None
    if not 0 <= n <= len(body):
        raise BadInput("Inference-Header-Content-Length is larger than the request body")
    return body[:n], memoryview(body)[n:]


def decode_v2_inputs(
    doc: Any, signature: ModelSignature, binary: memoryview | None
) -> tuple[dict[str, Array], list[str] | None, dict[str, Any]]:
    """Turn an OIP ``$inference_request`` into named arrays.

    Returns the inputs, the requested output names (None: all) and per-output parameters.
    """
    if not isinstance(doc, dict):
        raise BadInput("the inference request must be a JSON object")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise SchemaError(
            "the inference request has no inputs",
            details={"expected": [s.metadata() for s in signature.inputs]},
        )
    errors = _Errors()
    offset = 0
    given: dict[str, Array] = {}
    for i, item in enumerate(raw_inputs):
        name = item.get("name") if isinstance(item, dict) else None
        where = name if isinstance(name, str) else f"inputs[{i}]"
        try:
            array, used = _decode_tensor(item, binary, offset)
        except ValueError as exc:
            errors.add(where, str(exc))
            continue
        offset += used
        given[where] = array
    errors.raise_if_any(signature)
    inputs = match_inputs(given, signature)
    requested, params = _requested_outputs(doc, signature)
    return inputs, requested, params


def _decode_tensor(item: Any, binary: memoryview | None, offset: int) -> tuple[Array, int]:
    if not isinstance(item, dict):
        raise ValueError("each input must be an object with name, shape, datatype and data")
    datatype = item.get("datatype")
    shape = item.get("shape")
    if datatype not in NUMPY_OF:
        raise ValueError(f"unknown datatype {datatype!r}; expected one of {sorted(NUMPY_OF)}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError("shape must be a list of non-negative integers")
    count = math.prod(shape)
    params = item.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if binary is None or not isinstance(size, int) or offset + size > len(binary):
            raise ValueError("binary_data_size points past the binary data in the request")
        chunk = binary[offset : offset + size]
        return _from_binary(chunk, datatype, count).reshape(shape), size
    if "data" not in item:
        raise ValueError("the input has no data")
    array = _from_json(item["data"], datatype)
    if array.size != count:
        raise ValueError(f"shape {shape} holds {count} elements but data has {array.size}")
    return array.reshape(shape), 0


def _from_json(data: Any, datatype: str) -> Array:
    if datatype == "BYTES":
        flat = _flatten(data)
        if not all(isinstance(v, str) for v in flat):
            raise ValueError("BYTES data must be strings")
        return np.array(flat, dtype=object)
    try:
        array = np.asarray(data)
    except ValueError:
        raise ValueError("data is ragged: every row must have the same length") from None
    if array.size and array.dtype.kind not in _NUMBER_KINDS:
        raise ValueError(f"{datatype} data must be numbers")
    if datatype == "BOOL":
        if array.size and array.dtype.kind != "b":
            raise ValueError("BOOL data must be true or false")
    elif NUMPY_OF[datatype].kind in _INT_KINDS and array.dtype.kind == "f":
        raise ValueError(f"{datatype} data must be integers")
    return array.astype(NUMPY_OF[datatype], copy=False).ravel()


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    out: list[Any] = []
    for row in data:
        out.extend(_flatten(row))
    return out


def _from_binary(chunk: memoryview, datatype: str, count: int) -> Array:
    if datatype == "BYTES":
        values: list[bytes] = []
        pos = 0
        raw = bytes(chunk)
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise ValueError("truncated BYTES element in the binary data")
            n = int.from_bytes(raw[pos : pos + 4], "little")
            values.append(raw[pos + 4 : pos + 4 + n])
            pos += 4 + n
        if len(values) != count:
            raise ValueError(
                f"the shape holds {count} elements but the binary data has {len(values)}"
            )
        return np.array(values, dtype=object)
    dtype = NUMPY_OF[datatype].newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise ValueError(
            f"binary data is {len(chunk)} bytes, the shape needs {count * dtype.itemsize}"
        )
    return np.frombuffer(chunk, dtype=dtype).astype(NUMPY_OF[datatype], copy=False)


def match_inputs(given: dict[str, Array], signature: ModelSignature) -> dict[str, Array]:
    """Check named arrays against the signature; cast them to the model's datatypes."""
    errors = _Errors()
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


def _check(spec: TensorSpec, array: Array, errors: _Errors) -> Array | None:
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


def _requested_outputs(
    doc: dict[str, Any], signature: ModelSignature
) -> tuple[list[str] | None, dict[str, Any]]:
    raw = doc.get("outputs")
    if raw is None:
        return None, {}
    if not isinstance(raw, list):
        raise BadInput("outputs must be a list of {name} objects")
    names: list[str] = []
    params: dict[str, Any] = {}
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise BadInput("each requested output needs a name")
        if signature.output(name) is None:
            raise SchemaError(
                f"the model has no output named {name!r}",
                details={"outputs": list(signature.output_names)},
            )
        names.append(name)
        params[name] = item.get("parameters") or {}
    return names, params


def encode_v2_response(
    *,
    model_name: str,
    request_id: Any,
    outputs: Mapping[str, Array],
    binary_outputs: Iterable[str] = (),
) -> tuple[bytes, int | None]:
    """The OIP ``$inference_response``; returns the body and the JSON length if binary follows."""
    binary = set(binary_outputs)
    blobs: list[bytes] = []
    tensors: list[dict[str, Any]] = []
    for name, array in outputs.items():
        tensor: dict[str, Any] = {
            "name": name,
            "datatype": datatype_for_output(array),
            "shape": list(array.shape),
        }
        if name in binary:
            blob = _to_binary(array)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = json_data(array)
        tensors.append(tensor)
    doc: dict[str, Any] = {"model_name": model_name, "outputs": tensors}
    if request_id is not None:
        doc["id"] = request_id
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def datatype_for_output(array: Array) -> str:
    return datatype_of(array.dtype)


def json_data(array: Array) -> Any:
    """A flat, JSON-serialisable view of an output (orjson serialises numeric arrays itself)."""
    flat = array.ravel()
    if flat.dtype.kind in "OSU":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat]
    if flat.dtype == np.float16:
        return flat.astype(np.float32)
    return np.ascontiguousarray(flat)


def _to_binary(array: Array) -> bytes:
    if array.dtype.kind in "OSU":
        parts = []
        for v in array.ravel():
            raw = v if isinstance(v, bytes) else str(v).encode()
            parts.append(len(raw).to_bytes(4, "little") + raw)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def binary_outputs(
    doc: Mapping[str, Any], names: Sequence[str], params: Mapping[str, Any]
) -> list[str]:
    """Which outputs the client wants as binary data."""
    request_params = doc.get("parameters") or {}
    default = bool(request_params.get("binary_data_output", False))
    chosen = []
    for name in names:
        flag = (params.get(name) or {}).get("binary_data", default)
        if flag:
            chosen.append(name)
    return chosen


# ---------------------------------------------------------------- KServe v1 and /predict


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
    flat = _flatten(value)
    if flat and all(isinstance(v, str) for v in flat):
        try:
            return np.array(value, dtype=object)
        except ValueError:
            raise SchemaError(f"input {name!r}: rows are ragged") from None
    try:
        array = np.asarray(value)
    except ValueError:
        raise SchemaError(f"input {name!r}: rows are ragged") from None
    if array.size and array.dtype.kind not in _NUMBER_KINDS:
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
