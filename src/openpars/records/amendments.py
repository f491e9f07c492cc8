"""Amendments and corrections, sealing and expungement, and the version history of records."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.access import repository as access_repo
from openpars.audit.events import AuditKind
from openpars.db import utcnow
from openpars.errors import Conflict, InvalidInput, NotFound
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission
from openpars.records import repository as repo
from openpars.records.enums import ChangeKind, VersionedEntity
from openpars.records.identifiers import (
    arrest_holding,
    lock_identifiers,
    person_holding,
    unseal_clashes,
)
from openpars.records.models import Arrest, Person, RecordVersion
from openpars.records.schemas import ArrestAmend, PersonAmend, SealCreate
from openpars.records.validation import name_key
from openpars.records.versions import (
    EARLIEST_ARREST,
    arrest_for_write,
    arrest_not_found,
    audit_write,
    check_arrest_time,
    internal_read_policy,
    local_date,
    new_version,
    person_for_write,
    person_visible,
    rederive_juvenile,
    require_owner,
)

ARREST_REQUIRED = ("arresting_officer", "arrested_at", "arrest_type")
PERSON_REQUIRED = ("family_name", "given_name")
_NOT_FIELDS = {"change", "reason"}


def _changes(
    data: ArrestAmend | PersonAmend, record: Any, required: Iterable[str]
) -> dict[str, Any]:
    """The fields the request gives whose values differ from the record's; nothing else moves."""
    given = data.model_fields_set - _NOT_FIELDS
    for name in required:
        if name in given and getattr(data, name) is None:
            raise InvalidInput(f"{name} cannot be removed, only replaced", field=name)
    changes = {n: getattr(data, n) for n in sorted(given) if getattr(data, n) != getattr(record, n)}
    if not changes:
        raise InvalidInput(
            "the request changes nothing: give at least one field with a new value",
            code="no_change",
            field="body",
        )
    return changes


def amend_arrest(
    session: Session,
    *,
    actor: Principal,
    arrest_id: int,
    data: ArrestAmend,
    now: datetime | None = None,
    earliest: date = EARLIEST_ARREST,
) -> Arrest:
    """Amend or correct an arrest's own fields; the earlier version stays in the history."""
    actor.require(Permission.ARREST_AMEND)
    moment = now or utcnow()
    if data.otn is not None:
        lock_identifiers(session)  # before the arrest's row lock, as every such write does
    arrest = arrest_for_write(session, actor, arrest_id)
    changes = _changes(data, arrest, ARREST_REQUIRED)
    otn = changes.get("otn")
    # Only an arrest the actor sees can hold the OTN: a sealed one is absent (identifiers).
    if otn is not None and arrest_holding(session, actor, otn=otn, other_than=arrest.id):
        raise Conflict(f"OTN {otn} is already on another arrest", field="otn")
    if "arrested_at" in changes:
        _check_arrest_time(arrest, changes["arrested_at"], moment, earliest)
    for name, value in changes.items():
        setattr(arrest, name, value)
    rederive_juvenile(arrest)
    change = ChangeKind(data.change)
    new_version(session, arrest, actor=actor, change=change, reason=data.reason, at=moment)
    audit_write(
        session,
        actor,
        f"arrest.{change.value}",
        arrest_ids=[arrest.id],
        person_ids=[i.person_id for i in arrest.involvements if "arrested_at" in changes],
        fields=list(changes),
        version=arrest.version,
    )
    return arrest


def _check_arrest_time(
    arrest: Arrest, arrested_at: datetime, now: datetime, earliest: date
) -> None:
    """A new arrest time must be in the sane window, not before a birth nor after the
    arraignment."""
    check_arrest_time(arrested_at, now, earliest=earliest)
    day = local_date(arrested_at)
    for involvement in arrest.involvements:
        born = involvement.person.birth_date
        if born is not None and born > day:
            raise InvalidInput(
                f"arrested_at {day} is before the birth date of person {involvement.person_id}",
                field="arrested_at",
            )
    if arrest.arraignment is not None and arrest.arraignment.arraigned_at < arrested_at:
        raise InvalidInput("arrested_at would fall after the arraignment", field="arrested_at")


def amend_person(
    session: Session,
    *,
    actor: Principal,
    person_id: int,
    data: PersonAmend,
    now: datetime | None = None,
) -> Person:
    """Amend or correct a person; arrests whose juvenile flags change get a version too."""
    actor.require(Permission.ARREST_AMEND)
    moment = now or utcnow()
    if data.sid is not None or data.fbi_number is not None:
        lock_identifiers(session)  # before the person's row lock, as every such write does
    person = person_for_write(session, actor, person_id)
    changes = _changes(data, person, PERSON_REQUIRED)
    _check_identifiers(session, actor, person, changes)
    involvements = repo.involvements_of_person(session, person.id)
    born = changes.get("birth_date")
    if born is not None:
        latest_allowed = min(
            [local_date(moment)] + [local_date(i.arrest.arrested_at) for i in involvements]
        )
        if born > latest_allowed:
            raise InvalidInput(
                f"birth_date {born} is after the date of one of this person's arrests or today",
                field="birth_date",
            )
    for name, value in changes.items():
        setattr(person, name, value)
    person.name_key = name_key(person.family_name, person.given_name, person.middle_name)
    change = ChangeKind(data.change)
    new_version(session, person, actor=actor, change=change, reason=data.reason, at=moment)
    touched: list[int] = []
    if "birth_date" in changes:
        for arrest in dict.fromkeys(i.arrest for i in involvements):
            if rederive_juvenile(arrest):
                new_version(
                    session, arrest, actor=actor, change=change, reason=data.reason, at=moment
                )
                touched.append(arrest.id)
    audit_write(
        session,
        actor,
        f"person.{change.value}",
        person_ids=[person.id],
        arrest_ids=touched,
        fields=list(changes),
        version=person.version,
    )
    return person


def _check_identifiers(
    session: Session, actor: Principal, person: Person, changes: dict[str, Any]
) -> None:
    """A SID or FBI number belongs to one person only, among the persons the actor sees."""
    other = person_holding(
        session, actor, person.id, sid=changes.get("sid"), fbi_number=changes.get("fbi_number")
    )
    if other is not None:
        field = "sid" if changes.get("sid") and other.sid == changes["sid"] else "fbi_number"
        raise Conflict(
            f"{field} {changes[field]} already belongs to person {other.id}; "
            "if they are the same human, have the records merged by an administrator",
            code="identifier_taken",
            field=field,
        )


_SEAL_CHANGES = {
    "seal": ChangeKind.SEAL,
    "unseal": ChangeKind.UNSEAL,
    "expunge": ChangeKind.EXPUNGE,
}


def seal_arrest(
    session: Session,
    *,
    actor: Principal,
    arrest_id: int,
    data: SealCreate,
    now: datetime | None = None,
) -> Arrest:
    """Seal, unseal or expunge an arrest by court order; sealed records leave ordinary views."""
    require_owner(actor, Permission.RECORD_SEAL, AgencyKind.COURT, "sealing or expunging a record")
    moment = now or utcnow()
    if data.action == "unseal":
        lock_identifiers(session)  # no intake gives out its numbers while they are checked
    arrest = arrest_for_write(session, actor, arrest_id)
    if arrest.expunged_at is not None:
        raise Conflict(
            f"arrest {arrest.id} was expunged under order {arrest.seal_order}; "
            f"it cannot be {data.action}ed",
            code="already_expunged",
            field="action",
        )
    if data.action == "seal":
        if arrest.sealed_at is not None:
            raise Conflict(
                f"arrest {arrest.id} is already sealed under order {arrest.seal_order}",
                code="already_sealed",
                field="action",
            )
        arrest.sealed_at = moment
    elif data.action == "unseal":
        if arrest.sealed_at is None:
            raise Conflict(f"arrest {arrest.id} is not sealed", code="not_sealed", field="action")
        clashes = unseal_clashes(session, arrest)
        if clashes:
            # The actor holds sealed access, so naming both records tells them nothing new.
            raise Conflict(
                f"unsealing arrest {arrest.id} would show an identifier on two records: "
                + "; ".join(clashes)
                + ". While it was sealed these numbers were given to new records; correct one "
                "of each pair (an amendment), then unseal",
                code="identifier_clash",
                field="action",
                details={"clashes": clashes},
            )
        arrest.sealed_at = None
    else:
        arrest.expunged_at = moment
    # The order under which the record's visibility last changed; earlier ones stay in history.
    arrest.seal_order = data.order_reference
    reason = f"{data.reason} [order {data.order_reference}]"
    new_version(
        session, arrest, actor=actor, change=_SEAL_CHANGES[data.action], reason=reason, at=moment
    )
    audit_write(
        session,
        actor,
        f"arrest.{data.action}",
        arrest_ids=[arrest.id],
        order_reference=data.order_reference,
    )
    return arrest


def history(
    session: Session, *, actor: Principal, entity: VersionedEntity, entity_id: int
) -> list[RecordVersion]:
    """Every version of a person or arrest, oldest first: internal readers only."""
    if entity is VersionedEntity.ARREST:
        missing: NotFound = arrest_not_found(entity_id)
    else:
        missing = NotFound(f"person {entity_id} does not exist", field="person_id")
    if actor.is_external:
        raise missing  # external agencies do not learn that a record exists at all
    actor.require(Permission.RECORD_READ)
    if entity is VersionedEntity.ARREST:
        policy = internal_read_policy(actor)
        if access_repo.visible_arrest(session, policy, entity_id) is None:
            raise missing
    else:
        person = repo.get_person(session, entity_id)
        if person is None or not person_visible(session, actor, person.id):
            raise missing
    rows = list(repo.versions(session, entity, entity_id))
    ids = [entity_id]
    audit_write(
        session,
        actor,
        f"{entity.value}.history",
        kind=AuditKind.READ,
        arrest_ids=ids if entity is VersionedEntity.ARREST else [],
        person_ids=ids if entity is VersionedEntity.PERSON else [],
        versions=len(rows),
    )
    return rows
