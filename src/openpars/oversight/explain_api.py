"""REST endpoints of oversight's explanations: every external access to a person, explained.

Only holders of ``oversight:read`` reach them (the edge answers anyone else 403 before any
parameter is read); an outside agency never sees an explanation, not even of its own use.
Each request leaves one audit entry.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from openpars.identity.roles import Permission
from openpars.oversight.explain import (
    CoverageReport,
    Dimension,
    ExplanationPage,
    Period,
    coverage,
    explain,
    rules_from,
)
from openpars.ranges import RowId
from openpars.web.context import Ctx, needs

router = APIRouter(prefix="/oversight", tags=["oversight"])

Agreement = Annotated[RowId | None, Query(description="whose accesses: one agreement's")]
Agency = Annotated[RowId | None, Query(description="or one agency's")]
From = Annotated[date, Query(alias="from", description="first day (UTC), included")]
To = Annotated[date, Query(description="last day (UTC), included")]


@router.get(
    "/explanations",
    response_model=ExplanationPage,
    dependencies=[needs(Permission.OVERSIGHT_READ)],
)
def list_explanations(
    ctx: Ctx,
    start: From,
    to: To,
    agreement: Agreement = None,
    agency: Agency = None,
    unexplained_only: bool = False,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> ExplanationPage:
    """A page of (external access, person returned) pairs: the rule that explains each, or the
    one reason none does (docs/oversight.md)."""
    size = min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
    period = Period(start=start, end=to, agreement_id=agreement, agency_id=agency)
    with ctx.unit() as (session, principal):
        return explain(
            session, actor=principal, period=period, rules=rules_from(ctx.settings),
            unexplained_only=unexplained_only, offset=offset, limit=size,
        )  # fmt: skip


@router.get(
    "/coverage", response_model=CoverageReport, dependencies=[needs(Permission.OVERSIGHT_READ)]
)
def get_coverage(
    ctx: Ctx,
    start: From,
    to: To,
    agreement: Agreement = None,
    agency: Agency = None,
    by: Dimension | None = None,
) -> CoverageReport:
    """The explained share of external accesses to persons, in all and per agency, user,
    purpose or week."""
    period = Period(start=start, end=to, agreement_id=agreement, agency_id=agency)
    with ctx.unit() as (session, principal):
        return coverage(
            session, actor=principal, period=period, rules=rules_from(ctx.settings), by=by
        )
