"""REST endpoints of governance: proposals, signed votes, the board, keys, the timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from openpars.db import utcnow
from openpars.errors import InvalidInput
from openpars.governance import (
    board,
    decisions,
    key_notices,
    keyring,
    reports,
    service,
    timeline,
    votes,
)
from openpars.governance.board import READ_PERMISSIONS as READERS
from openpars.governance.keyring import StakeholderKeys
from openpars.governance.models import ProposalStatus
from openpars.governance.schemas import (
    BoardRead,
    GovernanceEvent,
    KeyCreate,
    KeyNoticeRead,
    KeyRead,
    KeyRevoke,
    ProposalCreate,
    ProposalRead,
    RenewalNoticeRead,
    SignedVote,
    TimelineEntry,
    VoteExport,
    VoteReceipt,
)
from openpars.identity.roles import Permission
from openpars.oversight.explain import rules_from
from openpars.oversight.report import READERS as REPORT_READERS
from openpars.oversight.report import ReportFormat
from openpars.oversight.report_api import REPORT_RESPONSES as REPORT_CONTENT
from openpars.oversight.report_api import SHA_HEADER
from openpars.oversight.report_render import MEDIA_TYPES, render
from openpars.pages import Page, PageSize, Results, page_of
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx, needs

router = APIRouter(tags=["governance"])


@router.post(
    "/proposals",
    response_model=ProposalRead,
    status_code=201,
    dependencies=[needs(Permission.AGREEMENT_MANAGE, Permission.VOTE)],
)
def open_proposal(body: ProposalCreate, ctx: Ctx) -> ProposalRead:
    """Open a proposal on an agreement's current version or a new site floor (voters, managers)."""
    with ctx.unit() as (session, principal):
        proposal = service.open_proposal(
            session, actor=principal, data=body, rules=rules_from(ctx.settings),
            whatif_max_queries=ctx.settings.oversight_whatif_max_queries,
        )  # fmt: skip
        result = service.proposal_read(session, proposal, now=utcnow())
    return result


@router.get("/proposals", response_model=Page[ProposalRead], dependencies=[needs(*READERS)])
def list_proposals(
    ctx: Ctx,
    agreement_id: RowId | None = None,
    status: ProposalStatus | None = Query(None),
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=500),
) -> Page[ProposalRead]:
    """Proposals, newest first."""
    with ctx.unit() as (session, principal):
        result = service.list_proposals(
            session,
            actor=principal,
            agreement_id=agreement_id,
            status=status,
            offset=offset,
            limit=limit,
        )
    return result


@router.get("/proposals/{proposal_id}", response_model=ProposalRead, dependencies=[needs(*READERS)])
def show_proposal(proposal_id: RowId, ctx: Ctx) -> ProposalRead:
    """One proposal with its rule and standing tally."""
    with ctx.unit() as (session, principal):
        result = service.show_proposal(session, actor=principal, proposal_id=proposal_id)
    return result


@router.get(
    "/proposals/{proposal_id}/report",
    response_class=Response,
    responses=REPORT_CONTENT,  # type: ignore[arg-type]
    dependencies=[needs(*REPORT_READERS)],
)
def proposal_report(
    proposal_id: RowId,
    ctx: Ctx,
    output: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.HTML,
) -> Response:
    """The oversight report attached to a renewal proposal when it opened, exactly as every
    voter sees it; the SHA-256 header matches the proposal's ``report.sha256`` and its
    ``proposal.open`` audit entry (oversight and stakeholder voters only)."""
    with ctx.unit() as (session, principal):
        document, content, digest = reports.show_report(
            session, actor=principal, proposal_id=proposal_id, output=output
        )
    body = render(document, output, content=content)
    return Response(body, media_type=MEDIA_TYPES[output], headers={SHA_HEADER: digest})


@router.post(
    "/proposals/{proposal_id}/votes",
    response_model=VoteReceipt,
    status_code=201,
    dependencies=[needs(Permission.VOTE)],
)
def submit_vote(proposal_id: RowId, body: SignedVote, ctx: Ctx) -> VoteReceipt:
    """Submit a vote signed offline (``openpars vote sign``); a later vote replaces yours."""
    if body.proposal_id != proposal_id:
        raise InvalidInput(
            f"proposal_id: the vote is signed for proposal {body.proposal_id}, but was sent to "
            f"proposal {proposal_id}",
            field="proposal_id",
        )
    with ctx.unit() as (session, principal):
        result = votes.submit_vote(session, actor=principal, data=body)
    return result


@router.get(
    "/proposals/{proposal_id}/votes", response_model=VoteExport, dependencies=[needs(*READERS)]
)
def export_votes(proposal_id: RowId, ctx: Ctx) -> VoteExport:
    """Every cast and change with its signed bytes, signature and key: re-verifiable offline."""
    with ctx.unit() as (session, principal):
        result = votes.export_votes(session, actor=principal, proposal_id=proposal_id)
    return result


@router.get(
    "/agreements/{agreement_id}/governance-timeline",
    response_model=Page[TimelineEntry],
    dependencies=[needs(*READERS)],
)
def governance_timeline(
    agreement_id: RowId, ctx: Ctx, offset: Offset = 0, limit: PageSize = 50
) -> Page[TimelineEntry]:
    """Versions, proposals, votes with rationales, outcomes and status changes, oldest first."""
    with ctx.unit() as (session, principal):
        result = timeline.governance_timeline(session, actor=principal, agreement_id=agreement_id)
    return page_of(result, offset=offset, limit=limit)


@router.get(
    "/renewal-notices", response_model=Page[RenewalNoticeRead], dependencies=[needs(*READERS)]
)
def list_notices(
    ctx: Ctx,
    stakeholder_id: Annotated[
        RowId | None, Query(description="Agency id of one stakeholder.")
    ] = None,
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=500),
) -> Page[RenewalNoticeRead]:
    """Renewal reminders, newest first, each with the link to the agreement's evidence."""
    with ctx.unit() as (session, principal):
        result = timeline.list_notices(
            session, actor=principal, stakeholder_id=stakeholder_id, offset=offset, limit=limit
        )
    return result


@router.get("/key-notices", response_model=Page[KeyNoticeRead], dependencies=[needs(*READERS)])
def list_key_notices(
    ctx: Ctx,
    stakeholder_id: Annotated[
        RowId | None, Query(description="Agency id of the stakeholder told.")
    ] = None,
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=500),
) -> Page[KeyNoticeRead]:
    """Notices of other stakeholders' key registrations and revocations, newest first."""
    with ctx.unit() as (session, principal):
        result = key_notices.list_key_notices(
            session, actor=principal, stakeholder_id=stakeholder_id, offset=offset, limit=limit
        )
    return result


@router.get("/board", response_model=BoardRead, dependencies=[needs(*READERS)])
def show_board(ctx: Ctx) -> BoardRead:
    """The board in force: stakeholders, their voters and keys, the quorum."""
    with ctx.unit() as (session, principal):
        result = board.show_board(session, actor=principal)
    return result


@router.get("/keys", response_model=Page[KeyRead], dependencies=[needs(*READERS)])
def list_keys(
    ctx: Ctx, agency_id: RowId | None = None, offset: Offset = 0, limit: PageSize = 50
) -> Page[KeyRead]:
    """Registered stakeholder public keys, revoked ones included."""
    with ctx.unit() as (session, principal):
        result = board.list_keys(session, actor=principal, agency_id=agency_id)
    return page_of(result, offset=offset, limit=limit)


@router.get(
    "/stakeholders/{agency_id}/keys",
    response_model=StakeholderKeys,
    dependencies=[needs(*READERS)],
)
def publish_keys(agency_id: RowId, ctx: Ctx) -> StakeholderKeys:
    """A stakeholder's keys in the pinnable format ``openpars-stakeholder-keys/v1``."""
    with ctx.unit() as (session, principal):
        result = keyring.publish_keys(session, actor=principal, agency_id=agency_id)
    return result


@router.post(
    "/keys",
    response_model=KeyRead,
    status_code=201,
    dependencies=[needs(Permission.KEY_MANAGE)],
)
def register_key(body: KeyCreate, ctx: Ctx) -> KeyRead:
    """Register a stakeholder's Ed25519 public key (that stakeholder's own administrator)."""
    with ctx.unit() as (session, principal):
        key = board.register_key(session, actor=principal, data=body)
        result = KeyRead.model_validate(key)
    return result


@router.post(
    "/keys/{key_id}/revoke",
    response_model=KeyRead,
    dependencies=[needs(Permission.KEY_MANAGE)],
)
def revoke_key(key_id: RowId, body: KeyRevoke, ctx: Ctx) -> KeyRead:
    """Revoke a key: votes signed with it from now on are refused."""
    with ctx.unit() as (session, principal):
        key = board.revoke_key(session, actor=principal, key_id=key_id, reason=body.reason)
        result = KeyRead.model_validate(key)
    return result


@router.post(
    "/governance/tick",
    response_model=Results[GovernanceEvent],
    dependencies=[needs(Permission.AGREEMENT_MANAGE)],
)
def run_tick(ctx: Ctx) -> Results[GovernanceEvent]:
    """Run one governance step now (deadlines, effective instants, reminders); managers only.

    `items` lists everything this step did, in order."""
    with ctx.unit() as (session, principal):
        principal.require(Permission.AGREEMENT_MANAGE)
        result = decisions.tick(session, now=utcnow(), actor=principal)
    return Results[GovernanceEvent](items=result)
