"""HTTP endpoints: Open Inference Protocol v2, KServe v1, ``/predict`` and health; ``/metrics``
on a port of its own (``modelport.core.metrics_server``), which no Ingress or proxy routes.

Endpoint → protocol (decode) → data plane → model → protocol (encode). The routes are plain
Starlette routes on raw requests: each protocol module parses with orjson and checks the request
against the signature by hand, and encodes with orjson; no pydantic on the hot path. Every error
is a ``ModelportError`` turned into the error body by the app's exception handler.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from modelport.core.errors import ModelportError, NotFound, NotReady, TooLarge
from modelport.core.formats import SNIFF_BYTES, sniff
from modelport.core.metrics_server import metrics_server
from modelport.runtime import protocols
from modelport.runtime.artifact import fetch_plaintext
from modelport.runtime.auth import Authenticator, KeyStore, presented_key
from modelport.runtime.dataplane import DataPlane
from modelport.runtime.loaders import ModelLoadError, ServedModel, load_model
from modelport.runtime.metrics import RuntimeMetrics
from modelport.runtime.protocols import Reply
from modelport.runtime.settings import RuntimeSettings
from modelport.runtime.usage import UsageReporter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("modelport.runtime")

JSON = "application/json"
Handler = Callable[[Request], Awaitable[Response]]


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def reply(encoded: Reply) -> Response:
    """A protocol's encoded answer as the HTTP response."""
    return Response(encoded.body, media_type=encoded.media_type, headers=encoded.headers or None)


def error_response(exc: ModelportError) -> Response:
    """The one place an error becomes the design's error body, with its status and headers;
    only the app's exception handlers call it."""
    return json_response(exc.body(), exc.status, exc.headers or None)


# ---------------------------------------------------------------------------- loading


def failure_reason(exc: BaseException) -> str:
    """Why loading failed, in words a model's owner can act on."""
    return exc.message if isinstance(exc, ModelportError) else f"{type(exc).__name__}: {exc}"


def load_served_model(settings: RuntimeSettings, metrics: RuntimeMetrics) -> ServedModel:
    """Fetch, decrypt, verify, load and warm up the configured model (blocking)."""
    started = time.perf_counter()
    fetched = fetch_plaintext(settings)
    found = sniff(fetched.data[:SNIFF_BYTES])
    if found.family is not settings.format.family:
        content = found.family.value if found.family else "no model"
        raise ModelLoadError(
            f"the artifact is configured as {settings.format.value} "
            f"({settings.format.family.value}) but its content is {content} "
            f"({found.detail})"
        )
    loaded = time.perf_counter()
    model = load_model(fetched.data, settings.format)
    del fetched
    model.warm_up()
    done = time.perf_counter()
    gauge = metrics.load_seconds
    gauge.labels(settings.model_name, "fetch").set(loaded - started)
    gauge.labels(settings.model_name, "load").set(done - loaded)
    gauge.labels(settings.model_name, "total").set(done - started)
    log.info(
        "model %r ready (%s, %d inputs, %d outputs) in %.2f s",
        settings.model_name,
        model.platform,
        len(model.signature.inputs),
        len(model.signature.outputs),
        done - started,
    )
    return model


# ---------------------------------------------------------------------------- endpoints


class Endpoints:
    """Route handlers; each is a few lines over a protocol and the data plane."""

    def __init__(
        self,
        *,
        settings: RuntimeSettings,
        plane: DataPlane,
        auth: Authenticator,
        usage: UsageReporter,
        metrics: RuntimeMetrics,
    ) -> None:
        self.settings = settings
        self.plane = plane
        self.auth = auth
        self.usage = usage
        self.metrics = metrics

    def inference(self, protocol: str, handler: Handler) -> Handler:
        """Wrap an inference route: auth, metrics and usage; errors go on to the error handler."""

        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            self.metrics.in_flight.inc()
            key_id: str | None = None
            status = 500
            error: str | None = "internal_error"
            try:
                key_id = self.auth.check(request.headers)
                response = await handler(request)
                status, error = response.status_code, None
                return response
            except ModelportError as exc:
                status, error = exc.status, exc.code
                raise
            except Exception as exc:
                log.exception("unexpected error in %s", request.url.path)
                raise ModelportError("the runtime failed unexpectedly; retry shortly") from exc
            finally:
                self.metrics.in_flight.dec()
                elapsed = time.perf_counter() - started
                self.metrics.observe(protocol, status, elapsed, error)
                self.usage.record(key_id=key_id, seconds=elapsed, error=error is not None)

        return wrapped

    def keyed(self, handler: Handler) -> Handler:
        """Wrap a metadata route: it needs a key exactly when inference does, or the model's
        usage token, with which the control API reads the schema it shows its owner (that token
        reads metadata only: inference never accepts it)."""

        async def wrapped(request: Request) -> Response:
            if not self._from_control_api(request.headers):
                self.auth.check(request.headers)
            return await handler(request)

        return wrapped

    def _from_control_api(self, headers: Mapping[str, str]) -> bool:
        token_file = self.settings.usage_token_file
        presented = presented_key(headers)
        if token_file is None or presented is None:
            return False
        try:
            expected = token_file.read_text().strip()
        except OSError:
            return False
        return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())

    async def body(self, request: Request) -> bytes:
        limit = self.settings.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"the request body is larger than {limit} bytes")
        body = await request.body()
        if len(body) > limit:
            raise TooLarge(f"the request body is larger than {limit} bytes")
        return body

    # -- health and metadata

    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def ready(self, request: Request) -> Response:
        if not self.plane.ready:
            raise NotReady("the model is not ready")
        return json_response({"ready": True})

    async def model_ready(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name != self.plane.name:
            raise NotFound(f"no model named {name!r} is served here")
        if not self.plane.ready:
            raise NotReady(f"model {name!r} is not ready")
        return json_response({"name": name, "ready": True})

    async def server_metadata(self, request: Request) -> Response:
        return json_response(self.plane.server_metadata())

    async def model_metadata(self, request: Request) -> Response:
        return json_response(self.plane.model_metadata(request.path_params["name"]))

    async def v1_models(self, request: Request) -> Response:
        return json_response({"models": [self.plane.name]})

    # -- inference: decode, infer, encode

    async def v2_infer(self, request: Request) -> Response:
        model = self.plane.served(request.path_params["name"])
        decoded = protocols.v2.decode(await self.body(request), request.headers, model)
        return reply(protocols.v2.encode(decoded, await self.plane.infer(decoded)))

    async def v1_predict(self, request: Request) -> Response:
        model = self.plane.served(request.path_params["name"])
        decoded = protocols.v1.decode(await self.body(request), request.headers, model)
        return reply(protocols.v1.encode(decoded, await self.plane.infer(decoded)))

    async def predict(self, request: Request) -> Response:
        body = await self.body(request)
        decoded = protocols.predict.decode(body, request.headers, self.plane.served)
        return reply(protocols.predict.encode(decoded, await self.plane.infer(decoded)))


# ---------------------------------------------------------------------------- the app


def create_app(
    settings: RuntimeSettings,
    *,
    model: ServedModel | None = None,
    on_fatal: Callable[[BaseException], None] | None = None,
) -> Starlette:
    """The runtime's ASGI app. With ``model`` it serves that model at once; otherwise it loads
    the configured artifact in the background and calls ``on_fatal`` if that fails."""
    metrics = RuntimeMetrics(settings.model_name)
    plane = DataPlane(settings, metrics)
    if model is not None:
        plane.set_model(model)
    keys = KeyStore(settings.auth_keys_file)
    auth = Authenticator(
        required=settings.auth_required, keys=keys, default_limit=settings.rate_limit_per_minute
    )
    usage = UsageReporter(
        model=settings.model_name,
        url=settings.usage_report_url,
        token_file=settings.usage_token_file,
        interval=settings.usage_report_seconds,
    )
    ep = Endpoints(settings=settings, plane=plane, auth=auth, usage=usage, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(_reload_keys(keys, settings.auth_reload_seconds)),
            asyncio.create_task(usage.run()),
        ]
        if plane.model is None:
            tasks.append(asyncio.create_task(_load(settings, plane, metrics, on_fatal)))
        try:
            async with metrics_server(
                metrics.registry, host=settings.metrics_host, port=settings.metrics_port
            ):
                yield
        finally:
            for task in tasks:
                task.cancel()
            await usage.flush()
            plane.close()

    # Plain Starlette: the runtime serves a fixed protocol with no generated API docs, and every
    # layer between the socket and the model costs throughput at high concurrency.
    app = Starlette(
        lifespan=lifespan,
        exception_handlers={
            ModelportError: _modelport_error,
            StarletteHTTPException: _http_error,
        },
    )
    app.state.plane = plane
    app.state.metrics = metrics
    app.state.keys = keys
    app.state.usage = usage
    _add_routes(app, ep)
    return app


def _add_routes(app: Starlette, ep: Endpoints) -> None:
    versioned = "/versions/{version}"
    for base in ("/v2/models/{name}", "/v2/models/{name}" + versioned):
        app.add_route(base + "/infer", ep.inference("v2", ep.v2_infer), methods=["POST"])
        app.add_route(base + "/ready", ep.model_ready, methods=["GET"])
        app.add_route(base, ep.keyed(ep.model_metadata), methods=["GET"])
    app.add_route("/v2/health/live", ep.live, methods=["GET"])
    app.add_route("/v2/health/ready", ep.ready, methods=["GET"])
    app.add_route("/v2", ep.keyed(ep.server_metadata), methods=["GET"])
    app.add_route("/v1/models/{name}:predict", ep.inference("v1", ep.v1_predict), methods=["POST"])
    app.add_route("/v1/models/{name}", ep.keyed(ep.model_ready), methods=["GET"])
    app.add_route("/v1/models", ep.keyed(ep.v1_models), methods=["GET"])
    app.add_route("/predict", ep.inference("predict", ep.predict), methods=["POST"])


async def _modelport_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelportError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (no such route or method), in the same error body."""
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(
        ModelportError(str(exc.detail), code=code, status=exc.status_code, headers=headers)
    )


async def _reload_keys(keys: KeyStore, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        await asyncio.to_thread(keys.reload)


async def _load(
    settings: RuntimeSettings,
    plane: DataPlane,
    metrics: RuntimeMetrics,
    on_fatal: Callable[[BaseException], None] | None,
) -> None:
    try:
        model = await asyncio.to_thread(load_served_model, settings, metrics)
    except Exception as exc:
        log.error("model %r failed to load, exiting: %s", settings.model_name, failure_reason(exc))
        if on_fatal is not None:
            on_fatal(exc)
        return
    plane.set_model(model)
