"""A typed Python client for Modelport's control API, sync (:class:`Client`) and async
(:class:`AsyncClient`).

    from modelport.client import Client

    with Client("http://127.0.0.1:8000", api_key="mp_...") as mp:
        up = mp.upload("churn.onnx", name="churn")
        print(mp.predict(up.model_id, [[0.1, 0.2, 0.3, 0.4]]))
"""

from __future__ import annotations

from modelport.client._client import AsyncClient, Client, Progress
from modelport.client.errors import ApiError, ClientError, WaitTimeout
from modelport.client.types import (
    ApiKey,
    CreatedKey,
    Model,
    ModelLogs,
    ModelPage,
    Upload,
    Usage,
    User,
    Version,
)

__all__ = [
    "ApiError",
    "ApiKey",
    "AsyncClient",
    "Client",
    "ClientError",
    "CreatedKey",
    "Model",
    "ModelLogs",
    "ModelPage",
    "Progress",
    "Upload",
    "Usage",
    "User",
    "Version",
    "WaitTimeout",
]
