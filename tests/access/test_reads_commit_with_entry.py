"""An external fetch and arrest search end their unit with their audit entry, as a person
search does (``audit.service.append_last``).

On PostgreSQL the unit of one external read (``Database.session(external=True)``) sends its
entry and the COMMIT in one round trip: ``get_person``, ``get_arrest`` and ``search_arrests``
take one round trip fewer than with the entry and the COMMIT sent apart. What must still hold,
on both engines: the entry is durable before anything is returned; an entry that cannot be
written commits nothing (not even the rate windows' places) and returns nothing; a record
missing or not shown is refused as before, the refusal audited in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from openpars.access import service
from openpars.access.models import RateSlot
from openpars.access.schemas import ArrestQuery, ReadContext
from openpars.audit.models import AuditEntry
from openpars.audit.recorded import collecting
from openpars.config import Settings
from openpars.db import Database, UnitAlreadyCommitted
from openpars.errors import AuditUnavailable
from openpars.identity.principal import Principal
from openpars.records.enums import InvolvementRole
from openpars.web.app import create_app
from tests.access import data
from tests.access.agreements import activate
from tests.conftest import BACKEND
from tests.factories import World, build_world

CONTEXT = ReadContext(purpose="warrant-service")
OTN = "N7001-1"
ACTIONS = ("person.get", "arrest.get", "arrest.search")


@dataclass(frozen=True)
class Site:
    world: World
    ice: Principal
    person_id: int
    arrest_id: int


@pytest.fixture
def site(fresh_db: Database) -> Site:
    with fresh_db.session() as s:
        world = build_world(s)
        activate(s, world)
        ada = data.person(s, "Okafor", "Ada", sid="SID-7001")
        police = world.agencies["Philadelphia Police Department"]
        arrest = data.arrest(s, agency_id=police, people=[(ada, InvolvementRole.ARRESTEE)], otn=OTN)
        return Site(world, world.principals["ice"], ada.id, arrest.id)


def _read(db: Database, site: Site, action: str) -> object:
    """One external read in a unit of its own, as the API runs it."""
    with db.session(external=True) as s:
        if action == "person.get":
            return service.get_person(
                s, principal=site.ice, person_id=site.person_id, context=CONTEXT
            )
        if action == "arrest.get":
            return service.get_arrest(
                s, principal=site.ice, arrest_id=site.arrest_id, context=CONTEXT
            )
        return service.search_arrests(
            s, principal=site.ice, query=ArrestQuery(otn=OTN), context=CONTEXT
        )


def _entries(db: Database, action: str | None = None) -> int:
    with db.session() as s:
        stmt = select(func.count()).select_from(AuditEntry)
        if action is not None:
            stmt = stmt.where(AuditEntry.action == action)
        return s.scalar(stmt) or 0


def _places(db: Database) -> list[tuple[int, int, int, int]]:
    with db.session() as s:
        rows = s.execute(select(RateSlot.kind, RateSlot.owner_id, RateSlot.slot, RateSlot.at_us))
        return sorted(tuple(r) for r in rows)


@pytest.mark.skipif(BACKEND != "postgresql", reason="round trips are PostgreSQL's")
@pytest.mark.parametrize("action", ACTIONS)
def test_the_entry_carries_the_commit_in_the_reads_last_round_trip(
    fresh_db: Database,
    site: Site,
    action: str,
    conversation: Callable[[Callable[[], object]], list[list[str]]],
) -> None:
    _read(fresh_db, site, action)  # the caller's policy and the statements are known
    before = _entries(fresh_db, action)
    turns = conversation(lambda: _read(fresh_db, site, action))
    # The last round trip is the entry and the COMMIT, nothing after it (main sent the COMMIT
    # in a round trip of its own); the entry is the only INSERT of the unit.
    assert [s.split(" (")[0] for s in turns[-1]] == ["INSERT INTO audit_entries", "COMMIT"]
    assert sum(s.startswith("INSERT") for t in turns for s in t) == 1
    assert sum(s == "COMMIT" for t in turns for s in t) == 1
    # Each table is read once: the involvements without a second copy of their person (and its
    # aliases), the arrest without its whole list of involvements (main read both).
    tables = [s.split(" FROM ")[0].split(" ")[1].split(".")[0] for t in turns[1:-1] for s in t]
    assert len(tables) == len(set(tables)), turns
    # The decision; each read (an arrest's shown parts together); the entry with the COMMIT
    # (main: 7, 13 and 5 round trips; before h12fetch 5, 10 and 3).
    assert len(turns) == {"person.get": 4, "arrest.get": 5, "arrest.search": 3}[action], turns
    assert _entries(fresh_db, action) == before + 1  # committed, seen from another connection


@pytest.mark.parametrize("action", ACTIONS)
def test_the_entry_is_committed_before_the_read_returns(
    fresh_db: Database, site: Site, action: str
) -> None:
    before = _entries(fresh_db, action)
    with collecting() as ids:  # the after-commit hooks name the entry that committed
        assert _read(fresh_db, site, action) is not None
    assert _entries(fresh_db, action) == before + 1
    with fresh_db.session() as s:
        assert ids == [s.scalar(select(func.max(AuditEntry.id)))]


def _refuse(db: Database, action: str) -> None:
    """A real refusal by the database of the read's entry, not an application hook."""
    with db.session() as session:
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER test_refuse_read BEFORE INSERT ON audit_entries "
                f"WHEN NEW.action = '{action}' "
                "BEGIN SELECT RAISE(ABORT, 'disk full (simulated by a trigger)'); END"
            )
        else:
            connection.execute(
                text(
                    "ALTER TABLE audit_entries ADD CONSTRAINT test_refuse_read "
                    f"CHECK (action <> '{action}') NOT VALID"
                )
            )


@pytest.mark.parametrize("action", ACTIONS)
def test_an_entry_that_cannot_be_written_returns_and_commits_nothing(
    fresh_db: Database, site: Site, action: str
) -> None:
    _read(fresh_db, site, action)  # the rate windows exist; the next read takes a place
    _refuse(fresh_db, action)
    entries, places = _entries(fresh_db), _places(fresh_db)
    returned: list[object] = []
    with collecting() as ids, pytest.raises(AuditUnavailable):
        returned.append(_read(fresh_db, site, action))
    assert returned == [] and ids == []
    assert _entries(fresh_db) == entries
    assert _places(fresh_db) == places  # the place the refused read took was rolled back


@pytest.mark.skipif(BACKEND != "postgresql", reason="only PostgreSQL commits with the entry")
def test_nothing_runs_after_a_fetch_committed_its_unit(fresh_db: Database, site: Site) -> None:
    entries = _entries(fresh_db)

    def two_reads() -> None:
        with fresh_db.session(external=True) as s:
            service.get_person(s, principal=site.ice, person_id=site.person_id, context=CONTEXT)
            service.get_arrest(s, principal=site.ice, arrest_id=site.arrest_id, context=CONTEXT)

    with pytest.raises(UnitAlreadyCommitted):
        two_reads()
    assert _entries(fresh_db) == entries + 1


def test_a_record_not_shown_is_refused_and_the_refusal_audited(
    fresh_db: Database, site: Site, settings: Settings
) -> None:
    app = create_app(settings, database=fresh_db)
    headers = site.world.auth("ice")
    params = {"purpose": "warrant-service"}
    missing = site.arrest_id + site.person_id + 1000
    with TestClient(app) as client:
        for path in (f"/api/v1/persons/{missing}", f"/api/v1/arrests/{missing}"):
            reads = [_entries(fresh_db, action) for action in ACTIONS]
            refused = client.get(path, params=params, headers=headers)
            assert refused.status_code == 404, refused.text
            assert refused.json()["error"]["code"] == "not_found"
            # The refusal's entry, in a transaction of its own; no read's entry.
            assert _entries(fresh_db, f"GET {path}") == 1
            assert [_entries(fresh_db, action) for action in ACTIONS] == reads
        shown = client.get(f"/api/v1/persons/{site.person_id}", params=params, headers=headers)
        assert shown.status_code == 200, shown.text
        assert shown.json()["person"]["involvements"][0]["arrest_id"] == site.arrest_id
