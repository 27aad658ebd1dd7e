"""The application factory: ``create_app(settings)`` builds one control API."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from modelport.api.context import AppContext
from modelport.api.db.session import Database
from modelport.api.deployers.base import Deployer, NoDeployer
from modelport.api.docs import mount_docs
from modelport.api.errors import DatabaseUnavailable
from modelport.api.hosts import HostPolicy, TrustedHostMiddleware
from modelport.api.metrics import Metrics
from modelport.api.routes import admin, auth, health, internal, keys, models
from modelport.api.services.models import active_specs
from modelport.api.services.rotation import bind_unbound_keys
from modelport.api.settings import ApiSettings
from modelport.api.throttle import LoginGuard
from modelport.api.web import mount_ui
from modelport.core.errors import ModelportError, error_body
from modelport.core.metrics_server import metrics_server
from modelport.core.ratelimit import RateLimiter
from modelport.core.storage import ArtifactStore, FileStore, S3Options, S3Store, StorageError
from modelport.core.version import VERSION
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
}


def open_store(settings: ApiSettings) -> ArtifactStore:
    """The artifact store ``artifact_uri`` names: ``s3://bucket/prefix`` or ``file:///dir``."""
    parts = urlsplit(settings.artifact_uri)
    if parts.scheme == "s3":
        options = S3Options(endpoint_url=settings.s3_endpoint_url)
        return S3Store(parts.netloc, prefix=parts.path.strip("/"), options=options)
    if parts.scheme == "file":
        return FileStore(parts.path)
    raise ValueError(f"artifact_uri must be s3:// or file://, not {settings.artifact_uri!r}")


def make_deployer(settings: ApiSettings) -> Deployer:
    if settings.deployer == "local":
        from modelport.api.deployers.local import LocalDeployer

        return LocalDeployer.from_settings(settings)
    if settings.deployer == "kubernetes":
        from modelport.api.deployers.kubernetes import KubernetesDeployer

        return KubernetesDeployer.from_settings(settings)
    return NoDeployer(settings.public_url)


def create_app(
    settings: ApiSettings,
    *,
    deployer: Deployer | None = None,
    store: ArtifactStore | None = None,
    db: Database | None = None,
) -> FastAPI:
    """Build the control API. Refuses to start on an unmigrated database or without master keys."""
    ring = settings.key_ring()
    if ring is None:
        raise ValueError("master_keys is not set: the API cannot encrypt artifacts without one")
    ctx = AppContext(
        settings=settings,
        db=db or Database(settings.database_url, pool_size=settings.db_pool_size),
        store=store or open_store(settings),
        deployer=deployer or make_deployer(settings),
        keys=ring,
        limiter=RateLimiter(limit_field="requestsPerMinute"),
        metrics=Metrics(),
        login_guard=LoginGuard(settings),
    )
    app = FastAPI(
        title="Modelport control API",
        version=VERSION,
        lifespan=_lifespan(ctx),
        # FastAPI's own docs pages load their scripts from a CDN; mount_docs serves them here.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        responses={400: {"model": _error_model()}},
        openapi_tags=[{"name": "models", "description": "Upload and manage models."}],
    )
    app.state.ctx = ctx
    for router in (auth.router, keys.router, models.router, admin.router, internal.router):
        app.include_router(router)
    app.include_router(health.router)
    mount_ui(app)
    mount_docs(app)
    deployer_routes = ctx.deployer.router()
    if deployer_routes is not None:
        app.include_router(deployer_routes)
    _install_error_handlers(app)
    if settings.allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, policy=HostPolicy(settings.allowed_hosts))
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.add_middleware(_MetricsMiddleware, metrics=ctx.metrics)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app


def _error_model() -> Any:
    from modelport.api.schemas import ErrorResponse

    return ErrorResponse


def _lifespan(ctx: AppContext) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(ctx.db.ensure_migrated)
        await run_in_threadpool(_start_deployer, ctx)
        try:
            async with AsyncExitStack() as stack:
                settings = ctx.settings
                if settings.metrics_port is not None:
                    await stack.enter_async_context(
                        metrics_server(
                            ctx.metrics.registry,
                            host=settings.metrics_host,
                            port=settings.metrics_port,
                        )
                    )
                yield
        finally:
            await run_in_threadpool(ctx.deployer.close)
            ctx.db.dispose()

    return lifespan


def _start_deployer(ctx: AppContext) -> None:
    """Bind data keys still in the unbound form of earlier releases, then start the deployer with
    the deployments that should be running (read in one session)."""
    with ctx.db.sessions() as session:
        bind_unbound_keys(session, keys=ctx.keys)
        ctx.deployer.start(active_specs(session, ctx=ctx))


# --- errors -------------------------------------------------------------------------------------


def _json(
    status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelportError)
    async def modelport_error(_r: Request, exc: ModelportError) -> JSONResponse:
        if isinstance(exc, StorageError) and exc.status >= 500:
            # The store's own words name the bucket and key: for the operator's log only.
            log.warning("artifact store failure: %s", exc.message)
            exc = StorageError("the artifact store failed")
        headers = dict(exc.headers)
        if exc.status == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
        if exc.status == 413:
            headers["Connection"] = "close"  # the unread rest of the body is not wanted
        return _json(exc.status, exc.body(), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_r: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return _json(400, error_body("validation_error", "the request is not valid", details))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _json(exc.status_code, error_body(code, str(exc.detail)), exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(_r: Request, _exc: ClientDisconnect) -> JSONResponse:
        return _json(400, error_body("client_disconnected", "the client closed the request"))

    async def database_down(_r: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        err = DatabaseUnavailable(
            "the database is unavailable; retry in a few seconds",
            headers={"Retry-After": "5"},
        )
        return _json(err.status, err.body(), err.headers)

    app.add_exception_handler(OperationalError, database_down)
    app.add_exception_handler(DisconnectionError, database_down)
    app.add_exception_handler(PoolTimeout, database_down)

    @app.exception_handler(DBAPIError)
    async def database_error(r: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await database_down(r, exc)
        return await unexpected(r, exc)

    @app.exception_handler(Exception)
    async def unexpected(_r: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return _json(
            500,
            error_body("internal_error", "an unexpected error occurred; retry in a few seconds"),
        )


_ERROR_DESCRIPTIONS = {
    400: "Bad request (the body is the error shape; validation errors list their fields)",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found (also another user's model)",
    409: "Conflict",
    413: "Too large",
    429: "Rate limited (see Retry-After)",
    500: "Server or storage error (retry advice in the message)",
    503: "Database or component unavailable (see Retry-After)",
}


def _error_statuses(path: str, method: str) -> set[int]:
    if path == "/readyz":
        return {503}
    if not path.startswith("/api/"):
        return set()
    statuses = {400, 401, 404, 429, 500, 503}
    if path.startswith("/api/v1/admin") or path == "/api/v1/auth/signup":
        statuses.add(403)
    if path == "/api/v1/auth/signup":
        statuses.add(409)
    if method == "post" and (path == "/api/v1/models" or path.endswith("/versions")):
        statuses |= {403, 413}
    return statuses


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The schema, documenting the error statuses each route answers with the ErrorResponse
    body (validation errors are 400 here, not FastAPI's 422)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        ref = {"$ref": "#/components/schemas/ErrorResponse"}
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status in sorted(_error_statuses(path, method)):
                    responses.setdefault(
                        str(status),
                        {
                            "description": _ERROR_DESCRIPTIONS[status],
                            "content": {"application/json": {"schema": ref}},
                        },
                    )
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    return build


# --- metrics ------------------------------------------------------------------------------------


class _MetricsMiddleware:
    """Counts requests by route template and status; times them. Pure ASGI (streams untouched)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
