"""Alembic environment: the URL comes from the caller (``modelport-api migrate``) or, when run as
``alembic -c control-api/alembic.ini``, from ``MODELPORT_API_DATABASE_URL``."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from modelport.api.db.session import APPLIED_REVISIONS, migration_lock
from modelport.api.db.tables import Base
from modelport.api.settings import ApiSettings
from sqlalchemy import create_engine

config = context.config
url = config.attributes.get("database_url") or ApiSettings().database_url


def _record(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Note each revision this run applies (``migrate()`` returns them)."""
    if step.is_upgrade and step.up_revision_id:
        config.attributes.setdefault(APPLIED_REVISIONS, []).append(step.up_revision_id)


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    # One migrator at a time (PostgreSQL): the lock is taken on the connection alembic uses.
    with engine.connect() as connection, migration_lock(connection):
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=url.startswith("sqlite"),
            on_version_apply=_record,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
