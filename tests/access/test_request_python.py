"""The request path's Python made lean (issue 12 target 3): shortcuts that must change nothing.

Masks compiled once per projection give the values the masks give; the connection looked up
once per transaction never outlives its transaction nor skips a savepoint; driver errors still
surface as SQLAlchemy's; the audit subjects sent to PostgreSQL as array text are the ids.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from openpars.access.external import _masks
from openpars.access.policy import FieldProjection, rows_mask
from openpars.access.shaping import arrest_row, person_rows
from openpars.agreements.scope import FieldPolicy
from openpars.audit.repository import _pg_ids, _sqlite_ids
from openpars.db import Database
from openpars.prepared import connection_of, driver_errors
from tests.conftest import BACKEND

VALUES: list[Any] = [
    None,
    "",
    "1",
    "123",
    "1234",
    "12345",
    "AB-12345-CD",
    "Ünïcödé ½ ²",
    "x" * 200,
    0,
    7,
    123456789,
    -42,
    date(1987, 3, 4),
    datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59),
    True,
    1.5,
    [{"family_name": "Doe", "given_name": "J"}],
]


@pytest.mark.parametrize("rule", [r for r in FieldPolicy if r is not FieldPolicy.HIDDEN])
def test_a_mask_compiled_for_a_page_gives_what_the_mask_gives(rule: FieldPolicy) -> None:
    mask = _masks(b"k" * 32)[rule]
    if mask is None:
        return
    rows = [{"id": n, "f": value, "other": value} for n, value in enumerate(VALUES)]
    rows_mask("f", mask)(rows)
    for row, value in zip(rows, VALUES, strict=True):
        assert row["f"] == (None if value is None else mask(value)), (rule, value)
        assert type(row["f"]) is type(None if value is None else mask(value))
        assert row["other"] is value  # no other field touched


def test_page_shaping_masks_every_row_as_the_projection_applies_it() -> None:
    masks = _masks(b"s" * 32)
    projection = FieldProjection(
        allowed=frozenset({"sid", "birth_date", "family_name", "aliases", "fbi_number"}),
        masks={
            "sid": masks[FieldPolicy.SHOW_LAST_4],
            "birth_date": masks[FieldPolicy.YEAR_ONLY],
            "fbi_number": masks[FieldPolicy.HASH],
            "aliases": masks[FieldPolicy.NULLIFY],
        },
    )

    class Policy:
        person_fields = projection
        arrest_fields = projection

    rows = [
        {"id": n, "sid": sid, "birth_date": born, "family_name": "Doe", "fbi_number": fbi}
        for n, (sid, born, fbi) in enumerate(
            [("123456789", date(1980, 1, 2), "AB12"), (None, None, None), ("12", None, "9")]
        )
    ]
    expected = [
        {name: projection.apply(name, value) for name, value in row.items()} for row in rows
    ]
    for row in expected:
        row["aliases"] = projection.apply("aliases", [])
    shaped = person_rows([dict(r) for r in rows], {0: [], 1: [], 2: []}, Policy())  # type: ignore[arg-type]
    assert shaped == expected
    arrest = {**rows[0], "sealed_at": None, "expunged_at": datetime(2020, 1, 1)}
    expected_arrest = {n: projection.apply(n, v) for n, v in rows[0].items()} | {"sealed": True}
    assert arrest_row(arrest, Policy()) == expected_arrest  # type: ignore[arg-type]


def test_the_connection_kept_for_a_transaction_never_skips_a_savepoint(db: Database) -> None:
    insert = "INSERT INTO rate_slots (kind, owner_id, slot, at_us) VALUES (0, -77, {}, 0)"
    with db.session() as s:
        connection_of(s).exec_driver_sql(insert.format(1))
        nested = s.begin_nested()
        # Inside the savepoint: a statement sent on the kept connection must be undone with it.
        connection_of(s).exec_driver_sql(insert.format(2))
        nested.rollback()
        connection_of(s).exec_driver_sql(insert.format(3))
    with db.session() as s:
        slots = s.execute(text("SELECT slot FROM rate_slots WHERE owner_id = -77 ORDER BY slot"))
        assert [r[0] for r in slots] == [1, 3]


def test_the_connection_kept_for_a_transaction_is_not_reused_after_it(db: Database) -> None:
    with db.session() as s:
        first = connection_of(s)
        assert first is s.connection()
        s.rollback()
        # A new transaction: whatever SQLAlchemy hands out now, never the kept one unchecked.
        assert connection_of(s) is s.connection()
        assert s.get_transaction() is not None
        assert s.info["openpars.prepared.connection"][0] is s._transaction


def test_a_driver_error_still_surfaces_as_sqlalchemys(db: Database) -> None:
    def run() -> None:
        with db.session() as s:
            connection = connection_of(s)
            with driver_errors(connection, "SELECT nothing FROM nowhere"):
                connection.connection.cursor().execute("SELECT nothing FROM nowhere")

    with pytest.raises(DBAPIError) as raised:
        run()
    assert "nowhere" in str(raised.value)


def test_driver_errors_lets_other_exceptions_through(db: Database) -> None:
    with pytest.raises(KeyError), db.session() as s, driver_errors(connection_of(s), "x"):
        raise KeyError("not a driver error")


@pytest.mark.skipif(BACKEND != "postgresql", reason="the array text is PostgreSQL's")
@pytest.mark.parametrize(
    ("persons", "arrests"),
    [([], []), ([1], []), ([], [2]), ([1, 2, 2**40], [3, 4]), (list(range(500)), [7])],
)
def test_audit_subjects_sent_as_array_text_are_the_ids(
    db: Database, persons: list[int], arrests: list[int]
) -> None:
    with db.session() as s:
        got = s.execute(
            text("SELECT CAST(:p AS bigint[]), CAST(:a AS bigint[])"),
            {"p": _pg_ids(persons), "a": _pg_ids(arrests)},
        ).one()
    assert got[0] == (persons or None)
    assert got[1] == (arrests or None)


@pytest.mark.skipif(BACKEND != "postgresql", reason="the array text is PostgreSQL's")
@pytest.mark.parametrize("bad", [True, 1.0, "1, 2", "1}", None])
def test_audit_subjects_that_are_not_ids_fail_the_cast(db: Database, bad: Any) -> None:
    with pytest.raises(DBAPIError), db.session() as s:
        s.execute(text("SELECT CAST(:p AS bigint[])"), {"p": _pg_ids([1, bad])})


@pytest.mark.skipif(BACKEND != "sqlite", reason="the JSON text is SQLite's")
@pytest.mark.parametrize("ids", [[], [1], [1, 2, 2**40], [2**63 - 1], list(range(500))])
def test_audit_subjects_stored_as_json_text_are_read_back_as_the_integer_ids(
    db: Database, ids: list[int]
) -> None:
    # What the integrator and entries_naming read on SQLite: json_each's integer values.
    with db.session() as s:
        got = s.execute(
            text("SELECT value, type FROM json_each(:ids) ORDER BY key"), {"ids": _sqlite_ids(ids)}
        ).all()
    assert [v for v, _ in got] == ids
    assert {t for _, t in got} <= {"integer"}
    assert (_sqlite_ids(ids) is None) == (not ids)


@pytest.mark.parametrize("count", [0, 1, 7, 50, 51, 120])
def test_a_pages_aliases_are_every_alias_of_its_persons_in_order(db: Database, count: int) -> None:
    # PostgreSQL reads them by one bigint[] of ids, SQLite by IN lists per bucket: either way
    # every alias of every person asked for, none of anyone else's, in (person, alias) order.
    from openpars.access.repository import aliases_of
    from openpars.records.models import PersonAlias
    from tests.access import data

    with db.session() as s:
        persons = [data.person(s, f"Alias{n}", "Pat") for n in range(count + 2)]
        for n, p in enumerate(persons):
            for k in range(n % 3):
                s.add(
                    PersonAlias(
                        person_id=p.id,
                        family_name=f"Other{n}",
                        given_name=f"G{k}",
                        name_key=f"other{n} g{k}",
                    )
                )
        s.flush()
        asked = [p.id for p in persons[:count]]
        found = aliases_of(s, asked)
        expected = {
            pid: [
                {"family_name": a.family_name, "given_name": a.given_name}
                for a in sorted(
                    (a for a in s.query(PersonAlias).filter(PersonAlias.person_id == pid)),
                    key=lambda a: a.id,
                )
            ]
            for pid in asked
        }
        assert found == expected
        assert list(found) == asked
