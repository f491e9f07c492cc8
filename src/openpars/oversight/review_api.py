"""REST endpoints of the review queue and the canaries: oversight reviewers only.

``oversight:read`` sees canaries, flags and cases; ``oversight:review`` plants canaries, runs
the detectors and acts on cases. No other role, and no outside agency (whose accounts can hold
no other role), reaches any of it: the edge answers 403 before a parameter is read. Every
request leaves one audit entry.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from openpars.identity.roles import Permission
from openpars.oversight import canaries, review
from openpars.oversight.detection import thresholds_from
from openpars.oversight.models import CaseState
from openpars.oversight.schemas import (
    CanaryCreate,
    CanaryRead,
    CaseAssign,
    CaseClose,
    CaseDetail,
    CaseNote,
    CaseRead,
    DetectionRequest,
    DetectionResult,
    DetectorRun,
    FlagRead,
    OversightPage,
)
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx, needs

router = APIRouter(prefix="/oversight", tags=["oversight"])

OffsetQuery = Annotated[Offset, Query(description="rows to skip")]
LimitQuery = Annotated[int | None, Query(ge=1, description="page size (site maximum applies)")]
CaseId = Annotated[RowId, Path(description="the review case")]
CanaryId = Annotated[RowId, Path(description="the pending canary")]
READ = needs(Permission.OVERSIGHT_READ)
REVIEW = needs(Permission.OVERSIGHT_REVIEW)


def _size(ctx: Ctx, limit: int | None) -> int:
    return min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)


@router.post(
    "/canaries",
    response_model=CanaryRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[REVIEW],
)
def plant_canary(body: CanaryCreate, ctx: Ctx) -> CanaryRead:
    """Plant a canary: a synthetic arrest of one new adult person, pending until a second
    reviewer confirms it (POST /oversight/canaries/{canary_id}/confirm).

    Once confirmed and entered through intake, internal readers never see it; an outside
    agency sees it like any record, and any read of it by an outside agency raises a flag.
    """
    with ctx.unit() as (session, principal):
        return canaries.plant_canary(session, actor=principal, data=body)


@router.post("/canaries/{canary_id}/confirm", response_model=CanaryRead, dependencies=[REVIEW])
def confirm_canary(canary_id: CanaryId, ctx: Ctx) -> CanaryRead:
    """Confirm a pending canary planted by another reviewer: its arrest is entered now.

    The reviewer who planted it cannot confirm it (403 second_reviewer_required), whatever
    session or token they use; a confirmed canary cannot be confirmed again (409).
    """
    with ctx.unit() as (session, principal):
        return canaries.confirm_canary(session, actor=principal, canary_id=canary_id)


@router.get("/canaries", response_model=OversightPage[CanaryRead], dependencies=[READ])
def list_canaries(
    ctx: Ctx, offset: OffsetQuery = 0, limit: LimitQuery = None
) -> OversightPage[CanaryRead]:
    """The planted canaries, each with the number of flags it raised."""
    size = _size(ctx, limit)
    with ctx.unit() as (session, principal):
        items, total = canaries.list_canaries(session, actor=principal, offset=offset, limit=size)
    return OversightPage(items=items, total=total, offset=offset, limit=size)


@router.get("/flags", response_model=OversightPage[FlagRead], dependencies=[READ])
def list_flags(
    ctx: Ctx,
    detector: Annotated[str | None, Query(max_length=50, description="one detector")] = None,
    offset: OffsetQuery = 0,
    limit: LimitQuery = None,
) -> OversightPage[FlagRead]:
    """Detector flags, newest first, each with the audit entries that fired it."""
    size = _size(ctx, limit)
    with ctx.unit() as (session, principal):
        items, total = review.list_flags(
            session, actor=principal, detector=detector, offset=offset, limit=size
        )
    return OversightPage(items=items, total=total, offset=offset, limit=size)


@router.post("/detectors/run", response_model=DetectorRun, dependencies=[REVIEW])
def run_detectors(ctx: Ctx) -> DetectorRun:
    """Run every detector over the store now; a finding already flagged is not flagged again."""
    with ctx.unit() as (session, principal):
        created = review.run_detectors(session, actor=principal)
    return DetectorRun(new_flags=created)


@router.post(
    "/detections",
    response_model=DetectionResult,
    response_model_by_alias=True,
    dependencies=[REVIEW],
)
def run_detections(ctx: Ctx, body: DetectionRequest | None = None) -> DetectionResult:
    """Run every detector over the given days (UTC, both included; none: the whole store).

    A daily run reads one day plus the history each baseline needs. Thresholds are the site's
    ``OPENPARS_OVERSIGHT_*`` settings. Running a period again stores nothing new."""
    request = body or DetectionRequest()
    period = review.detection_period(request.from_, request.to)
    with ctx.unit() as (session, principal):
        created = review.run_detectors(
            session,
            actor=principal,
            period=period,
            limits=thresholds_from(ctx.settings),
        )
    return DetectionResult.model_validate(
        {"from": request.from_, "to": request.to, "new_flags": created}
    )


@router.get("/cases", response_model=OversightPage[CaseRead], dependencies=[READ])
def list_cases(
    ctx: Ctx,
    state: Annotated[CaseState | None, Query(description="only cases in this state")] = None,
    offset: OffsetQuery = 0,
    limit: LimitQuery = None,
) -> OversightPage[CaseRead]:
    """Review cases, newest first."""
    size = _size(ctx, limit)
    with ctx.unit() as (session, principal):
        items, total = review.list_cases(
            session, actor=principal, state=state, offset=offset, limit=size
        )
    return OversightPage(items=items, total=total, offset=offset, limit=size)


@router.get("/cases/{case_id}", response_model=CaseDetail, dependencies=[READ])
def show_case(case_id: CaseId, ctx: Ctx) -> CaseDetail:
    """One case with its flags and its append-only history."""
    with ctx.unit() as (session, principal):
        return review.show_case(session, actor=principal, case_id=case_id)


@router.post("/cases/{case_id}/assign", response_model=CaseDetail, dependencies=[REVIEW])
def assign_case(case_id: CaseId, body: CaseAssign, ctx: Ctx) -> CaseDetail:
    """Assign a case to an oversight reviewer (not the account the case is about)."""
    with ctx.unit() as (session, principal):
        return review.assign_case(session, actor=principal, case_id=case_id, assignee=body.assignee)


@router.post("/cases/{case_id}/notes", response_model=CaseDetail, dependencies=[REVIEW])
def note_case(case_id: CaseId, body: CaseNote, ctx: Ctx) -> CaseDetail:
    """Add a note; notes are never edited, only added."""
    with ctx.unit() as (session, principal):
        return review.note_case(session, actor=principal, case_id=case_id, note=body.note)


@router.post("/cases/{case_id}/close", response_model=CaseDetail, dependencies=[REVIEW])
def close_case(case_id: CaseId, body: CaseClose, ctx: Ctx) -> CaseDetail:
    """Close a case with a finding: no_issue, training, sanction or referral_to_stakeholders."""
    with ctx.unit() as (session, principal):
        return review.close_case(
            session, actor=principal, case_id=case_id, finding=body.finding, note=body.note
        )
