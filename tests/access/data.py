"""Direct row builders for read-path tests (the write path has its own tests)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import count

from sqlalchemy.orm import Session

from openpars.records.enums import ArrestState, ArrestType, ChargeStage, Grade, InvolvementRole
from openpars.records.models import Arrest, Charge, Involvement, Person
from openpars.records.validation import name_key

_seq = count(1)


def person(
    session: Session,
    family: str,
    given: str,
    *,
    birth_date: date | None = date(1990, 5, 17),
    sid: str | None = None,
    place_of_birth: str | None = "Philadelphia, PA",
    citizenship: str | None = "US",
) -> Person:
    """A person row."""
    row = Person(
        family_name=family,
        given_name=given,
        name_key=name_key(family, given),
        birth_date=birth_date,
        sid=sid,
        place_of_birth=place_of_birth,
        citizenship=citizenship,
        phone="215-555-0134",
        address="1301 Filbert St, Philadelphia, PA",
    )
    session.add(row)
    session.flush()
    return row


def arrest(
    session: Session,
    *,
    agency_id: int,
    people: list[tuple[Person, InvolvementRole]],
    state: ArrestState = ArrestState.ARRAIGNED,
    grades: tuple[Grade, ...] = (Grade.M2,),
    sealed: bool = False,
    juvenile: frozenset[int] = frozenset(),
    unknown_age: frozenset[int] = frozenset(),
    arrested_at: datetime = datetime(2025, 3, 4, 22, 15, tzinfo=UTC),
    otn: str | None = None,
    statutes: tuple[str, ...] | None = None,
    approved: tuple[tuple[tuple[Grade, str], ...], ...] = (),
) -> Arrest:
    """An arrest row with involvements, recommended charges (``grades``, each with the statute
    at the same place in ``statutes``, simple assault by default) and approved revisions, each
    a tuple of (grade, statute) lines; ``unknown_age`` persons have no juvenile flag (NULL)."""
    n = next(_seq)
    row = Arrest(
        otn=otn or f"N{n:07d}-1",
        incident_number=f"2025-{n:06d}",
        ori="PAPEP0000",
        arresting_officer="P/O Rivera #4411",
        arrested_at=arrested_at,
        arrest_type=ArrestType.ON_VIEW,
        state=state,
        source_agency_id=agency_id,
        report_id=f"R-{n}",
        narrative="Complainant reported an assault on the 1500 block of Market St.",
        sealed_at=arrested_at if sealed else None,
    )
    session.add(row)
    session.flush()
    for p, role in people:
        flag = None if p.id in unknown_age else p.id in juvenile
        session.add(Involvement(arrest_id=row.id, person_id=p.id, role=role, juvenile=flag))
    laws = statutes or ("18 § 2701",) * len(grades)
    revisions = [(ChargeStage.RECOMMENDED, 1, tuple(zip(grades, laws, strict=True)))]
    revisions += [(ChargeStage.APPROVED, n, lines) for n, lines in enumerate(approved, start=1)]
    for stage, revision, lines in revisions:
        for i, (grade, statute) in enumerate(lines, start=1):
            session.add(
                Charge(
                    arrest_id=row.id,
                    stage=stage,
                    revision=revision,
                    sequence=i,
                    statute=statute,
                    description="Simple assault",
                    grade=grade,
                )
            )
    session.flush()
    session.expire(row)
    return row
