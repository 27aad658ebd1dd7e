"""What a protocol decodes a request into, what the data plane answers, and the encoded reply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

Array = np.ndarray[Any, Any]

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """Named input arrays, already checked against the signature, and the outputs to compute."""

    inputs: dict[str, Array]
    outputs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InferenceResponse:
    """The computed outputs, in the order the request asked for them."""

    model_name: str
    outputs: dict[str, Array]


@dataclass(frozen=True, slots=True)
class Reply:
    """An encoded response body with its media type and any headers."""

    body: bytes
    media_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, doc: Any) -> Reply:
        """A JSON reply; numpy arrays in ``doc`` are serialised by orjson itself."""
        return cls(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))
