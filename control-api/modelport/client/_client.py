"""The sync and async clients: one method per operation, each sending a call from ``_calls``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, Self, TypeVar

import httpx
from modelport.client import _calls as calls
from modelport.client import types as t
from modelport.client.errors import ApiError, ClientError, WaitTimeout

T = TypeVar("T")

#: Called as an upload goes: ``progress(bytes_sent, bytes_total)``.
Progress = Callable[[int, int], None]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, read=300.0, write=300.0)
#: Phases :meth:`Client.wait` stops at.
SETTLED = frozenset({"Ready", "Failed"})


class _CountingReader:
    """A file wrapper that reports how much the multipart encoder has read."""

    def __init__(self, raw: IO[bytes], total: int, progress: Progress | None) -> None:
        self._raw = raw
        self._total = total
        self._sent = 0
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self._sent += len(chunk)
        if self._progress is not None and chunk:
            self._progress(self._sent, self._total)
        return chunk


def _headers(api_key: str | None, token: str | None) -> dict[str, str]:
    secret = api_key or token
    return {"Authorization": f"Bearer {secret}"} if secret else {}


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise ApiError.from_response(response)
    return response


#: What the sync or the async client sends through (tests hand in an in-process transport).
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)


class _Base(Generic[TransportT]):
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        inference_key: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: TransportT | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.token = token
        self.inference_key = inference_key
        """Sent to model endpoints (``predict``); None: ``api_key`` (a legacy key) goes there."""
        self.timeout = timeout
        self._connect(transport)

    def _connect(self, transport: TransportT | None) -> None:
        """Open the httpx client the operations send through."""
        raise NotImplementedError

    def _http_options(self) -> dict[str, Any]:
        """What both clients hand to their httpx client."""
        return {
            "base_url": self.base_url,
            "headers": _headers(self.api_key, self.token),
            "timeout": self.timeout,
        }

    def _form(self, name: str | None, description: str | None) -> dict[str, str]:
        form: dict[str, str] = {}
        if name is not None:
            form["modelName"] = name
        if description is not None:
            form["description"] = description
        return form


class Client(_Base[httpx.BaseTransport]):
    """Blocking client. Use as a context manager, or call :meth:`close`."""

    def _connect(self, transport: httpx.BaseTransport | None) -> None:
        self._http = httpx.Client(transport=transport, **self._http_options())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: calls.Call[T]) -> T:
        try:
            response = self._http.request(
                call.method,
                call.path,
                params=call.params or None,
                json=call.json,
                headers=call.headers or None,
            )
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.base_url}: {exc}") from exc
        return call.parse(_checked(response))

    def _upload(
        self, url: str, path: Path, form: dict[str, str], progress: Progress | None
    ) -> t.Upload:
        total = os.path.getsize(path)
        with open(path, "rb") as raw:
            reader = _CountingReader(raw, total, progress)
            files = {"file": (path.name, reader, "application/octet-stream")}
            try:
                response = self._http.post(url, data=form, files=files)  # type: ignore[arg-type]
            except httpx.HTTPError as exc:
                raise ClientError(f"upload to {self.base_url} failed: {exc}") from exc
        return t.Upload.model_validate(_checked(response).json())

    # -- users and keys ------------------------------------------------------------------------

    def signup(self, email: str, password: str) -> t.User:
        return self.send(calls.signup(email, password))

    def login(self, email: str, password: str) -> t.Token:
        """Exchange a password for a short-lived token, which later calls then carry."""
        token = self.send(calls.login(email, password))
        self.token = token.access_token
        self._http.headers["Authorization"] = f"Bearer {token.access_token}"
        return token

    def me(self) -> t.User:
        return self.send(calls.me())

    def create_key(
        self, name: str, *, scope: str = "inference", models: list[str] | None = None
    ) -> t.CreatedKey:
        """A new key: ``inference`` (calls models; ``models`` binds it to those) or ``account``
        (the control API)."""
        return self.send(calls.create_key(name, scope, models))

    def list_keys(self) -> list[t.ApiKey]:
        return self.send(calls.list_keys())

    def revoke_key(self, key_id: str) -> None:
        self.send(calls.revoke_key(key_id))

    # -- models --------------------------------------------------------------------------------

    def upload(
        self,
        path: str | Path,
        *,
        name: str,
        description: str = "",
        progress: Progress | None = None,
    ) -> t.Upload:
        return self._upload(
            f"{calls.API}/models", Path(path), self._form(name, description), progress
        )

    def upload_version(
        self, model_id: str, path: str | Path, *, progress: Progress | None = None
    ) -> t.Upload:
        return self._upload(f"{calls.API}/models/{model_id}/versions", Path(path), {}, progress)

    def list_models(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> t.ModelPage:
        return self.send(calls.list_models(status, limit, offset))

    def get_model(self, model_id: str) -> t.Model:
        return self.send(calls.get_model(model_id))

    def logs(self, model_id: str, *, tail: int = 200) -> list[str]:
        """The last ``tail`` lines (1 to 1000) of the model's runtime log."""
        return self.send(calls.logs(model_id, tail)).lines

    def wait(
        self,
        model_id: str,
        *,
        timeout: float = 300.0,
        interval: float = 1.0,
        on_phase: Callable[[str], None] | None = None,
    ) -> t.Model:
        """Poll until the model is Ready or Failed and return it; :class:`WaitTimeout` when
        neither comes within ``timeout`` seconds. ``on_phase`` hears each new phase."""
        deadline = time.monotonic() + timeout
        seen = ""
        while True:
            model = self.get_model(model_id)
            if model.phase != seen and on_phase is not None:
                on_phase(model.phase)
            seen = model.phase
            if model.phase in SETTLED:
                return model
            if time.monotonic() >= deadline:
                raise WaitTimeout(model)
            time.sleep(interval)

    def update_model(self, model_id: str, **change: Any) -> t.Model:
        return self.send(calls.update_model(model_id, change))

    def delete_model(self, model_id: str) -> None:
        self.send(calls.delete_model(model_id))

    def versions(self, model_id: str) -> list[t.Version]:
        return self.send(calls.versions(model_id))

    def rollback(self, model_id: str, version: int) -> t.Model:
        return self.send(calls.rollback(model_id, version))

    def usage(self, model_id: str, *, window: str = "24h") -> t.Usage:
        return self.send(calls.usage(model_id, window))

    def predict(self, model_id: str, input_data: Any) -> dict[str, Any]:
        """Call the model's endpoint with the design's ``{"inputData": ...}`` shape."""
        model = self.get_model(model_id)
        return self.send(calls.predict(model.endpoint_url, input_data, self.inference_key))


class AsyncClient(_Base[httpx.AsyncBaseTransport]):
    """The same operations as :class:`Client`, awaitable."""

    def _connect(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._http = httpx.AsyncClient(transport=transport, **self._http_options())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: calls.Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method,
                call.path,
                params=call.params or None,
                json=call.json,
                headers=call.headers or None,
            )
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.base_url}: {exc}") from exc
        return call.parse(_checked(response))

    async def upload(
        self,
        path: str | Path,
        *,
        name: str,
        description: str = "",
        progress: Progress | None = None,
    ) -> t.Upload:
        path = Path(path)
        # httpx's multipart encoder reads file objects synchronously in either client.
        total = os.path.getsize(path)  # noqa: ASYNC240
        with open(path, "rb") as raw:  # noqa: ASYNC230
            files = {"file": (path.name, _CountingReader(raw, total, progress))}
            try:
                response = await self._http.post(
                    f"{calls.API}/models",
                    data=self._form(name, description),
                    files=files,  # type: ignore[arg-type]
                )
            except httpx.HTTPError as exc:
                raise ClientError(f"upload to {self.base_url} failed: {exc}") from exc
        return t.Upload.model_validate(_checked(response).json())

    async def login(self, email: str, password: str) -> t.Token:
        token = await self.send(calls.login(email, password))
        self.token = token.access_token
        self._http.headers["Authorization"] = f"Bearer {token.access_token}"
        return token

    async def signup(self, email: str, password: str) -> t.User:
        return await self.send(calls.signup(email, password))

    async def me(self) -> t.User:
        return await self.send(calls.me())

    async def create_key(
        self, name: str, *, scope: str = "inference", models: list[str] | None = None
    ) -> t.CreatedKey:
        return await self.send(calls.create_key(name, scope, models))

    async def list_keys(self) -> list[t.ApiKey]:
        return await self.send(calls.list_keys())

    async def revoke_key(self, key_id: str) -> None:
        await self.send(calls.revoke_key(key_id))

    async def versions(self, model_id: str) -> list[t.Version]:
        return await self.send(calls.versions(model_id))

    async def rollback(self, model_id: str, version: int) -> t.Model:
        return await self.send(calls.rollback(model_id, version))

    async def list_models(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> t.ModelPage:
        return await self.send(calls.list_models(status, limit, offset))

    async def get_model(self, model_id: str) -> t.Model:
        return await self.send(calls.get_model(model_id))

    async def logs(self, model_id: str, *, tail: int = 200) -> list[str]:
        return (await self.send(calls.logs(model_id, tail))).lines

    async def update_model(self, model_id: str, **change: Any) -> t.Model:
        return await self.send(calls.update_model(model_id, change))

    async def delete_model(self, model_id: str) -> None:
        await self.send(calls.delete_model(model_id))

    async def usage(self, model_id: str, *, window: str = "24h") -> t.Usage:
        return await self.send(calls.usage(model_id, window))

    async def predict(self, model_id: str, input_data: Any) -> dict[str, Any]:
        model = await self.get_model(model_id)
        return await self.send(calls.predict(model.endpoint_url, input_data, self.inference_key))
