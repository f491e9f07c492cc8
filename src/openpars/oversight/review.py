"""The review queue (CJIS audit review): flags grouped into cases, assigned, noted, closed.

Only holders of the oversight role see (``oversight:read``) or act (``oversight:review``);
every read and act leaves one audit entry. A case gathers the flags of one detector about one
subject (user and agency) while it is open; a flag raised after the case closed opens a new
one. The case row holds the current state; ``oversight_case_events`` is its append-only
history (the database refuses UPDATE and DELETE there), so notes and findings are never
edited, only added. A reviewer never acts on a case about their own account.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openpars.audit.events import AuditKind, event_by
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput, NotFound
from openpars.identity import repository as identity_repo
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission, Role
from openpars.oversight.detection import DetectionPeriod, Detector, Thresholds
from openpars.oversight.flags import DETECTORS
from openpars.oversight.flags import run_detectors as run_all
from openpars.oversight.models import (
    Case,
    CaseAct,
    CaseEvent,
    CaseState,
    Finding,
    Flag,
    FlagEntry,
)
from openpars.oversight.schemas import CaseDetail, CaseEventRead, CaseRead, FlagRead


def _audit(session: Session, actor: Principal, action: str, **params: Any) -> None:
    append(session, event_by(actor, kind=AuditKind.OVERSIGHT, action=action, params=params))


def group_flags(session: Session, *, now: datetime | None = None) -> int:
    """Put every flag not yet in a case into the open case of its detector and subject (a new
    one if none is open); how many flags were grouped."""
    at = now or utcnow()
    # Locked (PostgreSQL): two reviewers reading the queue at once group each flag once.
    loose = session.scalars(
        select(Flag).where(Flag.case_id.is_(None)).order_by(Flag.id).with_for_update()
    ).all()
    opened: dict[tuple[str, int | None, int | None], Case] = {}
    for flag in loose:
        key = (flag.detector, flag.subject_user_id, flag.subject_agency_id)
        case = opened.get(key) or _open_case_of(session, *key)
        if case is None:
            case = Case(
                detector=flag.detector,
                subject_user_id=flag.subject_user_id,
                subject_agency_id=flag.subject_agency_id,
                state=CaseState.OPEN,
                opened_at=at,
            )
            session.add(case)
            session.flush()
            session.add(CaseEvent(case_id=case.id, at=at, act=CaseAct.OPENED))
        opened[key] = case
        flag.case_id = case.id
        session.add(CaseEvent(case_id=case.id, at=at, act=CaseAct.FLAG_ADDED, flag_id=flag.id))
    session.flush()
    return len(loose)


def run_detectors(
    session: Session,
    *,
    actor: Principal,
    detectors: Sequence[Detector] = DETECTORS,
    period: DetectionPeriod | None = None,
    limits: Thresholds | None = None,
    reader: Session | None = None,
) -> list[int]:
    """Run the detectors over the period (the whole store without one), store new findings and
    group them into cases; audited. The ids of the new flags (none when run again).

    ``reader``: the detectors read through it (DuckDB attached to the store, ``oversight.duck``:
    the facts refreshed and committed before); the flags, cases and audit entry are written
    here, in ``session``'s transaction, as without it."""
    actor.require(Permission.OVERSIGHT_REVIEW)
    created = run_all(session, detectors, period, limits, reader=reader)
    group_flags(session)
    bounds = {} if period is None else {"from": f"{period.start:%Y-%m-%d}", "to": _last_day(period)}
    if reader is not None:
        bounds["engine"] = reader.get_bind().dialect.name
    _audit(session, actor, "oversight.detectors.run", new_flags=created, **bounds)
    return created


def _last_day(period: DetectionPeriod) -> str:
    return f"{period.end - timedelta(days=1):%Y-%m-%d}"


def detection_period(
    start: date | None, end: date | None, *, today: date | None = None
) -> DetectionPeriod | None:
    """The period of a detection request (whole UTC days, both included), or InvalidInput
    naming the argument at fault. Neither day: the whole store."""
    if start is None and end is None:
        return None
    current = today or datetime.now(UTC).date()
    first = start or date(1970, 1, 1)
    last = end or current
    if first > current:
        raise InvalidInput(
            f"from {first} is in the future (today is {current} UTC): nothing can have "
            "happened yet; give a period that has begun",
            field="from",
            code="period_in_future",
        )
    if last < first:
        raise InvalidInput(
            f"to {last} is before from {first}: the period is empty; give to on or after from "
            "(both days are included)",
            field="to",
            code="empty_period",
        )
    return DetectionPeriod(
        start=datetime.combine(first, time(), UTC),
        end=datetime.combine(last + timedelta(days=1), time(), UTC),
    )


def _open_case_of(
    session: Session, detector: str, user_id: int | None, agency_id: int | None
) -> Case | None:
    stmt = (
        select(Case)
        .where(
            Case.detector == detector,
            Case.subject_user_id.is_(None) if user_id is None else Case.subject_user_id == user_id,
            Case.subject_agency_id.is_(None)
            if agency_id is None
            else Case.subject_agency_id == agency_id,
            Case.state != CaseState.CLOSED,
        )
        .order_by(Case.id)
        .limit(1)
    )
    return session.scalars(stmt).first()


def _flag_counts(session: Session, case_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    stmt = select(Flag.case_id, func.count()).where(Flag.case_id.in_(ids)).group_by(Flag.case_id)
    return {int(case_id or 0): int(n) for case_id, n in session.execute(stmt)}


def _entries_of(session: Session, flag_ids: list[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {f: [] for f in flag_ids}
    if flag_ids:
        stmt = (
            select(FlagEntry.flag_id, FlagEntry.entry_id)
            .where(FlagEntry.flag_id.in_(flag_ids))
            .order_by(FlagEntry.flag_id, FlagEntry.entry_id)
        )
        for flag_id, entry_id in session.execute(stmt):
            found[flag_id].append(int(entry_id))
    return found


def flag_reads(session: Session, flags: list[Flag]) -> list[FlagRead]:
    """Flags as the API shows them, each with its audit entries."""
    entries = _entries_of(session, [f.id for f in flags])
    return [
        FlagRead.model_validate(f).model_copy(update={"entry_ids": entries[f.id]}) for f in flags
    ]


def list_cases(
    session: Session, *, actor: Principal, state: CaseState | None, offset: int, limit: int
) -> tuple[list[CaseRead], int]:
    """A page of cases, newest first (optionally in one state); audited."""
    actor.require(Permission.OVERSIGHT_READ)
    group_flags(session)
    where = [] if state is None else [Case.state == state]
    total = int(session.scalar(select(func.count()).select_from(Case).where(*where)) or 0)
    rows = session.scalars(
        select(Case).where(*where).order_by(Case.id.desc()).offset(offset).limit(limit)
    ).all()
    counts = _flag_counts(session, (c.id for c in rows))
    items = [
        CaseRead.model_validate(c).model_copy(update={"flags": counts.get(c.id, 0)}) for c in rows
    ]
    state_value = None if state is None else state.value
    _audit(session, actor, "oversight.case.list", state=state_value, offset=offset, limit=limit)
    return items, total


def list_flags(
    session: Session, *, actor: Principal, detector: str | None, offset: int, limit: int
) -> tuple[list[FlagRead], int]:
    """A page of flags, newest first (optionally of one detector); audited."""
    actor.require(Permission.OVERSIGHT_READ)
    group_flags(session)
    where = [] if detector is None else [Flag.detector == detector]
    total = int(session.scalar(select(func.count()).select_from(Flag).where(*where)) or 0)
    rows = list(
        session.scalars(
            select(Flag).where(*where).order_by(Flag.id.desc()).offset(offset).limit(limit)
        ).all()
    )
    _audit(session, actor, "oversight.flag.list", detector=detector, offset=offset, limit=limit)
    return flag_reads(session, rows), total


def _case(session: Session, case_id: int, *, lock: bool = False) -> Case:
    case = session.get(Case, case_id, with_for_update=lock)
    if case is None:
        raise NotFound(f"no review case with id {case_id}", field="case_id")
    return case


def _detail(session: Session, case: Case) -> CaseDetail:
    flags = list(session.scalars(select(Flag).where(Flag.case_id == case.id).order_by(Flag.id)))
    events = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
    )
    return CaseDetail.model_validate(case).model_copy(
        update={
            "flags": len(flags),
            "flag_list": flag_reads(session, flags),
            "history": [CaseEventRead.model_validate(e) for e in events],
        }
    )


def show_case(session: Session, *, actor: Principal, case_id: int) -> CaseDetail:
    """One case with its flags and history; audited."""
    actor.require(Permission.OVERSIGHT_READ)
    group_flags(session)
    detail = _detail(session, _case(session, case_id))
    _audit(session, actor, "oversight.case.show", case_id=case_id)
    return detail


def _actionable(session: Session, actor: Principal, case_id: int, act: str) -> Case:
    """The case, locked, if this reviewer may act on it: open, and not about them."""
    actor.require(Permission.OVERSIGHT_REVIEW)
    case = _case(session, case_id, lock=True)
    if case.subject_user_id is not None and case.subject_user_id == actor.user_id:
        raise Forbidden(
            f"case {case_id} is about your own account: another reviewer must {act} it",
            code="own_case",
            field="case_id",
        )
    if case.state is CaseState.CLOSED and act != "note":
        raise Conflict(
            f"case {case_id} is closed (finding: {case.finding}); a closed case can only be noted",
            code="case_closed",
            field="case_id",
        )
    return case


def _reviewer(session: Session, username: str, case: Case) -> int:
    """The user id of an active oversight reviewer who is not the case's subject."""
    user = identity_repo.get_user_by_username(session, username)
    if user is None or not user.is_active or Role.OVERSIGHT not in user.roles:
        raise InvalidInput(
            f"'{username}' is not an active account with the oversight role; assign the case "
            "to an oversight reviewer",
            field="assignee",
        )
    if user.id == case.subject_user_id:
        raise InvalidInput(
            f"case {case.id} is about '{username}'s own account; assign it to another reviewer",
            field="assignee",
        )
    return user.id


def assign_case(session: Session, *, actor: Principal, case_id: int, assignee: str) -> CaseDetail:
    """Assign an open case to an oversight reviewer; audited."""
    case = _actionable(session, actor, case_id, "assign")
    user_id = _reviewer(session, assignee, case)
    at = utcnow()
    case.assignee_id = user_id
    case.state = CaseState.ASSIGNED
    session.add(
        CaseEvent(
            case_id=case.id, at=at, act=CaseAct.ASSIGNED, actor_id=actor.user_id,
            assignee_id=user_id,
        )
    )  # fmt: skip
    session.flush()
    _audit(session, actor, "oversight.case.assign", case_id=case_id, assignee_id=user_id)
    return _detail(session, case)


def note_case(session: Session, *, actor: Principal, case_id: int, note: str) -> CaseDetail:
    """Add a note to a case (open or closed); audited."""
    case = _actionable(session, actor, case_id, "note")
    session.add(
        CaseEvent(
            case_id=case.id, at=utcnow(), act=CaseAct.NOTED, actor_id=actor.user_id, note=note
        )
    )
    session.flush()
    _audit(session, actor, "oversight.case.note", case_id=case_id)
    return _detail(session, case)


def close_case(
    session: Session, *, actor: Principal, case_id: int, finding: Finding, note: str | None
) -> CaseDetail:
    """Close a case with a finding (and a last note); audited."""
    case = _actionable(session, actor, case_id, "close")
    at = utcnow()
    case.state = CaseState.CLOSED
    case.finding = finding
    case.closed_at = at
    session.add(
        CaseEvent(
            case_id=case.id, at=at, act=CaseAct.CLOSED, actor_id=actor.user_id,
            finding=finding, note=note,
        )
    )  # fmt: skip
    session.flush()
    _audit(session, actor, "oversight.case.close", case_id=case_id, finding=finding.value)
    return _detail(session, case)
