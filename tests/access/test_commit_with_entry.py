"""An external read's COMMIT rides with its audit entry (PostgreSQL): one round trip fewer.

The unit of one external read (``Database.session(external=True)``) sends the entry, the page's
last statements and the COMMIT together. What must still hold: the entry is durable before the
page is returned; an entry that cannot be written commits nothing (not even the rate windows'
places); the after-commit hooks see the entry; and nothing can run after that COMMIT in the same
unit, where it would land in a second transaction.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select, text

from openpars.access import service
from openpars.access.models import RateSlot
from openpars.access.schemas import PersonPage, PersonQuery, ReadContext
from openpars.audit.models import AuditEntry
from openpars.audit.recorded import collecting
from openpars.db import Database, UnitAlreadyCommitted
from openpars.errors import AuditUnavailable
from openpars.identity.principal import Principal
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.access.agreements import activate
from tests.conftest import BACKEND
from tests.factories import build_world

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="round trips are PostgreSQL's")

CONTEXT = ReadContext(purpose="warrant-service")


@pytest.fixture
def ice(fresh_db: Database) -> Principal:
    with fresh_db.session() as s:
        world = build_world(s)
        activate(s, world)
        ana = data.person(s, "Okafor", "Ada", sid="SID-7001")
        police = world.agencies["Philadelphia Police Department"]
        data.arrest(s, agency_id=police, people=[(ana, InvolvementRole.ARRESTEE)])
        return world.principals["ice"]


def _search(db: Database, ice: Principal, sid: str = "SID-7001") -> PersonPage:
    with db.session(external=True) as s:
        return service.search_persons(s, principal=ice, query=PersonQuery(sid=sid), context=CONTEXT)


def _entries(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry)) or 0


def _places(db: Database) -> list[tuple[int, int, int, int]]:
    with db.session() as s:
        rows = s.execute(select(RateSlot.kind, RateSlot.owner_id, RateSlot.slot, RateSlot.at_us))
        return sorted(tuple(r) for r in rows)


@pytest.fixture
def round_trips(
    conversation: Callable[[Callable[[], object]], list[list[str]]],
) -> Callable[[Callable[[], object]], int]:
    """Turns of the conversation on the external login's connections while a unit runs."""
    return lambda unit: len(conversation(unit))


def test_an_external_search_is_two_round_trips_its_entry_carrying_the_commit(
    fresh_db: Database, ice: Principal, round_trips: Callable[[Callable[[], object]], int]
) -> None:
    _search(fresh_db, ice)  # the caller's policy is known: the page travels with the decision
    before = _entries(fresh_db)
    # The decision with the page; then the entry with the COMMIT (main had a third for COMMIT).
    assert round_trips(lambda: _search(fresh_db, ice)) == 2
    assert _entries(fresh_db) == before + 1  # committed, seen from another connection


def test_the_after_commit_hooks_see_the_entry_that_committed_the_unit(
    fresh_db: Database, ice: Principal
) -> None:
    with collecting() as ids:
        _search(fresh_db, ice)
    with fresh_db.session() as s:
        newest = s.scalar(select(func.max(AuditEntry.id)))
    assert ids == [newest]


def test_an_entry_that_cannot_be_written_commits_nothing_not_even_the_rate_places(
    fresh_db: Database, ice: Principal
) -> None:
    _search(fresh_db, ice)
    with fresh_db.session() as s:
        s.execute(
            text(
                "ALTER TABLE audit_entries ADD CONSTRAINT test_refuse_search "
                "CHECK (action <> 'person.search') NOT VALID"
            )
        )
    entries, places = _entries(fresh_db), _places(fresh_db)
    with pytest.raises(AuditUnavailable):
        _search(fresh_db, ice)
    assert _entries(fresh_db) == entries
    assert _places(fresh_db) == places  # the place the refused read took was rolled back


def test_nothing_runs_after_the_entry_committed_the_unit(
    fresh_db: Database, ice: Principal
) -> None:
    # A second read in the same unit would run in a second transaction: its first statement
    # is refused, and the unit fails.
    entries = _entries(fresh_db)
    query = PersonQuery(sid="SID-7001")

    def two_reads() -> None:
        with fresh_db.session(external=True) as s:
            service.search_persons(s, principal=ice, query=query, context=CONTEXT)
            service.search_persons(s, principal=ice, query=query, context=CONTEXT)

    with pytest.raises(UnitAlreadyCommitted):
        two_reads()
    assert _entries(fresh_db) == entries + 1
