"""Open Inference Protocol v2 (REST), with the binary tensor data extension.

Binary tensor data is what tritonclient sends and asks for by default: the JSON part comes
first, its length in ``Inference-Header-Content-Length``, then each tensor's raw bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from modelport.core.errors import BadInput
from modelport.runtime.protocols.tensors import (
    INT_KINDS,
    NUMBER_KINDS,
    SchemaError,
    SchemaErrors,
    flatten,
    match_inputs,
    parse_json,
)
from modelport.runtime.protocols.types import (
    Array,
    InferenceRequest,
    InferenceResponse,
    Reply,
)
from modelport.runtime.signature import NUMPY_OF, ModelSignature, datatype_of

if TYPE_CHECKING:
    from modelport.runtime.loaders.base import ServedModel

#: Header naming the JSON part's length when binary tensor data follows it.
BINARY_HEADER = "inference-header-content-length"


@dataclass(frozen=True, slots=True)
class V2Request(InferenceRequest):
    """An ``$inference_request``: its id is echoed; some outputs may be wanted as binary data."""

    id: Any = None
    binary_outputs: frozenset[str] = frozenset()


def decode(body: bytes, headers: Mapping[str, str], model: ServedModel) -> V2Request:
    """Parse and check an ``$inference_request`` against the model's signature."""
    head, binary = split_binary(body, headers.get(BINARY_HEADER))
    doc = parse_json(head)
    inputs, requested, params = decode_inputs(doc, model.signature, binary)
    names = requested or list(model.signature.output_names)
    return V2Request(
        inputs=inputs,
        outputs=tuple(names),
        id=doc.get("id"),
        binary_outputs=frozenset(binary_outputs(doc, names, params)),
    )


def encode(request: V2Request, response: InferenceResponse) -> Reply:
    """The ``$inference_response``; binary outputs follow the JSON part."""
    payload, json_length = encode_outputs(
        model_name=response.model_name,
        request_id=request.id,
        outputs=response.outputs,
        binary_outputs=request.binary_outputs,
    )
    if json_length is None:
        return Reply(payload)
    headers = {"Inference-Header-Content-Length": str(json_length)}
    return Reply(payload, "application/octet-stream", headers)


# ---------------------------------------------------------------- decoding


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


def decode_inputs(
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
    errors = SchemaErrors()
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
        flat = flatten(data)
        if not all(isinstance(v, str) for v in flat):
            raise ValueError("BYTES data must be strings")
        return np.array(flat, dtype=object)
    try:
        array = np.asarray(data)
    except ValueError:
        raise ValueError("data is ragged: every row must have the same length") from None
    if array.size and array.dtype.kind not in NUMBER_KINDS:
        raise ValueError(f"{datatype} data must be numbers")
    if datatype == "BOOL":
        if array.size and array.dtype.kind != "b":
            raise ValueError("BOOL data must be true or false")
    elif NUMPY_OF[datatype].kind in INT_KINDS and array.dtype.kind == "f":
        raise ValueError(f"{datatype} data must be integers")
    return array.astype(NUMPY_OF[datatype], copy=False).ravel()


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


# ---------------------------------------------------------------- encoding


def encode_outputs(
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
            "datatype": datatype_of(array.dtype),
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
