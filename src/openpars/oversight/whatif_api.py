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
    replay_proposal,
    what_if,
)
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx, needs

router = APIRouter(tags=["oversight"])

Months = Annotated[
    int,
    Query(
        ge=MONTHS_MIN, le=MONTHS_MAX, description="replay the external reads of this many months"
    ),
]
Limit = Annotated[int | None, Query(ge=1, description="queries listed per page")]


@router.get(
    "/proposals/{proposal_id}/what-if",
    response_model=WhatIfReport,
    dependencies=[needs(*PERMISSIONS)],
)
def proposal_what_if(
    proposal_id: RowId, ctx: Ctx, months: Months = 6, offset: Offset = 0, limit: Limit = None
) -> WhatIfReport:
    """The agreement's real external queries of the last months, replayed under the version
    the proposal votes on: persons and fields disclosed more or fewer, refusals, totals."""
    size = min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
    with ctx.unit() as (session, principal):
        return replay_proposal(
            session, actor=principal, proposal_id=proposal_id, months=months, offset=offset,
            limit=size, max_queries=ctx.settings.oversight_whatif_max_queries, via="api",
        )  # fmt: skip


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
