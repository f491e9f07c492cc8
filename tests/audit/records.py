"""Minimal arrest records for the audit tests: shredding needs a record and its court order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.identity.models import Agency
from openpars.identity.roles import AgencyKind
from openpars.records.enums import ArrestType, InvolvementRole
from openpars.records.models import Arrest, Involvement, Person


def _agency(session: Session) -> int:
    """The police agency the test arrests come from (created once per database)."""
    found = session.scalar(select(Agency.id).where(Agency.name == "Shred Test Police"))
    if found is not None:
        return int(found)
    agency = Agency(name="Shred Test Police", kind=AgencyKind.POLICE)
    session.add(agency)
    session.flush()
    return agency.id


def arrest(
    session: Session,
    arrest_id: int,
    *,
    order: str | None = None,
    expunged: bool = False,
    person_ids: Sequence[int] = (),
) -> Arrest:
    """An arrest with this id, sealed (or expunged) under `order` when one is given."""
    now = datetime.now(UTC)
    record = Arrest(
        id=arrest_id, ori="PAPEP0000", arresting_officer="Officer", arrested_at=now,
        arrest_type=ArrestType.ON_VIEW, source_agency_id=_agency(session),
        seal_order=order,
        sealed_at=now if order and not expunged else None,
        expunged_at=now if order and expunged else None,
    )  # fmt: skip
    session.add(record)
    for person_id in person_ids:
        if session.get(Person, person_id) is None:
            session.add(Person(id=person_id, family_name="Doe", given_name="J", name_key="doe j"))
        session.flush()
        session.add(
            Involvement(arrest_id=arrest_id, person_id=person_id, role=InvolvementRole.ARRESTEE)
        )
    session.flush()
    return record
