"""The Prometheus ``/metrics`` server that the control API and each runtime run beside their main
server, in the same event loop, on a port of its own. The Ingress and the local proxy route only
the main port, so metrics reach in-cluster scrapers (or loopback under ``modelport up``) alone.

Needs starlette, uvicorn and prometheus-client (the ``runtime`` and ``api`` extras).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from modelport.core.errors import error_body
from modelport.core.hosts import addressed_by_ip
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["metrics_app", "metrics_server"]

log = logging.getLogger(__name__)


def metrics_app(registry: CollectorRegistry) -> Starlette:
    """``GET /metrics`` in Prometheus' text format, for requests addressed by IP or as
    ``localhost``; anything else is the design's 400, 404 or 405."""

    async def exposition(request: Request) -> Response:
        if not addressed_by_ip(request.headers.get("host", "")):
            body = error_body("invalid_host", "metrics are served to requests addressed by IP")
            return JSONResponse(body, status_code=400)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    app = Starlette(exception_handlers={HTTPException: http_error})
    app.add_route("/metrics", exposition, methods=["GET"])
    return app


class _SideServer(uvicorn.Server):
    """A server that leaves the signals to the main one, whose shutdown stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def metrics_server(
    registry: CollectorRegistry, *, host: str, port: int
) -> AsyncIterator[int]:
    """Serve ``registry`` at ``http://host:port/metrics`` while the block runs; yields the bound
    port (``port`` 0 picks a free one). A port already taken raises ``OSError`` here, before the
    main server accepts a request."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)  # scrapes queue here until the server below takes them
    except OSError:
        sock.close()
        raise
    config = uvicorn.Config(
        metrics_app(registry),
        lifespan="off",
        access_log=False,
        log_config=None,  # the main server's logging stays as it is
        server_header=False,
        proxy_headers=False,
    )
    server = _SideServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        try:
            await task
        except Exception:
            log.exception("the metrics server on %s:%s failed", host, port)
        finally:
            sock.close()
