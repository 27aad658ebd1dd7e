"""OpenID Connect login against a small but real identity provider served on loopback: discovery,
authorization redirect, code exchange, RS256 ID tokens checked against its JWKS."""

from __future__ import annotations

import secrets
import time
import uuid
import warnings
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse

from testing.ports import free_port
from tests.api.conftest import LiveServer, MakeApi

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

CLIENT_ID, CLIENT_SECRET = "modelport", "idp-secret"


class Provider:
    """An identity provider with one user; hands out signed ID tokens for codes it issued."""

    def __init__(self, email: str, *, verified: bool = True) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
        self.email, self.verified = email, verified
        self.codes: dict[str, str] = {}
        self.sign_with = self.key
        app = FastAPI()
        app.get("/.well-known/openid-configuration")(self.discovery)
        app.get("/authorize")(self.authorize)
        app.post("/token")(self.token)
        app.get("/jwks")(self.jwks)
        self.server = LiveServer(app, self.port)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
        }

    def authorize(self, request: Request) -> RedirectResponse:
        q = request.query_params
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
        code = secrets.token_urlsafe(8)
        self.codes[code] = q["nonce"]
        query = urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=302)

    def token(
        self, code: str = Form(), client_id: str = Form(), client_secret: str = Form()
    ) -> dict[str, str]:
        assert (client_id, client_secret) == (CLIENT_ID, CLIENT_SECRET)
        nonce = self.codes.pop(code)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "idp-user-1",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "email": self.email,
            "email_verified": self.verified,
        }
        token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.sign_with)
        return {"id_token": token.decode(), "access_token": "x", "token_type": "Bearer"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(is_private=False)]}


@pytest.fixture
def provider() -> Any:
    idp = Provider(f"sso-{uuid.uuid4().hex[:8]}@example.com")
    idp.server.start()
    yield idp
    idp.server.stop()


def _login(api_url: str) -> httpx.Response:
    start = httpx.get(f"{api_url}/api/v1/auth/oidc/login")
    assert start.status_code == 302
    at_idp = httpx.get(start.headers["location"])
    assert at_idp.status_code == 302
    return httpx.get(at_idp.headers["location"])


def test_oidc_login_creates_the_user_once(provider: Provider, make_api: MakeApi) -> None:
    api = make_api(
        oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET
    )
    first = _login(api.url)
    assert first.status_code == 200, first.text
    me = api.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {first.json()['accessToken']}"}
    ).json()
    assert me["email"] == provider.email
    second = _login(api.url)
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
    start = httpx.get(f"{api.url}/api/v1/auth/oidc/login")
    params = parse_qs(urlsplit(start.headers["location"]).query)
    r = httpx.get(f"{api.url}/api/v1/auth/oidc/callback", params={"code": "x", "state": "forged"})
    assert r.status_code == 401
    # An ID token signed by someone else's key is refused.
    provider.sign_with = JsonWebKey.generate_key(
        "RSA", 2048, is_private=True, options={"kid": "k1"}
    )
    at_idp = httpx.get(
        f"{provider.issuer}/authorize",
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "nonce": params["nonce"][0],
            "state": params["state"][0],
            "redirect_uri": params["redirect_uri"][0],
        },
    )
    r = httpx.get(at_idp.headers["location"])
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"


def test_oidc_is_404_when_not_configured(make_api: MakeApi) -> None:
    api = make_api()
    r = httpx.get(f"{api.url}/api/v1/auth/oidc/login")
    assert r.status_code == 404
