"""`modelport-api migrate` takes an advisory lock on PostgreSQL, one migrator at a time.

Two control API pods that start together each run the migrations in their init container. The
test holds the lock itself while two `modelport-api migrate` processes start on a fresh
database, sees both wait on it in `pg_locks`, then lets go: exactly one applies the migrations,
the other finds them applied, and neither fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2  # type: ignore[import-untyped]
import pytest
from modelport.api.db.session import MIGRATION_LOCK_KEY, Database, migrate

from testing.postgres import PostgresServer

HEAD = "0002"
APPLIED = "database migrated to head: applied 0001, 0002"
NOTHING = "database already at head: nothing to apply"


def _dsn(url: str) -> str:
    """The libpq form of a `postgresql+psycopg2://user@host:port/db` URL."""
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


@pytest.fixture
def fresh_db(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()


@pytest.fixture
def lock_holder(fresh_db: str) -> Iterator[Any]:
    """A connection of the test's own that holds the migrations' advisory lock."""
    conn = psycopg2.connect(_dsn(fresh_db))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        yield conn
    finally:
        conn.close()


def _start_migrate(url: str) -> subprocess.Popen[str]:
    """`modelport-api migrate` as the init container runs it, from this checkout's code."""
    env = {**os.environ, "MODELPORT_API_DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "modelport.api.main", "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _waiting_on_the_lock(conn: Any) -> int:
    """How many sessions wait for the migrations' lock (a bigint key is split in two)."""
    high, low = MIGRATION_LOCK_KEY >> 32, MIGRATION_LOCK_KEY & 0xFFFFFFFF
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = %s AND objid = %s AND objsubid = 1",
            (high, low),
        )
        return int(cur.fetchone()[0])


def _wait_for_waiters(conn: Any, count: int, processes: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 60
    while _waiting_on_the_lock(conn) < count:
        for proc in processes:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"migrate ended before the lock was released:\n{out}")
        assert time.monotonic() < deadline, "the migrators never waited on the lock"
        time.sleep(0.1)


def _has_version_table(conn: Any) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
        return bool(cur.fetchone()[0])


def _finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


@pytest.mark.postgres
def test_two_migrators_at_once_apply_the_migrations_exactly_once(
    fresh_db: str, lock_holder: Any
) -> None:
    processes = [_start_migrate(fresh_db), _start_migrate(fresh_db)]
    try:
        # Both started and both wait on the lock the test holds: nothing is applied meanwhile.
        _wait_for_waiters(lock_holder, 2, processes)
        assert not _has_version_table(lock_holder)
    finally:
        with lock_holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    outputs = [_finish(proc) for proc in processes]

    reports = sorted(line for out in outputs for line in out.splitlines() if "database" in line)
    assert reports == sorted([APPLIED, NOTHING]), outputs
    db = Database(fresh_db)
    try:
        assert db.current_revision() == HEAD
        db.ensure_migrated()
    finally:
        db.dispose()


@pytest.mark.postgres
def test_migrate_waits_for_the_lock_and_releases_it(fresh_db: str, lock_holder: Any) -> None:
    proc = _start_migrate(fresh_db)
    try:
        _wait_for_waiters(lock_holder, 1, [proc])
        assert proc.poll() is None
    finally:
        with lock_holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    assert APPLIED in _finish(proc)

    # Released afterwards: another session takes it at once, and a second run applies nothing.
    with lock_holder.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        assert cur.fetchone()[0] is True
        cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    assert migrate(fresh_db) == []


@pytest.mark.postgres
def test_a_failed_migration_releases_the_lock(fresh_db: str, lock_holder: Any) -> None:
    with lock_holder.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        cur.execute("CREATE TABLE users (id integer)")  # the first migration creates `users`
    with pytest.raises(Exception, match="users"):
        migrate(fresh_db)
    with lock_holder.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        assert cur.fetchone()[0] is True
        assert not _has_version_table(lock_holder)  # the failed migration left nothing behind


def test_sqlite_migrates_without_a_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'modelport.db'}"
    assert migrate(url) == ["0001", HEAD]
    assert migrate(url) == []
