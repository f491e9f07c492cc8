"""Intake writes its rows at the driver level: the ORM must read them as if it had written them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from openpars.db import Database
from openpars.records.batch import submit_arrests
from openpars.records.enums import (
    ArrestState,
    ArrestType,
    ChangeKind,
    ChargeStage,
    Grade,
    InvolvementRole,
    Race,
    Sex,
    VersionedEntity,
)
from openpars.records.intake import intake_digest, submit_arrest
from openpars.records.models import Person
from openpars.records.repository import get_arrest, get_person, versions
from openpars.records.schemas import ArrestCreate, ArrestCreated
from openpars.records.versions import arrest_snapshot, person_snapshot
from tests.factories import World
from tests.records.factories import arrest_payload, person_payload

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# An arrest time with a local offset: stored as the same instant, read back in UTC.
EASTERN = timezone(timedelta(hours=-5))


def _payload() -> dict[str, Any]:
    payload = arrest_payload(
        arrested_at=datetime(2026, 1, 9, 23, 30, 15, 250, tzinfo=EASTERN).isoformat(),
        arrest_type="warrant",
    )
    payload["involvements"][1]["person"] = person_payload(
        family_name="Núñez",
        given_name="José",
        birth_date="2010-01-10",  # 15 on the arrest's local date: a juvenile victim
        sex="M",
        race="W",
        aliases=[{"family_name": "Nunez", "given_name": "Pepe"}],
    )
    return payload


def _submit(db: Database, world: World, data: ArrestCreate, path: str) -> ArrestCreated:
    actor = world.principals["intake"]
    with db.session() as session:
        if path == "single":
            return submit_arrest(session, actor=actor, data=data, now=NOW)
        [result] = submit_arrests(session, actor=actor, items=[data], now=NOW)
        assert isinstance(result, ArrestCreated), result
        return result


@pytest.mark.parametrize("path", ["single", "batch"])
def test_rows_read_back_as_written(db: Database, world: World, path: str) -> None:
    data = ArrestCreate.model_validate(_payload())
    created = _submit(db, world, data, path)
    intake_user = world.principals["intake"]
    with db.session() as session:
        arrest = get_arrest(session, created.arrest_id)
        assert arrest is not None
        assert arrest.arrested_at == data.arrested_at
        assert arrest.arrested_at.tzinfo == UTC
        assert (arrest.created_at, arrest.updated_at) == (NOW, NOW)
        assert arrest.state is ArrestState.ENTERED
        assert arrest.arrest_type is ArrestType.WARRANT
        assert arrest.source_agency_id == intake_user.agency_id
        assert arrest.entered_by_id == intake_user.user_id
        assert arrest.intake_digest == intake_digest(data)
        assert arrest.version == 1
        assert arrest.docket_number is None and arrest.sealed_at is None
        roles = [(i.role, i.juvenile) for i in arrest.involvements]
        assert roles == [
            (InvolvementRole.ARRESTEE, False),
            (InvolvementRole.VICTIM, True),
            (InvolvementRole.WITNESS, False),
        ]
        assert [i.id for i in arrest.involvements] == created.involvement_ids
        charges = sorted(arrest.charges, key=lambda c: c.sequence)
        assert [c.id for c in charges] == created.charge_ids
        assert {c.stage for c in charges} == {ChargeStage.RECOMMENDED}
        assert [c.grade for c in charges] == [Grade.M2, Grade.M1, Grade.F3]
        assert all(c.created_at == NOW and c.created_by_id == intake_user.user_id for c in charges)

        victim = get_person(session, created.person_ids[1])
        assert victim is not None
        assert (victim.family_name, victim.given_name) == ("Núñez", "José")
        assert victim.name_key == "nunez jose"
        assert victim.birth_date == date(2010, 1, 10)
        assert (victim.sex, victim.race) == (Sex.MALE, Race.WHITE)
        assert victim.created_at == NOW
        assert [(a.family_name, a.name_key) for a in victim.aliases] == [("Nunez", "nunez pepe")]

        [person_version] = versions(session, VersionedEntity.PERSON, victim.id)
        assert person_version.snapshot == person_snapshot(victim)
        assert person_version.change is ChangeKind.CREATE
        assert (person_version.changed_at, person_version.changed_by_id) == (
            NOW,
            intake_user.user_id,
        )
        [arrest_version] = versions(session, VersionedEntity.ARREST, arrest.id)
        stored = dict(arrest_version.snapshot)
        # Version 1 keeps the arrest time as the booking system sent it (its own offset).
        assert datetime.fromisoformat(stored.pop("arrested_at")) == arrest.arrested_at
        expected = arrest_snapshot(arrest)
        del expected["arrested_at"]
        assert stored == expected


def test_reserved_ids_leave_later_inserts_free(db: Database, world: World) -> None:
    items = [ArrestCreate.model_validate(arrest_payload()) for _ in range(3)]
    with db.session() as session:
        results = submit_arrests(session, actor=world.principals["intake"], items=items, now=NOW)
    person_ids = [p for r in results if isinstance(r, ArrestCreated) for p in r.person_ids]
    assert len(person_ids) == 9
    with db.session() as session:
        # An ORM insert after intake takes the next id (on PostgreSQL: from the sequence
        # intake drew its ids from), and intake after it continues past it.
        person = Person(family_name="Later", given_name="Added", name_key="later added")
        session.add(person)
        session.flush()
        assert person.id > max(person_ids)
        later = submit_arrest(
            session,
            actor=world.principals["intake"],
            data=ArrestCreate.model_validate(arrest_payload()),
            now=NOW,
        )
        assert min(later.person_ids) > person.id
        top = session.scalar(select(func.max(Person.id)))
        assert top == max(later.person_ids)


def test_intake_digest_keeps_its_canonical_form() -> None:
    # Stored digests tell a resend from a reused report id, so the canonical form may never
    # change: this is the digest the first release stored for this payload (json.dumps with
    # sorted keys and no spaces, ASCII escapes, of the model's JSON dump).
    payload = {
        "report_id": "PPD-2025-0000001",
        "otn": "N0000001-1",
        "incident_number": "202501000001",
        "ori": "PAPEP0000",
        "arresting_officer": "P/O Rivera #4001",
        "arrested_at": "2025-03-14T02:40:00-04:00",
        "location": "1200 N Broad St, Philadelphia, PA",
        "arrest_type": "on_view",
        "narrative": "Stopped with the complainant's purse.",
        "involvements": [
            {
                "role": "arrestee",
                "person": {
                    "family_name": "Núñez",
                    "given_name": "José",
                    "birth_date": "1990-02-01",
                    "sid": "123-45-67-8",
                    "aliases": [{"family_name": "Nunez", "given_name": "Pepe"}],
                },
            },
            {"role": "victim", "person_id": 7},
        ],
        "charges": [{"statute": "18 § 2701", "description": "Simple assault", "grade": "M2"}],
    }
    digest = intake_digest(ArrestCreate.model_validate(payload))
    assert digest == "3fc3eb8baf751ebebe34923d35bb529f46437a377852af63146fba4c409e5433"
