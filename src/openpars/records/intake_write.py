"""Writing planned arrests: rows and version-1 snapshots built from the payload, one insert per
table for all the arrests of a batch.

Nothing is loaded back: the ids are reserved up front, so each row, each snapshot and each
answer is built from the payload and the ids in hand. The version documents are what
``versions.arrest_snapshot`` and ``person_snapshot`` give for the records as created.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.access.visibility import mark_written
from openpars.identity.principal import Principal
from openpars.records import intake_repository as sql
from openpars.records.enums import ArrestState, ChangeKind, ChargeStage, VersionedEntity
from openpars.records.intake_plan import Plan
from openpars.records.models import Arrest, Charge, Involvement, Person
from openpars.records.schemas import ArrestCreate, ArrestCreated, PersonIn, PersonLink
from openpars.records.validation import name_key
from openpars.records.versions import (
    charge_document,
    involvement_document,
    is_juvenile,
    new_arrest_document,
    person_document,
)

# Enum values looked up once: an enum's .value is a Python-level descriptor call, and intake
# reads a dozen per arrest. str() of a StrEnum member is its value, at a quarter of the cost.
RECOMMENDED = ChargeStage.RECOMMENDED.value
ENTERED = ArrestState.ENTERED.value
CREATE = ChangeKind.CREATE.value
PERSON = VersionedEntity.PERSON.value
ARREST = VersionedEntity.ARREST.value


def write_arrests(
    session: Session, actor: Principal, plans: Sequence[Plan], moment: datetime
) -> list[ArrestCreated]:
    """Insert the new persons, the arrests, involvements and charges of planned arrests and
    version 1 of each record, with one statement per table for all of them, parents first."""
    new, refs = _new_persons(plans)
    # One connection for all the statements: asking the session for it costs each time.
    connection = session.connection()
    ids = sql.reserve_ids(
        connection,
        {
            Person: len(new),
            Arrest: len(plans),
            Involvement: sum(len(p.resolved) for p in plans),
            Charge: sum(len(p.data.charges) for p in plans),
        },
    )
    rows = _Rows(sql.Binder(connection), actor, moment)
    new_ids = ids[Person]
    involvement_ids, charge_ids = iter(ids[Involvement]), iter(ids[Charge])
    written: set[int] = set()
    results: list[ArrestCreated] = []
    for plan, arrest_id, plan_refs in zip(plans, ids[Arrest], refs, strict=True):
        # Each new person's version row goes just before that of the first arrest naming it.
        for ref in plan_refs:
            if ref >= 0 and ref not in written:
                written.add(ref)
                rows.person(new_ids[ref], new[ref])
        persons = [
            (item.person_id, item.birth_date)
            if item.person_id is not None
            else (new_ids[ref], new[ref].birth_date)
            for item, ref in zip(plan.resolved, plan_refs, strict=True)
        ]
        results.append(rows.arrest(plan, arrest_id, persons, involvement_ids, charge_ids))
    # Parents first: the foreign keys are checked row by row.
    sql.insert_persons(connection, rows.persons)
    sql.insert_aliases(connection, rows.aliases)
    sql.insert_arrests(connection, rows.arrests)
    sql.insert_involvements(connection, rows.involvements)
    sql.insert_charges(connection, rows.charges)
    sql.insert_versions(connection, rows.versions)
    # The triggers marked every person of these arrests; recompute them before the commit.
    mark_written(session)
    return results


def _new_persons(plans: Sequence[Plan]) -> tuple[list[PersonIn], list[list[int]]]:
    """The persons the plans create (one per described person, however many involvements
    share it) and, per plan and involvement, the index of its new person or -1."""
    new: list[PersonIn] = []
    refs: list[list[int]] = []
    for plan in plans:
        owners: dict[int, int] = {}
        plan_refs = []
        for item in plan.resolved:
            if item.person_id is not None:
                plan_refs.append(-1)
                continue
            owner = item.shared_with if item.shared_with is not None else item.index
            if owner not in owners:
                assert item.new is not None
                owners[owner] = len(new)
                new.append(item.new)
            plan_refs.append(owners[owner])
        refs.append(plan_refs)
    return new, refs


class _Rows:
    """The rows of one write, as driver tuples, gathered table by table."""

    def __init__(self, binder: sql.Binder, actor: Principal, moment: datetime) -> None:
        self.binder, self.actor = binder, actor
        self.when = binder.instant(moment)
        self.persons: list[sql.Row] = []
        self.aliases: list[sql.Row] = []
        self.arrests: list[sql.Row] = []
        self.involvements: list[sql.Row] = []
        self.charges: list[sql.Row] = []
        self.versions: list[sql.Row] = []

    def person(self, person_id: int, data: PersonIn) -> None:
        """A new person, their aliases and version 1."""
        key = name_key(data.family_name, data.given_name, data.middle_name)
        sex = None if data.sex is None else str(data.sex)
        race = None if data.race is None else str(data.race)
        aliases = [(a.family_name, a.given_name) for a in data.aliases]
        self.aliases += [(person_id, f, g, name_key(f, g)) for f, g in aliases]
        values = {
            "id": person_id,
            "family_name": data.family_name,
            "given_name": data.given_name,
            "middle_name": data.middle_name,
            "name_key": key,
            "birth_date": data.birth_date,
            "sex": sex,
            "race": race,
            "address": data.address,
            "phone": data.phone,
            "place_of_birth": data.place_of_birth,
            "citizenship": data.citizenship,
            "sid": data.sid,
            "fbi_number": data.fbi_number,
            "version": 1,
        }
        # The row in PERSON_COLUMNS order: the snapshot's fields as bound, and the timestamps.
        bound = values | {
            "birth_date": self.binder.day(data.birth_date),
            "created_at": self.when,
            "updated_at": self.when,
        }
        self.persons.append(tuple(bound[name] for name in sql.PERSON_COLUMNS))
        self._version(PERSON, person_document(values, aliases))

    def arrest(
        self,
        plan: Plan,
        arrest_id: int,
        persons: list[tuple[int, date | None]],
        involvement_ids: Iterator[int],
        charge_ids: Iterator[int],
    ) -> ArrestCreated:
        """A new arrest, its involvements and recommended charges, version 1, and the answer.

        ``persons`` are the (id, birth date) of each involvement's person, in order.
        """
        data, actor, when = plan.data, self.actor, self.when
        arrest_type = str(data.arrest_type)
        self.arrests.append(
            (arrest_id, data.otn, data.incident_number, data.ori, data.arresting_officer,
             self.binder.instant(data.arrested_at), data.location, arrest_type, data.narrative,
             ENTERED, actor.agency_id, data.report_id, plan.digest, actor.user_id, 1, when, when)
        )  # fmt: skip
        involvements = []
        for item, (person_id, birth_date) in zip(plan.resolved, persons, strict=True):
            row = (next(involvement_ids), arrest_id, person_id, str(item.role),
                   is_juvenile(birth_date, data.arrested_at))  # fmt: skip
            self.involvements.append(row)
            involvements.append(row)
        charges = []
        for sequence, charge in enumerate(data.charges, start=1):
            charge_id, grade = next(charge_ids), str(charge.grade)
            self.charges.append(
                (charge_id, arrest_id, RECOMMENDED, 1, sequence, charge.statute,
                 charge.description, grade, charge.counts, when, actor.user_id)
            )  # fmt: skip
            charges.append(charge_id)
        self._version(ARREST, _arrest_document(data, arrest_id, arrest_type, actor, involvements))
        return ArrestCreated(
            arrest_id=arrest_id,
            state=ArrestState.ENTERED,
            replayed=False,
            person_ids=[person_id for person_id, _ in persons],
            involvement_ids=[row[0] for row in involvements],
            charge_ids=charges,
            links=[
                PersonLink(index=item.index, person_id=person_id, matched_on=item.matched_on)
                for item, (person_id, _) in zip(plan.resolved, persons, strict=True)
            ],
        )

    def _version(self, entity: str, doc: dict[str, Any]) -> None:
        self.versions.append(
            (entity, doc["id"], 1, CREATE, None,
             self.binder.document(doc), self.when, self.actor.user_id)
        )  # fmt: skip


def _arrest_document(
    data: ArrestCreate,
    arrest_id: int,
    arrest_type: str,
    actor: Principal,
    involvements: list[sql.Row],
) -> dict[str, Any]:
    """Version 1 of a new arrest from its payload and the involvement rows just built."""
    values = {
        "id": arrest_id,
        "version": 1,
        "state": ENTERED,
        "otn": data.otn,
        "incident_number": data.incident_number,
        "ori": data.ori,
        "arresting_officer": data.arresting_officer,
        "arrested_at": data.arrested_at,
        "location": data.location,
        "arrest_type": arrest_type,
        "narrative": data.narrative,
        "report_id": data.report_id,
        "source_agency_id": actor.agency_id,
    }
    return new_arrest_document(
        values,
        [involvement_document(i, p, role, juvenile) for i, _, p, role, juvenile in involvements],
        [charge_document(RECOMMENDED, 1, n, c.statute, c.description, str(c.grade), c.counts)
         for n, c in enumerate(data.charges, start=1)],
    )  # fmt: skip
