"""Alembic environment: the metadata of every feature, batch mode for SQLite."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from openpars.db import Base, make_engine
from openpars.models import load_all_models

load_all_models()
target_metadata = Base.metadata
config = context.config


def run(connection: Connection) -> None:
    """Run the migrations on one connection."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


supplied = config.attributes.get("connection")
if supplied is not None:
    run(supplied)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run(conn)
    engine.dispose()
