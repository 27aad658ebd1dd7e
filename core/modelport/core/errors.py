"""The one error shape every Modelport component answers with.

Each service raises subclasses of :class:`ModelportError`; exactly one place per service (an
exception handler) turns them into the body ``{"error": {"code", "message", "details"?,
"timestamp"}}`` with the error's HTTP status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class ModelportError(Exception):
    """Base error: carries the HTTP status, a stable machine-readable code and a message."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class BadInput(ModelportError):
    status = 400
    code = "bad_input"


class Unauthenticated(ModelportError):
    status = 401
    code = "unauthenticated"


class Forbidden(ModelportError):
    status = 403
    code = "forbidden"


class NotFound(ModelportError):
    status = 404
    code = "not_found"


class Conflict(ModelportError):
    status = 409
    code = "conflict"


class TooLarge(ModelportError):
    status = 413
    code = "too_large"


class RateLimited(ModelportError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details=details, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class NotReady(ModelportError):
    status = 503
    code = "not_ready"


class Timeout(ModelportError):
    status = 504
    code = "timeout"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """Build the design's ErrorResponse body."""
    err: dict[str, Any] = {
        "code": code,
        "message": message,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    if details is not None:
        err["details"] = details
    return {"error": err}
