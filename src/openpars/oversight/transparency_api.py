"""REST endpoints of the public transparency report (docs/oversight.md).

- ``GET /transparency/releases`` and ``GET /transparency/releases/{month}``: public, no token;
  they return only what was published (noisy counts, the fixed categories, the privacy budget)
  and are not audit entries (like the audit log's public face), though counted in /metrics.
- ``POST /oversight/transparency/releases``: an oversight reviewer releases a month; audited.
- ``GET /oversight/transparency/exact``: the exact figures, for the oversight role and the
  stakeholders' voters only; audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from openpars.identity.roles import Permission
from openpars.oversight.transparency import (
    ExactReport,
    Release,
    ReleaseOutcome,
    ReleasePage,
    exact_report,
    ledger,
    published,
    release_month,
)
from openpars.web.context import Ctx, needs, public

router = APIRouter(tags=["transparency"])

MONTH_PATTERN = r"^\d{4}-\d{2}$"
MonthPath = Annotated[
    str, Path(pattern=MONTH_PATTERN, description="the UTC calendar month, YYYY-MM")
]


class ReleaseRequest(BaseModel):
    """Which month to release."""

    month: str = Field(pattern=MONTH_PATTERN, description="a month that has ended, YYYY-MM")


@router.get("/transparency/releases", response_model=ReleasePage, dependencies=[public()])
def list_releases(
    ctx: Ctx,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> ReleasePage:
    """The months released so far, newest first, with the privacy budget spent in all."""
    size = min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
    with ctx.anonymous_unit() as session:
        return ledger(session, offset=offset, limit=size)


@router.get("/transparency/releases/{month}", response_model=Release, dependencies=[public()])
def get_release(ctx: Ctx, month: MonthPath) -> Release:
    """A month's published report: noisy counts per agency, purpose and outcome, and the
    privacy budget. 404 until the month is released."""
    with ctx.anonymous_unit() as session:
        return published(session, month)


@router.post(
    "/oversight/transparency/releases",
    response_model=ReleaseOutcome,
    status_code=201,
    responses={200: {"model": ReleaseOutcome, "description": "already released: as stored"}},
    dependencies=[needs(Permission.OVERSIGHT_REVIEW)],
)
def post_release(ctx: Ctx, body: ReleaseRequest, response: Response) -> ReleaseOutcome:
    """Release a month that has ended (201); a month already released is returned as stored
    (200): never released again with fresh noise."""
    with ctx.unit() as (session, principal):
        outcome = release_month(session, actor=principal, month=body.month, settings=ctx.settings)
    if not outcome.released_now:
        response.status_code = 200
    return outcome


@router.get(
    "/oversight/transparency/exact",
    response_model=ExactReport,
    dependencies=[needs(Permission.OVERSIGHT_READ, Permission.VOTE)],
)
def get_exact(
    ctx: Ctx, month: Annotated[str, Query(pattern=MONTH_PATTERN, description="YYYY-MM")]
) -> ExactReport:
    """The exact counts of a month beside the published ones (oversight and stakeholders'
    voters only)."""
    with ctx.unit() as (session, principal):
        return exact_report(session, actor=principal, month=month, settings=ctx.settings)
