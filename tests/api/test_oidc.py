"""OpenID Connect login against a small but real identity provider served on loopback: discovery,
authorization redirect, code exchange, RS256 ID tokens checked against its JWKS."""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import httpx
import pytest

from tests.api.conftest import MakeApi
from tests.api.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, login, to_callback

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


@pytest.fixture
def provider() -> Any:
    idp = Provider(f"sso-{uuid.uuid4().hex[:8]}@example.com")
    idp.server.start()
    yield idp
    idp.server.stop()


def test_oidc_login_creates_the_user_once(provider: Provider, make_api: MakeApi) -> None:
    api = make_api(
        oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET
    )
    first = login(api.url)
    assert first.status_code == 200, first.text
    me = api.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {first.json()['accessToken']}"}
    ).json()
    assert me["email"] == provider.email
    second = login(api.url)
    again = api.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {second.json()['accessToken']}"}
    ).json()
    assert again["id"] == me["id"]


def test_oidc_refuses_forged_state_and_foreign_signatures(
    provider: Provider, make_api: MakeApi
) -> None:
    api = make_api(
        oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET
    )
    r = httpx.get(f"{api.url}/api/v1/auth/oidc/callback", params={"code": "x", "state": "forged"})
    assert r.status_code == 401
    # An ID token signed by someone else's key is refused, in the browser that started the login.
    provider.sign_with = JsonWebKey.generate_key(
        "RSA", 2048, is_private=True, options={"kid": "k1"}
    )
    with httpx.Client() as browser:
        r = browser.get(to_callback(api.url, browser))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    assert "token is not valid" in r.json()["error"]["message"]


def test_oidc_is_404_when_not_configured(make_api: MakeApi) -> None:
    api = make_api()
    r = httpx.get(f"{api.url}/api/v1/auth/oidc/login")
    assert r.status_code == 404
