"""The wire protocols the runtime speaks, one module each, all of the same shape.

``decode(body, headers, model) -> InferenceRequest`` parses a request and checks it against the
model's signature; ``encode(request, response) -> Reply`` answers it. The endpoints call nothing
else: the tensor code they share (``tensors``) stays behind them.

- ``v2``: Open Inference Protocol v2 (REST), with binary tensor data (tritonclient).
- ``v1``: KServe v1 (``instances`` → ``predictions``).
- ``predict``: Modelport's own ``/predict`` (``inputData`` → ``predictions``, ``confidence``).
"""

from modelport.runtime.protocols import predict, v1, v2
from modelport.runtime.protocols.types import InferenceRequest, InferenceResponse, Reply

__all__ = ["InferenceRequest", "InferenceResponse", "Reply", "predict", "v1", "v2"]
