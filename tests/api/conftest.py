"""Fixtures for control-API tests: a live API (uvicorn on loopback) on real PostgreSQL and S3."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from modelport.api.app import create_app
from modelport.api.context import AppContext
from modelport.api.db.session import Database, migrate
from modelport.api.deployers.base import Deployer
from modelport.api.deployers.local import LocalDeployer
from modelport.api.settings import ApiSettings
from modelport.core.keys import new_master_key_entry
from modelport.core.storage import S3Store

from testing.harness.process import free_ports


class LiveServer:
    """An ASGI app served by uvicorn in a thread on 127.0.0.1."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # As modelport-api serves: the app alone honours X-Forwarded-For (trusted_proxies).
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, proxy_headers=False, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class User:
    email: str
    password: str
    id: str
    token: str
    key: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class LiveApi:
    url: str
    app: FastAPI
    server: LiveServer
    bucket: str
    s3: Any
    metrics_url: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=60)

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.app.state.ctx
        return ctx

    def metrics(self) -> str:
        """The metrics server's exposition (a port of its own, beside the API's)."""
        response = httpx.get(self.metrics_url, timeout=10)
        assert response.status_code == 200, response.text
        return response.text

    def user(self, *, prefix: str = "u") -> User:
        """Sign up a fresh user and log in."""
        email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery"
        r = self.client.post("/api/v1/auth/signup", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        r2 = self.client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r2.status_code == 200, r2.text
        return User(email, password, r.json()["id"], r2.json()["accessToken"])

    def upload(
        self,
        user: User,
        content: bytes,
        filename: str = "model.onnx",
        name: str = "my model",
        *,
        model_id: str | None = None,
    ) -> httpx.Response:
        """A new model, or (``model_id``) a new version of one, which takes the file alone."""
        path = f"/api/v1/models/{model_id}/versions" if model_id else "/api/v1/models"
        return self.client.post(
            path,
            headers=user.headers,
            files={"file": (filename, content, "application/octet-stream")},
            data={} if model_id else {"modelName": name, "description": "a test model"},
        )

    def objects(self) -> list[str]:
        listing = self.s3.client().list_objects_v2(Bucket=self.bucket)
        return [o["Key"] for o in listing.get("Contents", [])]

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture(scope="module")
def db_url(postgres_url: str) -> str:
    migrate(postgres_url)
    return postgres_url


MakeApi = Callable[..., LiveApi]


@pytest.fixture
def make_api(db_url: str, s3_server: Any, tmp_path: Path) -> Iterator[MakeApi]:
    """Build and start APIs; each gets a fresh bucket. Keyword arguments become settings."""
    started: list[LiveApi] = []

    def make(
        deployer: Deployer | None = None,
        *,
        local_runtimes: bool = False,
        **overrides: Any,
    ) -> LiveApi:
        s3_server.start()
        bucket = s3_server.create_bucket()
        port, metrics_port = free_ports(2)
        values: dict[str, Any] = {
            "database_url": db_url,
            "artifact_uri": f"s3://{bucket}/artifacts",
            "s3_endpoint_url": s3_server.endpoint_url,
            "master_keys": new_master_key_entry("k1"),
            "public_url": f"http://127.0.0.1:{port}",
            "metrics_port": metrics_port,
            "deployer": "none",
            "data_dir": tmp_path / "data",
            "spool_dir": tmp_path / "spool",
            "jwt_secret": "test-secret-" + uuid.uuid4().hex,
        }
        values.update(overrides)
        (tmp_path / "spool").mkdir(exist_ok=True)
        settings = ApiSettings(**values)
        store = S3Store(bucket, prefix="artifacts", options=s3_server.options())
        if local_runtimes:
            deployer = LocalDeployer(
                data_dir=settings.data_dir,
                public_url=settings.public_url,
                usage_url=settings.usage_url(),
                s3_endpoint_url=s3_server.endpoint_url,
                env=s3_server.env(),
                check_seconds=0.5,
                command=settings.runtime_command or None,
                runtime_uid=settings.local_runtime_uid,
                runtime_gid=settings.local_runtime_gid,
            )
        app = create_app(settings, deployer=deployer, store=store)
        server = LiveServer(app, port)
        server.start()
        metrics_url = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"
        api = LiveApi(
            url=server.url,
            app=app,
            server=server,
            bucket=bucket,
            s3=s3_server,
            metrics_url=metrics_url,
        )
        started.append(api)
        return api

    yield make
    for api in started:
        api.close()


@pytest.fixture
def api(make_api: MakeApi) -> LiveApi:
    return make_api()


def spool_entries(api: LiveApi) -> list[Path]:
    spool = api.ctx.settings.spool_dir
    assert spool is not None
    return list(spool.iterdir())


def count_rows(db: Database, table: str) -> int:
    from sqlalchemy import text

    with db.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
