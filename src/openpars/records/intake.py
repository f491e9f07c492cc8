"""Arrest intake: idempotent submission, person matching without silent merges."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission
from openpars.records import repository as repo
from openpars.records.enums import ArrestState, ChangeKind, ChargeStage, InvolvementRole
from openpars.records.matching import find_candidates_many
from openpars.records.models import Arrest, Charge, Involvement, Person, PersonAlias
from openpars.records.schemas import (
    ArrestCreate,
    ArrestCreated,
    CandidateRead,
    PersonIn,
    PersonLink,
)
from openpars.records.validation import name_key
from openpars.records.versions import (
    CLOCK_SKEW,
    audit_write,
    is_juvenile,
    local_date,
    new_version,
    person_for_write,
    person_visible,
    require_owner,
)

MatchedOn = Literal["new", "person_id", "sid", "fbi_number"]


@dataclass
class _Resolved:
    """How one involvement's person is resolved before anything is written."""

    index: int
    role: InvolvementRole
    existing: Person | None = None
    new: PersonIn | None = None
    matched_on: MatchedOn = "new"
    # Several involvements may name the same new person (e.g. by SID); they share one row.
    shared_with: int | None = None
    candidates: list[CandidateRead] = field(default_factory=list)


def intake_digest(data: ArrestCreate) -> str:
    """SHA-256 of the canonical payload: equal for a resend, different for a changed report."""
    document = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(document.encode()).hexdigest()


def submit_arrest(
    session: Session, *, actor: Principal, data: ArrestCreate, now: datetime | None = None
) -> ArrestCreated:
    """Enter an arrest with its persons, roles and recommended charges, idempotently."""
    require_owner(actor, Permission.ARREST_CREATE, AgencyKind.POLICE, "entering an arrest")
    if actor.agency_id is None:
        raise Forbidden("only an account of a police agency can enter arrests", code="no_agency")
    agency_id = actor.agency_id
    digest = intake_digest(data)
    prior = repo.arrests_by_report_or_otn(session, agency_id, data.report_id, data.otn)
    for existing in prior:
        if existing.source_agency_id == agency_id and existing.report_id == data.report_id:
            return _replay(session, actor, existing, data, digest)
    moment = now or utcnow()
    _check_dates(data, moment)
    if prior:  # not this report, so another arrest holds the OTN
        raise Conflict(f"OTN {data.otn} is already on another arrest", field="otn")
    resolved = _resolve_persons(session, actor, data)
    try:
        with repo.write_guard(session):
            result = _write(session, actor, data, resolved, digest, moment)
    except IntegrityError as exc:
        # Two resends racing on PostgreSQL: the loser sees the winner's row and replays it.
        winner = repo.get_arrest_by_report(session, agency_id, data.report_id)
        if winner is None:
            raise Conflict(
                "another request wrote a clashing OTN, SID or FBI number at the same moment; "
                "look the record up and resend",
                code="concurrent_write",
            ) from exc
        return _replay(session, actor, winner, data, digest)
    audit_write(
        session,
        actor,
        "arrest.create",
        arrest_ids=[result.arrest_id],
        person_ids=result.person_ids,
        report_id=data.report_id,
        linked={str(link.index): link.matched_on for link in result.links},
    )
    return result


def _replay(
    session: Session, actor: Principal, arrest: Arrest, data: ArrestCreate, digest: str
) -> ArrestCreated:
    """Answer a resend with the arrest already stored; refuse a changed payload."""
    if arrest.intake_digest != digest:
        raise Conflict(
            f"report id '{data.report_id}' was already used by your agency for an arrest with "
            "different content; send corrections as an amendment, or use a new report id",
            code="report_id_reused",
            field="report_id",
        )
    involvements = sorted(arrest.involvements, key=lambda i: i.id)
    charges = [c for c in arrest.charges if c.stage is ChargeStage.RECOMMENDED and c.revision == 1]
    audit_write(
        session,
        actor,
        "arrest.create.replayed",
        arrest_ids=[arrest.id],
        person_ids=[i.person_id for i in involvements],
        report_id=data.report_id,
    )
    return ArrestCreated(
        arrest_id=arrest.id,
        state=arrest.state,
        replayed=True,
        person_ids=[i.person_id for i in involvements],
        involvement_ids=[i.id for i in involvements],
        charge_ids=[c.id for c in sorted(charges, key=lambda c: c.sequence)],
    )


def _check_dates(data: ArrestCreate, now: datetime) -> None:
    """Refuse an arrest in the future and a person born after the arrest."""
    if data.arrested_at > now + CLOCK_SKEW:
        raise InvalidInput(
            f"arrested_at {data.arrested_at.isoformat()} is in the future (server time "
            f"{now.isoformat(timespec='seconds')}); check the booking terminal's clock",
            field="arrested_at",
        )
    arrest_day = local_date(data.arrested_at)
    for index, involvement in enumerate(data.involvements):
        person = involvement.person
        if person is not None and person.birth_date is not None and person.birth_date > arrest_day:
            raise InvalidInput(
                f"birth_date {person.birth_date} is after the arrest date {arrest_day}",
                field=f"involvements[{index}].person.birth_date",
            )


def _resolve_persons(session: Session, actor: Principal, data: ArrestCreate) -> list[_Resolved]:
    """Decide for each involvement: link, new person, or ask intake to choose. Writes nothing."""
    described = [i.person for i in data.involvements if i.person is not None]
    known = repo.persons_by_identifiers(
        session,
        sids=[p.sid for p in described if p.sid],
        fbi_numbers=[p.fbi_number for p in described if p.fbi_number],
    )
    resolved: list[_Resolved] = []
    to_match: list[tuple[_Resolved, PersonIn]] = []
    by_identifier: dict[tuple[str, str], int] = {}
    for index, involvement in enumerate(data.involvements):
        item = _Resolved(index=index, role=involvement.role)
        resolved.append(item)
        if involvement.person_id is not None:
            # Linking does not change the person, so no row lock: intakes of one person in
            # several arrests at once need not wait for each other.
            item.existing = person_for_write(
                session,
                actor,
                involvement.person_id,
                field=f"involvements[{index}].person_id",
                lock=False,
            )
            item.matched_on = "person_id"
            continue
        person = involvement.person
        assert person is not None  # the schema requires exactly one of person_id and person
        item.new = person
        _link_by_identifier(item, person, known)
        if item.existing is not None:
            continue
        identifiers = [(k, v) for k, v in (("sid", person.sid), ("fbi", person.fbi_number)) if v]
        for identifier in identifiers:
            if identifier in by_identifier:
                item.shared_with = by_identifier[identifier]
        if item.shared_with is None:
            by_identifier.update((identifier, index) for identifier in identifiers)
            if not involvement.create_new_person:
                to_match.append((item, person))
    if to_match:
        found = find_candidates_many(session, [person for _, person in to_match], limit=10)
        for (item, _), candidates in zip(to_match, found, strict=True):
            item.candidates = [c for c in candidates if person_visible(session, actor, c.person_id)]
    _refuse_ambiguous(resolved)
    _refuse_duplicate_roles(resolved)
    return resolved


def _link_by_identifier(item: _Resolved, person: PersonIn, known: Sequence[Person]) -> None:
    """An exact SID or FBI number match is the same person: link it."""
    by_sid = next((p for p in known if person.sid and p.sid == person.sid), None)
    by_fbi = next(
        (p for p in known if person.fbi_number and p.fbi_number == person.fbi_number), None
    )
    if by_sid is not None and by_fbi is not None and by_sid.id != by_fbi.id:
        raise Conflict(
            f"SID {person.sid} belongs to person {by_sid.id} but FBI number "
            f"{person.fbi_number} to person {by_fbi.id}; check both numbers",
            code="identifier_mismatch",
            field=f"involvements[{item.index}].person.fbi_number",
        )
    if by_sid is not None:
        item.existing, item.matched_on = by_sid, "sid"
    elif by_fbi is not None:
        item.existing, item.matched_on = by_fbi, "fbi_number"


def _refuse_ambiguous(resolved: list[_Resolved]) -> None:
    """No silent merges: when existing persons might be the same human, intake must choose."""
    pending = [r for r in resolved if r.candidates]
    if not pending:
        return
    first = pending[0]
    raise Conflict(
        f"involvements[{first.index}].person may already exist ({len(first.candidates)} "
        "candidate(s)); resend that involvement with 'person_id' set to the right person, or "
        "with 'create_new_person': true",
        code="person_match_required",
        field=f"involvements[{first.index}].person",
        details={
            "involvements": [
                {
                    "index": r.index,
                    "candidates": [c.model_dump(mode="json") for c in r.candidates],
                }
                for r in pending
            ]
        },
    )


def _refuse_duplicate_roles(resolved: list[_Resolved]) -> None:
    """One person holds a given role in one arrest at most once."""
    seen: set[tuple[str, InvolvementRole]] = set()
    for item in resolved:
        if item.existing is not None:
            who = f"p{item.existing.id}"
        else:
            who = f"n{item.shared_with if item.shared_with is not None else item.index}"
        if (who, item.role) in seen:
            raise InvalidInput(
                f"the same person appears twice with role '{item.role.value}'",
                field=f"involvements[{item.index}]",
            )
        seen.add((who, item.role))


def _write(
    session: Session,
    actor: Principal,
    data: ArrestCreate,
    resolved: list[_Resolved],
    digest: str,
    moment: datetime,
) -> ArrestCreated:
    """Insert the new persons, the arrest, its involvements and charges, and version 1 of each."""
    created: dict[int, Person] = {}
    for item in resolved:
        if item.existing is None and item.shared_with is None:
            assert item.new is not None
            created[item.index] = _new_person(item.new, moment)
    persons = [
        item.existing or created[item.shared_with if item.shared_with is not None else item.index]
        for item in resolved
    ]
    arrest = Arrest(
        otn=data.otn,
        incident_number=data.incident_number,
        ori=data.ori,
        arresting_officer=data.arresting_officer,
        arrested_at=data.arrested_at,
        location=data.location,
        arrest_type=data.arrest_type,
        narrative=data.narrative,
        state=ArrestState.ENTERED,
        source_agency_id=actor.agency_id,
        report_id=data.report_id,
        intake_digest=digest,
        entered_by_id=actor.user_id,
        version=1,
        created_at=moment,
        updated_at=moment,
    )
    arrest.involvements = [
        Involvement(
            person=person,
            role=item.role,
            juvenile=is_juvenile(person.birth_date, data.arrested_at),
        )
        for item, person in zip(resolved, persons, strict=True)
    ]
    arrest.charges = [
        Charge(
            stage=ChargeStage.RECOMMENDED,
            revision=1,
            sequence=sequence,
            statute=charge.statute,
            description=charge.description,
            grade=charge.grade,
            counts=charge.counts,
            created_at=moment,
            created_by_id=actor.user_id,
        )
        for sequence, charge in enumerate(data.charges, start=1)
    ]
    # A new arrest has no decisions yet; the snapshot reads these instead of loading them.
    arrest.charging_decisions = []
    arrest.bail_recommendations = []
    arrest.arraignment = None
    arrest.custody = None
    _insert_all(session, list(created.values()), arrest)
    records: list[Arrest | Person] = [*created.values(), arrest]
    versions = [
        new_version(session, record, actor=actor, change=ChangeKind.CREATE, reason=None, at=moment)
        for record in records
    ]
    repo.insert_new(session, versions, set_ids=False)
    return ArrestCreated(
        arrest_id=arrest.id,
        state=arrest.state,
        replayed=False,
        person_ids=[p.id for p in persons],
        involvement_ids=[i.id for i in arrest.involvements],
        charge_ids=[c.id for c in arrest.charges],
        links=[
            PersonLink(index=item.index, person_id=person.id, matched_on=item.matched_on)
            for item, person in zip(resolved, persons, strict=True)
        ],
    )


def _insert_all(session: Session, persons: list[Person], arrest: Arrest) -> None:
    """Insert the new persons, their aliases, the arrest, involvements and charges, parents
    first, filling in the foreign keys as the ids become known."""
    repo.insert_new(session, persons)
    aliases = [alias for person in persons for alias in person.aliases]
    for person in persons:
        for alias in person.aliases:
            alias.person_id = person.id
    repo.insert_new(session, aliases)
    repo.insert_new(session, [arrest])
    for involvement in arrest.involvements:
        involvement.arrest_id = arrest.id
        involvement.person_id = involvement.person.id
    for charge in arrest.charges:
        charge.arrest_id = arrest.id
    repo.insert_new(session, arrest.involvements)
    repo.insert_new(session, arrest.charges)


def _new_person(data: PersonIn, moment: datetime) -> Person:
    """A person row from the booking description, with its search keys."""
    person = Person(
        family_name=data.family_name,
        given_name=data.given_name,
        middle_name=data.middle_name,
        name_key=name_key(data.family_name, data.given_name, data.middle_name),
        birth_date=data.birth_date,
        sex=data.sex,
        race=data.race,
        address=data.address,
        phone=data.phone,
        place_of_birth=data.place_of_birth,
        citizenship=data.citizenship,
        sid=data.sid,
        fbi_number=data.fbi_number,
        version=1,
        created_at=moment,
        updated_at=moment,
    )
    person.aliases = [
        PersonAlias(
            family_name=a.family_name,
            given_name=a.given_name,
            name_key=name_key(a.family_name, a.given_name),
        )
        for a in data.aliases
    ]
    return person
