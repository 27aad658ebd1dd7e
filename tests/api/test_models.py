"""Model management: list, filter, paginate, get, update, delete, cross-tenant, usage reports."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from modelport.api.db.tables import Subscription
from modelport.api.db.tables import User as UserRow

from testing.payloads import onnx_add_one
from tests.api.conftest import LiveApi, User

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def _upload(api: LiveApi, user: User, name: str) -> str:
    r = api.upload(user, onnx_add_one(), name=name)
    assert r.status_code == 201, r.text
    return str(r.json()["modelId"])


def test_list_paginates_newest_first_and_filters_by_status(api: LiveApi) -> None:
    user = api.user()
    ids = [_upload(api, user, f"m{i}") for i in range(3)]
    page = api.client.get("/api/v1/models?limit=2", headers=user.headers).json()
    assert page["total"] == 3 and page["limit"] == 2
    assert [m["id"] for m in page["items"]] == ids[::-1][:2]
    rest = api.client.get("/api/v1/models?limit=2&offset=2", headers=user.headers).json()
    assert [m["id"] for m in rest["items"]] == [ids[0]]

    r = api.client.patch(
        f"/api/v1/models/{ids[1]}", headers=user.headers, json={"status": "archived"}
    )
    assert r.status_code == 200 and r.json()["status"] == "archived"
    archived = api.client.get("/api/v1/models?status=archived", headers=user.headers).json()
    assert [m["id"] for m in archived["items"]] == [ids[1]]
    active = api.client.get("/api/v1/models?status=active", headers=user.headers).json()
    assert active["total"] == 2
    bad = api.client.get("/api/v1/models?status=deleted", headers=user.headers)
    assert bad.status_code == 400


def test_update_description_and_deployment_settings(api: LiveApi) -> None:
    user = api.user()
    model_id = _upload(api, user, "m")
    with api.ctx.db.sessions() as session:  # a GPU is beyond the free subscription
        row = session.get(UserRow, user.id)
        assert row is not None
        row.subscription = Subscription.PREMIUM
        session.commit()
    change = {
        "description": "new words",
        "settings": {
            "replicas": 2,
            "minReplicas": 1,
            "maxReplicas": 5,
            "gpuCount": 1,
            "cpu": "500m",
            "memory": "1Gi",
            "authRequired": True,
            "rateLimitPerMinute": 30,
        },
    }
    r = api.client.patch(f"/api/v1/models/{model_id}", headers=user.headers, json=change)
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "new words"
    assert r.json()["settings"]["maxReplicas"] == 5 and r.json()["settings"]["gpuCount"] == 1
    bad = {"settings": {"minReplicas": 4, "maxReplicas": 2}}
    r = api.client.patch(f"/api/v1/models/{model_id}", headers=user.headers, json=bad)
    assert r.status_code == 400
    unknown = api.client.patch(f"/api/v1/models/{model_id}", headers=user.headers, json={"x": 1})
    assert unknown.status_code == 400


def test_another_users_model_is_404_everywhere(api: LiveApi) -> None:
    owner, other = api.user(), api.user()
    model_id = _upload(api, owner, "private")
    h = other.headers
    expected = api.client.get("/api/v1/models/m0000000000000000", headers=h).json()["error"]
    for method, path, body in [
        ("GET", f"/api/v1/models/{model_id}", None),
        ("PATCH", f"/api/v1/models/{model_id}", {"description": "mine now"}),
        ("DELETE", f"/api/v1/models/{model_id}", None),
        ("GET", f"/api/v1/models/{model_id}/versions", None),
        ("GET", f"/api/v1/models/{model_id}/usage", None),
        ("POST", f"/api/v1/models/{model_id}/rollback", {"version": 1}),
    ]:
        r = api.client.request(method, path, headers=h, json=body)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["code"] == expected["code"]
    r = api.upload(other, onnx_add_one(), model_id=model_id)
    assert r.status_code == 404
    assert api.client.get("/api/v1/models", headers=h).json()["total"] == 0
    assert api.client.get(f"/api/v1/models/{model_id}", headers=owner.headers).status_code == 200


def test_delete_removes_rows_and_artifacts(api: LiveApi) -> None:
    user = api.user()
    model_id = _upload(api, user, "m")
    assert api.upload(user, onnx_add_one(), model_id=model_id).status_code == 201
    assert len(api.objects()) == 2
    assert api.client.delete(f"/api/v1/models/{model_id}", headers=user.headers).status_code == 204
    assert api.objects() == []
    assert api.client.get(f"/api/v1/models/{model_id}", headers=user.headers).status_code == 404
    again = api.client.delete(f"/api/v1/models/{model_id}", headers=user.headers)
    assert again.status_code == 404


def _report(model: str, requests: int, p50: float, end: datetime) -> dict[str, object]:
    return {
        "model": model,
        "window": {"start": (end - timedelta(seconds=15)).isoformat(), "end": end.isoformat()},
        "requests": requests,
        "errors": 1,
        "latencyMs": {"p50": p50, "p90": p50 * 2, "p99": p50 * 3},
        "lastUsed": end.isoformat(),
        "byKey": {},
    }


def test_usage_reports_feed_counts_and_percentiles(api: LiveApi) -> None:
    user = api.user()
    model_id = _upload(api, user, "m")
    token = api.ctx.usage_token(model_id)
    now = datetime.now(UTC)
    for requests, p50 in ((10, 2.0), (30, 4.0)):
        r = api.client.post(
            "/api/v1/internal/usage",
            headers={"Authorization": f"Bearer {token}"},
            json=_report(model_id, requests, p50, now),
        )
        assert r.status_code == 204, r.text
    meta = api.client.get(f"/api/v1/models/{model_id}", headers=user.headers).json()
    assert meta["requestCount"] == 40
    assert datetime.fromisoformat(meta["lastUsed"]) == now
    usage = api.client.get(f"/api/v1/models/{model_id}/usage?window=1h", headers=user.headers)
    body = usage.json()
    assert body["requests"] == 40 and body["errors"] == 2
    assert body["latencyMs"] == {"p50": 3.5, "p90": 7.0, "p99": 12.0}
    assert sum(b["requests"] for b in body["buckets"]) == 40
    bad_window = api.client.get(f"/api/v1/models/{model_id}/usage?window=2y", headers=user.headers)
    assert bad_window.status_code == 400


@pytest.mark.parametrize(
    ("window", "count", "width"),
    [("1h", 12, 300), ("24h", 24, 3600), ("7d", 28, 21600), ("30d", 30, 86400)],
)
def test_usage_fills_every_bucket_of_the_window(
    api: LiveApi, window: str, count: int, width: int
) -> None:
    user = api.user()
    model_id = _upload(api, user, "m")
    token = api.ctx.usage_token(model_id)
    now = datetime.now(UTC)
    r = api.client.post(
        "/api/v1/internal/usage",
        headers={"Authorization": f"Bearer {token}"},
        json=_report(model_id, 7, 2.0, now),
    )
    assert r.status_code == 204, r.text
    url = f"/api/v1/models/{model_id}/usage?window={window}"
    buckets = api.client.get(url, headers=user.headers).json()["buckets"]
    assert len(buckets) == count
    starts = [datetime.fromisoformat(b["start"]) for b in buckets]
    assert all((b - a).total_seconds() == width for a, b in itertools.pairwise(starts))
    assert starts[-1] <= now < starts[-1] + timedelta(seconds=width)
    *empty, newest = buckets
    assert all(b["requests"] == 0 and b["errors"] == 0 for b in empty)
    assert all(b["latencyMs"] == {"p50": None, "p90": None, "p99": None} for b in empty)
    assert newest["requests"] == 7 and newest["errors"] == 1
    assert newest["latencyMs"] == {"p50": 2.0, "p90": 4.0, "p99": 6.0}


def test_usage_reports_need_the_models_own_token(api: LiveApi) -> None:
    user = api.user()
    first, second = _upload(api, user, "a"), _upload(api, user, "b")
    report = _report(first, 5, 1.0, datetime.now(UTC))
    for headers in (
        {},
        {"Authorization": f"Bearer {api.ctx.usage_token(second)}"},
        {"Authorization": f"Bearer {user.token}"},
    ):
        r = api.client.post("/api/v1/internal/usage", headers=headers, json=report)
        assert r.status_code == 401
    meta = api.client.get(f"/api/v1/models/{first}", headers=user.headers).json()
    assert meta["requestCount"] == 0
