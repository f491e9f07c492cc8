"""Schema migrations (Alembic) driven from code, and the drift check CI runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from openpars.db import DIALECT_INDEXES, Base, make_engine
from openpars.models import load_all_models

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def _declared(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    """Compared by the drift check: everything but the indexes one dialect's schema DDL makes
    (``db.DIALECT_INDEXES``), which the models cannot declare for one dialect alone."""
    return not (kind == "index" and reflected and name in DIALECT_INDEXES)


def drift(url: str) -> list[Any]:
    """Differences between the migrated database and the models; empty means no drift."""
    load_all_models()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_object": _declared}
            context = MigrationContext.configure(conn, opts=opts)
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def revision(url: str, message: str) -> None:
    """Autogenerate a new migration against the database at ``url`` (developers)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
