"""KServe v1: ``{"instances": [...]}`` (or ``{"inputs": [...]}``) → ``{"predictions": [...]}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from modelport.core.errors import BadInput
from modelport.runtime.protocols.tensors import decode_instances, parse_json, to_jsonable
from modelport.runtime.protocols.types import InferenceRequest, InferenceResponse, Reply

if TYPE_CHECKING:
    from modelport.runtime.loaders.base import ServedModel


def decode(body: bytes, headers: Mapping[str, str], model: ServedModel) -> InferenceRequest:
    """The rows to predict on; the answer is the model's primary output."""
    doc = parse_json(body)
    if not isinstance(doc, dict) or ("instances" not in doc and "inputs" not in doc):
        raise BadInput('the request must be {"instances": [...]}')
    rows = doc["instances"] if "instances" in doc else doc["inputs"]
    inputs, _ = decode_instances(rows, model.signature)
    return InferenceRequest(inputs=inputs, outputs=(model.primary_output,))


def encode(request: InferenceRequest, response: InferenceResponse) -> Reply:
    return Reply.json({"predictions": to_jsonable(response.outputs[request.outputs[0]])})
