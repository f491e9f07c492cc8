"""Shared rules of the write side: snapshots and version rows, juvenile flags, guards, audit.

Each RecordVersion holds the full record as it stood AFTER that version was written (version 1
is the record as created). Rows are only ever added, so every earlier state stays readable and
the change between two versions is the difference of their snapshots.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.errors import Forbidden, NotFound
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission
from openpars.records import repository as repo
from openpars.records.enums import ChangeKind, VersionedEntity
from openpars.records.models import Arrest, Person, RecordVersion

# Arrest dates and birth dates are compared on the Philadelphia calendar: a 23:30 arrest is on
# that local day even though it is already the next day in UTC.
SITE_TZ = ZoneInfo("America/New_York")
# Booking terminals' clocks drift; an arrest time this far ahead of ours is still accepted.
CLOCK_SKEW = timedelta(minutes=5)
ADULT_AGE = 18

AGENCY_TITLES: dict[AgencyKind, str] = {
    AgencyKind.POLICE: "the police",
    AgencyKind.DA: "the District Attorney's office",
    AgencyKind.COURT: "the court",
    AgencyKind.PRETRIAL: "pretrial services",
}


def local_date(moment: datetime) -> date:
    """The calendar date of an instant in the site's time zone."""
    return moment.astimezone(SITE_TZ).date()


def age_on(birth_date: date, on: date) -> int:
    """Completed years of age on a date (a 29 February birthday counts from 1 March)."""
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - int(before_birthday)


def is_juvenile(birth_date: date | None, arrested_at: datetime) -> bool:
    """Under 18 on the arrest date; unknown birth dates are not treated as juvenile."""
    return birth_date is not None and age_on(birth_date, local_date(arrested_at)) < ADULT_AGE


def rederive_juvenile(arrest: Arrest) -> bool:
    """Recompute every involvement's juvenile flag; True when any flag changed."""
    changed = False
    for involvement in arrest.involvements:
        flag = is_juvenile(involvement.person.birth_date, arrest.arrested_at)
        if involvement.juvenile != flag:
            involvement.juvenile = flag
            changed = True
    return changed


# ---- guards ---------------------------------------------------------------------------------


def require_owner(actor: Principal, permission: Permission, owner: AgencyKind, step: str) -> None:
    """Forbidden unless the actor holds the permission and belongs to the owning agency kind."""
    actor.require(permission)
    if actor.agency_kind is not owner:
        mine = actor.agency_kind.value if actor.agency_kind else "none"
        raise Forbidden(
            f"{step} is done by {AGENCY_TITLES.get(owner, owner.value)}; your agency is of kind "
            f"'{mine}', so it cannot do this step",
            code="wrong_agency",
            details={"step": step, "owner": owner.value, "your_agency_kind": mine},
        )


def arrest_for_write(session: Session, actor: Principal, arrest_id: int) -> Arrest:
    """Load and lock an arrest; a sealed one is missing unless the actor may see sealed records."""
    arrest = repo.get_arrest(session, arrest_id, for_update=True)
    if arrest is None or (arrest.is_sealed and not actor.can(Permission.SEALED_READ)):
        raise arrest_not_found(arrest_id)
    return arrest


def arrest_not_found(arrest_id: int) -> NotFound:
    """The one message for an arrest that does not exist or may not be seen."""
    return NotFound(
        f"arrest {arrest_id} does not exist", code="arrest_not_found", field="arrest_id"
    )


def person_for_write(
    session: Session,
    actor: Principal,
    person_id: int,
    *,
    field: str = "person_id",
    lock: bool = True,
) -> Person:
    """Load (and lock) a person; one known only from sealed arrests is missing to most callers."""
    person = repo.get_person(session, person_id, for_update=lock)
    if person is None or not person_visible(session, actor, person.id):
        raise NotFound(f"person {person_id} does not exist", code="person_not_found", field=field)
    return person


def person_visible(session: Session, actor: Principal, person_id: int) -> bool:
    """A person is hidden when every arrest they appear in is sealed and the actor lacks access."""
    if actor.can(Permission.SEALED_READ):
        return True
    return repo.person_has_unsealed_involvement(session, person_id) or not (
        repo.person_has_involvement(session, person_id)
    )


# ---- snapshots and versions -----------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def person_snapshot(person: Person) -> dict[str, Any]:
    """The full person record as a JSON document."""
    fields = [
        "id",
        "family_name",
        "given_name",
        "middle_name",
        "name_key",
        "birth_date",
        "sex",
        "race",
        "address",
        "phone",
        "place_of_birth",
        "citizenship",
        "sid",
        "fbi_number",
        "version",
    ]
    doc = {name: _plain(getattr(person, name)) for name in fields}
    doc["aliases"] = [
        {"family_name": a.family_name, "given_name": a.given_name} for a in person.aliases
    ]
    return doc


def arrest_snapshot(arrest: Arrest) -> dict[str, Any]:
    """The full arrest record, with everything in it, as a JSON document."""
    fields = [
        "id",
        "version",
        "state",
        "otn",
        "incident_number",
        "ori",
        "arresting_officer",
        "arrested_at",
        "location",
        "arrest_type",
        "narrative",
        "docket_number",
        "report_id",
        "source_agency_id",
        "sealed_at",
        "expunged_at",
        "seal_order",
    ]
    doc = {name: _plain(getattr(arrest, name)) for name in fields}
    doc["involvements"] = [
        {"id": i.id, "person_id": i.person_id, "role": i.role.value, "juvenile": i.juvenile}
        for i in sorted(arrest.involvements, key=lambda i: i.id)
    ]
    charges = sorted(arrest.charges, key=lambda c: (c.stage.value, c.revision, c.sequence))
    doc["charges"] = [
        {
            "stage": c.stage.value,
            "revision": c.revision,
            "sequence": c.sequence,
            "statute": c.statute,
            "description": c.description,
            "grade": c.grade.value,
            "counts": c.counts,
        }
        for c in charges
    ]
    doc["charging_decisions"] = [
        {"outcome": d.outcome.value, "reason": d.reason, "decided_at": _plain(d.decided_at)}
        for d in arrest.charging_decisions
    ]
    doc["bail_recommendations"] = [
        {
            "bail_type": b.bail_type.value,
            "amount": _plain(b.amount),
            "conditions": b.conditions,
            "recommended_at": _plain(b.recommended_at),
        }
        for b in arrest.bail_recommendations
    ]
    a = arrest.arraignment
    doc["arraignment"] = (
        None
        if a is None
        else {
            "arraigned_at": _plain(a.arraigned_at),
            "magistrate": a.magistrate,
            "bail_type": a.bail_type.value,
            "bail_amount": _plain(a.bail_amount),
            "conditions": a.conditions,
            "preliminary_hearing_date": _plain(a.preliminary_hearing_date),
            "docket_number": a.docket_number,
        }
    )
    c = arrest.custody
    doc["custody"] = (
        None
        if c is None
        else {"outcome": c.outcome.value, "at": _plain(c.at), "facility": c.facility}
    )
    return doc


def new_version(
    session: Session,
    record: Arrest | Person,
    *,
    actor: Principal,
    change: ChangeKind,
    reason: str | None,
    at: datetime,
) -> RecordVersion:
    """Write the version row of a record's current state; bumps the version unless it is new.

    A CREATE version is returned unsaved: intake inserts new records outside the unit of work
    and adds all their version rows at once.
    """
    if change is ChangeKind.CREATE:
        return _version_row(record, actor=actor, change=change, reason=reason, at=at)
    session.flush()  # ids and collections must be current before the snapshot is taken
    record.version += 1
    record.updated_at = at
    row = _version_row(record, actor=actor, change=change, reason=reason, at=at)
    session.add(row)
    session.flush()
    return row


def _version_row(
    record: Arrest | Person,
    *,
    actor: Principal,
    change: ChangeKind,
    reason: str | None,
    at: datetime,
) -> RecordVersion:
    if isinstance(record, Arrest):
        entity, snapshot = VersionedEntity.ARREST, arrest_snapshot(record)
    else:
        entity, snapshot = VersionedEntity.PERSON, person_snapshot(record)
    return RecordVersion(
        entity=entity,
        entity_id=record.id,
        version=record.version,
        change=change,
        reason=reason,
        snapshot=snapshot,
        changed_at=at,
        changed_by_id=actor.user_id,
    )


def audit_write(
    session: Session,
    actor: Principal,
    action: str,
    *,
    arrest_ids: list[int] | None = None,
    person_ids: list[int] | None = None,
    kind: AuditKind = AuditKind.WRITE,
    **params: Any,
) -> None:
    """Append the one audit entry of this write (or read) in the caller's transaction."""
    append(
        session,
        AuditEvent(
            kind=kind,
            action=action,
            user_id=actor.user_id,
            username=actor.username,
            agency_id=actor.agency_id,
            source_ip=actor.source_ip,
            params={k: _plain(v) for k, v in params.items()},
            person_ids=list(person_ids or []),
            arrest_ids=list(arrest_ids or []),
        ),
    )
