"""The floors: a server that reads the request and answers constant JSON, with no model.

``asgi``: a bare ASGI app under uvicorn (uvloop + httptools), the least a Python ASGI server
can do per request. ``fastapi``: one FastAPI route on the same server, to show the framework's
own cost. One worker, no access log.

    python floor.py --kind asgi|fastapi --port P
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

BODY = (
    b'{"model_name":"floor","outputs":'
    b'[{"name":"predict","shape":[1],"datatype":"INT64","data":[1]}]}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def constant(request: Request) -> Response:
        await request.body()
        return Response(BODY, media_type="application/json")

    @app.get("/{path:path}")
    async def alive() -> Response:
        return Response(BODY, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["asgi", "fastapi"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = bare_app if args.kind == "asgi" else fastapi_app()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
