"""The interactive API docs, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served wholly by this
process: the viewers' scripts and styles come from the fastapi-offline package's files (mounted at
``/docs/assets``), Swagger UI's start-up code is a script of ours rather than an inline one, and a
Content-Security-Policy holds every script, style, font and connection of the pages to this
origin. No page loads anything from a CDN, at run time or ever.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSETS_URL = "/docs/assets"

#: Scripts from this origin only (no inline code, no eval). The viewers set inline style
#: attributes and ReDoc runs its search in a worker built from a blob, so styles may be inline
#: and workers may come from blobs; nothing may come from another origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - Swagger UI</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-init.js"></script>
</body>
</html>
"""

_SWAGGER_INIT = """window.ui = SwaggerUIBundle({{
  url: {openapi},
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}});
"""

_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - ReDoc</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
</head>
<body>
<redoc spec-url="{openapi}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


def mount_docs(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Serve ``/docs``, ``/redoc`` and their assets. The app is built with FastAPI's own docs
    turned off (``docs_url=None, redoc_url=None``), which would load their scripts from a CDN."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    title = html.escape(app.title)
    swagger = _SWAGGER_PAGE.format(title=title, assets=ASSETS_URL)
    swagger_init = _SWAGGER_INIT.format(openapi=json.dumps(openapi_url))
    redoc = _REDOC_PAGE.format(title=title, assets=ASSETS_URL, openapi=html.escape(openapi_url))

    @app.get("/docs", include_in_schema=False)
    def _swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger, headers=HEADERS)

    @app.get("/docs/swagger-init.js", include_in_schema=False)
    def _swagger_init() -> Response:
        return Response(swagger_init, media_type="text/javascript", headers=HEADERS)

    @app.get("/redoc", include_in_schema=False)
    def _redoc() -> HTMLResponse:
        return HTMLResponse(redoc, headers=HEADERS)
