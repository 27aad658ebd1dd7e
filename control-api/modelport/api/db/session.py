"""Engine and session handling, and the check that the database is migrated."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from modelport.core.errors import NotReady
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATE_HINT = "run `modelport-api migrate` (or `alembic -c control-api/alembic.ini upgrade head`)"

#: Key of the PostgreSQL advisory lock that serialises migrations (the ASCII bytes "mpmigrat").
MIGRATION_LOCK_KEY = 0x6D706D6967726174
#: Alembic config attribute where the migration environment lists the revisions it applied.
APPLIED_REVISIONS = "modelport_applied_revisions"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine that survives a database restart (connections are pinged before use)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class Database:
    """The engine and session factory of one process."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits when the block succeeds, else rolls back."""
        with self.sessions() as session, session.begin():
            yield session

    def ensure_migrated(self) -> None:
        """Refuse to serve an unmigrated (or not fully migrated) database."""
        current = self.current_revision()
        head = ScriptDirectory.from_config(alembic_config(self.url)).get_current_head()
        if current != head:
            raise NotReady(
                f"the database is at revision {current or 'none'}, the code needs {head}: "
                + MIGRATE_HINT
            )

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the migrations shipped inside the package."""
    cfg = Config()
    location = Path(str(resources.files("modelport.api") / "migrations"))
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["database_url"] = url
    return cfg


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold the migrations' advisory lock on `connection` for the block (PostgreSQL only).

    Two control API pods starting together both run `modelport-api migrate`: the second waits
    here until the first has committed, then finds the schema at head and applies nothing. The
    lock is session-level, so it outlives the transactions alembic opens on the same connection,
    and PostgreSQL releases it should the process die. SQLite has no such lock and needs none
    (one process owns the file).
    """
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()  # leave no transaction open: alembic opens its own
    try:
        yield
    finally:
        if not connection.invalidated:  # a lost connection has released the lock already
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()


def migrate(url: str, revision: str = "head") -> list[str]:
    """Upgrade the database to ``revision``; return the revisions this call applied.

    The list is empty when the database was already there (another process migrated it first).
    """
    from alembic import command

    cfg = alembic_config(url)
    command.upgrade(cfg, revision)
    return list(cfg.attributes.get(APPLIED_REVISIONS, []))
