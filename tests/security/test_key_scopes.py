"""API key scopes: an inference key calls models and nothing else, an account key uses the control
API and calls no model, a bound inference key calls only its models, and keys from before scopes
keep working as legacy keys. The live API on PostgreSQL and S3; the runtime side against real
local runtime processes or the key document the deployer hands them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from alembic import command
from modelport.api.db.session import Database, alembic_config, migrate
from modelport.api.db.tables import Model
from modelport.api.schemas import DeploymentSettings
from modelport.api.services import keys
from modelport.api.settings import SubscriptionLimits
from sqlalchemy import text

from testing.payloads import onnx_add_one
from testing.postgres import PostgresServer
from tests.api.conftest import LiveApi, MakeApi, User

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

INPUT = {"inputData": [[1.0, 2.0]]}


def wait_for(check: Callable[[], bool], timeout: float = 90.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def new_key(api: LiveApi, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = api.client.post("/api/v1/keys", headers=headers, json={"name": "k", **body})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(api: LiveApi, user: User) -> str:
    r = api.upload(user, onnx_add_one())
    assert r.status_code == 201, r.text
    return str(r.json()["modelId"])


def key_ids_in_document(api: LiveApi, model_id: str) -> set[str]:
    """The key ids the deployer writes into the model's ``auth-keys.json``."""
    with api.ctx.db.sessions() as session:
        model = session.get(Model, model_id)
        assert model is not None
        document = keys.auth_keys_document(
            session,
            user_id=model.owner_id,
            model_id=model.id,
            settings=DeploymentSettings.model_validate(model.settings),
        )
    return {k["id"] for k in json.loads(document)["keys"]}


def assert_inference_key_refused(r: httpx.Response) -> None:
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "forbidden" and "inference key" in error["message"]


@pytest.fixture
def local_api(make_api: MakeApi) -> LiveApi:
    return make_api(
        local_runtimes=True, free=SubscriptionLimits(requests_per_minute=0, models_limit=10)
    )


# --- the control API ----------------------------------------------------------------------------


def test_inference_key_cannot_create_keys(api: LiveApi) -> None:
    user = api.user()
    inference = new_key(api, user.headers)  # the default scope
    assert inference["scope"] == "inference"
    for body in ({"name": "more"}, {"name": "more", "scope": "account"}):
        r = api.client.post("/api/v1/keys", headers=bearer(inference["key"]), json=body)
        assert_inference_key_refused(r)
    listed = api.client.get("/api/v1/keys", headers=user.headers).json()
    assert [k["id"] for k in listed] == [inference["id"]]


def test_inference_key_refused_by_control_api(api: LiveApi) -> None:
    user = api.user()
    model_id = upload(api, user)
    inference = new_key(api, user.headers, models=[model_id])
    for header in (bearer(inference["key"]), {"X-API-Key": inference["key"]}):
        for method, path, body in [
            ("GET", "/api/v1/users/me", None),
            ("GET", "/api/v1/models", None),
            ("GET", f"/api/v1/models/{model_id}", None),
            ("PATCH", f"/api/v1/models/{model_id}", {"description": "taken over"}),
            ("DELETE", f"/api/v1/models/{model_id}", None),
            ("GET", "/api/v1/keys", None),
            ("DELETE", f"/api/v1/keys/{inference['id']}", None),
        ]:
            r = api.client.request(method, path, headers=header, json=body)
            assert_inference_key_refused(r)
        files = {"file": ("m.onnx", onnx_add_one(), "application/octet-stream")}
        r = api.client.post("/api/v1/models", headers=header, files=files,
                            data={"modelName": "x"})  # fmt: skip
        assert_inference_key_refused(r)
    # Nothing changed, and the key was not revoked by its own holder.
    shown = api.client.get(f"/api/v1/models/{model_id}", headers=user.headers).json()
    assert shown["description"] == "a test model"
    listed = api.client.get("/api/v1/keys", headers=user.headers).json()
    assert [k["revokedAt"] for k in listed] == [None]


def test_account_key_creates_keys_and_a_token_creates_account_keys(api: LiveApi) -> None:
    """The positive side of the boundary: a login token or an account key creates keys."""
    user = api.user()
    account = new_key(api, user.headers, scope="account")
    assert account["scope"] == "account" and account["models"] is None
    made = new_key(api, bearer(account["key"]))
    assert made["scope"] == "inference"
    assert api.client.get("/api/v1/users/me", headers=bearer(account["key"])).status_code == 200


def test_new_keys_cannot_ask_for_the_legacy_scope_or_bind_account_keys(api: LiveApi) -> None:
    user = api.user()
    model_id = upload(api, user)
    for body in (
        {"name": "k", "scope": "legacy"},
        {"name": "k", "scope": "account", "models": [model_id]},
        {"name": "k", "scope": "inference", "models": []},
    ):
        r = api.client.post("/api/v1/keys", headers=user.headers, json=body)
        assert r.status_code == 400, (body, r.text)
    assert api.client.get("/api/v1/keys", headers=user.headers).json() == []
    assert new_key(api, user.headers, models=[model_id, model_id])["models"] == [model_id]


def test_key_cannot_be_bound_to_another_users_model(api: LiveApi) -> None:
    owner, stranger = api.user(), api.user()
    theirs = upload(api, owner)
    r = api.client.post(
        "/api/v1/keys", headers=stranger.headers, json={"name": "k", "models": [theirs]}
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    assert api.client.get("/api/v1/keys", headers=stranger.headers).json() == []
    assert key_ids_in_document(api, theirs) == set()


# --- the runtimes -------------------------------------------------------------------------------


@pytest.mark.slow
def test_account_key_cannot_call_models(local_api: LiveApi) -> None:
    api = local_api
    user = api.user()
    account = new_key(api, user.headers, scope="account")
    inference = new_key(api, user.headers)
    model_id = upload(api, user)
    endpoint = f"{api.url}/models/{model_id}"
    assert key_ids_in_document(api, model_id) == {inference["id"]}

    def answers(key: str) -> int:
        return httpx.post(f"{endpoint}/predict", json=INPUT, headers=bearer(key)).status_code

    wait_for(lambda: answers(inference["key"]) == 200, what="the runtime to serve")
    assert answers(account["key"]) == 401
    infer = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [5.0, 6.0]}]}
    r = httpx.post(f"{endpoint}/v2/models/{model_id}/infer", json=infer,
                   headers={"X-API-Key": account["key"]})  # fmt: skip
    assert r.status_code == 401, r.text


@pytest.mark.slow
def test_bound_key_cannot_call_other_models(local_api: LiveApi) -> None:
    api = local_api
    user = api.user()
    bound_to, other = upload(api, user), upload(api, user)
    bound = new_key(api, user.headers, models=[bound_to])
    unbound = new_key(api, user.headers)
    assert bound["models"] == [bound_to]

    def answers(model_id: str, key: str) -> int:
        url = f"{api.url}/models/{model_id}/predict"
        return httpx.post(url, json=INPUT, headers=bearer(key)).status_code

    wait_for(lambda: answers(bound_to, bound["key"]) == 200, what="the bound key to work")
    wait_for(lambda: answers(other, unbound["key"]) == 200, what="the other model to serve")
    assert answers(other, bound["key"]) == 401
    assert key_ids_in_document(api, other) == {unbound["id"]}
    listed = {k["id"]: k for k in api.client.get("/api/v1/keys", headers=user.headers).json()}
    assert (listed[bound["id"]]["models"], listed[unbound["id"]]["models"]) == ([bound_to], None)


def test_deleting_the_bound_model_does_not_widen_the_key(api: LiveApi) -> None:
    """A key bound to one model, which is then deleted: no binding is left, and the key calls
    nothing (an emptied binding never falls back to "every model")."""
    user = api.user()
    bound_to, other = upload(api, user), upload(api, user)
    bound = new_key(api, user.headers, models=[bound_to])
    assert api.client.delete(f"/api/v1/models/{bound_to}", headers=user.headers).status_code == 204
    with api.ctx.db.sessions() as session:
        left = session.execute(
            text("SELECT count(*) FROM api_key_models WHERE key_id = :k"), {"k": bound["id"]}
        ).scalar_one()
    assert left == 0
    assert key_ids_in_document(api, other) == set()
    later = upload(api, user)
    assert key_ids_in_document(api, later) == set()
    listed = api.client.get("/api/v1/keys", headers=user.headers).json()
    assert [(k["id"], k["models"]) for k in listed] == [(bound["id"], [])]


# --- keys from before scopes (migration 0002) ---------------------------------------------------


def test_keys_from_before_scopes_become_legacy_keys(postgres_server: PostgresServer) -> None:
    """An upgrade neither breaks an existing key (it keeps both powers, as a ``legacy`` key) nor
    widens one; a downgrade revokes inference keys rather than hand them the control API."""
    url = postgres_server.create_database()
    assert migrate(url, "0001") == ["0001"]
    user_id, key_id = "u" + uuid.uuid4().hex[:16], uuid.uuid4().hex[:12]
    db = Database(url)
    try:
        with db.session() as session:
            session.execute(
                text(
                    "INSERT INTO users (id, email, role, subscription, requests_per_minute,"
                    " models_limit, created_at) VALUES (:u, :e, 'user', 'free', 60, 5, now())"
                ),
                {"u": user_id, "e": f"{user_id}@example.com"},
            )
            session.execute(
                text(
                    "INSERT INTO api_keys (id, user_id, name, sha256, created_at)"
                    " VALUES (:k, :u, 'old', :h, now())"
                ),
                {"k": key_id, "u": user_id, "h": "0" * 64},
            )
        assert migrate(url) == ["0002"]
        with db.engine.connect() as conn:
            row = conn.execute(
                text("SELECT scope, model_bound, revoked_at FROM api_keys WHERE id = :k"),
                {"k": key_id},
            ).one()
        assert tuple(row) == ("legacy", False, None)

        # Keys of each scope, then a downgrade: only the inference key is revoked.
        with db.session() as session:
            for scope in ("inference", "account"):
                session.execute(
                    text(
                        "INSERT INTO api_keys (id, user_id, name, sha256, created_at, scope,"
                        " model_bound) VALUES (:k, :u, :s, :h, now(), :s, false)"
                    ),
                    {"k": f"{scope[:3]}{key_id}", "u": user_id, "s": scope, "h": "0" * 64},
                )
        command.downgrade(alembic_config(url), "0001")
        with db.engine.connect() as conn:
            revoked: dict[str, bool] = dict(
                conn.execute(text("SELECT name, revoked_at IS NOT NULL FROM api_keys")).all()
            )
        assert revoked == {"old": False, "inference": True, "account": False}
    finally:
        db.dispose()


def test_legacy_key_keeps_the_control_api_and_its_models(api: LiveApi) -> None:
    """What the migration promises, on the live API: a legacy key still uses the control API
    and is still written into its owner's model key files."""
    user = api.user()
    model_id = upload(api, user)
    legacy = new_key(api, user.headers, scope="account")
    with api.ctx.db.sessions() as session:
        session.execute(
            text("UPDATE api_keys SET scope = 'legacy' WHERE id = :k"), {"k": legacy["id"]}
        )
        session.commit()
    assert api.client.get("/api/v1/users/me", headers=bearer(legacy["key"])).status_code == 200
    assert key_ids_in_document(api, model_id) == {legacy["id"]}
    listed = api.client.get("/api/v1/keys", headers=bearer(legacy["key"])).json()
    assert [k["scope"] for k in listed] == ["legacy"]
