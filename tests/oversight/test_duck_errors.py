"""DuckDB reading the store out of its memory limit: an error naming the setting that raises
it, not the console's "the database could not be used" (which sends the reader to --db)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from openpars.db import Database
from openpars.errors import InvalidInput
from openpars.oversight import duck
from tests.conftest import BACKEND

pytest.importorskip("duckdb_engine")

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql", reason="DuckDB attaches a PostgreSQL store"
)


def test_duckdb_out_of_memory_names_the_memory_setting(fresh_db: Database) -> None:
    with fresh_db.session() as session:
        url = session.get_bind().url
    with pytest.raises(InvalidInput) as exhausted, duck.reader(url, memory_limit="16MB") as reader:
        # One list of 20M integers (160 MB) is held whole: an aggregate DuckDB cannot spill.
        reader.execute(text("SELECT list(i) FROM range(20000000) t(i)")).scalar()
    assert exhausted.value.field == "oversight_duckdb_memory"
    assert exhausted.value.code == "duckdb_out_of_memory"
    assert "16MB" in exhausted.value.message
    assert "OPENPARS_OVERSIGHT_DUCKDB_MEMORY" in exhausted.value.message


def test_other_duckdb_errors_are_not_called_memory(fresh_db: Database) -> None:
    with fresh_db.session() as session:
        url = session.get_bind().url
    with pytest.raises(Exception) as other, duck.reader(url) as reader:
        reader.execute(text("SELECT * FROM no_such_table")).all()
    assert not isinstance(other.value, InvalidInput)
