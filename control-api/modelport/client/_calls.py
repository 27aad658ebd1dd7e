"""Each control-API operation described once, as data; the sync and async clients send them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from modelport.client import types as t
from pydantic import TypeAdapter

T = TypeVar("T")

API = "/api/v1"


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    """Headers of this call alone (a model endpoint's key)."""


def _as(model: type[T]) -> Callable[[httpx.Response], T]:
    adapter = TypeAdapter(model)
    return lambda response: adapter.validate_python(response.json())


def _nothing(response: httpx.Response) -> None:
    return None


def _json(response: httpx.Response) -> Any:
    return response.json()


def signup(email: str, password: str) -> Call[t.User]:
    return Call(
        "POST", f"{API}/auth/signup", _as(t.User), json={"email": email, "password": password}
    )


def login(email: str, password: str) -> Call[t.Token]:
    return Call(
        "POST", f"{API}/auth/login", _as(t.Token), json={"email": email, "password": password}
    )


def me() -> Call[t.User]:
    return Call("GET", f"{API}/users/me", _as(t.User))


def list_models(status: str | None, limit: int, offset: int) -> Call[t.ModelPage]:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status:
        params["status"] = status
    return Call("GET", f"{API}/models", _as(t.ModelPage), params=params)


def get_model(model_id: str) -> Call[t.Model]:
    return Call("GET", f"{API}/models/{model_id}", _as(t.Model))


def logs(model_id: str, tail: int) -> Call[t.ModelLogs]:
    return Call("GET", f"{API}/models/{model_id}/logs", _as(t.ModelLogs), params={"tail": tail})


def update_model(model_id: str, change: dict[str, Any]) -> Call[t.Model]:
    return Call("PATCH", f"{API}/models/{model_id}", _as(t.Model), json=change)


def delete_model(model_id: str) -> Call[None]:
    return Call("DELETE", f"{API}/models/{model_id}", _nothing)


def versions(model_id: str) -> Call[list[t.Version]]:
    return Call(
        "GET",
        f"{API}/models/{model_id}/versions",
        lambda r: TypeAdapter(list[t.Version]).validate_python(r.json()["items"]),
    )


def rollback(model_id: str, version: int) -> Call[t.Model]:
    return Call(
        "POST", f"{API}/models/{model_id}/rollback", _as(t.Model), json={"version": version}
    )


def usage(model_id: str, window: str) -> Call[t.Usage]:
    return Call("GET", f"{API}/models/{model_id}/usage", _as(t.Usage), params={"window": window})


def create_key(name: str, scope: str, models: list[str] | None) -> Call[t.CreatedKey]:
    body: dict[str, Any] = {"name": name, "scope": scope}
    if models is not None:
        body["models"] = models
    return Call("POST", f"{API}/keys", _as(t.CreatedKey), json=body)


def list_keys() -> Call[list[t.ApiKey]]:
    return Call("GET", f"{API}/keys", _as(list[t.ApiKey]))


def revoke_key(key_id: str) -> Call[None]:
    return Call("DELETE", f"{API}/keys/{key_id}", _nothing)


def predict(endpoint_url: str, input_data: Any, key: str | None) -> Call[dict[str, Any]]:
    """``endpointUrl`` is the model's base URL; the design's shape is served at ``/predict``.

    ``key``: an inference key for the endpoint; None sends the client's own credential."""
    return Call(
        "POST",
        f"{endpoint_url.rstrip('/')}/predict",
        _json,
        json={"inputData": input_data},
        headers={"Authorization": f"Bearer {key}"} if key else {},
    )
