"""REST endpoints for agreements, the kill switch and the site floor.

Activation, renewal, amendment and termination are not offered here: they happen only through a
stakeholder vote (the governance feature calls ``lifecycle.apply_decision``).
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from openpars.agreements import floor as floors
from openpars.agreements import killswitch, lifecycle, service
from openpars.agreements import repository as repo
from openpars.agreements.models import AgreementStatus
from openpars.agreements.rules import READ_PERMISSIONS as READERS
from openpars.agreements.schemas import (
    ActInput,
    AgreementCreate,
    AgreementRead,
    AgreementUpdate,
    EventRead,
    FloorRead,
    FloorUpdate,
    SuspensionCreate,
    SuspensionRead,
)
from openpars.db import utcnow
from openpars.errors import NotFound
from openpars.governance.decisions import void_stale_now
from openpars.identity.roles import Permission
from openpars.pages import Page, PageSize, page_of
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx, needs

router = APIRouter(tags=["agreements"])


@router.post(
    "/agreements",
    response_model=AgreementRead,
    status_code=201,
    dependencies=[needs(Permission.AGREEMENT_MANAGE)],
)
def create_agreement(body: AgreementCreate, ctx: Ctx) -> AgreementRead:
    """Create an agreement as a draft (version 1)."""
    with ctx.unit() as (session, principal):
        agreement = service.create_agreement(session, actor=principal, data=body)
        result = service.view(session, agreement, at=utcnow(), versions=True)
    return result


@router.get("/agreements", response_model=Page[AgreementRead], dependencies=[needs(*READERS)])
def list_agreements(
    ctx: Ctx,
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=500),
    status: AgreementStatus | None = Query(None, description="stored status"),
    grantee_agency_id: RowId | None = None,
) -> Page[AgreementRead]:
    """Agreements, paginated, optionally by stored status or grantee."""
    with ctx.unit() as (session, principal):
        page = service.list_agreements(
            session,
            actor=principal,
            offset=offset,
            limit=limit,
            status=status,
            grantee_agency_id=grantee_agency_id,
        )
    return page


@router.get(
    "/agreements/{agreement_id}", response_model=AgreementRead, dependencies=[needs(*READERS)]
)
def get_agreement(agreement_id: RowId, ctx: Ctx) -> AgreementRead:
    """One agreement with every version."""
    with ctx.unit() as (session, principal):
        result = service.show_agreement(session, actor=principal, agreement_id=agreement_id)
    return result


@router.put(
    "/agreements/{agreement_id}",
    response_model=AgreementRead,
    dependencies=[needs(Permission.AGREEMENT_MANAGE)],
)
def update_agreement(agreement_id: RowId, body: AgreementUpdate, ctx: Ctx) -> AgreementRead:
    """Write a new version (old versions are kept; votes on them become void)."""
    with ctx.unit() as (session, principal):
        agreement = service.update_agreement(
            session,
            actor=principal,
            agreement_id=agreement_id,
            data=body.document(),
            reason=body.reason,
        )
        result = service.view(session, agreement, at=utcnow(), versions=True)
    # Proposals on the replaced version are voided in a transaction of their own, at once, so
    # the record never shows them open on a version that is no longer current.
    with ctx.unit() as (session, principal):
        void_stale_now(session, agreement_id=agreement_id, actor=principal)
    return result


@router.post(
    "/agreements/{agreement_id}/propose",
    response_model=AgreementRead,
    dependencies=[needs(Permission.AGREEMENT_MANAGE)],
)
def propose(agreement_id: RowId, ctx: Ctx, body: ActInput | None = None) -> AgreementRead:
    """Check a draft against the floor and submit it for the stakeholders' vote."""
    with ctx.unit() as (session, principal):
        agreement = lifecycle.propose(
            session,
            actor=principal,
            agreement_id=agreement_id,
            reason=body.reason if body else "proposed for approval",
        )
        result = service.view(session, agreement, at=utcnow(), versions=False)
    return result


@router.get(
    "/agreements/{agreement_id}/timeline",
    response_model=Page[EventRead],
    dependencies=[needs(*READERS)],
)
def timeline(
    agreement_id: RowId, ctx: Ctx, offset: Offset = 0, limit: PageSize = 50
) -> Page[EventRead]:
    """Every version, status change and kill-switch act, oldest first, a page at a time."""
    with ctx.unit() as (session, principal):
        events = service.timeline(session, actor=principal, agreement_id=agreement_id)
    return page_of(events, offset=offset, limit=limit)


@router.get(
    "/agreements/{agreement_id}/suspensions",
    response_model=Page[SuspensionRead],
    dependencies=[needs(*READERS)],
)
def list_suspensions(
    agreement_id: RowId, ctx: Ctx, offset: Offset = 0, limit: PageSize = 50
) -> Page[SuspensionRead]:
    """Kill-switch acts under an agreement and their resumptions, oldest first."""
    with ctx.unit() as (session, principal):
        rows = killswitch.list_suspensions(session, actor=principal, agreement_id=agreement_id)
    return page_of(rows, offset=offset, limit=limit)


@router.post(
    "/agreements/{agreement_id}/suspensions",
    response_model=SuspensionRead,
    status_code=201,
    dependencies=[needs(Permission.AGREEMENT_SUSPEND)],
)
def suspend(agreement_id: RowId, body: SuspensionCreate, ctx: Ctx) -> SuspensionRead:
    """Kill switch: cut off the agreement, one sub-unit or one account, from now."""
    with ctx.unit() as (session, principal):
        row = killswitch.suspend(
            session,
            actor=principal,
            agreement_id=agreement_id,
            target=body.target,
            target_id=body.target_id,
            reason=body.reason,
        )
        result = killswitch.suspension_read(row, None)
    return result


@router.post(
    "/agreements/{agreement_id}/suspensions/{suspension_id}/resume",
    response_model=SuspensionRead,
    dependencies=[needs(Permission.AGREEMENT_SUSPEND)],
)
def resume(agreement_id: RowId, suspension_id: RowId, body: ActInput, ctx: Ctx) -> SuspensionRead:
    """Lift one kill-switch suspension, from now (a separate act, with its reason)."""
    with ctx.unit() as (session, principal):
        suspension = repo.get_suspension(session, suspension_id)
        if suspension is None or suspension.agreement_id != agreement_id:
            raise NotFound(
                f"agreement {agreement_id} has no suspension {suspension_id}",
                field="suspension_id",
            )
        row = killswitch.resume(
            session, actor=principal, suspension_id=suspension_id, reason=body.reason
        )
        result = killswitch.suspension_read(suspension, row)
    return result


@router.get("/site/floor", response_model=FloorRead, tags=["site"], dependencies=[needs(*READERS)])
def get_floor(ctx: Ctx) -> FloorRead:
    """The site floor in force: what no external agreement may grant."""
    with ctx.unit() as (session, principal):
        result = floors.show_floor(session, actor=principal)
    return result


@router.put(
    "/site/floor",
    response_model=FloorRead,
    tags=["site"],
    dependencies=[needs(Permission.AGREEMENT_MANAGE)],
)
def put_floor(body: FloorUpdate, ctx: Ctx) -> FloorRead:
    """Tighten the site floor at once; a loosening is refused (it needs the board's quorum)."""
    with ctx.unit() as (session, principal):
        principal.require(Permission.AGREEMENT_MANAGE)
        floor = floors.parse_floor(body.floor)
        floors.set_floor(session, actor=principal, floor=floor, reason=body.reason)
        result = floors.floor_read(session)
    return result
