"""Alembic environment: the URL comes from the caller (``modelport-api migrate``) or, when run as
``alembic -c control-api/alembic.ini``, from ``MODELPORT_API_DATABASE_URL``."""

from __future__ import annotations

from alembic import context
from modelport.api.db.tables import Base
from modelport.api.settings import ApiSettings
from sqlalchemy import create_engine

config = context.config
url = config.attributes.get("database_url") or ApiSettings().database_url


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=url.startswith("sqlite"),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
