"""REST endpoints of the renewal report: the report itself and the entries behind each figure.

The oversight role and stakeholder voters may read them; an outside agency never does (the
edge refuses it before any parameter is read, and the service refuses any external account).
Each request leaves one audit entry, with the report's SHA-256.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from openpars.errors import InvalidInput
from openpars.identity.principal import Principal
from openpars.oversight.engines import ReadEngine
from openpars.oversight.explain import rules_from
from openpars.oversight.explain_api import EngineQ, reading
from openpars.oversight.report import (
    READERS,
    EntryPage,
    OversightReport,
    ReportFormat,
    check_period,
    check_round,
    report,
    report_entries,
    report_round,
    require_reader,
    sha256,
)
from openpars.oversight.report_render import MEDIA_TYPES, render
from openpars.ranges import INT32_MAX, RowId
from openpars.web.context import Ctx, needs

router = APIRouter(prefix="/oversight", tags=["oversight"])

AgreementQ = Annotated[RowId, Query(alias="agreement", description="the agreement reported on")]
From = Annotated[date, Query(alias="from", description="first day (UTC), included")]
To = Annotated[date, Query(description="last day (UTC), included; not after today")]
SHA_HEADER = "OpenPARS-Report-SHA256"

REPORT_RESPONSES = {
    200: {
        "model": OversightReport,
        "description": f"The report; the {SHA_HEADER} header is the SHA-256 of its canonical "
        "JSON (the json format's exact bytes).",
        "content": {"text/html": {}, "application/pdf": {}},
    },
    404: {"description": "the agreement does not exist (error.field: agreement)"},
}
UNKNOWN = {404: {"description": "the agreement does not exist (error.field: agreement)"}}


@router.get(
    "/reports",
    response_class=Response,
    responses=REPORT_RESPONSES,  # type: ignore[arg-type]
    dependencies=[needs(*READERS)],
)
def get_report(
    ctx: Ctx,
    agreement: AgreementQ,
    start: From,
    to: To,
    output: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.HTML,
    what_if_proposal: Annotated[
        RowId | None,
        Query(description="include the what-if replay of this proposal on the agreement"),
    ] = None,
    what_if_months: Annotated[
        int, Query(ge=1, le=24, description="months of queries the replay reads")
    ] = 6,
    engine: EngineQ = ReadEngine.STORE,
) -> Response:
    """The renewal report of an agreement over a period (docs/oversight.md, Renewal report):
    queries, persons viewed, the share never charged, unexplained pairs by reason, refusals,
    detector flags and findings, weekly trends; every figure links to its audit entries."""

    def check(session: Session, principal: Principal) -> None:
        require_reader(principal)
        check_period(session, agreement, start, to)

    with reading(ctx, engine, check) as reader, ctx.unit() as (session, principal):
        document = report(
            session,
            actor=principal,
            agreement_id=agreement,
            start=start,
            end=to,
            rules=rules_from(ctx.settings),
            output=output,
            what_if_proposal=what_if_proposal,
            what_if_months=what_if_months,
            what_if_max_queries=ctx.settings.oversight_whatif_max_queries,
            reader=reader,
        )
    body = render(document, output)
    return Response(body, media_type=MEDIA_TYPES[output], headers={SHA_HEADER: sha256(document)})


class RoundReport(BaseModel):
    """One report of a round, with the SHA-256 of its canonical JSON (as the audit entry)."""

    agreement_id: int
    sha256: str
    report: OversightReport


class ReportRound(BaseModel):
    """A renewal round: every report asked for, over one period, in the order asked."""

    start: date
    end: date
    reports: list[RoundReport]


@router.get(
    "/reports/round",
    response_model=ReportRound,
    responses=UNKNOWN,  # type: ignore[arg-type]
    dependencies=[needs(*READERS)],
)
def get_report_round(
    ctx: Ctx,
    start: From,
    to: To,
    agreement: Annotated[
        list[RowId] | None,
        Query(description="an agreement of the round; repeated for each (or all_agreements)"),
    ] = None,
    all_agreements: Annotated[
        bool, Query(description="every agreement created by `to` (instead of agreement)")
    ] = False,
    engine: EngineQ = ReadEngine.STORE,
) -> ReportRound:
    """A renewal round (docs/oversight.md, Renewal report): the JSON reports of several
    agreements over one period, their pairs explained once for all (on DuckDB: once, not once
    per agreement); each report is the one `GET /oversight/reports` gives for its agreement,
    each audited as that one is (one `oversight.report` entry per report)."""
    if all_agreements == bool(agreement):
        raise InvalidInput(
            "give agreement (repeated for each) or all_agreements=true, one of them",
            field="agreement",
        )
    chosen = None if all_agreements else list(agreement or [])

    def check(session: Session, principal: Principal) -> None:
        require_reader(principal)
        check_round(session, chosen, start, to)

    with reading(ctx, engine, check) as reader, ctx.unit() as (session, principal):
        documents = report_round(
            session,
            actor=principal,
            agreement_ids=chosen,
            start=start,
            end=to,
            rules=rules_from(ctx.settings),
            output=ReportFormat.JSON,
            reader=reader,
        )
    return ReportRound(
        start=start,
        end=to,
        reports=[
            RoundReport(agreement_id=d.agreement.id, sha256=sha256(d), report=d) for d in documents
        ],
    )


@router.get(
    "/reports/entries",
    response_model=EntryPage,
    responses=UNKNOWN,  # type: ignore[arg-type]
    dependencies=[needs(*READERS)],
)
def get_report_entries(
    ctx: Ctx,
    agreement: AgreementQ,
    start: From,
    to: To,
    figure: Annotated[str, Query(min_length=1, max_length=300, description="a figure's key")],
    size: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**62,
            description="count only log leaves below this (the report's "
            "tree_size): the same entries as when the report was made",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> EntryPage:
    """A page of the audit entries behind one figure of the report, each with its leaf index
    and the path of its inclusion proof."""
    page_size = min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
    with ctx.unit() as (session, principal):
        return report_entries(
            session,
            actor=principal,
            agreement_id=agreement,
            start=start,
            end=to,
            rules=rules_from(ctx.settings),
            figure=figure,
            size=size,
            offset=offset,
            limit=page_size,
        )
