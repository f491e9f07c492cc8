"""Canary records: plant a synthetic person that no legitimate query should reach, list them.

Planting takes two oversight reviewers: one proposes the canary (it is stored, pending, and no
record exists yet), a second, different account confirms it. Only then is it entered, so no
single account can fabricate a record that outside agencies read. The canary is entered
through police intake itself (``records.intake.submit_arrest``), so its identifiers, versions
and fields are made exactly like a real arrest's, and an outside agency that reaches it sees
nothing that tells it apart. Only the ``oversight_canaries`` row marks it: ``access.filters``
hides it from every internal reader, and the canary trigger (``oversight.models``) raises a
flag when an external read returns it.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openpars.audit import repository as audit_repo
from openpars.audit.events import AuditKind, event_by
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput, NotFound
from openpars.identity import repository as identity_repo
from openpars.identity.models import Agency
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission, Role
from openpars.oversight.models import CANARY_DETECTOR, Canary, Flag, FlagEntry
from openpars.oversight.schemas import CanaryCreate, CanaryRead
from openpars.records import repository as records_repo
from openpars.records.enums import InvolvementRole
from openpars.records.intake import submit_arrest
from openpars.records.schemas import ArrestCreate
from openpars.records.versions import is_juvenile

_PERSON = "arrest.involvements.0.person"


def _checked_arrest(data: CanaryCreate) -> ArrestCreate:
    """The arrest to enter: one new, adult arrestee (the rule every scope can reach)."""
    involvements = data.arrest.involvements
    if len(involvements) != 1 or involvements[0].role is not InvolvementRole.ARRESTEE:
        raise InvalidInput(
            "a canary arrest has exactly one involvement, the arrestee; remove the others",
            field="arrest.involvements",
        )
    person = involvements[0].person
    if person is None:
        raise InvalidInput(
            "a canary is a new synthetic person: describe it under 'person', do not link an "
            "existing person_id (a real person must never become a canary)",
            field="arrest.involvements.0.person_id",
        )
    if person.birth_date is None or is_juvenile(person.birth_date, data.arrest.arrested_at):
        raise InvalidInput(
            "a canary must be a known adult at the arrest time (give a birth_date at least 18 "
            "years before arrested_at): agreements that exclude juveniles would never reach it",
            field=f"{_PERSON}.birth_date",
        )
    # Always a new person, even if intake would offer look-alike candidates.
    new = involvements[0].model_copy(update={"create_new_person": True})
    return data.arrest.model_copy(update={"involvements": [new]})


def _intake_actor(session: Session, actor: Principal, ori: str) -> Principal:
    """The reviewer, acting as police intake of the agency whose ORI the arrest carries."""
    agency = identity_repo.get_agency_by_ori(session, ori)
    chain: list[Agency] = []
    unit = agency
    while unit is not None:
        chain.append(unit)
        unit = identity_repo.get_agency(session, unit.parent_id) if unit.parent_id else None
    if agency is None or chain[-1].kind is not AgencyKind.POLICE:
        raise InvalidInput(
            f"ORI {ori} is not a police agency's: a canary arrest is filed under the ORI of a "
            "police agency (or one of its units) so it looks like every other arrest",
            field="arrest.ori",
        )
    return Principal(
        user_id=actor.user_id,
        username=actor.username,
        agency_id=agency.id,
        agency_kind=AgencyKind.POLICE,
        roles=frozenset({Role.INTAKE}),
        agency_path=tuple(a.id for a in chain),
        source_ip=actor.source_ip,
    )


def plant_canary(session: Session, *, actor: Principal, data: CanaryCreate) -> CanaryRead:
    """Propose a canary; it stays pending (no record exists) until a second reviewer confirms.

    One reviewer alone could otherwise fabricate a record outside agencies read: the arrest is
    checked now and entered through intake only by ``confirm_canary``, by another account.
    """
    actor.require(Permission.OVERSIGHT_REVIEW)
    arrest = _checked_arrest(data)
    intake = _intake_actor(session, actor, arrest.ori)
    _require_new_keys(session, intake, arrest)
    assert actor.user_id is not None  # OVERSIGHT_REVIEW is held by user accounts only
    canary = Canary(
        label=data.label,
        arrest=arrest.model_dump(mode="json"),
        planted_by_id=actor.user_id,
        planted_at=utcnow(),
    )
    session.add(canary)
    session.flush()
    append(
        session,
        event_by(
            actor,
            kind=AuditKind.OVERSIGHT,
            action="oversight.canary.plant",
            params={"canary_id": canary.id, "label": data.label, "pending": True},
        ),
    )
    return CanaryRead.model_validate(canary)


def confirm_canary(session: Session, *, actor: Principal, canary_id: int) -> CanaryRead:
    """A second reviewer confirms a pending canary: its arrest is entered through intake now,
    and outside agencies can reach it from this commit on."""
    actor.require(Permission.OVERSIGHT_REVIEW)
    assert actor.user_id is not None  # OVERSIGHT_REVIEW is held by user accounts only
    # Locked: two confirmations racing would otherwise enter the arrest twice.
    canary = session.get(Canary, canary_id, with_for_update=True)
    if canary is None:
        raise NotFound(f"canary {canary_id} does not exist", field="canary_id")
    if canary.confirmed_at is not None:
        raise Conflict(
            f"canary {canary_id} was already confirmed at {canary.confirmed_at.isoformat()}; "
            "there is nothing left to confirm",
            field="canary_id",
            code="already_confirmed",
        )
    if canary.planted_by_id == actor.user_id:
        raise Forbidden(
            f"canary {canary_id} was planted by your account ({actor.username}); a second, "
            "different oversight reviewer must confirm it, so that no one account alone can "
            "fabricate a record outside agencies read",
            field="canary_id",
            code="second_reviewer_required",
        )
    arrest = ArrestCreate.model_validate(canary.arrest)
    intake = _intake_actor(session, actor, arrest.ori)
    _require_new_keys(session, intake, arrest)
    created = submit_arrest(session, actor=intake, data=arrest)
    if any(link.matched_on != "new" for link in created.links):
        # Intake linked the arrestee to an existing person by SID or FBI number: marking
        # that person would hide a real record. The whole transaction rolls back.
        raise Conflict(
            "the arrestee's SID or FBI number belongs to an existing person, and a real person "
            "must never become a canary; plant it again with identifiers no record holds",
            field=f"{_PERSON}.sid",
        )
    canary.person_id = created.person_ids[0]
    canary.arrest_id = created.arrest_id
    canary.confirmed_by_id = actor.user_id
    canary.confirmed_at = utcnow()
    session.flush()
    append(
        session,
        event_by(
            actor,
            kind=AuditKind.OVERSIGHT,
            action="oversight.canary.confirm",
            params={
                "canary_id": canary.id,
                "label": canary.label,
                "planted_by_id": canary.planted_by_id,
            },
            person_ids=[canary.person_id],
            arrest_ids=[canary.arrest_id],
        ),
    )
    return CanaryRead.model_validate(canary)


def _require_new_keys(session: Session, intake: Principal, arrest: ArrestCreate) -> None:
    """Refuse an arrest whose report id or OTN an arrest already carries, or whose arrestee's
    SID or FBI number a person already holds (checked on planting and again on confirming)."""
    assert intake.agency_id is not None
    # Checked on every arrest, hidden ones included: intake would treat a hidden (canary or
    # sealed) arrest's report id and OTN as unused, and a canary must not repeat one.
    otns = [arrest.otn] if arrest.otn else []
    if records_repo.arrest_keys(session, intake.agency_id, [arrest.report_id], otns):
        raise Conflict(
            "an arrest with this report id or OTN was already entered: a canary must be a new "
            "arrest; choose another report_id and otn",
            field="arrest.report_id",
        )
    person = arrest.involvements[0].person
    assert person is not None  # _checked_arrest requires a new person
    sids = [person.sid] if person.sid else []
    fbis = [person.fbi_number] if person.fbi_number else []
    if records_repo.persons_by_identifiers(session, sids=sids, fbi_numbers=fbis):
        # Intake would link the arrestee to that person, and a canary would hide a real record.
        raise Conflict(
            "the arrestee's SID or FBI number belongs to an existing person, and a real person "
            "must never become a canary; give identifiers no record holds",
            field=f"{_PERSON}.sid",
        )


def list_canaries(
    session: Session, *, actor: Principal, offset: int, limit: int
) -> tuple[list[CanaryRead], int]:
    """Planted canaries with the flags each raised; oversight only, and audited."""
    actor.require(Permission.OVERSIGHT_READ)
    total = int(session.scalar(select(func.count()).select_from(Canary)) or 0)
    rows = session.scalars(select(Canary).order_by(Canary.id).offset(offset).limit(limit)).all()
    items = [
        CanaryRead.model_validate(row).model_copy(update={"flags": _flags_of(session, row)})
        for row in rows
    ]
    append(
        session,
        event_by(
            actor,
            kind=AuditKind.OVERSIGHT,
            action="oversight.canary.list",
            params={"offset": offset, "limit": limit},
        ),
    )
    return items, total


def _flags_of(session: Session, canary: Canary) -> int:
    """Canary flags whose entries returned this canary's person or arrest."""
    if canary.person_id is None or canary.arrest_id is None:
        return 0  # pending: no record exists, so nothing can have returned it
    entries = audit_repo.entries_naming(
        session, person_ids=[canary.person_id], arrest_ids=[canary.arrest_id]
    )
    stmt = (
        select(func.count(func.distinct(Flag.id)))
        .join(FlagEntry, FlagEntry.flag_id == Flag.id)
        .where(Flag.detector == CANARY_DETECTOR, FlagEntry.entry_id.in_(entries))
    )
    return int(session.scalar(stmt) or 0)
