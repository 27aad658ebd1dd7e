"""The Python client, sync and async, against a running ``modelport up``."""

from __future__ import annotations

import uuid

import pytest
from modelport.client import ApiError, AsyncClient, Client, ClientError

from testing.up import RunningModelport


def test_sync_client_signup_login_keys(modelport_up: RunningModelport) -> None:
    email = f"c-{uuid.uuid4().hex[:8]}@example.test"
    with Client(modelport_up.url) as anon:
        user = anon.signup(email, "a long password")
        assert user.email == email and user.role == "user"
        token = anon.login(email, "a long password")
        assert token.expires_in > 0
        assert anon.me().id == user.id
        created = anon.create_key("script", scope="account")
    with Client(modelport_up.url, api_key=created.key) as keyed:
        assert keyed.me().email == email
        assert [k.id for k in keyed.list_keys()] == [created.id]
        assert keyed.list_models().total == 0


def test_errors_carry_the_api_code(modelport_up: RunningModelport) -> None:
    with Client(modelport_up.url, api_key=modelport_up.admin_key) as client:
        with pytest.raises(ApiError) as missing:
            client.get_model("m-does-not-exist")
        assert missing.value.status == 404
        assert missing.value.code and missing.value.message
    with Client(modelport_up.url, api_key="mp_wrong_key") as client:
        with pytest.raises(ApiError) as refused:
            client.list_models()
        assert refused.value.status == 401
    with Client("http://127.0.0.1:9") as client, pytest.raises(ClientError):
        client.list_models()


async def test_async_client(modelport_up: RunningModelport) -> None:
    async with AsyncClient(modelport_up.url, api_key=modelport_up.admin_key) as client:
        page = await client.list_models(limit=5)
        assert page.limit == 5
        assert (await client.me()).role == "admin"
        created = await client.create_key("async")
        assert created.id in [k.id for k in await client.list_keys()]
        await client.revoke_key(created.id)
        revoked = [k for k in await client.list_keys() if k.id == created.id]
        assert revoked[0].revoked_at is not None
        with pytest.raises(ApiError) as missing:
            await client.get_model("m-does-not-exist")
        assert missing.value.status == 404
