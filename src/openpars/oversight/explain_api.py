"""REST endpoints of oversight's explanations: every external access to a person, explained.

Only holders of ``oversight:read`` reach them (the edge answers anyone else 403 before any
parameter is read); an outside agency never sees an explanation, not even of its own use.
Each request leaves one audit entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.oversight import engines
from openpars.oversight.engines import ENGINE_HELP, ReadEngine
from openpars.oversight.explain import (
    CoverageReport,
    Dimension,
    ExplanationPage,
    Period,
    coverage,
    explain,
    rules_from,
    select_period,
)
from openpars.ranges import RowId
from openpars.web.context import Ctx, RequestContext, needs

router = APIRouter(prefix="/oversight", tags=["oversight"])

Agreement = Annotated[RowId | None, Query(description="whose accesses: one agreement's")]
Agency = Annotated[RowId | None, Query(description="or one agency's")]
From = Annotated[date, Query(alias="from", description="first day (UTC), included")]
To = Annotated[date, Query(description="last day (UTC), included")]
EngineQ = Annotated[
    ReadEngine, Query(description=ENGINE_HELP[0].upper() + ENGINE_HELP[1:] + " (as --engine)")
]


@contextmanager
def reading(
    ctx: RequestContext, engine: ReadEngine, check: Callable[[Session, Principal], None]
) -> Iterator[Session | None]:
    """``engines.reading`` for a request: ``check`` (the service's own checks of the caller and
    the arguments, run first so that a refused request copies nothing and writes nothing but
    its refusal) and the facts' refresh run in the request's transaction, committed before
    DuckDB opens; the endpoint's ``ctx.unit()`` then continues in a new one."""

    @contextmanager
    def units() -> Iterator[Session]:
        with ctx.unit() as (session, _):
            yield session

    def ready(session: Session) -> None:
        check(session, ctx.request.state.principal)

    with engines.reading(ctx.settings, engine, ready, units) as reader:
        yield reader


def _may_read(period: Period) -> Callable[[Session, Principal], None]:
    """The checks ``explain`` and ``coverage`` make first: the caller, then the arguments."""

    def check(session: Session, principal: Principal) -> None:
        principal.require(Permission.OVERSIGHT_READ)
        select_period(session, period)

    return check


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
    engine: EngineQ = ReadEngine.STORE,
) -> ExplanationPage:
    """A page of (external access, person returned) pairs: the rule that explains each, or the
    one reason none does (docs/oversight.md)."""
    size = min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
    period = Period(start=start, end=to, agreement_id=agreement, agency_id=agency)
    with reading(ctx, engine, _may_read(period)) as reader, ctx.unit() as (session, principal):
        return explain(
            session, actor=principal, period=period, rules=rules_from(ctx.settings),
            unexplained_only=unexplained_only, offset=offset, limit=size, reader=reader,
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
    engine: EngineQ = ReadEngine.STORE,
) -> CoverageReport:
    """The explained share of external accesses to persons, in all and per agency, user,
    purpose or week."""
    period = Period(start=start, end=to, agreement_id=agreement, agency_id=agency)
    with reading(ctx, engine, _may_read(period)) as reader, ctx.unit() as (session, principal):
        return coverage(
            session, actor=principal, period=period, rules=rules_from(ctx.settings), by=by,
            reader=reader,
        )  # fmt: skip
