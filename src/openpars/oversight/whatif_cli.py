"""``openpars oversight what-if``: replay an agreement's real external queries under a proposal.

Acts as the account named by ``--as`` (holding ``oversight:read`` or ``vote``), or, without it,
as the console's ``system`` principal in the oversight role. Audited like the API request.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from openpars.agreements.cli import load_document
from openpars.console import DbOption, out, reports_errors, settings_for, unit
from openpars.errors import InvalidInput
from openpars.identity.principal import Principal
from openpars.oversight.explain_cli import AsOpt, Format, FormatOpt, _actor, app
from openpars.oversight.whatif import (
    MONTHS_MAX,
    MONTHS_MIN,
    Proposed,
    WhatIfReport,
    check_months,
    of_document,
    of_proposal,
    recompute,
    replay_proposal,
    require_reader,
    what_if,
)
from openpars.ranges import INT32_MAX

ProposalOpt = Annotated[
    int | None, typer.Option("--proposal", help="Proposal id.", min=1, max=INT32_MAX)
]
AgreementOpt = Annotated[
    int | None, typer.Option("--agreement", help="Agreement id.", min=1, max=INT32_MAX)
]
VersionFileOpt = Annotated[
    str | None,
    typer.Option("--version-file", help="Proposed agreement document (JSON; '-': stdin)."),
]
MonthsOpt = Annotated[
    int, typer.Option("--months", help=f"Months of queries ({MONTHS_MIN}-{MONTHS_MAX}).")
]


@app.command("what-if")
@reports_errors
def what_if_command(
    proposal: ProposalOpt = None,
    agreement: AgreementOpt = None,
    version_file: VersionFileOpt = None,
    months: MonthsOpt = 6,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="With --proposal: replay again over --months and keep it with the proposal.",
        ),
    ] = False,
    offset: Annotated[int, typer.Option(min=0, max=INT32_MAX, help="Skip this many.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    output: FormatOpt = Format.TABLE,
    username: AsOpt = None,
    db: DbOption = None,
) -> None:
    """Replay the real external queries of the last months under a proposed version: persons
    and fields disclosed more or fewer, and which queries would be refused. With --proposal,
    the replay kept with the proposal (computed when it opened); --again replays anew and
    keeps it."""
    settings = settings_for(db)
    if proposal is not None and agreement is None and version_file is None:
        if again:
            with unit(settings) as session:
                recompute(
                    session, actor=_actor(session, username), proposal_id=proposal,
                    months=months, max_queries=settings.oversight_whatif_max_queries, via="cli",
                )  # fmt: skip
        with unit(settings) as session:
            report = replay_proposal(
                session, actor=_actor(session, username), proposal_id=proposal, offset=offset,
                limit=limit, via="cli",
            )  # fmt: skip
        _print(report, output)
        return
    if again:
        raise InvalidInput("--again replays a proposal's version: give --proposal", field="again")
    with unit(settings) as session:
        actor = _actor(session, username)
        require_reader(actor)
        check_months(months)
        proposed = _proposed(session, actor, proposal, agreement, version_file)
        report = what_if(
            session, actor=actor, proposed=proposed, months=months, offset=offset, limit=limit,
            max_queries=settings.oversight_whatif_max_queries, via="cli",
        )  # fmt: skip
    _print(report, output)


def _proposed(
    session: Session,
    actor: Principal,
    proposal: int | None,
    agreement: int | None,
    file: str | None,
) -> Proposed:
    if proposal is not None:
        if agreement is not None or file is not None:
            raise InvalidInput(
                "give either --proposal, or --agreement with --version-file, not both",
                field="proposal",
            )
        return of_proposal(session, proposal, actor=actor)
    if agreement is None or file is None:
        raise InvalidInput(
            "give --proposal ID, or --agreement ID with --version-file FILE: which version to "
            "replay the queries against",
            field="agreement" if agreement is None else "version-file",
        )
    if file != "-" and not Path(file).is_file():
        raise InvalidInput(f"no file at {file}", field="version-file")
    return of_document(session, agreement, load_document(file), actor=actor)


def _print(report: WhatIfReport, output: Format) -> None:
    if output is Format.JSON:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return
    t = report.totals
    out.print(
        f"agreement {report.agreement_id}, proposed version "
        f"{report.proposed_version if report.proposed_version is not None else '(file)'} "
        f"({report.proposed_hash[:12]}); {report.since:%Y-%m-%d} to {report.until:%Y-%m-%d}"
        + (
            f"; computed {report.computed_at:%Y-%m-%d %H:%M} UTC by {report.computed_by}"
            if report.computed_at is not None
            else ""
        ),
        markup=False,
    )
    out.print(
        f"{t.queries} queries, {t.replayed} replayed, {t.not_replayed} not replayed; "
        f"newly refused {t.newly_refused}, newly answered {t.newly_answered}; "
        f"more persons in {t.with_more_persons} (+{t.persons_more}, {t.distinct_persons_more} "
        f"distinct), fewer in {t.with_fewer_persons} (-{t.persons_fewer}, "
        f"{t.distinct_persons_fewer} distinct); field changes in {t.with_field_changes}",
        markup=False,
    )
    if t.fields_more or t.fields_fewer:
        out.print(f"fields more: {t.fields_more}; fields fewer: {t.fields_fewer}", markup=False)
    if t.newly_refused_by_code:
        out.print(f"newly refused by code: {t.newly_refused_by_code}", markup=False)
    table = Table("entry", "at", "action", "user", "purpose", "change", "persons", "fields")
    for i in report.items:
        persons = f"{i.current.persons}->{i.proposed.persons}"
        fields = " ".join([*(f"+{f}" for f in i.fields_more), *(f"-{f}" for f in i.fields_fewer)])
        change = i.change.value + (f" ({i.proposed.code})" if i.proposed.refused else "")
        table.add_row(
            str(i.entry_id), i.at.isoformat(timespec="seconds"), i.action, str(i.user_id),
            i.purpose or "", change, persons, fields,
        )  # fmt: skip
    out.print(table)
    out.print(f"{len(report.items)} of {t.queries} queries (offset {report.offset})")
