"""Shared rules of the write side: snapshots and version rows, juvenile flags, guards, audit.

Each RecordVersion holds the full record as it stood AFTER that version was written (version 1
is the record as created). Rows are only ever added, so every earlier state stays readable and
the change between two versions is the difference of their snapshots.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from openpars.access import repository as access_repo
from openpars.access.policy import ReadPolicy, internal_policy
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.errors import Forbidden, InvalidInput, NotFound
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission
from openpars.records import repository as repo
from openpars.records.enums import ChangeKind, VersionedEntity
from openpars.records.models import Arrest, Person, RecordVersion
from openpars.records.schemas import ArrestCreate

# Arrest dates and birth dates are compared on the Philadelphia calendar: a 23:30 arrest is on
# that local day even though it is already the next day in UTC.
SITE_TZ = ZoneInfo("America/New_York")
# Booking terminals' clocks drift; an arrest time this far ahead of ours is still accepted.
CLOCK_SKEW = timedelta(minutes=5)
# No arrest entered today happened before this day (site-local), unless the site configures an
# earlier one (Settings.earliest_arrest_date): a 1900 or year-1 arrest time is a typo.
EARLIEST_ARREST = date(1950, 1, 1)
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


def is_juvenile(birth_date: date | None, arrested_at: datetime) -> bool | None:
    """Under 18 on the arrest date; None when the birth date is unknown.

    None is not "adult": external scopes admit only involvements known to be of an adult
    (``juvenile IS FALSE``), so an unknown age counts as juvenile for them, while internal
    readers are not told that an adult without a birth date on file is a juvenile.
    """
    if birth_date is None:
        return None
    return age_on(birth_date, local_date(arrested_at)) < ADULT_AGE


def rederive_juvenile(arrest: Arrest) -> bool:
    """Recompute every involvement's juvenile flag; True when any flag changed."""
    changed = False
    for involvement in arrest.involvements:
        flag = is_juvenile(involvement.person.birth_date, arrest.arrested_at)
        if involvement.juvenile != flag:
            involvement.juvenile = flag
            changed = True
    return changed


def check_arrest_time(
    arrested_at: datetime, now: datetime, *, earliest: date = EARLIEST_ARREST
) -> None:
    """Refuse an arrest time in the future (beyond the clock skew) or before the earliest day."""
    if arrested_at > now + CLOCK_SKEW:
        raise InvalidInput(
            f"arrested_at {arrested_at.isoformat()} is in the future (server time "
            f"{now.isoformat(timespec='seconds')}); check the booking terminal's clock",
            field="arrested_at",
        )
    # Compared as instants (no time-zone conversion of the value, which overflows near year 1).
    if arrested_at < datetime.combine(earliest, time(), SITE_TZ):
        raise InvalidInput(
            f"arrested_at {arrested_at.isoformat()} is before {earliest.isoformat()}, the "
            "earliest arrest date this site accepts; check the year",
            field="arrested_at",
        )


def check_arrest_dates(
    data: ArrestCreate, now: datetime, *, earliest: date = EARLIEST_ARREST
) -> None:
    """Refuse an arrest outside the sane window and a person born after the arrest."""
    check_arrest_time(data.arrested_at, now, earliest=earliest)
    arrest_day = local_date(data.arrested_at)
    for index, involvement in enumerate(data.involvements):
        person = involvement.person
        if person is not None and person.birth_date is not None and person.birth_date > arrest_day:
            raise InvalidInput(
                f"birth_date {person.birth_date} is after the arrest date {arrest_day}",
                field=f"involvements.{index}.person.birth_date",
            )


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
    """Load and lock an arrest; a sealed one is missing unless the actor may see sealed records,
    and a canary (oversight) is missing to everyone."""
    arrest = repo.get_arrest(session, arrest_id, for_update=True)
    if arrest is None or (arrest.is_sealed and not actor.can(Permission.SEALED_READ)):
        raise arrest_not_found(arrest_id)
    if access_repo.is_canary_arrest(session, arrest_id):
        raise arrest_not_found(arrest_id)
    return arrest


def arrest_not_found(arrest_id: int) -> NotFound:
    """The one message for an arrest that does not exist or may not be seen."""
    return NotFound(f"arrest {arrest_id} does not exist", field="arrest_id")


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
        raise NotFound(f"person {person_id} does not exist", field=field)
    return person


def internal_read_policy(actor: Principal) -> ReadPolicy:
    """The access layer's policy for an internal actor (sealed records only with sealed access)."""
    return internal_policy(sealed_access=actor.can(Permission.SEALED_READ))


def person_visible(session: Session, actor: Principal, person_id: int) -> bool:
    """Whether the actor may see the person, by the enforcement point's own rule and SQL."""
    return access_repo.visible_person(session, internal_read_policy(actor), person_id) is not None


# ---- snapshots and versions -----------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


PERSON_FIELDS = (
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
)


def person_snapshot(person: Person) -> dict[str, Any]:
    """The full person record as a JSON document."""
    values = {name: getattr(person, name) for name in PERSON_FIELDS}
    return person_document(values, [(a.family_name, a.given_name) for a in person.aliases])


def person_document(values: dict[str, Any], aliases: list[tuple[str, str]]) -> dict[str, Any]:
    """A person snapshot from its column values and its aliases (family, given)."""
    doc = {name: values[name] for name in PERSON_FIELDS}
    doc["birth_date"] = _plain(doc["birth_date"])  # the one column that is not JSON as it is
    doc["aliases"] = [{"family_name": f, "given_name": g} for f, g in aliases]
    return doc


ARREST_FIELDS = (
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
)


def involvement_document(
    involvement_id: int, person_id: int, role: str, juvenile: bool | None
) -> Any:
    """One involvement as an arrest snapshot lists it."""
    return {"id": involvement_id, "person_id": person_id, "role": role, "juvenile": juvenile}


def charge_document(
    stage: str,
    revision: int,
    sequence: int,
    statute: str,
    description: str,
    grade: str,
    counts: int,
) -> Any:
    """One charge as an arrest snapshot lists it."""
    return {
        "stage": stage,
        "revision": revision,
        "sequence": sequence,
        "statute": statute,
        "description": description,
        "grade": grade,
        "counts": counts,
    }


def new_arrest_document(
    values: dict[str, Any], involvements: list[Any], charges: list[Any]
) -> dict[str, Any]:
    """Version 1 of an arrest from its column values, involvements (by id) and charges (by
    stage, revision, sequence): what arrest_snapshot gives for it, without loading anything."""
    doc = {name: values.get(name) for name in ARREST_FIELDS}
    for name in ("arrested_at", "sealed_at", "expunged_at"):  # the columns not JSON as they are
        doc[name] = _plain(doc[name])
    doc["involvements"] = involvements
    doc["charges"] = charges
    doc["charging_decisions"] = []
    doc["bail_recommendations"] = []
    doc["arraignment"] = None
    doc["custody"] = None
    return doc


def arrest_snapshot(arrest: Arrest) -> dict[str, Any]:
    """The full arrest record, with everything in it, as a JSON document."""
    doc = {name: _plain(getattr(arrest, name)) for name in ARREST_FIELDS}
    doc["involvements"] = [
        involvement_document(i.id, i.person_id, i.role.value, i.juvenile)
        for i in sorted(arrest.involvements, key=lambda i: i.id)
    ]
    charges = sorted(arrest.charges, key=lambda c: (c.stage.value, c.revision, c.sequence))
    doc["charges"] = [
        charge_document(
            c.stage.value, c.revision, c.sequence, c.statute, c.description, c.grade.value, c.counts
        )
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
    event = write_event(
        actor, action, arrest_ids=arrest_ids, person_ids=person_ids, kind=kind, **params
    )
    append(session, event)


def write_event(
    actor: Principal,
    action: str,
    *,
    arrest_ids: list[int] | None = None,
    person_ids: list[int] | None = None,
    kind: AuditKind = AuditKind.WRITE,
    **params: Any,
) -> AuditEvent:
    """The audit event of a write by ``actor`` (audit_write appends it; batches append many)."""
    return AuditEvent(
        kind=kind,
        action=action,
        user_id=actor.user_id,
        username=actor.username,
        agency_id=actor.agency_id,
        source_ip=actor.source_ip,
        params={k: _plain(v) for k, v in params.items()},
        person_ids=list(person_ids or []),
        arrest_ids=list(arrest_ids or []),
    )
