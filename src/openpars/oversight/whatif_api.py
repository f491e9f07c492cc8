"""REST endpoints of the what-if replay: a proposal's, or a version given in the body.

A proposal's replay is open to the oversight role and stakeholder voters, a version given in
the body to the oversight role only; an outside agency's account gets 403
before any parameter is read. Each request leaves one audit entry (``oversight.what_if``); the
replayed reads leave none.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from openpars.agreements.schemas import AgreementDocument
from openpars.identity.roles import Permission
from openpars.oversight.whatif import (
    MONTHS_MAX,
    MONTHS_MIN,
    PERMISSIONS,
    WhatIfReport,
    of_document,
    recompute,
    replay_proposal,
    what_if,
)
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx, needs

router = APIRouter(tags=["oversight"])

Limit = Annotated[int | None, Query(ge=1, description="queries listed per page")]


@router.get(
    "/proposals/{proposal_id}/what-if",
    response_model=WhatIfReport,
    dependencies=[needs(*PERMISSIONS)],
)
def proposal_what_if(
    proposal_id: RowId, ctx: Ctx, offset: Offset = 0, limit: Limit = None
) -> WhatIfReport:
    """The replay kept with the proposal (computed when it opened, or when someone last asked
    to replay again; ``computed_at``, ``months``, ``since`` and ``until`` say which): the
    agreement's real external queries of the window, replayed under the version the proposal
    votes on. 404 ``no_replay`` or 409 ``replay_failed`` when none is there to read."""
    size = min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
    with ctx.unit() as (session, principal):
        return replay_proposal(
            session, actor=principal, proposal_id=proposal_id, offset=offset, limit=size,
            via="api",
        )  # fmt: skip


class ReplayAgain(BaseModel):
    """Replay a proposal's version again, over the last ``months``."""

    months: int = Field(6, ge=MONTHS_MIN, le=MONTHS_MAX)


@router.post(
    "/proposals/{proposal_id}/what-if",
    response_model=WhatIfReport,
    dependencies=[needs(*PERMISSIONS)],
)
def proposal_what_if_again(
    proposal_id: RowId, body: ReplayAgain, ctx: Ctx, limit: Limit = None
) -> WhatIfReport:
    """Replay again: a new replay of the proposal's version, kept with it and shown from now on
    (the earlier ones stay); answers its first page. A window holding more queries than the
    site replays at once: 422 ``too_many_queries`` naming months, nothing kept."""
    size = min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
    with ctx.unit() as (session, principal):
        recompute(
            session, actor=principal, proposal_id=proposal_id, months=body.months,
            max_queries=ctx.settings.oversight_whatif_max_queries, via="api",
        )  # fmt: skip
    with ctx.unit() as (session, principal):
        return replay_proposal(
            session, actor=principal, proposal_id=proposal_id, offset=0, limit=size, via="api"
        )


class WhatIfCreate(BaseModel):
    """A version not stored yet, replayed against an agreement's queries."""

    agreement_id: RowId
    version: AgreementDocument = Field(
        description="the proposed agreement document, as agreements update takes it"
    )
    months: int = Field(6, ge=MONTHS_MIN, le=MONTHS_MAX)


@router.post(
    "/oversight/what-if",
    response_model=WhatIfReport,
    dependencies=[needs(Permission.OVERSIGHT_READ)],
)
def version_what_if(
    body: WhatIfCreate, ctx: Ctx, offset: Offset = 0, limit: Limit = None
) -> WhatIfReport:
    """The same replay for a version given in the body (nothing is stored but the audit
    entry); the oversight role only."""
    size = min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
    with ctx.unit() as (session, principal):
        proposed = of_document(session, body.agreement_id, body.version, actor=principal)
        return what_if(
            session, actor=principal, proposed=proposed, months=body.months, offset=offset,
            limit=size, max_queries=ctx.settings.oversight_whatif_max_queries,
        )  # fmt: skip
