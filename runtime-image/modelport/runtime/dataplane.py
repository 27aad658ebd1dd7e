"""The data plane: the one served model, its readiness, and predictions.

``infer`` takes a decoded request (see ``protocols``) and owns the rest of its way to the model:
the deadline (504), adaptive batching (``batching.Scheduler``) and the model call (500 when the
model raises).
"""

from __future__ import annotations

import logging
from typing import Any

from modelport.core.errors import ModelportError, NotFound, NotReady, Timeout
from modelport.core.version import VERSION
from modelport.runtime.batching import Scheduler
from modelport.runtime.loaders.base import ServedModel
from modelport.runtime.metrics import RuntimeMetrics
from modelport.runtime.protocols import InferenceRequest, InferenceResponse
from modelport.runtime.settings import RuntimeSettings

log = logging.getLogger("modelport.runtime")

SERVER_NAME = "modelport"
#: OIP extensions served besides the core protocol.
EXTENSIONS = ("binary_tensor_data", "kserve_v1", "modelport_predict", "metrics")


class PredictionFailed(ModelportError):
    status = 500
    code = "prediction_failed"


class DataPlane:
    def __init__(self, settings: RuntimeSettings, metrics: RuntimeMetrics) -> None:
        self.settings = settings
        self.name = settings.model_name
        self.metrics = metrics
        self.model: ServedModel | None = None
        self.scheduler: Scheduler | None = None
        self.draining = False

    # ------------------------------------------------------------------ state

    def set_model(self, model: ServedModel) -> None:
        self.model = model
        self.scheduler = Scheduler(
            model,
            max_batch_size=self.settings.max_batch_size,
            max_batch_wait_ms=self.settings.max_batch_wait_ms,
            call_delay_seconds=self.settings.debug_predict_delay_seconds,
            on_batch=self.metrics.batch_rows.observe,
        )
        self.metrics.ready.set(1)
        if self.settings.max_batch_size > 1 and not self.scheduler.batching:
            log.warning("adaptive batching is off: the model's inputs have no free batch dimension")

    @property
    def ready(self) -> bool:
        return self.model is not None and not self.draining

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()

    def served(self, name: str | None = None) -> ServedModel:
        """The model if ``name`` is ours (None: the one served here) and it is ready; 404 or 503
        otherwise."""
        if name is None:
            name = self.name
        if name != self.name:
            raise NotFound(
                f"no model named {name!r} is served here", details={"models": [self.name]}
            )
        if self.model is None:
            raise NotReady(f"model {name!r} is not ready", headers={"Retry-After": "1"})
        return self.model

    # ------------------------------------------------------------------ metadata

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": VERSION, "extensions": list(EXTENSIONS)}

    def model_metadata(self, name: str) -> dict[str, Any]:
        model = self.served(name)
        return {
            "name": self.name,
            "versions": [],
            "platform": model.platform,
            "inputs": [s.metadata() for s in model.signature.inputs],
            "outputs": [s.metadata() for s in model.signature.outputs],
        }

    # ------------------------------------------------------------------ predictions

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        """Predict with the configured deadline: 504 past it, 500 when the model raises.

        The outputs come back in the order the request names them.
        """
        assert self.scheduler is not None, "served() answers 503 before a model is set"
        timeout = self.settings.predict_timeout_seconds
        try:
            outputs = await self.scheduler.predict(request.inputs, request.outputs, timeout)
        except TimeoutError:
            raise Timeout(
                f"the prediction took longer than {timeout:g} s",
                details={"timeoutSeconds": timeout},
            ) from None
        except ModelportError:
            raise
        except Exception as exc:
            log.warning("prediction failed: %s: %s", type(exc).__name__, exc)
            raise PredictionFailed(
                f"the model could not predict on this input ({type(exc).__name__}: {exc}); "
                "check the input against the model's metadata, then retry",
            ) from exc
        return InferenceResponse(self.name, {name: outputs[name] for name in request.outputs})
