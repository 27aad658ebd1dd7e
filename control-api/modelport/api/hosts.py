"""Trusted hosts: requests whose ``Host`` header names no host of this API get 400 before any
route runs, so that a web page on another origin cannot reach the API through DNS rebinding
(its requests carry the page's own host name).

Health probes answer every host: the kubelet addresses a pod by its IP (metrics are on a port of
their own, answering only requests addressed by IP: :mod:`modelport.core.metrics_server`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from modelport.core.errors import error_body
from modelport.core.hosts import split_host
from starlette.types import ASGIApp, Receive, Scope, Send

#: Paths the kubelet's probes and Prometheus reach by pod IP; they answer whatever the host.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})


class HostPolicy:
    """Which ``Host`` values are allowed: ``name`` (any port), ``name:port`` (that port),
    ``*.domain`` (its subdomains, any port) or ``*`` (all)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.any = False
        self._names: set[str] = set()
        self._with_port: set[tuple[str, str]] = set()
        self._suffixes: list[str] = []
        for entry in allowed:
            name, port = split_host(entry)
            if name == "*":
                self.any = True
            elif name.startswith("*."):
                self._suffixes.append(name[1:])
            elif port is None:
                self._names.add(name)
            else:
                self._with_port.add((name, port))

    def allows(self, host: str) -> bool:
        if self.any:
            return True
        name, port = split_host(host)
        if not name:
            return False
        return (
            name in self._names
            or (name, port or "") in self._with_port
            or any(name.endswith(suffix) for suffix in self._suffixes)
        )


class TrustedHostMiddleware:
    """Pure ASGI: answers 400 (``invalid_host``, the error format) to a disallowed ``Host``."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if self.policy.allows(host):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            error_body("invalid_host", "this API does not answer to the host the request names")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
