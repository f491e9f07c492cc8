"""The arrest workflow: charging decision, bail recommendation, arraignment, release/commitment.

``entered -> charged | declined``, ``charged -> arraigned``, ``arraigned -> released |
committed``. Each step belongs to one agency kind; a step out of order is a 409 that names the
current state and what may come next.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from openpars.db import utcnow
from openpars.errors import Conflict, InvalidInput
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission
from openpars.records import repository as repo
from openpars.records.enums import (
    ArrestState,
    ChangeKind,
    ChargeStage,
    ChargingOutcome,
    CustodyOutcome,
)
from openpars.records.identifiers import arrest_holding, lock_identifiers
from openpars.records.models import (
    Arraignment,
    Arrest,
    BailRecommendation,
    Charge,
    ChargingDecision,
    CustodyEvent,
)
from openpars.records.schemas import (
    ArraignmentCreate,
    BailRecommendationCreate,
    ChargeIn,
    ChargingDecisionCreate,
    CustodyCreate,
)
from openpars.records.versions import (
    CLOCK_SKEW,
    arrest_for_write,
    audit_write,
    local_date,
    new_version,
    require_owner,
)

NEXT_STEPS: dict[ArrestState, tuple[str, ...]] = {
    ArrestState.ENTERED: ("charging-decision (DA)",),
    ArrestState.CHARGED: (
        "charging-decision (DA, a new revision)",
        "bail-recommendation (pretrial services)",
        "arraignment (court)",
    ),
    ArrestState.DECLINED: (),
    ArrestState.ARRAIGNED: ("custody (court)",),
    ArrestState.RELEASED: (),
    ArrestState.COMMITTED: (),
}


def out_of_order(arrest: Arrest, step: str) -> Conflict:
    """The 409 for a step the arrest's current state does not allow."""
    allowed = NEXT_STEPS[arrest.state]
    after = "allowed next: " + ", ".join(allowed) if allowed else "its workflow has ended, no step"
    return Conflict(
        f"{step} is not possible now: arrest {arrest.id} is in state '{arrest.state.value}'; "
        f"{after}",
        code="out_of_order",
        field="state",
        details={"state": arrest.state.value, "allowed_next": list(allowed)},
    )


def stale(arrest: Arrest, seen: int, step: str) -> Conflict:
    """The 409 for a step decided on a version of the arrest that is no longer current (a
    stale form): the one refusal of the charging decision and the court steps alike."""
    return Conflict(
        f"{step} was refused: arrest {arrest.id} has changed since you saw it (it was version "
        f"{seen}, it is now version {arrest.version}, state '{arrest.state.value}'; it changed "
        "since this form was shown); nothing was saved. Open the arrest again, check what "
        "changed, and decide on what it is now",
        code="version_mismatch",
        field="version",
        details={"seen": seen, "current": arrest.version, "state": arrest.state.value},
    )


def check_version(arrest: Arrest, expected: int | None, step: str) -> None:
    """Refuse a step taken on a form shown before the arrest last changed (``stale``).

    ``expected`` is the version the form was shown with; None (the API) skips the check. The
    arrest is already locked, so nobody can change it between this check and the write.
    """
    if expected is not None and expected != arrest.version:
        raise stale(arrest, expected, step)


def _not_in_future(moment: datetime, now: datetime, field: str) -> None:
    if moment > now + CLOCK_SKEW:
        raise InvalidInput(
            f"{field} {moment.isoformat()} is in the future (server time "
            f"{now.isoformat(timespec='seconds')})",
            field=field,
        )


def _same_lines(given: list[ChargeIn], stored: list[Charge]) -> bool:
    def line(c: ChargeIn | Charge) -> tuple[str, str, str, int]:
        return (c.statute, c.description, c.grade.value, c.counts)

    return [line(c) for c in given] == [line(c) for c in stored]


def decide_charges(
    session: Session,
    *,
    actor: Principal,
    arrest_id: int,
    data: ChargingDecisionCreate,
    now: datetime | None = None,
) -> Arrest:
    """Record the DA's decision: approved or modified charges become a new APPROVED revision."""
    require_owner(actor, Permission.CHARGE_DECIDE, AgencyKind.DA, "a charging decision")
    moment = now or utcnow()
    arrest = arrest_for_write(session, actor, arrest_id)
    if data.version is not None and data.version != arrest.version:
        raise stale(arrest, data.version, "a charging decision")
    if arrest.state not in (ArrestState.ENTERED, ArrestState.CHARGED):
        raise out_of_order(arrest, "a charging decision")
    recommended_revision = repo.latest_revision(session, arrest.id, ChargeStage.RECOMMENDED)
    recommended = sorted(
        (
            c
            for c in arrest.charges
            if c.stage is ChargeStage.RECOMMENDED and c.revision == recommended_revision
        ),
        key=lambda c: c.sequence,
    )
    lines: list[ChargeIn | Charge] = []
    if data.outcome is ChargingOutcome.APPROVED:
        if data.charges and not _same_lines(data.charges, recommended):
            raise InvalidInput(
                "an 'approved' decision approves the recommended charges as they are; send "
                "outcome 'modified' to approve different charges",
                field="charges",
            )
        lines = list(recommended)
    elif data.outcome is ChargingOutcome.MODIFIED:
        lines = list(data.charges or [])
    revision = repo.latest_revision(session, arrest.id, ChargeStage.APPROVED) + 1
    for sequence, line in enumerate(lines, start=1):
        arrest.charges.append(
            Charge(
                stage=ChargeStage.APPROVED,
                revision=revision,
                sequence=sequence,
                statute=line.statute,
                description=line.description,
                grade=line.grade,
                counts=line.counts,
                created_at=moment,
                created_by_id=actor.user_id,
            )
        )
    arrest.charging_decisions.append(
        ChargingDecision(
            outcome=data.outcome, reason=data.reason, decided_at=moment, decided_by_id=actor.user_id
        )
    )
    declined = data.outcome is ChargingOutcome.DECLINED
    arrest.state = ArrestState.DECLINED if declined else ArrestState.CHARGED
    new_version(
        session, arrest, actor=actor, change=ChangeKind.CHARGING, reason=data.reason, at=moment
    )
    audit_write(
        session,
        actor,
        "arrest.charging_decision",
        arrest_ids=[arrest.id],
        outcome=data.outcome.value,
        revision=None if declined else revision,
        state=arrest.state.value,
    )
    return arrest


def recommend_bail(
    session: Session,
    *,
    actor: Principal,
    arrest_id: int,
    data: BailRecommendationCreate,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> Arrest:
    """Record pretrial services' bail recommendation on a charged arrest."""
    require_owner(actor, Permission.BAIL_RECOMMEND, AgencyKind.PRETRIAL, "a bail recommendation")
    moment = now or utcnow()
    arrest = arrest_for_write(session, actor, arrest_id)
    check_version(arrest, expected_version, "a bail recommendation")
    if arrest.state is not ArrestState.CHARGED:
        raise out_of_order(arrest, "a bail recommendation")
    arrest.bail_recommendations.append(
        BailRecommendation(
            bail_type=data.bail_type,
            amount=data.amount,
            conditions=data.conditions,
            recommended_at=moment,
            recommended_by_id=actor.user_id,
        )
    )
    new_version(
        session, arrest, actor=actor, change=ChangeKind.BAIL_RECOMMENDATION, reason=None, at=moment
    )
    audit_write(
        session,
        actor,
        "arrest.bail_recommendation",
        arrest_ids=[arrest.id],
        bail_type=data.bail_type.value,
    )
    return arrest


def arraign(
    session: Session,
    *,
    actor: Principal,
    arrest_id: int,
    data: ArraignmentCreate,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> Arrest:
    """Record the preliminary arraignment: bail, hearing date and the Municipal Court docket."""
    require_owner(actor, Permission.ARRAIGN, AgencyKind.COURT, "a preliminary arraignment")
    moment = now or utcnow()
    lock_identifiers(session)  # the docket number; before the arrest's row lock
    arrest = arrest_for_write(session, actor, arrest_id)
    check_version(arrest, expected_version, "a preliminary arraignment")
    if arrest.state is not ArrestState.CHARGED:
        raise out_of_order(arrest, "an arraignment")
    if data.arraigned_at < arrest.arrested_at:
        raise InvalidInput(
            f"arraigned_at {data.arraigned_at.isoformat()} is before the arrest "
            f"({arrest.arrested_at.isoformat()})",
            field="arraigned_at",
        )
    _not_in_future(data.arraigned_at, moment, "arraigned_at")
    hearing = data.preliminary_hearing_date
    if hearing is not None and hearing < local_date(data.arraigned_at):
        raise InvalidInput(
            f"preliminary_hearing_date {hearing} is before the arraignment",
            field="preliminary_hearing_date",
        )
    # Only an arrest the actor sees can hold the docket number: a sealed one is absent.
    if arrest_holding(session, actor, docket_number=data.docket_number) is not None:
        raise Conflict(
            f"docket number {data.docket_number} is already used by another arrest",
            code="docket_taken",
            field="docket_number",
        )
    arrest.arraignment = Arraignment(
        arraigned_at=data.arraigned_at,
        magistrate=data.magistrate,
        bail_type=data.bail_type,
        bail_amount=data.bail_amount,
        conditions=data.conditions,
        preliminary_hearing_date=hearing,
        docket_number=data.docket_number,
        recorded_by_id=actor.user_id,
    )
    arrest.docket_number = data.docket_number
    arrest.state = ArrestState.ARRAIGNED
    new_version(session, arrest, actor=actor, change=ChangeKind.ARRAIGNMENT, reason=None, at=moment)
    audit_write(
        session,
        actor,
        "arrest.arraignment",
        arrest_ids=[arrest.id],
        docket_number=data.docket_number,
        bail_type=data.bail_type.value,
    )
    return arrest


def record_custody(
    session: Session,
    *,
    actor: Principal,
    arrest_id: int,
    data: CustodyCreate,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> Arrest:
    """Record release or commitment after the arraignment; this ends the workflow."""
    require_owner(actor, Permission.RELEASE, AgencyKind.COURT, "a release or commitment")
    moment = now or utcnow()
    arrest = arrest_for_write(session, actor, arrest_id)
    check_version(arrest, expected_version, "a release or commitment")
    if arrest.state is not ArrestState.ARRAIGNED or arrest.arraignment is None:
        raise out_of_order(arrest, "a release or commitment")
    if data.at < arrest.arraignment.arraigned_at:
        raise InvalidInput(
            f"at {data.at.isoformat()} is before the arraignment "
            f"({arrest.arraignment.arraigned_at.isoformat()})",
            field="at",
        )
    _not_in_future(data.at, moment, "at")
    arrest.custody = CustodyEvent(
        outcome=data.outcome, at=data.at, facility=data.facility, recorded_by_id=actor.user_id
    )
    released = data.outcome is CustodyOutcome.RELEASED
    arrest.state = ArrestState.RELEASED if released else ArrestState.COMMITTED
    new_version(session, arrest, actor=actor, change=ChangeKind.CUSTODY, reason=None, at=moment)
    audit_write(
        session, actor, "arrest.custody", arrest_ids=[arrest.id], outcome=data.outcome.value
    )
    return arrest
