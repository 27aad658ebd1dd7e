"""``modelport up``'s first minute: the UI address, an admin who can sign in to the UI, and
what to do after a restart, when the key printed at the first start is long gone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from testing.ports import free_port
from testing.up import stop, wait_for

pytestmark = [pytest.mark.slow]


@contextmanager
def _up(data: Path, log: Path, *extra: str) -> Iterator[tuple[str, str]]:
    """``modelport up`` without a terminal; yields its URL and, once it is ready, its banner."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
    command = [sys.executable, "-c", "from modelport.api.cli import main; main()", "up"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*command, "--data-dir", str(data), "--port", str(port), *extra],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), timeout=90, what="modelport up")
        yield url, log.read_text()
    finally:
        stop(proc)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def _login(url: str, password: str) -> int:
    body = {"email": "admin@localhost", "password": password}
    return httpx.post(f"{url}/api/v1/auth/login", json=body).status_code


def test_first_start_prints_the_ui_and_a_working_admin_password(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with _up(data, tmp_path / "first.log") as (url, text):
        assert f"Web UI: {url}/ui/" in text
        assert httpx.get(f"{url}/ui/").status_code == 200
        found = re.search(r"Admin password \(shown once, store it now\): (\S+)", text)
        assert found, text
        password = found.group(1)
        assert _login(url, password) == 200, "the admin signs in with the printed password"
        assert "export MODELPORT_URL=" in text and "MODELPORT_API_KEY=mp_" in text

    with _up(data, tmp_path / "second.log") as (url, text):
        assert "mp_" not in text and password not in text, "secrets are printed only once"
        assert f"Web UI: {url}/ui/" in text
        assert "--reset-admin-password" in text
        assert f"modelport login --url {url} --email admin@localhost" in text
        assert _login(url, password) == 200

    with _up(data, tmp_path / "third.log", "--reset-admin-password") as (url, text):
        found = re.search(r"New password of admin@localhost \(shown once\): (\S+)", text)
        assert found, text
        assert _login(url, found.group(1)) == 200
        assert _login(url, password) == 401, "the old password no longer works"
