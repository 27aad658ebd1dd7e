"""Start-up rules, settings, health and metrics."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from modelport.api.app import create_app
from modelport.api.settings import ApiSettings
from modelport.core.errors import NotReady
from modelport.core.keys import new_master_key_entry
from pydantic import ValidationError

from tests.api.conftest import LiveApi

SECRET = "s3cr3t-" + uuid.uuid4().hex


def test_production_refuses_embedded_defaults() -> None:
    with pytest.raises(ValidationError) as info:
        ApiSettings(environment="production")
    text = str(info.value)
    for problem in ("SQLite", "jwt_secret", "master_keys", "artifact_uri", "allowed_hosts"):
        assert problem in text


def test_production_accepts_real_settings() -> None:
    settings = ApiSettings(
        environment="production",
        database_url="postgresql+psycopg2://u@db/modelport",
        jwt_secret=SECRET * 2,
        master_keys=new_master_key_entry("k1"),
        artifact_uri="s3://bucket/prefix",
        allowed_hosts=["api.example.com"],
        deployer="kubernetes",
    )
    assert settings.key_ring() is not None


def test_secrets_never_appear_in_errors_or_reprs() -> None:
    with pytest.raises(ValidationError) as info:
        ApiSettings(master_keys="k1:" + SECRET, jwt_secret=SECRET)
    assert SECRET not in str(info.value)
    settings = ApiSettings(master_keys=new_master_key_entry("k1"), jwt_secret=SECRET)
    assert SECRET not in repr(settings)


def test_no_master_key_no_app() -> None:
    with pytest.raises(ValueError, match="master_keys"):
        create_app(ApiSettings(deployer="none"))


@pytest.mark.postgres
def test_unmigrated_database_refuses_to_start_and_names_the_command(postgres_server) -> None:
    url = postgres_server.create_database()
    app = create_app(
        ApiSettings(database_url=url, master_keys=new_master_key_entry("k1"), deployer="none")
    )

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(NotReady) as info:
        asyncio.run(start())
    assert "modelport-api migrate" in info.value.message


@pytest.mark.postgres
@pytest.mark.s3
def test_health_readiness_and_metrics(api: LiveApi) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").status_code == 200
    api.client.get("/api/v1/models")  # a 401, counted
    assert 'modelport_api_requests_total{method="GET",route="/api/v1/models",status="401"}' in (
        api.metrics()
    )


@pytest.mark.postgres
@pytest.mark.s3
def test_unknown_routes_and_methods_use_the_error_shape(api: LiveApi) -> None:
    r = api.client.get("/nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = api.client.put("/api/v1/keys")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = api.client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"
