"""The reverse proxy that serves ``/models/{id}/...`` under the API's own address by forwarding
each request, streamed both ways, to the model's local runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
from fastapi import APIRouter, Request
from modelport.core.errors import NotReady
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]


class Proxy:
    """Forwards to the port ``upstream(model_id)`` names (which raises 404 or 503 itself)."""

    def __init__(self, upstream: Callable[[str], int]) -> None:
        self._upstream = upstream
        self._client: httpx.AsyncClient | None = None

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(
            "/models/{model_id}/{path:path}",
            self.forward,
            methods=_METHODS,
            include_in_schema=False,
        )
        return router

    async def forward(self, model_id: str, path: str, request: Request) -> StreamingResponse:
        port = self._upstream(model_id)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0))
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS]
        forwarded = self._client.build_request(
            request.method,
            f"http://127.0.0.1:{port}/{path}",
            params=list[tuple[str, str | int | float | bool | None]](
                request.query_params.multi_items()
            ),
            headers=headers,
            content=_body(request),
        )
        try:
            upstream = await self._client.send(forwarded, stream=True)
        except httpx.HTTPError as exc:
            raise NotReady(
                f"model {model_id} did not answer; retry in a few seconds",
                headers={"Retry-After": "2"},
            ) from exc
        response_headers = {
            k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS
        }
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=response_headers,
            background=BackgroundTask(upstream.aclose),
        )


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk
