"""A model's input/output schema, read from its runtime, and the OpenAPI document built from it.

The runtime is the one place that knows the schema (it loads the model); the control API asks it
for ``/v2/models/{id}`` through the deployer, so the owner sees the schema without an API key.
Everything here is built from that answer: an example input and a per-model OpenAPI document
that describes the model's ``/predict``, KServe v1 and Open Inference Protocol v2 requests.
"""

from __future__ import annotations

import math
from typing import Any

from modelport.api.context import AppContext
from modelport.api.schemas import ModelSchema, TensorMetadata
from modelport.api.services.models import owned
from modelport.api.services.users import Principal
from modelport.core.errors import NotReady
from pydantic import ValidationError
from sqlalchemy.orm import Session

#: Open Inference Protocol datatype → JSON Schema type of one element.
_JSON_TYPE = {"BOOL": "boolean", "BYTES": "string"} | {
    f"{kind}{bits}": "integer" for kind in ("INT", "UINT") for bits in (8, 16, 32, 64)
}

_ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
                "timestamp": {"type": "string"},
            },
        }
    },
}


def model_schema(
    session: Session, *, ctx: AppContext, caller: Principal, model_id: str
) -> ModelSchema:
    """The owner's model's inputs and outputs; 503 until its runtime answers."""
    model = owned(session, caller=caller, model_id=model_id)
    doc = ctx.deployer.metadata(model.id, token=ctx.usage_token(model.id))
    try:
        return ModelSchema(
            model_id=model.id,
            platform=str((doc or {}).get("platform") or ""),
            inputs=[TensorMetadata.model_validate(t) for t in (doc or {})["inputs"]],
            outputs=[TensorMetadata.model_validate(t) for t in (doc or {})["outputs"]],
        )
    except (KeyError, TypeError, ValidationError):
        raise NotReady(
            f"model {model.id} is not serving yet: its schema shows once it is Ready",
            headers={"Retry-After": "5"},
        ) from None


def _zero(datatype: str) -> Any:
    kind = _JSON_TYPE.get(datatype, "number")
    return {"boolean": False, "string": "", "integer": 0}.get(kind, 0.0)


def example_shape(tensor: TensorMetadata) -> list[int]:
    """The tensor's shape with one row (or one element) where a dimension is free."""
    return [size if size > 0 else 1 for size in tensor.shape]


def example_tensor(tensor: TensorMetadata) -> Any:
    """A zero-filled value of the tensor's example shape, as nested lists."""
    value: Any = _zero(tensor.datatype)
    for size in reversed(example_shape(tensor)):
        value = [value] * size
    return value


def example_input(schema: ModelSchema) -> Any:
    """The ``inputData`` (and v1 ``instances``) of one row: the rows themselves for a model with
    one input, else an object mapping each input's name to its rows."""
    if len(schema.inputs) == 1:
        return example_tensor(schema.inputs[0])
    return {t.name: example_tensor(t) for t in schema.inputs}


def _json_schema(tensor: TensorMetadata) -> dict[str, Any]:
    """Nested arrays of the tensor's shape; fixed dimensions are exact item counts."""
    node: dict[str, Any] = {"type": _JSON_TYPE.get(tensor.datatype, "number")}
    for size in reversed(tensor.shape):
        node = {"type": "array", "items": node}
        if size > 0:
            node |= {"minItems": size, "maxItems": size}
    return node


def _rows_schema(schema: ModelSchema) -> dict[str, Any]:
    if len(schema.inputs) == 1:
        return _json_schema(schema.inputs[0])
    return {
        "type": "object",
        "properties": {t.name: _json_schema(t) for t in schema.inputs},
        "required": [t.name for t in schema.inputs],
    }


def _v2_tensor(tensor: TensorMetadata) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"const": tensor.name},
            "datatype": {"const": tensor.datatype},
            "shape": {"type": "array", "items": {"type": "integer"}, "example": tensor.shape},
            "data": {"type": "array", "description": f"{tensor.datatype}, shape {tensor.shape}"},
        },
    }


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _post(summary: str, request: dict[str, Any], example: Any, answer: dict[str, Any]) -> Any:
    json_body = {"application/json": {"schema": request, "example": example}}
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": json_body},
            "responses": {
                "200": {
                    "description": "The prediction",
                    "content": {"application/json": {"schema": answer}},
                },
                "400": {
                    "description": "The input does not fit the schema (details: tensor, shape)",
                    "content": _json(_ERROR_BODY),
                },
                "401": {"description": "No valid API key"},
                "429": {"description": "Rate limit reached"},
            },
        }
    }


def openapi_document(
    session: Session, *, ctx: AppContext, caller: Principal, model_id: str
) -> dict[str, Any]:
    """OpenAPI 3.1 for calling one model at its endpoint, with its own shapes."""
    schema = model_schema(session, ctx=ctx, caller=caller, model_id=model_id)
    model = owned(session, caller=caller, model_id=model_id)
    url = ctx.deployer.state(model.id).url or model.endpoint_url
    rows = _rows_schema(schema)
    example = example_input(schema)
    v2_example = {
        "inputs": [
            {
                "name": t.name,
                "datatype": t.datatype,
                "shape": example_shape(t),
                "data": [_zero(t.datatype)] * math.prod(example_shape(t)),
            }
            for t in schema.inputs
        ]
    }
    v2_answer = {
        "type": "object",
        "properties": {
            "model_name": {"type": "string"},
            "id": {},
            "outputs": {
                "type": "array",
                "items": {"anyOf": [_v2_tensor(t) for t in schema.outputs]},
            },
        },
    }
    predictions = {"type": "object", "properties": {"predictions": {"type": "array"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{model.name} (Modelport model {model.id})",
            "version": str(model.active_version),
            "description": "Inputs: "
            + "; ".join(f"{t.name} {t.datatype} {t.shape}" for t in schema.inputs)
            + ". Outputs: "
            + "; ".join(f"{t.name} {t.datatype} {t.shape}" for t in schema.outputs)
            + ".",
        },
        "servers": [{"url": url}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
        },
        "paths": {
            "/predict": _post(
                "Predict (Modelport's shape)",
                {"type": "object", "required": ["inputData"], "properties": {"inputData": rows}},
                {"inputData": example},
                predictions
                | {
                    "properties": {
                        "predictions": {"type": "array"},
                        "confidence": {"type": "array"},
                        "processingTime": {"type": "number"},
                    }
                },
            ),
            f"/v1/models/{model.id}:predict": _post(
                "Predict (KServe v1)",
                {"type": "object", "required": ["instances"], "properties": {"instances": rows}},
                {"instances": example},
                predictions,
            ),
            f"/v2/models/{model.id}/infer": _post(
                "Infer (Open Inference Protocol v2)",
                {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "inputs": {
                            "type": "array",
                            "items": {"anyOf": [_v2_tensor(t) for t in schema.inputs]},
                        },
                    },
                },
                v2_example,
                v2_answer,
            ),
        },
    }
