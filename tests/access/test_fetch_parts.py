"""A fetch reads only what the caller's policy shows, and shows what it did before.

``get_arrest`` reads the arrest's own columns, then only the parts (charges, charging decisions,
bail recommendations, arraignment, custody) the policy shows, all in one round trip on
PostgreSQL; a person's aliases are read with the person (or with an arrest's involvements) in
the same statement, and only if shown. What a caller receives is compared, on both engines,
with the reference: the same policy and shaping over every relationship loaded as the ORM
loads it by default (what the fetch did before), for an internal reader and for agencies with
a narrow and a wide scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from openpars.access import service, shaping
from openpars.access.enforcement import policy_for
from openpars.access.filters import arrest_visible, person_visible, visible_involvement
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import ReadContext
from openpars.db import Database
from openpars.errors import NotFound
from openpars.identity.principal import Principal
from openpars.records.enums import (
    BailType,
    ChargingOutcome,
    CustodyOutcome,
    Grade,
    InvolvementRole,
)
from openpars.records.models import (
    Arraignment,
    Arrest,
    BailRecommendation,
    ChargingDecision,
    CustodyEvent,
    Involvement,
    Person,
    PersonAlias,
)
from openpars.records.validation import name_key
from tests.access import data
from tests.access.agreements import activate, default_scope
from tests.conftest import BACKEND
from tests.factories import World, build_world

POLICE = "Philadelphia Police Department"
WARRANT = ReadContext(purpose="warrant-service")

NARROW = default_scope(
    person_fields={"family_name": "visible", "given_name": "visible"},
    arrest_fields={"otn": "visible", "state": "visible"},
)
WIDE = default_scope(
    person_fields={
        "family_name": "visible",
        "given_name": "visible",
        "birth_date": "year_only",
        "sid": "visible",
        "fbi_number": "show_last_4",
        "aliases": "visible",
    },
    arrest_fields={
        "otn": "visible",
        "incident_number": "visible",
        "arrested_at": "nullify",
        "state": "visible",
        "docket_number": "visible",
        "charges": "visible",
        "charging_decisions": "visible",
        "bail_recommendations": "visible",
        "arraignment": "visible",
        "custody": "visible",
    },
)
SCOPES = {"narrow": NARROW, "wide": WIDE}
PART_TABLES = {
    "charges": "charges",
    "charging_decisions": "charging_decisions",
    "bail_recommendations": "bail_recommendations",
    "arraignment": "arraignments",
    "custody": "custody_events",
}


@dataclass(frozen=True)
class Site:
    world: World
    person_id: int
    victim_id: int
    arrest_id: int
    hidden_arrest_id: int


def _alias(person: Person, family: str, given: str) -> PersonAlias:
    key = name_key(family, given)
    return PersonAlias(person_id=person.id, family_name=family, given_name=given, name_key=key)


def _site(db: Database, scope: dict[str, Any]) -> Site:
    """An arraigned arrest with every part (free text in each), an arrestee with aliases, a
    victim and a witness; and an arrest the scope hides (a victim's only, sealed)."""
    with db.session() as s:
        world = build_world(s)
        activate(s, world, scope=scope)
        ada = data.person(s, "Okafor", "Ada", sid="SID-7001")
        s.add_all(
            [
                _alias(ada, "Okafor", "Adaeze"),
                _alias(ada, "Oke", "Ada"),
            ]
        )
        vic = data.person(s, "Nguyen", "Lan", sid="SID-7002")
        wit = data.person(s, "Brooks", "Sam", sid="SID-7003")
        s.add(_alias(vic, "Nguyen", "Lana"))
        police = world.agencies[POLICE]
        arrest = data.arrest(
            s,
            agency_id=police,
            people=[
                (ada, InvolvementRole.ARRESTEE),
                (vic, InvolvementRole.VICTIM),
                (wit, InvolvementRole.WITNESS),
            ],
            grades=(Grade.M2, Grade.S),
            statutes=("18 § 2701", "75 § 3802"),
            approved=(((Grade.M2, "18 § 2701"),), ((Grade.M1, "18 § 2702"),)),
        )
        at = datetime(2025, 3, 5, 9, 30, tzinfo=UTC)
        s.add_all(
            [
                ChargingDecision(
                    arrest_id=arrest.id,
                    outcome=ChargingOutcome.APPROVED,
                    reason="victim Lan Nguyen identified the defendant",
                    decided_at=at,
                ),
                BailRecommendation(
                    arrest_id=arrest.id,
                    bail_type=BailType.MONETARY,
                    amount=Decimal("2500.00"),
                    conditions="stay away from Lan Nguyen",
                    recommended_at=at,
                ),
                Arraignment(
                    arrest_id=arrest.id,
                    arraigned_at=at,
                    magistrate="Bail Commissioner Ortiz",
                    bail_type=BailType.MONETARY,
                    bail_amount=Decimal("2500.50"),
                    conditions="no contact with Lan Nguyen",
                    preliminary_hearing_date=date(2025, 3, 19),
                    docket_number="MC-51-CR-0001234-2025",
                ),
                CustodyEvent(
                    arrest_id=arrest.id,
                    outcome=CustodyOutcome.RELEASED,
                    at=at,
                    facility="Curran-Fromhold Correctional Facility",
                ),
            ]
        )
        hidden = data.arrest(s, agency_id=police, people=[(vic, InvolvementRole.VICTIM)])
        s.add(
            CustodyEvent(arrest_id=hidden.id, outcome=CustodyOutcome.COMMITTED, at=at, facility="x")
        )
        s.flush()
        return Site(world, ada.id, vic.id, arrest.id, hidden.id)


def _reader(site: Site, who: str) -> tuple[Principal, ReadContext]:
    return site.world.principals[who], WARRANT if who == "ice" else ReadContext()


def _policy(db: Database, principal: Principal, context: ReadContext) -> ReadPolicy:
    with db.session(external=principal.is_external) as s:
        return policy_for(s, principal=principal, context=context, at=datetime.now(UTC))


def _expected_arrest(db: Database, policy: ReadPolicy, arrest_id: int) -> dict[str, Any]:
    """The reference: every relationship loaded as the ORM loads it by default, then shaped
    from the arrest's own parts (as ``get_arrest`` did before)."""
    with db.session(external=policy.external) as s:
        arrest = s.scalars(select(Arrest).where(Arrest.id == arrest_id, arrest_visible(policy)))
        found = arrest.one()
        stmt = (
            select(Involvement)
            .where(Involvement.arrest_id == arrest_id, visible_involvement(policy))
            .order_by(Involvement.id)
        )
        involvements = list(s.scalars(stmt).all())
        return shaping.arrest_read(found, involvements, policy).model_dump(mode="json")


def _expected_person(db: Database, policy: ReadPolicy, person_id: int) -> dict[str, Any]:
    with db.session(external=policy.external) as s:
        person = s.scalars(select(Person).where(Person.id == person_id, person_visible(policy)))
        found = person.one()
        stmt = (
            select(Involvement)
            .where(Involvement.person_id == person_id, visible_involvement(policy))
            .order_by(Involvement.id)
        )
        involvements = list(s.scalars(stmt).all())
        return shaping.person_detail(found, involvements, policy).model_dump(mode="json")


def _fetch(db: Database, site: Site, who: str, kind: str, record_id: int) -> dict[str, Any]:
    principal, context = _reader(site, who)
    with db.session(external=principal.is_external) as s:
        if kind == "arrest":
            arrest = service.get_arrest(
                s, principal=principal, arrest_id=record_id, context=context
            )
            return arrest.arrest.model_dump(mode="json")
        person = service.get_person(s, principal=principal, person_id=record_id, context=context)
        return person.person.model_dump(mode="json")


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("who", ["reader", "ice"])
def test_a_fetch_shows_what_it_showed_before(fresh_db: Database, scope: str, who: str) -> None:
    site = _site(fresh_db, SCOPES[scope])
    policy = _policy(fresh_db, *_reader(site, who))
    arrest = _fetch(fresh_db, site, who, "arrest", site.arrest_id)
    assert arrest == _expected_arrest(fresh_db, policy, site.arrest_id)
    person = _fetch(fresh_db, site, who, "person", site.person_id)
    assert person == _expected_person(fresh_db, policy, site.person_id)
    if who == "reader":
        # Every part and every version of the charges, every person with their aliases.
        assert len(arrest["charges"]) == 4 and arrest["custody"]["facility"]
        assert arrest["arraignment"]["conditions"] == "no contact with Lan Nguyen"
        assert [len(i["person"]["aliases"]) for i in arrest["involvements"]] == [2, 1, 0]
        return
    # The victim and the witness do not exist for the agency; the free text stays home.
    assert [i["person_id"] for i in arrest["involvements"]] == [site.person_id]
    if scope == "wide":
        assert [c["grade"] for c in arrest["charges"]] == ["M1"]  # the current charges only
        assert arrest["arraignment"]["bail_amount"] == "2500.50"
        assert arrest["arraignment"]["conditions"] is None
        assert arrest["bail_recommendations"][0]["conditions"] is None
        assert arrest["charging_decisions"][0]["reason"] is None
        assert arrest["custody"]["outcome"] == "released"
        assert person["aliases"] == [
            {"family_name": "Okafor", "given_name": "Adaeze"},
            {"family_name": "Oke", "given_name": "Ada"},
        ]
    else:
        assert arrest["charges"] == [] and arrest["custody"] is None
        assert "aliases" not in person or person["aliases"] is None


@pytest.mark.parametrize("scope", SCOPES)
def test_missing_and_hidden_records_are_refused_alike(fresh_db: Database, scope: str) -> None:
    site = _site(fresh_db, SCOPES[scope])
    missing = site.arrest_id + site.hidden_arrest_id + 1000
    for kind, hidden in (("arrest", site.hidden_arrest_id), ("person", site.victim_id)):
        messages = []
        for record_id in (hidden, missing):
            with pytest.raises(NotFound) as refused:
                _fetch(fresh_db, site, "ice", kind, record_id)
            messages.append(str(refused.value).replace(str(record_id), "ID"))
        assert messages[0] == messages[1]


Conversation = Callable[[Callable[[], object]], list[list[str]]]


def _tables(turn: list[str]) -> list[str]:
    # A statement's first line names its columns, each after its table ("charges.id, ...").
    return [s.split(" ")[1].split(".")[0] for s in turn if s.startswith("SELECT ")]


def _reads(turns: list[list[str]], table: str) -> bool:
    return any(f" {table}." in s for t in turns for s in t)


@pytest.mark.skipif(BACKEND != "postgresql", reason="round trips are PostgreSQL's")
@pytest.mark.parametrize("scope", SCOPES)
def test_a_fetch_reads_only_the_parts_shown_in_one_round_trip(
    fresh_db: Database, conversation: Conversation, scope: str
) -> None:
    site = _site(fresh_db, SCOPES[scope])
    policy = _policy(fresh_db, *_reader(site, "ice"))
    shown = [p for p in shaping.ARREST_PARTS if policy.arrest_fields.shows(p)]
    assert shown == ([] if scope == "narrow" else list(shaping.ARREST_PARTS))
    _fetch(fresh_db, site, "ice", "arrest", site.arrest_id)  # the statements are known
    turns = conversation(lambda: _fetch(fresh_db, site, "ice", "arrest", site.arrest_id))
    # A part not shown is never read, not even to be dropped; the shown ones go together.
    for part, table in PART_TABLES.items():
        assert _reads(turns, table) == (part in shown), (part, turns)
    assert _reads(turns, "person_aliases_1") == (scope == "wide"), turns
    reads = [_tables(t) for t in turns[1:-1]]
    expected = [["arrests"], ["involvements"]]
    if shown:
        expected.insert(1, [PART_TABLES[p] for p in shown])
    assert reads == expected, turns
    # The decision, the arrest, its parts, its involvements (persons and aliases joined),
    # the entry with the COMMIT: 5 round trips at most (before: 10 whatever the scope).
    assert len(turns) == (5 if shown else 4), turns
    person = conversation(lambda: _fetch(fresh_db, site, "ice", "person", site.person_id))
    assert [_tables(t) for t in person[1:-1]] == [["persons"], ["involvements"]], person
    assert _reads(person, "person_aliases_1") == (scope == "wide"), person
    assert len(person) == 4, person  # before: 5


@pytest.mark.skipif(BACKEND != "postgresql", reason="round trips are PostgreSQL's")
def test_a_hidden_arrest_reads_no_part(fresh_db: Database, conversation: Conversation) -> None:
    site = _site(fresh_db, WIDE)
    with pytest.raises(NotFound):
        _fetch(fresh_db, site, "ice", "arrest", site.hidden_arrest_id)

    def refused() -> None:
        with pytest.raises(NotFound):
            _fetch(fresh_db, site, "ice", "arrest", site.hidden_arrest_id)

    turns = conversation(refused)
    # The arrest's own read is the last: a refused fetch reads nothing of what it would show.
    assert [t for turn in turns for t in _tables(turn)][-1:] == ["arrests"], turns
    assert not any(_reads(turns, table) for table in (*PART_TABLES.values(), "involvements"))
