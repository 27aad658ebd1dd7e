"""Users, login tokens, API keys, admin changes, sign-up modes and the control-API rate limit."""

from __future__ import annotations

import uuid

import pytest
from modelport.api import auth
from modelport.api.db.tables import ApiKey, AuditEvent, Role, User
from sqlalchemy import select

from tests.api.conftest import LiveApi, MakeApi

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:8]}@example.com"


def test_signup_login_and_me(api: LiveApi) -> None:
    email = _email()
    r = api.client.post("/api/v1/auth/signup", json={"email": email, "password": "long enough"})
    assert r.status_code == 201
    body = r.json()
    assert body["email"] == email and body["role"] == "user" and body["subscription"] == "free"
    assert body["rateLimits"] == {"requestsPerMinute": 60, "modelsLimit": 5}
    assert "password" not in r.text

    again = api.client.post("/api/v1/auth/signup", json={"email": email, "password": "other one"})
    assert again.status_code == 409

    r = api.client.post("/api/v1/auth/login", json={"email": email, "password": "long enough"})
    token = r.json()["accessToken"]
    assert r.json()["expiresIn"] == api.ctx.settings.jwt_ttl_seconds
    me = api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == body["id"]

    with api.ctx.db.sessions() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None and user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$")


def test_wrong_password_and_unknown_email_look_the_same(api: LiveApi) -> None:
    user = api.user()
    wrong = api.client.post("/api/v1/auth/login", json={"email": user.email, "password": "nope"})
    unknown = api.client.post("/api/v1/auth/login", json={"email": _email(), "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


@pytest.mark.parametrize("field", ["email", "password"])
def test_invalid_signup_is_400_in_the_error_shape(api: LiveApi, field: str) -> None:
    body = {"email": _email(), "password": "long enough"}
    body[field] = "x"
    r = api.client.post("/api/v1/auth/signup", json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["details"][0]["loc"][-1] == field


def test_forged_expired_and_unsigned_tokens_are_refused(api: LiveApi) -> None:
    user = api.user()
    keys = api.ctx.settings.signing_keys()
    forged = auth.issue_token(
        user.id, keys=auth.SigningKeys.derive("another-secret"), ttl_seconds=600
    )
    expired = auth.issue_token(user.id, keys=keys, ttl_seconds=-60)
    unsigned = "eyJhbGciOiJub25lIn0." + user.token.split(".")[1] + "."
    for token in (forged, expired, unsigned, "garbage"):
        r = api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert r.json()["error"]["code"] == "unauthenticated"


def test_api_keys_are_shown_once_stored_hashed_and_revocable(api: LiveApi) -> None:
    user = api.user()
    r = api.client.post(
        "/api/v1/keys", headers=user.headers, json={"name": "ci", "scope": "account"}
    )
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    assert key.startswith(f"mp_{created['id']}_")

    listing = api.client.get("/api/v1/keys", headers=user.headers)
    assert [k["id"] for k in listing.json()] == [created["id"]]
    assert key not in listing.text and "key" not in listing.json()[0]
    with api.ctx.db.sessions() as session:
        row = session.get(ApiKey, created["id"])
        assert row is not None and row.sha256 == auth.sha256_hex(key)

    by_key = {"X-API-Key": key}
    assert api.client.get("/api/v1/users/me", headers=by_key).json()["id"] == user.id
    tampered = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    assert api.client.get("/api/v1/users/me", headers={"X-API-Key": tampered}).status_code == 401

    other = api.user()
    assert (
        api.client.delete(f"/api/v1/keys/{created['id']}", headers=other.headers).status_code == 404
    )
    assert (
        api.client.delete(f"/api/v1/keys/{created['id']}", headers=user.headers).status_code == 204
    )
    assert api.client.get("/api/v1/users/me", headers=by_key).status_code == 401
    revoked = api.client.get("/api/v1/keys", headers=user.headers).json()[0]
    assert revoked["revokedAt"] is not None


def test_security_actions_are_audited(api: LiveApi) -> None:
    user = api.user()
    api.client.post("/api/v1/keys", headers=user.headers, json={"name": "k"})
    api.client.post("/api/v1/auth/login", json={"email": user.email, "password": "bad password"})
    with api.ctx.db.sessions() as session:
        actions = {
            (e.action, e.outcome)
            for e in session.scalars(select(AuditEvent).where(AuditEvent.actor_id == user.id))
        }
        denied = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "auth.login", AuditEvent.outcome == "denied"
            )
        ).all()
    assert {("user.create", "ok"), ("auth.login", "ok"), ("key.create", "ok")} <= actions
    assert denied


def _make_admin(api: LiveApi, user_id: str) -> None:
    with api.ctx.db.sessions() as session:
        row = session.get(User, user_id)
        assert row is not None
        row.role = Role.ADMIN
        session.commit()


def test_admin_lists_users_and_changes_limits(api: LiveApi) -> None:
    admin, user = api.user(), api.user()
    assert api.client.get("/api/v1/admin/users", headers=user.headers).status_code == 403
    _make_admin(api, admin.id)
    listing = api.client.get("/api/v1/admin/users?limit=200", headers=admin.headers).json()
    assert user.id in {u["id"] for u in listing["items"]}

    r = api.client.patch(
        f"/api/v1/admin/users/{user.id}", headers=admin.headers, json={"subscription": "premium"}
    )
    assert r.status_code == 200
    assert r.json()["rateLimits"] == {"requestsPerMinute": 600, "modelsLimit": 100}
    r = api.client.patch(
        f"/api/v1/admin/users/{user.id}", headers=admin.headers, json={"modelsLimit": 7}
    )
    assert r.json()["rateLimits"]["modelsLimit"] == 7
    missing = api.client.patch("/api/v1/admin/users/nobody", headers=admin.headers, json={})
    assert missing.status_code == 404


def test_closed_signup_lets_only_admins_create_users(make_api: MakeApi) -> None:
    api = make_api(signup="admin")
    body = {"email": _email(), "password": "long enough"}
    r = api.client.post("/api/v1/auth/signup", json=body)
    assert r.status_code == 403
    admin_id = _insert_admin(api)
    token = auth.issue_token(admin_id, keys=api.ctx.settings.signing_keys(), ttl_seconds=60)
    r = api.client.post(
        "/api/v1/auth/signup", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 201


def _insert_admin(api: LiveApi) -> str:
    from modelport.api.services import users

    with api.ctx.db.sessions() as session:
        admin = users.create_user(
            session, settings=api.ctx.settings, email=_email(), password=None, role=Role.ADMIN
        )
        return admin.id


def test_control_api_rate_limit_answers_429_with_retry_after(api: LiveApi) -> None:
    user = api.user()
    with api.ctx.db.sessions() as session:
        row = session.get(User, user.id)
        assert row is not None
        row.requests_per_minute = 3
        session.commit()
    codes = [api.client.get("/api/v1/keys", headers=user.headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = api.client.get("/api/v1/keys", headers=user.headers)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"
    # Other users are not affected.
    assert api.client.get("/api/v1/keys", headers=api.user().headers).status_code == 200
