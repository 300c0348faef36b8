"""Alembic environment: runs on the engine handed in by core.store.db, or SWITCHBOARD_DB_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from core.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        from core.config import load_settings
        from core.store.db import make_engine

        engine = make_engine(load_settings().database_url)
    return engine


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        if connection.dialect.name == "postgresql":
            # Requests get a statement timeout; a schema upgrade may take longer than that.
            connection.exec_driver_sql("SET statement_timeout = 0")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,  # SQLite cannot ALTER most things in place
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
