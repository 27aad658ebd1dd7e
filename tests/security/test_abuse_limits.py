"""Abuse limits: model settings within the owner's subscription, trusted hosts (DNS rebinding),
login and sign-up throttling, and the cap on concurrent password hashes."""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid

import httpx
import pytest
from modelport.api.db.tables import Role, Subscription
from modelport.api.db.tables import User as UserRow
from modelport.api.schemas import DeploymentSettings
from modelport.api.services import keys

from testing.payloads import onnx_add_one
from testing.up import RunningModelport
from tests.api.conftest import LiveApi, MakeApi, User

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

#: What a free user once gave their own model (and got 200 for).
GREEDY: dict[str, object] = {
    "rateLimitPerMinute": 0,
    "gpuCount": 16,
    "minReplicas": 100,
    "maxReplicas": 100,
}


def _model(api: LiveApi, user: User) -> str:
    r = api.upload(user, onnx_add_one(), name="limits")
    assert r.status_code == 201, r.text
    return str(r.json()["modelId"])


def _set_user(api: LiveApi, user_id: str, **values: object) -> None:
    with api.ctx.db.sessions() as session:
        row = session.get(UserRow, user_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        session.commit()


def _patch(api: LiveApi, user: User, model_id: str, settings: dict[str, object]) -> httpx.Response:
    return api.client.patch(
        f"/api/v1/models/{model_id}", headers=user.headers, json={"settings": settings}
    )


# --- model settings within the owner's subscription ----------------------------------------------


def test_free_user_cannot_raise_their_model_beyond_the_subscription(api: LiveApi) -> None:
    user = api.user()
    model_id = _model(api, user)
    before = api.client.get(f"/api/v1/models/{model_id}", headers=user.headers).json()
    r = _patch(api, user, model_id, GREEDY)
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "settings_limit_exceeded"
    exceeded = {e["field"]: (e["value"], e["limit"]) for e in error["details"]["exceeded"]}
    assert exceeded == {
        "gpuCount": (16, 0),
        "minReplicas": (100, 3),
        "maxReplicas": (100, 3),
        "rateLimitPerMinute": (0, 60),
    }
    assert "gpuCount 16 (at most 0)" in error["message"]
    after = api.client.get(f"/api/v1/models/{model_id}", headers=user.headers).json()
    assert after["settings"] == before["settings"]  # nothing changed
    big = {"cpu": "64", "memory": "1Ti", "replicas": 4, "maxReplicas": 4}
    r = _patch(api, user, model_id, big)
    assert r.status_code == 403, r.text
    fields = {e["field"] for e in r.json()["error"]["details"]["exceeded"]}
    assert fields == {"cpu", "memory", "replicas", "maxReplicas"}


def test_free_user_cannot_lift_or_raise_the_inference_rate_limit(api: LiveApi) -> None:
    user = api.user()
    model_id = _model(api, user)
    for refused in (0, 61):
        r = _patch(api, user, model_id, {"rateLimitPerMinute": refused})
        assert r.status_code == 403, r.text
    within = {"rateLimitPerMinute": 30, "cpu": "1500m", "memory": "4Gi", "maxReplicas": 3}
    r = _patch(api, user, model_id, within)
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["rateLimitPerMinute"] == 30


def test_caps_follow_the_subscription_and_admins_settings(make_api: MakeApi) -> None:
    api = make_api(free={"max_replicas": 5, "max_gpus_per_model": 1})
    user = api.user()
    model_id = _model(api, user)
    assert _patch(api, user, model_id, {"maxReplicas": 5, "gpuCount": 1}).status_code == 200
    assert _patch(api, user, model_id, {"maxReplicas": 6}).status_code == 403
    _set_user(api, user.id, subscription=Subscription.PREMIUM)
    assert _patch(api, user, model_id, {"maxReplicas": 20, "gpuCount": 4}).status_code == 200
    assert _patch(api, user, model_id, {"gpuCount": 5}).status_code == 403
    _set_user(api, user.id, role=Role.ADMIN)  # administrators' own models are not capped
    r = _patch(api, user, model_id, GREEDY)
    assert r.status_code == 200, r.text


def test_a_model_cannot_give_keys_more_than_their_owner_has(api: LiveApi) -> None:
    """The runtime's per-key limit is the tighter of the owner's and the model's."""
    user = api.user()
    model_id = _model(api, user)
    assert _patch(api, user, model_id, {"rateLimitPerMinute": 30}).status_code == 200
    _set_user(api, user.id, requests_per_minute=10)  # an administrator lowers the user's limit

    r = api.client.post("/api/v1/keys", headers=user.headers, json={"name": "inference"})
    assert r.status_code == 201, r.text

    def limits(model_limit: int | None) -> set[int]:
        settings = DeploymentSettings(rate_limit_per_minute=model_limit)
        with api.ctx.db.sessions() as session:
            doc = keys.auth_keys_document(
                session, user_id=user.id, model_id=model_id, settings=settings
            )
        return {k["rateLimitPerMinute"] for k in json.loads(doc)["keys"]}

    assert limits(30) == {10}
    assert limits(5) == {5}
    assert limits(None) == {10}
    _set_user(api, user.id, requests_per_minute=0)  # no limit on the owner's side
    assert limits(5) == {5}
    assert limits(None) == {0}


# --- trusted hosts ------------------------------------------------------------------------------


def test_dns_rebinding_host_is_refused_before_any_route(make_api: MakeApi) -> None:
    api = make_api(allowed_hosts=["127.0.0.1", "api.example.com"])
    email = f"rebind-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": "correct horse battery"}
    r = api.client.post("/api/v1/auth/signup", json=body, headers={"Host": "evil.example"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_host"
    r = api.client.post("/api/v1/auth/login", json=body, headers={"Host": "evil.example"})
    assert r.status_code == 400  # the refused sign-up created nobody: this login never ran
    r = api.client.post("/api/v1/auth/signup", json=body, headers={"Host": "api.example.com"})
    assert r.status_code == 201, r.text
    # The kubelet probes by pod IP; the probes answer whatever the host.
    for path in ("/healthz", "/readyz"):
        assert api.client.get(path, headers={"Host": "10.1.2.3:8000"}).status_code == 200


def test_dns_rebinding_cannot_reach_modelport_up(modelport_up: RunningModelport) -> None:
    body = {"email": f"rebind-{uuid.uuid4().hex[:8]}@example.com", "password": "x" * 12}
    url = f"{modelport_up.url}/api/v1/auth/signup"
    r = httpx.post(url, json=body, headers={"Host": "evil.example"}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_host"
    port = modelport_up.url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1"):
        r = httpx.get(f"{modelport_up.url}/api/v1/users/me", headers={"Host": host}, timeout=30)
        assert r.status_code == 400, (host, r.text)
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        r = httpx.get(f"{modelport_up.url}/api/v1/users/me", headers={"Host": host}, timeout=30)
        assert r.status_code == 401, (host, r.text)  # reached the route: no credentials


# --- login and sign-up throttling -----------------------------------------------------------------


def _login(api: LiveApi, email: str, password: str, **headers: str) -> httpx.Response:
    return api.client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}, headers=headers
    )


def test_password_guessing_on_one_account_backs_off(api: LiveApi) -> None:
    user = api.user()
    answers = [_login(api, user.email, f"guess-{i}") for i in range(8)]
    assert [a.status_code for a in answers[:5]] == [401] * 5  # a few mistakes are free
    first = next(a for a in answers[5:] if a.status_code == 429)
    assert first.json()["error"]["code"] == "rate_limited"
    time.sleep(int(first.headers["Retry-After"]) + 0.2)
    assert _login(api, user.email, "yet another guess").status_code == 401
    r = _login(api, user.email.upper(), user.password)  # even the right password waits now
    assert r.status_code == 429, r.text
    wait = int(r.headers["Retry-After"])
    assert 2 <= wait <= 900  # twice as long as the first wait
    time.sleep(wait + 0.2)
    assert _login(api, user.email, user.password).status_code == 200
    # Success reset the account's count: a wrong password is an ordinary 401 again.
    assert _login(api, user.email, "one more guess").status_code == 401


def test_concurrent_password_guesses_back_off(api: LiveApi) -> None:
    """Guesses sent all at once back off like guesses sent one by one: the account's failures
    are checked again once a hash slot is held, so at most the hashes in flight get past it."""
    user = api.user()
    settings = api.ctx.settings

    def guess(i: int) -> int:
        return _login(api, user.email, f"guess-{i}").status_code

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        codes = list(pool.map(guess, range(24)))
    assert set(codes) <= {401, 429, 503}, codes
    guessed = codes.count(401)
    assert guessed <= settings.login_failures_per_account + settings.password_hash_concurrency - 1
    assert 429 in codes, codes


def test_password_spraying_from_one_address_backs_off(make_api: MakeApi) -> None:
    api = make_api(login_failures_per_address=3)
    victims = [api.user() for _ in range(4)]
    for victim in victims[:3]:
        assert _login(api, victim.email, "Winter2026!").status_code == 401
    r = _login(api, victims[3].email, victims[3].password)
    assert r.status_code == 429, r.text
    assert "Retry-After" in r.headers


def test_forged_x_forwarded_for_does_not_escape_the_address_back_off(make_api: MakeApi) -> None:
    api = make_api(login_failures_per_address=2)
    answers = [
        _login(api, f"nobody-{i}@example.com", "guess", **{"X-Forwarded-For": f"203.0.113.{i}"})
        for i in range(6)
    ]
    assert 429 in {a.status_code for a in answers}  # the peer (127.0.0.1) is no trusted proxy


def test_trusted_proxy_names_the_client_address(make_api: MakeApi) -> None:
    api = make_api(login_failures_per_address=2, trusted_proxies=["127.0.0.0/8"])
    for i in range(3):
        _login(api, f"nobody-{i}@example.com", "guess", **{"X-Forwarded-For": "203.0.113.7"})
    blocked = _login(api, "nobody-9@example.com", "guess", **{"X-Forwarded-For": "203.0.113.7"})
    assert blocked.status_code == 429
    other = _login(api, "nobody-9@example.com", "guess", **{"X-Forwarded-For": "198.51.100.2"})
    assert other.status_code == 401  # another client behind the same proxy is not blocked


def test_signup_flood_and_email_probing_from_one_address_are_throttled(
    make_api: MakeApi,
) -> None:
    api = make_api(signups_per_minute=3)
    for _ in range(3):
        api.user()
    r = api.client.post(
        "/api/v1/auth/signup", json={"email": "flood@example.com", "password": "x" * 12}
    )
    assert r.status_code == 429, r.text
    assert "Retry-After" in r.headers

    probing = make_api(login_failures_per_address=2)
    taken = probing.user()
    for _ in range(3):
        r = probing.client.post(
            "/api/v1/auth/signup", json={"email": taken.email, "password": "x" * 12}
        )
    assert r.status_code == 429, r.text  # refused sign-ups (email taken) back off too


def test_concurrent_password_hashes_are_capped(make_api: MakeApi) -> None:
    api = make_api(password_hash_concurrency=1, password_hash_wait_seconds=0.2)
    user = api.user()
    with api.ctx.login_guard.slots.held():  # the one slot is busy hashing
        r = _login(api, user.email, user.password)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "busy"
        assert int(r.headers["Retry-After"]) >= 1
        body = {"email": f"s-{uuid.uuid4().hex[:8]}@example.com", "password": "x" * 12}
        assert api.client.post("/api/v1/auth/signup", json=body).status_code == 503
    assert _login(api, user.email, user.password).status_code == 200
