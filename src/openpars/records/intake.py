"""Arrest intake: idempotent submission, person matching without silent merges."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission
from openpars.records import repository as repo
from openpars.records.enums import (
    ArrestState,
    ChargeStage,
    InvolvementRole,
    VersionedEntity,
)
from openpars.records.matching import find_candidates_many
from openpars.records.models import Arrest, Charge, Involvement, Person, PersonAlias, RecordVersion
from openpars.records.schemas import (
    ArrestCreate,
    ArrestCreated,
    CandidateRead,
    PersonIn,
    PersonLink,
)
from openpars.records.validation import name_key
from openpars.records.versions import (
    charge_document,
    check_arrest_dates,
    involvement_document,
    is_juvenile,
    new_arrest_document,
    person_document,
    person_for_write,
    person_visible,
    require_owner,
    write_event,
)

MatchedOn = Literal["new", "person_id", "sid", "fbi_number"]
# Candidate lists for the persons being matched, in order (find_candidates_many's shape).
CandidateFinder = Callable[[list[PersonIn]], list[list[CandidateRead]]]


@dataclass
class _Resolved:
    """How one involvement's person is resolved before anything is written."""

    index: int
    role: InvolvementRole
    person_id: int | None = None  # an existing person (with their birth date)
    birth_date: date | None = None
    new: PersonIn | None = None
    matched_on: MatchedOn = "new"
    # Several involvements may name the same new person (e.g. by SID); they share one row.
    shared_with: int | None = None
    candidates: list[CandidateRead] = field(default_factory=list)


@dataclass
class Plan:
    """An accepted arrest, resolved and checked, ready to be written."""

    data: ArrestCreate
    digest: str
    resolved: list[_Resolved]


def intake_digest(data: ArrestCreate) -> str:
    """SHA-256 of the canonical payload: equal for a resend, different for a changed report."""
    document = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(document.encode()).hexdigest()


def intake_agency(actor: Principal) -> int:
    """The police agency an actor enters arrests for; Forbidden for anyone else."""
    require_owner(actor, Permission.ARREST_CREATE, AgencyKind.POLICE, "entering an arrest")
    if actor.agency_id is None:
        raise Forbidden("only an account of a police agency can enter arrests", code="no_agency")
    return actor.agency_id


def submit_arrest(
    session: Session, *, actor: Principal, data: ArrestCreate, now: datetime | None = None
) -> ArrestCreated:
    """Enter an arrest with its persons, roles and recommended charges, idempotently."""
    agency_id = intake_agency(actor)
    digest = intake_digest(data)
    prior = repo.arrest_keys(session, agency_id, [data.report_id], [data.otn] if data.otn else [])
    own = [a for a in prior if a[1] == agency_id and a[2] == data.report_id]
    if own:
        return _appended(session, replay(session, actor, own[0][0], data, digest))
    moment = now or utcnow()
    plan = plan_arrest(session, actor, data, digest, moment, otn_taken=bool(prior))
    try:
        with repo.write_guard(session):
            result = write_arrests(session, actor, [plan], moment)[0]
    except IntegrityError as exc:
        # Two resends racing on PostgreSQL: the loser sees the winner's row and replays it.
        winner = repo.get_arrest_by_report(session, agency_id, data.report_id)
        if winner is None:
            raise Conflict(
                "another request wrote a clashing OTN, SID or FBI number at the same moment; "
                "look the record up and resend",
                code="concurrent_write",
            ) from exc
        return _appended(session, replay(session, actor, winner.id, data, digest))
    append(session, created_event(actor, data, result))
    return result


def _appended(session: Session, answer: tuple[ArrestCreated, AuditEvent]) -> ArrestCreated:
    append(session, answer[1])
    return answer[0]


def created_event(actor: Principal, data: ArrestCreate, result: ArrestCreated) -> AuditEvent:
    """The audit entry of a new arrest."""
    return write_event(
        actor,
        "arrest.create",
        arrest_ids=[result.arrest_id],
        person_ids=result.person_ids,
        report_id=data.report_id,
        linked={str(link.index): link.matched_on for link in result.links},
    )


def plan_arrest(
    session: Session,
    actor: Principal,
    data: ArrestCreate,
    digest: str,
    moment: datetime,
    *,
    otn_taken: bool,
    known: Sequence[repo.KnownPerson] | None = None,
    finder: CandidateFinder | None = None,
) -> Plan:
    """Check a new (not resent) arrest and resolve its persons; raise if it is refused.

    ``known`` (persons holding the payload's SIDs and FBI numbers) and ``finder`` let a batch
    pass what it looked up for all its arrests at once; by default they are queried here.
    """
    check_arrest_dates(data, moment)
    if otn_taken:  # not this report, so another arrest holds the OTN
        raise Conflict(f"OTN {data.otn} is already on another arrest", field="otn")
    return Plan(data, digest, _resolve_persons(session, actor, data, known, finder))


def replay(
    session: Session, actor: Principal, arrest_id: int, data: ArrestCreate, digest: str
) -> tuple[ArrestCreated, AuditEvent]:
    """Answer a resend with the arrest already stored; refuse a changed payload."""
    arrest = repo.get_arrest(session, arrest_id)
    assert arrest is not None
    if arrest.intake_digest != digest:
        raise Conflict(
            f"report id '{data.report_id}' was already used by your agency for an arrest with "
            "different content; send corrections as an amendment, or use a new report id",
            code="report_id_reused",
            field="report_id",
        )
    involvements = sorted(arrest.involvements, key=lambda i: i.id)
    charges = [c for c in arrest.charges if c.stage is ChargeStage.RECOMMENDED and c.revision == 1]
    event = write_event(
        actor,
        "arrest.create.replayed",
        arrest_ids=[arrest.id],
        person_ids=[i.person_id for i in involvements],
        report_id=data.report_id,
    )
    result = ArrestCreated(
        arrest_id=arrest.id,
        state=arrest.state,
        replayed=True,
        person_ids=[i.person_id for i in involvements],
        involvement_ids=[i.id for i in involvements],
        charge_ids=[c.id for c in sorted(charges, key=lambda c: c.sequence)],
    )
    return result, event


def _resolve_persons(
    session: Session,
    actor: Principal,
    data: ArrestCreate,
    known: Sequence[repo.KnownPerson] | None,
    finder: CandidateFinder | None,
) -> list[_Resolved]:
    """Decide for each involvement: link, new person, or ask intake to choose. Writes nothing."""
    if known is None:
        described = [i.person for i in data.involvements if i.person is not None]
        known = repo.identified_persons(
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
            person = person_for_write(
                session,
                actor,
                involvement.person_id,
                field=f"involvements[{index}].person_id",
                lock=False,
            )
            item.person_id, item.birth_date = person.id, person.birth_date
            item.matched_on = "person_id"
            continue
        described_person = involvement.person
        assert (
            described_person is not None
        )  # the schema requires exactly one of person_id and person
        item.new = described_person
        _link_by_identifier(item, described_person, known)
        if item.person_id is not None:
            continue
        identifiers = [
            (k, v)
            for k, v in (("sid", described_person.sid), ("fbi", described_person.fbi_number))
            if v
        ]
        for identifier in identifiers:
            if identifier in by_identifier:
                item.shared_with = by_identifier[identifier]
        if item.shared_with is None:
            by_identifier.update((identifier, index) for identifier in identifiers)
            if not involvement.create_new_person:
                to_match.append((item, described_person))
    if to_match:
        wanted = [person for _, person in to_match]
        if finder is None:
            found = find_candidates_many(session, wanted, limit=10)
        else:
            found = finder(wanted)
        for (item, _), candidates in zip(to_match, found, strict=True):
            item.candidates = [c for c in candidates if person_visible(session, actor, c.person_id)]
    _refuse_ambiguous(resolved)
    _refuse_duplicate_roles(resolved)
    return resolved


def _link_by_identifier(
    item: _Resolved, person: PersonIn, known: Sequence[repo.KnownPerson]
) -> None:
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
        item.person_id, item.birth_date, item.matched_on = by_sid.id, by_sid.birth_date, "sid"
    elif by_fbi is not None:
        item.person_id, item.birth_date = by_fbi.id, by_fbi.birth_date
        item.matched_on = "fbi_number"


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
        if item.person_id is not None:
            who = f"p{item.person_id}"
        else:
            who = f"n{item.shared_with if item.shared_with is not None else item.index}"
        if (who, item.role) in seen:
            raise InvalidInput(
                f"the same person appears twice with role '{item.role.value}'",
                field=f"involvements[{item.index}]",
            )
        seen.add((who, item.role))


def write_arrests(
    session: Session, actor: Principal, plans: Sequence[Plan], moment: datetime
) -> list[ArrestCreated]:
    """Insert the new persons, the arrests, involvements and charges of planned arrests and
    version 1 of each record, with one statement per table for all of them, parents first."""
    new_rows: list[dict[str, Any]] = []
    new_aliases: list[list[tuple[str, str]]] = []
    refs: list[list[int]] = []  # per plan and involvement: index into new_rows, or -1
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
                owners[owner] = len(new_rows)
                new_rows.append(repo.person_row(item.new, moment))
                new_aliases.append([(a.family_name, a.given_name) for a in item.new.aliases])
            plan_refs.append(owners[owner])
        refs.append(plan_refs)
    reserved = repo.reserve_ids(
        session,
        {
            Person: len(new_rows),
            Arrest: len(plans),
            Involvement: sum(len(p.resolved) for p in plans),
            Charge: sum(len(p.data.charges) for p in plans),
        },
    )
    new_ids = repo.insert_rows(session, Person, new_rows, ids=reserved.get(Person))
    alias_rows = [
        {"person_id": pid, "family_name": f, "given_name": g, "name_key": name_key(f, g)}
        for pid, aliases in zip(new_ids, new_aliases, strict=True)
        for f, g in aliases
    ]
    repo.insert_rows(session, PersonAlias, alias_rows, returning=False)
    arrest_rows = [
        repo.arrest_row(p.data, p.digest, actor.agency_id, actor.user_id, moment) for p in plans
    ]
    arrest_ids = repo.insert_rows(session, Arrest, arrest_rows, ids=reserved.get(Arrest))
    person_ids = [
        [item.person_id if ref < 0 else new_ids[ref] for item, ref in zip(p.resolved, r)]  # noqa: B905
        for p, r in zip(plans, refs, strict=True)
    ]
    involvement_rows: list[dict[str, Any]] = [
        {
            "arrest_id": arrest_id,
            "person_id": pid,
            "role": item.role,
            "juvenile": is_juvenile(
                item.birth_date if ref < 0 else new_rows[ref]["birth_date"], plan.data.arrested_at
            ),
        }
        for plan, arrest_id, pids, plan_refs in zip(plans, arrest_ids, person_ids, refs)  # noqa: B905
        for item, pid, ref in zip(plan.resolved, pids, plan_refs)  # noqa: B905
    ]
    involvement_ids = iter(
        repo.insert_rows(session, Involvement, involvement_rows, ids=reserved.get(Involvement))
    )
    charge_rows = [
        {
            "arrest_id": arrest_id,
            "stage": ChargeStage.RECOMMENDED,
            "revision": 1,
            "sequence": sequence,
            "statute": charge.statute,
            "description": charge.description,
            "grade": charge.grade,
            "counts": charge.counts,
            "created_at": moment,
            "created_by_id": actor.user_id,
        }
        for plan, arrest_id in zip(plans, arrest_ids, strict=True)
        for sequence, charge in enumerate(plan.data.charges, start=1)
    ]
    charge_ids = iter(repo.insert_rows(session, Charge, charge_rows, ids=reserved.get(Charge)))
    results: list[ArrestCreated] = []
    versions: list[dict[str, Any]] = []
    done: set[int] = set()
    rows = iter(involvement_rows)
    for plan, arrest_id, pids, plan_refs, row in zip(  # noqa: B905
        plans, arrest_ids, person_ids, refs, arrest_rows
    ):
        involvements = [(next(involvement_ids), next(rows)) for _ in plan.resolved]
        charges = [next(charge_ids) for _ in plan.data.charges]
        for ref in plan_refs:
            if ref >= 0 and ref not in done:
                done.add(ref)
                doc = person_document({"id": new_ids[ref], **new_rows[ref]}, new_aliases[ref])
                versions.append(
                    repo.version_row(VersionedEntity.PERSON, doc, actor.user_id, moment)
                )
        doc = new_arrest_document(
            {"id": arrest_id, **row},
            [involvement_document(i, r["person_id"], r["role"].value, r["juvenile"])
             for i, r in involvements],
            [charge_document(ChargeStage.RECOMMENDED.value, 1, n, c.statute, c.description,
                             c.grade.value, c.counts)
             for n, c in enumerate(plan.data.charges, start=1)],
        )  # fmt: skip
        versions.append(repo.version_row(VersionedEntity.ARREST, doc, actor.user_id, moment))
        results.append(
            ArrestCreated(
                arrest_id=arrest_id,
                state=ArrestState.ENTERED,
                replayed=False,
                person_ids=pids,
                involvement_ids=[i for i, _ in involvements],
                charge_ids=charges,
                links=[
                    PersonLink(index=item.index, person_id=pid, matched_on=item.matched_on)
                    for item, pid in zip(plan.resolved, pids, strict=True)
                ],
            )
        )
    repo.insert_rows(session, RecordVersion, versions, returning=False)
    return results
