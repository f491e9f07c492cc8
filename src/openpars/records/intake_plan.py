"""Intake's rules before anything is written: dates, OTN clash, and resolving each person.

Each involvement's person is linked (by id, SID or FBI number), created, or, when existing
persons resemble it by name and birth date, intake is asked to choose: no silent merges.
Nothing here writes, so a refused arrest has nothing to undo.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from sqlalchemy.orm import Session

from openpars.errors import Conflict, InvalidInput
from openpars.identity.principal import Principal
from openpars.records import repository as repo
from openpars.records.enums import InvolvementRole
from openpars.records.identifiers import visible_person_ids
from openpars.records.matching import find_candidates_many
from openpars.records.schemas import ArrestCreate, CandidateRead, PersonIn
from openpars.records.versions import (
    EARLIEST_ARREST,
    check_arrest_dates,
    person_for_write,
    person_visible,
)

MatchedOn = Literal["new", "person_id", "sid", "fbi_number"]
# Candidate lists for the persons being matched, in order (find_candidates_many's shape).
CandidateFinder = Callable[[list[PersonIn]], list[list[CandidateRead]]]


@dataclass
class Resolved:
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
    resolved: list[Resolved]


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
    earliest: date = EARLIEST_ARREST,
    oris: Collection[str],
) -> Plan:
    """Check a new (not resent) arrest and resolve its persons; raise if it is refused.

    ``oris`` are the arresting ORIs the actor may file under (``intake.filing_oris``);
    ``known`` (persons the actor may see holding the payload's SIDs and FBI numbers) and
    ``finder`` let a batch pass what it looked up for all its arrests at once; by default
    they are queried here.
    """
    check_ori(data.ori, oris)
    check_arrest_dates(data, moment, earliest=earliest)
    if otn_taken:  # not this report, so another arrest holds the OTN
        raise Conflict(f"OTN {data.otn} is already on another arrest", field="otn")
    return Plan(data, digest, _resolve_persons(session, actor, data, known, finder))


def check_ori(ori: str, oris: Collection[str]) -> None:
    """The arresting ORI must be the filing agency's own or one of its sub-units'."""
    if ori in oris:
        return
    mine = ", ".join(sorted(oris)) or "none registered; an administrator must register it"
    raise InvalidInput(
        f"ori {ori} is not the ORI of your agency or of one of its sub-units (yours: {mine}); "
        "an arrest is filed under the ORI of the unit that made it",
        code="ori_not_yours",
        field="ori",
    )


def _resolve_persons(
    session: Session,
    actor: Principal,
    data: ArrestCreate,
    known: Sequence[repo.KnownPerson] | None,
    finder: CandidateFinder | None,
) -> list[Resolved]:
    """Decide for each involvement: link, new person, or ask intake to choose. Writes nothing."""
    if known is None:
        described = [i.person for i in data.involvements if i.person is not None]
        known = visible_known(
            session,
            actor,
            repo.identified_persons(
                session,
                sids=[p.sid for p in described if p.sid],
                fbi_numbers=[p.fbi_number for p in described if p.fbi_number],
            ),
        )
    resolved: list[Resolved] = []
    to_match: list[tuple[Resolved, PersonIn]] = []
    by_identifier: dict[tuple[str, str], int] = {}
    for index, involvement in enumerate(data.involvements):
        item = Resolved(index=index, role=involvement.role)
        resolved.append(item)
        if involvement.person_id is not None:
            # Linking does not change the person, so no row lock: intakes of one person in
            # several arrests at once need not wait for each other.
            person = person_for_write(
                session,
                actor,
                involvement.person_id,
                field=f"involvements.{index}.person_id",
                lock=False,
            )
            item.person_id, item.birth_date = person.id, person.birth_date
            item.matched_on = "person_id"
            continue
        described_person = involvement.person
        # The schema requires exactly one of person_id and person.
        assert described_person is not None
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


def visible_known(
    session: Session, actor: Principal, known: Sequence[repo.KnownPerson]
) -> list[repo.KnownPerson]:
    """The persons holding a payload's identifiers that the actor may see, lowest id first.

    A person known only from sealed arrests is left out, so their SID or FBI number is
    treated exactly as an unknown one: a new person is created (records.identifiers).
    """
    visible = visible_person_ids(session, actor, (p.id for p in known))
    return sorted((p for p in known if p.id in visible), key=lambda p: p.id)


def _link_by_identifier(
    item: Resolved, person: PersonIn, known: Sequence[repo.KnownPerson]
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
            field=f"involvements.{item.index}.person.fbi_number",
        )
    if by_sid is not None:
        item.person_id, item.birth_date, item.matched_on = by_sid.id, by_sid.birth_date, "sid"
    elif by_fbi is not None:
        item.person_id, item.birth_date = by_fbi.id, by_fbi.birth_date
        item.matched_on = "fbi_number"


def _refuse_ambiguous(resolved: list[Resolved]) -> None:
    """No silent merges: when existing persons might be the same human, intake must choose."""
    pending = [r for r in resolved if r.candidates]
    if not pending:
        return
    first = pending[0]
    raise Conflict(
        f"involvements.{first.index}.person may already exist ({len(first.candidates)} "
        "candidate(s)); resend that involvement with 'person_id' set to the right person, or "
        "with 'create_new_person': true",
        code="person_match_required",
        field=f"involvements.{first.index}.person",
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


def _refuse_duplicate_roles(resolved: list[Resolved]) -> None:
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
                field=f"involvements.{item.index}",
            )
        seen.add((who, item.role))
