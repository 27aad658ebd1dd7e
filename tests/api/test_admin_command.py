"""``modelport-api create-admin``: the first admin of an installation whose sign-up is closed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.api.conftest import MakeApi


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "modelport-api"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_create_admin_prints_a_working_key_once(make_api: MakeApi) -> None:
    api = make_api(signup="admin")
    settings = api.ctx.settings
    env = {
        **os.environ,
        "MODELPORT_API_DATABASE_URL": settings.database_url,
        "MODELPORT_API_MASTER_KEYS": settings.master_keys.get_secret_value(),  # type: ignore[union-attr]
        "MODELPORT_API_JWT_SECRET": "x" * 40,
        "MODELPORT_API_ARTIFACT_URI": settings.artifact_uri,
    }
    email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    done = run(env, "create-admin", "--email", email, "--password", "a long password")
    assert done.returncode == 0, done.stderr
    printed = dict(line.rsplit(": ", 1) for line in done.stdout.strip().splitlines()[1:])
    key = printed["account key (control API, `modelport login --key`)"]
    inference = printed["inference key (calls models)"]
    assert key.startswith("mp_") and inference.startswith("mp_")
    assert api.client.get("/api/v1/users/me", headers={"X-API-Key": inference}).status_code == 403

    me = api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "admin" and me.json()["email"] == email
    # The password signs in too.
    login = api.client.post(
        "/api/v1/auth/login", json={"email": email, "password": "a long password"}
    )
    assert login.status_code == 200

    again = run(env, "create-admin", "--email", email)
    assert again.returncode == 1
    assert "already exists" in again.stderr
