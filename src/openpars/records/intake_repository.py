"""The SQL of intake's writes: id reservation and driver-level inserts of the new rows.

Intake writes about a dozen rows per arrest (persons, aliases, the arrest, involvements,
charges, a version row per record). For rows like these SQLAlchemy's per-row parameter and
type processing costs more than the database's own work (bench/intake.py), so, as the audit
log does for its entries, they go to the driver as tuples with one executemany per table.
``Binder`` puts each value in the form the column's type would have bound it, so the ORM reads
these rows exactly as if it had written them (tests/records/test_intake_rows.py checks this).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table

from openpars.records.models import Arrest, Charge, Involvement, Person, PersonAlias, RecordVersion
from openpars.records.versions import PERSON_FIELDS

# Columns each insert names, in tuple order; the others take their database default (NULL).
PERSON_COLUMNS = (*PERSON_FIELDS, "created_at", "updated_at")
ALIAS_COLUMNS = ("person_id", "family_name", "given_name", "name_key")
ARREST_COLUMNS = (
    "id",
    "otn",
    "incident_number",
    "ori",
    "arresting_officer",
    "arrested_at",
    "location",
    "arrest_type",
    "narrative",
    "state",
    "source_agency_id",
    "report_id",
    "intake_digest",
    "entered_by_id",
    "version",
    "created_at",
    "updated_at",
)
INVOLVEMENT_COLUMNS = ("id", "arrest_id", "person_id", "role", "juvenile")
CHARGE_COLUMNS = (
    "id",
    "arrest_id",
    "stage",
    "revision",
    "sequence",
    "statute",
    "description",
    "grade",
    "counts",
    "created_at",
    "created_by_id",
)
VERSION_COLUMNS = (
    "entity",
    "entity_id",
    "version",
    "change",
    "reason",
    "snapshot",
    "changed_at",
    "changed_by_id",
)

Row = tuple[Any, ...]


class Binder:
    """Values as the column types bind them on the connection's dialect."""

    def __init__(self, connection: Connection) -> None:
        self.sqlite = connection.dialect.name == "sqlite"

    def instant(self, moment: datetime) -> datetime | str:
        """A UTCDateTime value: naive UTC text on SQLite (SQLAlchemy's format), aware elsewhere."""
        if not self.sqlite:
            return moment
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    def day(self, value: date | None) -> date | str | None:
        """A Date value: ISO text on SQLite, a date elsewhere."""
        if value is None or not self.sqlite:
            return value
        return value.isoformat()

    @staticmethod
    def document(value: dict[str, Any]) -> str:
        """A JSON document as the JSON type serialises it (JSONB is cast from it in SQL)."""
        return _encode(value)


# json.dumps's output without its check for reference cycles (a quarter of its time here):
# intake's documents are trees it has just built.
_encode = json.JSONEncoder(check_circular=False).encode


def reserve_ids(connection: Connection, counts: dict[type[Any], int]) -> dict[type[Any], list[int]]:
    """New ids for rows of several tables, with one query, in the order they are to be used.

    On SQLite the transaction began IMMEDIATE and holds the only write lock, so the ids after
    each table's current maximum are ours. On PostgreSQL they are drawn from each table's
    sequence, so a concurrent writer never gets them.
    """
    models = [m for m, n in counts.items() if n > 0]
    if not models:
        return {m: [] for m in counts}
    tables = [cast(Table, m.__table__).name for m in models]
    if connection.dialect.name == "sqlite":
        query = ", ".join(f"(SELECT max(id) FROM {t})" for t in tables)  # noqa: S608 - our names
        tops = connection.exec_driver_sql(f"SELECT {query}").one()
        reserved = {
            m: list(range(int(top or 0) + 1, int(top or 0) + 1 + counts[m]))
            for m, top in zip(models, tops, strict=True)
        }
    else:
        query = ", ".join(
            f"ARRAY(SELECT nextval(pg_get_serial_sequence('{t}', 'id')) "  # noqa: S608 - our names
            f"FROM generate_series(1, {int(counts[m])}))"
            for m, t in zip(models, tables, strict=True)
        )
        arrays = connection.exec_driver_sql(f"SELECT {query}").one()
        # Sorted, so ids ascend in the order rows are given, as the relationships order them.
        reserved = {m: sorted(int(i) for i in a) for m, a in zip(models, arrays, strict=True)}
    return {m: reserved.get(m, []) for m in counts}


def insert_persons(connection: Connection, rows: Sequence[Row]) -> None:
    """Insert persons: tuples in PERSON_COLUMNS order."""
    _insert(connection, Person, PERSON_COLUMNS, rows)


def insert_aliases(connection: Connection, rows: Sequence[Row]) -> None:
    """Insert person aliases: tuples in ALIAS_COLUMNS order (ids from the database)."""
    _insert(connection, PersonAlias, ALIAS_COLUMNS, rows)


def insert_arrests(connection: Connection, rows: Sequence[Row]) -> None:
    """Insert arrests: tuples in ARREST_COLUMNS order."""
    _insert(connection, Arrest, ARREST_COLUMNS, rows)


def insert_involvements(connection: Connection, rows: Sequence[Row]) -> None:
    """Insert involvements: tuples in INVOLVEMENT_COLUMNS order."""
    _insert(connection, Involvement, INVOLVEMENT_COLUMNS, rows)


def insert_charges(connection: Connection, rows: Sequence[Row]) -> None:
    """Insert charges: tuples in CHARGE_COLUMNS order."""
    _insert(connection, Charge, CHARGE_COLUMNS, rows)


def insert_versions(connection: Connection, rows: Sequence[Row]) -> None:
    """Insert version rows: tuples in VERSION_COLUMNS order, the snapshot as JSON text."""
    _insert(connection, RecordVersion, VERSION_COLUMNS, rows, jsonb=("snapshot",))


_STATEMENTS: dict[tuple[str, str], str] = {}


def _insert(
    connection: Connection,
    model: type[Any],
    columns: tuple[str, ...],
    rows: Sequence[Row],
    *,
    jsonb: tuple[str, ...] = (),
) -> None:
    if not rows:
        return
    dialect = connection.dialect
    table = cast(Table, model.__table__)
    key = (dialect.name, table.name)
    if key not in _STATEMENTS:
        # qmark for sqlite3, format (%s) for psycopg; a JSONB column is cast from JSON text.
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        marks = [
            f"CAST({mark} AS JSONB)" if c in jsonb and dialect.name == "postgresql" else mark
            for c in columns
        ]
        names = ", ".join(dialect.identifier_preparer.quote(c) for c in columns)
        values = ", ".join(marks)
        _STATEMENTS[key] = f"INSERT INTO {table.name} ({names}) VALUES ({values})"  # noqa: S608
    connection.exec_driver_sql(_STATEMENTS[key], list(rows))
