"""``openpars report transparency``: the public transparency report at the console.

Without ``--release`` or ``--exact`` it prints the month's published report, as anyone may read
it over the public API (not audited). ``--release --as REVIEWER`` publishes a month that has
ended (an audited act of the oversight role; a month already released is printed as stored,
never released again). ``--exact --as USER`` prints the exact figures beside the published ones
(the oversight role and the stakeholders' voters only; audited).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from openpars.console import DbOption, fail, reports_errors, settings_for, unit
from openpars.governance.cli_signing import actor_named
from openpars.oversight import transparency as tr

# One `openpars report` group: the renewal report and this one share it.
from openpars.oversight.report_cli import app


class ReportFormat(StrEnum):
    """How the report is written."""

    JSON = "json"
    CSV = "csv"
    HTML = "html"


RENDER = {ReportFormat.JSON: tr.as_json, ReportFormat.CSV: tr.as_csv, ReportFormat.HTML: tr.as_html}


@app.command("transparency")
@reports_errors
def transparency(
    month: Annotated[str, typer.Option("--month", help="The UTC calendar month, YYYY-MM.")],
    report_format: Annotated[
        ReportFormat, typer.Option("--format", help="json, csv or html.")
    ] = ReportFormat.JSON,
    release: Annotated[
        bool,
        typer.Option("--release", help="Release the month first if it is not yet (needs --as)."),
    ] = False,
    exact: Annotated[
        bool,
        typer.Option("--exact", help="The exact figures (oversight or voter; needs --as; JSON)."),
    ] = False,
    as_user: Annotated[
        str | None, typer.Option("--as", help="The account acting, for --release or --exact.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file instead of stdout.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Monthly counts of external access by agency, purpose and outcome, with differential
    privacy (the privacy budget is stated on the report)."""
    if release and exact:
        fail("give --release or --exact, not both", field="release")
    if (release or exact) and as_user is None:
        fail("--release and --exact act as a named account: give --as USER", field="as")
    settings = settings_for(db)
    with unit(settings) as session:
        if exact:
            actor = actor_named(session, as_user)
            report = tr.exact_report(
                session, actor=actor, month=month, settings=settings, via="cli"
            )
            text = json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True)
        else:
            if release:
                actor = actor_named(session, as_user)
                document = tr.release_month(
                    session, actor=actor, month=month, settings=settings, via="cli"
                ).release
            else:
                document = tr.published(session, month)
            text = RENDER[report_format](document)
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        output.write_text(text, encoding="utf-8")
