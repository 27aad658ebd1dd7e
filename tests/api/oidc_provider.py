"""A small but real OpenID Connect provider served on loopback, for the API's OIDC tests:
discovery, an authorization endpoint that redirects straight back with a code (one signed-in user),
a token endpoint that checks the client, the code and its PKCE verifier, and RS256 ID tokens
checked against its JWKS."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from testing.ports import free_port
from tests.api.conftest import LiveServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt

CLIENT_ID, CLIENT_SECRET = "modelport", "idp-secret"


@dataclass
class Grant:
    """A code the provider issued: the nonce and PKCE challenge it was asked for."""

    nonce: str
    challenge: str | None
    method: str | None


class Provider:
    """An identity provider with one signed-in user; hands out signed ID tokens for codes it
    issued. ``claims`` are the user's claims beyond the protocol's (email, email_verified: set,
    change or delete them); ``authorize_queries`` and ``token_forms`` record what it was sent."""

    def __init__(self, email: str, *, verified: bool = True) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
        self.email = email
        self.subject = "idp-user-1"
        self.claims: dict[str, Any] = {"email": email, "email_verified": verified}
        self.codes: dict[str, Grant] = {}
        self.authorize_queries: list[dict[str, str]] = []
        self.token_forms: list[dict[str, str]] = []
        self.sign_with = self.key
        app = FastAPI()
        app.get("/.well-known/openid-configuration")(self.discovery)
        app.get("/authorize")(self.authorize)
        app.post("/token", response_model=None)(self.token)
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
        self.authorize_queries.append(dict(q))
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
        code = secrets.token_urlsafe(8)
        self.codes[code] = Grant(
            q["nonce"], q.get("code_challenge"), q.get("code_challenge_method")
        )
        query = urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=302)

    async def token(self, request: Request) -> dict[str, str] | JSONResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_forms.append(form)
        assert (form["client_id"], form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)
        grant = self.codes.pop(form["code"], None)
        if grant is None or not _pkce_holds(grant, form.get("code_verifier")):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            **self.claims,
        }
        token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.sign_with)
        return {"id_token": token.decode(), "access_token": "x", "token_type": "Bearer"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(is_private=False)]}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _pkce_holds(grant: Grant, verifier: str | None) -> bool:
    """RFC 7636: a code issued for a challenge is redeemed only with its verifier."""
    if grant.challenge is None:
        return True
    return grant.method == "S256" and verifier is not None and s256(verifier) == grant.challenge


def to_callback(api_url: str, browser: httpx.Client) -> str:
    """Start a login in ``browser`` and follow it through the provider: the callback URL (with
    the code and state) that the provider sends the browser back to."""
    start = browser.get(f"{api_url}/api/v1/auth/oidc/login")
    assert start.status_code == 302, start.text
    at_idp = browser.get(start.headers["location"])
    assert at_idp.status_code == 302, at_idp.text
    return str(at_idp.headers["location"])


def login(api_url: str, browser: httpx.Client | None = None) -> httpx.Response:
    """A whole login in one browser (a fresh one unless given): the callback's answer."""
    if browser is None:
        with httpx.Client() as fresh:
            return fresh.get(to_callback(api_url, fresh))
    return browser.get(to_callback(api_url, browser))
