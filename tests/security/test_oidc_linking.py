"""OpenID Connect: which provider identity may sign in as which account, and which browser may
finish a login. Against a real (small) identity provider on loopback and the live API."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from modelport.api.db.tables import User as UserRow
from modelport.api.services import users as user_service

from tests.api.conftest import LiveApi, MakeApi, count_rows
from tests.api.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, login, s256, to_callback

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


@pytest.fixture
def provider() -> Iterator[Provider]:
    idp = Provider(f"sso-{uuid.uuid4().hex[:8]}@example.com")
    idp.server.start()
    yield idp
    idp.server.stop()


def _api(make_api: MakeApi, provider: Provider, **settings: Any) -> LiveApi:
    return make_api(
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        **settings,
    )


def _subject_of(api: LiveApi, email: str) -> str | None:
    with api.ctx.db.sessions() as session:
        user = session.query(UserRow).filter(UserRow.email == email).one()
        return user.oidc_subject


def _signed_in_as(api: LiveApi, answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    token = answer.json()["accessToken"]
    me = api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    return str(me.json()["email"])


def test_unverified_email_does_not_link(provider: Provider, make_api: MakeApi) -> None:
    """A provider that does not vouch for the email (no ``email_verified`` claim, or false)
    cannot take over the account that has it, nor create one with it."""
    api = _api(make_api, provider)
    victim = api.user()
    users = count_rows(api.ctx.db, "users")
    for email in (victim.email, provider.email):
        for verified in ({}, {"email_verified": False}):
            provider.claims = {"email": email, **verified}
            r = login(api.url)
            assert r.status_code == 401, (verified, r.text)
            assert "verified" in r.json()["error"]["message"]
    assert _subject_of(api, victim.email) is None
    assert count_rows(api.ctx.db, "users") == users


def test_string_email_verified_does_not_link(provider: Provider, make_api: MakeApi) -> None:
    """``"email_verified": "true"`` (a string) is not the JSON ``true``."""
    api = _api(make_api, provider)
    victim = api.user()
    provider.claims = {"email": victim.email, "email_verified": "true"}
    r = login(api.url)
    assert r.status_code == 401, r.text
    assert _subject_of(api, victim.email) is None
    # The same login with the boolean links the account.
    provider.claims["email_verified"] = True
    assert _signed_in_as(api, login(api.url)) == victim.email
    assert _subject_of(api, victim.email) == f"{provider.issuer}|{provider.subject}"


def test_account_with_other_subject_not_relinked(provider: Provider, make_api: MakeApi) -> None:
    """An account linked to one provider identity is not handed to another identity that shows
    the same (verified) email, e.g. an address the provider gave to someone new."""
    api = _api(make_api, provider)
    owner = api.user()
    provider.claims = {"email": owner.email, "email_verified": True}
    assert _signed_in_as(api, login(api.url)) == owner.email
    linked = _subject_of(api, owner.email)
    provider.subject = "idp-user-2"
    r = login(api.url)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    assert _subject_of(api, owner.email) == linked
    # The linked identity still signs in.
    provider.subject = "idp-user-1"
    assert _signed_in_as(api, login(api.url)) == owner.email


def test_oidc_respects_closed_signup(provider: Provider, make_api: MakeApi) -> None:
    """With ``signup=admin`` OIDC creates no accounts either; accounts an administrator made
    still link and sign in."""
    api = _api(make_api, provider, signup="admin")
    users = count_rows(api.ctx.db, "users")
    r = login(api.url)
    assert r.status_code == 403, r.text
    assert "sign-up is closed" in r.json()["error"]["message"]
    assert count_rows(api.ctx.db, "users") == users

    with api.ctx.db.sessions() as session:
        user_service.create_user(
            session, settings=api.ctx.settings, email=provider.email, password=None
        )
    assert _signed_in_as(api, login(api.url)) == provider.email


def test_state_from_another_browser_refused(provider: Provider, make_api: MakeApi) -> None:
    """Login CSRF: an attacker starts a login for their own identity and gets the victim's browser
    to open the callback (code and state). The state is bound to the browser that started the
    login, so the victim's browser (with or without its own login under way) is refused."""
    api = _api(make_api, provider)
    with httpx.Client() as attacker, httpx.Client() as victim:
        callback = to_callback(api.url, attacker)
        r = victim.get(callback)
        assert r.status_code == 401, r.text
        assert "another browser" in r.json()["error"]["message"]
        to_callback(api.url, victim)  # the victim's own login, under way
        r = victim.get(callback)
        assert r.status_code == 401, r.text
        # The browser that started it finishes it (the refusals redeemed nothing).
        assert _signed_in_as(api, attacker.get(callback)) == provider.email
        # The cookie is gone with the login it served.
        assert attacker.get(callback).status_code == 401


def test_state_cookie_hidden_from_scripts_and_other_sites(
    provider: Provider, make_api: MakeApi
) -> None:
    """The browser cookie is HttpOnly, SameSite=Lax, scoped to the OIDC routes, and Secure when
    the API is served over https."""
    for public_url, secure in [("https://modelport.example.com", True), (None, False)]:
        api = _api(make_api, provider, **({"public_url": public_url} if public_url else {}))
        start = httpx.get(f"{api.url}/api/v1/auth/oidc/login")
        assert start.status_code == 302, start.text
        cookie = start.headers["set-cookie"]
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path", "max-age"} <= attributes
        assert "samesite=lax" in cookie.lower() and "path=/api/v1/auth/oidc" in cookie.lower()
        assert ("secure" in attributes) is secure


def test_pkce_sent(provider: Provider, make_api: MakeApi) -> None:
    """An authorization code that leaks (logs, Referer, a hostile app on the redirect URI) cannot
    be redeemed without the verifier, which never leaves the browser's cookie and the API."""
    api = _api(make_api, provider)
    assert _signed_in_as(api, login(api.url)) == provider.email
    asked = provider.authorize_queries[-1]
    assert asked["code_challenge_method"] == "S256"
    verifier = provider.token_forms[-1]["code_verifier"]
    assert 43 <= len(verifier) <= 128
    assert s256(verifier) == asked["code_challenge"]
    # Nothing that passes through the browser's address bar carries it, the state included.
    payload = asked["state"].split(".")[1]
    state = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert verifier not in str(asked) and verifier not in state
