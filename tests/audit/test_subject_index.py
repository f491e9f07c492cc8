"""Issue 12: entries by subject through one function, exact whether or not an entry is integrated.

Requests write an entry's subjects on the entry's own row only (person_ids, arrest_ids: no row
per subject, no index of their own); the integrator copies them into the subject index by person
and by arrest with the batch's leaves. `repository.entries_naming` is the index for integrated
entries and the ids carried by the others: a reader of the index alone would miss an entry
appended a moment ago (and shredding would leave its content), a reader of the queue alone every
older one.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from openpars.audit import log
from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.models import AuditArrestEntry, AuditEntry, AuditPersonEntry
from openpars.audit.service import append
from openpars.db import Database
from tests.audit import records
from tests.audit.test_log import COURT
from tests.conftest import BACKEND

ORDER = "CP-51-MD-9-2026"


def is_shredded(session: Session, entry_id: int) -> bool:
    """Whether the entry is there with its salt and content erased."""
    entry = session.get(AuditEntry, entry_id)
    return entry is not None and entry.salt is None and entry.content is None


def read(db: Database, *, persons: list[int] = [], arrests: list[int] = []) -> int:  # noqa: B006
    """One read naming these persons and arrests, committed in its own transaction."""
    with db.session() as session:
        event = AuditEvent(
            kind=AuditKind.READ, action="arrest.read", person_ids=persons, arrest_ids=arrests
        )
        return append(session, event).id


def naming(db: Database, *, persons: list[int] = [], arrests: list[int] = []) -> list[int]:  # noqa: B006
    """The entry ids entries_naming gives, sorted, duplicates kept (there must be none)."""
    with db.session() as session:
        return sorted(
            int(i)
            for i in session.scalars(
                repo.entries_naming(session, person_ids=persons, arrest_ids=arrests)
            )
        )


def indexed(session: Session) -> set[tuple[str, int, int]]:
    """The subject index's rows: ("p", person, entry) and ("a", arrest, entry)."""
    persons = session.execute(select(AuditPersonEntry.person_id, AuditPersonEntry.entry_id))
    arrests = session.execute(select(AuditArrestEntry.arrest_id, AuditArrestEntry.entry_id))
    return {("p", int(s), int(e)) for s, e in persons} | {("a", int(s), int(e)) for s, e in arrests}


def integrate(db: Database, limit: int = log.INTEGRATE_BATCH) -> int:
    with db.session() as session:
        return log.integrate(session, limit=limit)


def test_integrated_and_not_integrated_entries_are_found_by_person_and_by_arrest(
    db: Database,
) -> None:
    integrate(db)  # whatever an earlier test left queued
    first = read(db, persons=[9107, 9108], arrests=[9170])
    other = read(db, persons=[9108])
    assert integrate(db) == 2
    # Appended after the integration: carried on their own rows only.
    late_person = read(db, persons=[9107])
    late_arrest = read(db, arrests=[9170])
    with db.session() as session:
        rows = indexed(session)
    assert {("p", 9107, first), ("p", 9108, first), ("a", 9170, first), ("p", 9108, other)} <= rows
    assert not {r for r in rows if r[2] in (late_person, late_arrest)}
    assert naming(db, persons=[9107]) == [first, late_person]
    assert naming(db, arrests=[9170]) == [first, late_arrest]
    assert naming(db, persons=[9107], arrests=[9170]) == [first, late_person, late_arrest]
    assert naming(db, persons=[9108]) == [first, other]
    assert naming(db, persons=[9109], arrests=[9171]) == []
    assert naming(db) == []
    # Integrated now: the same answer, from the index.
    assert integrate(db) == 2
    with db.session() as session:
        assert {("p", 9107, late_person), ("a", 9170, late_arrest)} <= indexed(session)
    assert naming(db, persons=[9107], arrests=[9170]) == [first, late_person, late_arrest]


def test_ids_are_matched_whole_and_persons_never_for_arrests(db: Database) -> None:
    # The ids carried on a row are a list, not text to search: 12 is not 1, 2, 120 or 312;
    # a person id is never taken for the same arrest id; a repeated id names its entry once.
    integrate(db)
    big = 2**40 + 12
    twelve = read(db, persons=[9512, 9512, big], arrests=[9513])
    neighbours = read(db, persons=[951, 95120, 19512], arrests=[9512])
    for step in ("before", "after"):
        assert naming(db, persons=[9512]) == [twelve], step
        assert naming(db, persons=[big]) == [twelve], step
        assert naming(db, persons=[95, 12, 2**40, 1951]) == [], step
        assert naming(db, persons=[9513]) == [], step
        assert naming(db, arrests=[9512]) == [neighbours], step
        assert naming(db, persons=[951], arrests=[9513]) == [twelve, neighbours], step
        assert integrate(db) == (2 if step == "before" else 0)


def test_every_entry_is_found_exactly_once_at_every_step_of_a_batched_integration(
    db: Database,
) -> None:
    integrate(db)
    ids = [read(db, persons=[9200 + i % 2], arrests=[9300]) for i in range(7)]
    while True:
        assert naming(db, persons=[9200, 9201]) == ids
        assert naming(db, arrests=[9300]) == ids
        assert naming(db, persons=[9200]) == ids[0::2]
        if integrate(db, limit=3) == 0:
            break


def test_shredding_erases_an_entry_appended_a_moment_ago_and_not_integrated(
    db: Database,
) -> None:
    integrate(db)
    with db.session() as session:
        records.arrest(session, 9441, order=ORDER, person_ids=[9401])
    integrated = read(db, arrests=[9441], persons=[9401])
    integrate(db)
    # The attacker's read a moment before the order is carried out: not integrated yet.
    fresh = read(db, arrests=[9441], persons=[9401])
    with db.session() as session:
        assert repo.has_pending(session)
        shredded = log.shred(session, actor=COURT, order_reference=ORDER, arrest_id=9441)
    assert shredded == [integrated, fresh]
    with db.session() as session:
        assert is_shredded(session, fresh)
        assert is_shredded(session, integrated)
    # Later entries, integrated or not, by person this time.
    after = read(db, persons=[9401])
    integrate(db)
    latest = read(db, persons=[9401])
    with db.session() as session:
        shredded = log.shred(session, actor=COURT, order_reference=ORDER, person_id=9401)
    assert shredded == [after, latest]
    with db.session() as session:
        assert is_shredded(session, after)
        assert is_shredded(session, latest)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_person_entries SET person_id = person_id + 1",
        "DELETE FROM audit_person_entries",
        "UPDATE audit_arrest_entries SET entry_id = entry_id",
        "DELETE FROM audit_arrest_entries",
    ],
)
def test_the_subject_index_is_append_only(db: Database, statement: str) -> None:
    read(db, persons=[9501], arrests=[9502])
    integrate(db)
    with db.session() as session:
        savepoint = session.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        savepoint.rollback()


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite's single writer commits in id order")
def test_an_entry_committed_after_a_higher_one_was_integrated_is_found(
    fresh_db: Database,
) -> None:
    """PostgreSQL hands out ids before commit: a lower id can commit after a higher id was
    integrated, so "above the last integrated entry" would miss it there."""
    with fresh_db.session() as slow:
        late = append(
            slow, AuditEvent(kind=AuditKind.READ, action="arrest.read", person_ids=[9601])
        ).id
        quick = read(fresh_db, persons=[9601])
        assert integrate(fresh_db) == 1 and late < quick
    # Committed now, below the last integrated entry, and still in the queue.
    assert naming(fresh_db, persons=[9601]) == [late, quick]
    with fresh_db.session() as session:
        records.arrest(session, 9641, order=ORDER, person_ids=[9601])
        shredded = log.shred(session, actor=COURT, order_reference=ORDER, person_id=9601)
    assert shredded == [late, quick]
    assert integrate(fresh_db) == 2  # the late entry and the shredding's own
    assert naming(fresh_db, persons=[9601]) == [late, quick]
