"""Modelport's own shape: ``POST /predict`` with ``{"inputData": ..., "modelId"?}`` →
``{"predictions", "confidence"?, "processingTime", "status"}``.

A single row sent without its batch dimension is answered without one. ``confidence`` is the
highest class probability of each row, when the model has an output of probabilities;
``processingTime`` is in milliseconds, from decoding the request to encoding the answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.core.errors import BadInput
from modelport.runtime.protocols.tensors import decode_instances, parse_json, to_jsonable
from modelport.runtime.protocols.types import Array, InferenceRequest, InferenceResponse, Reply

if TYPE_CHECKING:
    from modelport.runtime.loaders.base import ServedModel

#: Finds the served model by the request's ``modelId`` (None: the one served here).
Models = Callable[[str | None], "ServedModel"]


@dataclass(frozen=True, slots=True)
class PredictRequest(InferenceRequest):
    """Rows to predict on; ``outputs[0]`` is the prediction, ``confidence`` the probabilities."""

    single: bool = False
    confidence: str | None = None
    started: float = 0.0


def decode(body: bytes, headers: Mapping[str, str], models: Models) -> PredictRequest:
    """Parse the request, find its model, and check the rows against that model's signature."""
    started = time.perf_counter()
    doc = parse_json(body)
    if not isinstance(doc, dict) or "inputData" not in doc:
        raise BadInput('the request must be {"inputData": ...}')
    model_id = doc.get("modelId")
    model = models(str(model_id) if model_id else None)
    inputs, single = decode_instances(doc["inputData"], model.signature)
    primary, confidence = model.primary_output, model.confidence_output
    wanted = (primary,) if confidence is None or confidence == primary else (primary, confidence)
    return PredictRequest(
        inputs=inputs, outputs=wanted, single=single, confidence=confidence, started=started
    )


def encode(request: PredictRequest, response: InferenceResponse) -> Reply:
    outputs = response.outputs
    result: dict[str, Any] = {"predictions": _rows(outputs[request.outputs[0]], request.single)}
    if request.confidence is not None:
        scores = outputs[request.confidence]
        best = scores.max(axis=-1) if scores.ndim > 1 else scores
        result["confidence"] = _rows(best.astype(float), request.single)
    result["processingTime"] = round((time.perf_counter() - request.started) * 1000.0, 3)
    result["status"] = "success"
    return Reply.json(result)


def _rows(array: Array, single: bool) -> Any:
    value = to_jsonable(array)
    if single:
        return value[0] if isinstance(value, list) else value.tolist()[0]
    return value
