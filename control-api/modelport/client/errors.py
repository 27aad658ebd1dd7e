"""Errors the client raises."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from modelport.client.types import Model


class ClientError(Exception):
    """The client could not talk to the server at all (connection refused, timeout...)."""


class WaitTimeout(ClientError):
    """A model was neither Ready nor Failed in time; ``model`` is how it was last seen."""

    def __init__(self, model: Model) -> None:
        super().__init__(f"model {model.id} is still {model.phase}")
        self.model = model


class ApiError(ClientError):
    """The server answered with an error body: its HTTP status, code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        code, message, details = f"http_{response.status_code}", response.reason_phrase, None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            code = str(err.get("code", code))
            message = str(err.get("message", message))
            details = err.get("details")
        retry = response.headers.get("retry-after")
        return cls(
            response.status_code,
            code,
            message,
            details,
            int(retry) if retry and retry.isdigit() else None,
        )
