"""``openpars report oversight``: the renewal report of an agreement at the console.

The operator acts as a named account holding ``oversight:read`` or ``vote`` (``--as``), or,
without it, as the console's ``system`` principal in the oversight role. Every run is audited
like the same request over the API. Without ``--out`` the report goes to standard output.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from openpars.config import Settings
from openpars.console import DbOption, out, reports_errors, settings_for, unit
from openpars.errors import InvalidInput
from openpars.oversight.engines import ReadEngine
from openpars.oversight.explain import rules_from
from openpars.oversight.explain_cli import AsOpt, EngineOpt, FromOpt, ToOpt, _actor, _day, reading
from openpars.oversight.report import (
    ReportFormat,
    check_period,
    check_round,
    report,
    report_round,
    require_reader,
    sha256,
)
from openpars.oversight.report_render import render
from openpars.ranges import INT32_MAX

app = typer.Typer(
    help="Reports (issue 13): the oversight renewal report for the stakeholders and the "
    "public transparency report.",
    no_args_is_help=True,
)

HostOpt = Annotated[
    str,
    typer.Option(
        "--link-host",
        help="Site the HTML/PDF links point to, e.g. https://pars.example.org (default: paths).",
    ),
]


def write(body: bytes, path: Path | None) -> None:
    """The report's bytes to a file, or to standard output."""
    if path is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return
    path.write_bytes(body)


@app.command("oversight")
@reports_errors
def oversight_report(
    start: FromOpt,
    end: ToOpt,
    output: Annotated[
        ReportFormat, typer.Option("--format", help="html, pdf or json.")
    ] = ReportFormat.HTML,
    agreement: Annotated[
        list[int] | None,
        typer.Option(
            "--agreement",
            help="Agreement id; give it again for a renewal round of several agreements "
            "(their pairs explained once for all).",
            min=1,
            max=INT32_MAX,
        ),
    ] = None,
    every: Annotated[
        bool,
        typer.Option(
            "--all-agreements",
            help="A renewal round of every agreement created by --to, their pairs explained "
            "once for all (instead of --agreement).",
        ),
    ] = False,
    path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the report to this file (default: stdout); for a round, the folder "
            "each report is written to, as oversight-AGREEMENT-FROM-TO.FORMAT.",
        ),
    ] = None,
    host: HostOpt = "",
    what_if_proposal: Annotated[
        int | None,
        typer.Option(
            "--what-if-proposal",
            help="Include the what-if replay of this proposal on the agreement.",
            min=1,
            max=INT32_MAX,
        ),
    ] = None,
    what_if_months: Annotated[
        int,
        typer.Option("--what-if-months", help="Months of queries the replay reads.", min=1, max=24),
    ] = 6,
    recompute: Annotated[
        bool,
        typer.Option(
            "--recompute",
            help="Explain every pair afresh from the facts instead of reading the explanations "
            "the refresh keeps (the same figures unless the kept rows were altered).",
        ),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Build the report both ways, from the kept explanations (with --engine duckdb: "
            "on DuckDB) and afresh in the store, and refuse it (report_mismatch) unless they "
            "are the same bytes.",
        ),
    ] = False,
    username: AsOpt = None,
    engine: EngineOpt = ReadEngine.STORE,
    db: DbOption = None,
) -> None:
    """The renewal report of an agreement over a period: queries, persons viewed, the share
    never charged, unexplained pairs by reason, refusals, flags and findings, weekly trends.
    Several --agreement, or --all-agreements: a renewal round, each report as alone."""
    chosen = _chosen(agreement, every)
    if chosen is None or len(chosen) > 1:
        _check_round_options(path, what_if_proposal, verify)
        assert path is not None
        settings = settings_for(db)
        first, last = _day(start, "from"), _day(end, "to")
        _round(settings, chosen, first, last, output, path, host, recompute, username, engine)
        return
    (agreement_id,) = chosen
    settings = settings_for(db)
    first, last = _day(start, "from"), _day(end, "to")

    def ready(session: Session) -> None:
        # What ``report`` checks first, before DuckDB is opened (a refused request writes
        # nothing but its refusal, and copies nothing).
        require_reader(_actor(session, username))
        check_period(session, agreement_id, first, last)

    with reading(settings, engine, ready) as reader, unit(settings) as session:
        document = report(
            session,
            actor=_actor(session, username),
            agreement_id=agreement_id,
            start=first,
            end=last,
            rules=rules_from(settings),
            output=output,
            what_if_proposal=what_if_proposal,
            what_if_months=what_if_months,
            what_if_max_queries=settings.oversight_whatif_max_queries,
            via="cli",
            recompute=recompute,
            verify=verify,
            reader=reader,
        )
    write(render(document, output, host=host), path)
    if path is not None:
        out.print(f"wrote {path} ({output.value}); report SHA-256 {sha256(document)}")


def _chosen(agreement: list[int] | None, every: bool) -> list[int] | None:
    """The agreements asked for (``None``: every one), or a usage error naming the option."""
    if every and agreement:
        raise InvalidInput(
            "give --agreement (once, or again for a round) or --all-agreements, not both",
            field="agreement",
        )
    if not every and not agreement:
        raise InvalidInput(
            "give --agreement ID (again for a round of several) or --all-agreements",
            field="agreement",
        )
    return None if every else list(dict.fromkeys(agreement or []))


def _check_round_options(path: Path | None, what_if_proposal: int | None, verify: bool) -> None:
    """What a round cannot take: checked before anything is opened."""
    if path is None:
        raise InvalidInput(
            "a round writes one report per agreement: give --out FOLDER", field="out"
        )
    if path.exists() and not path.is_dir():
        raise InvalidInput(
            f"--out {path} is a file; a round writes its reports into a folder", field="out"
        )
    if what_if_proposal is not None:
        raise InvalidInput(
            "--what-if-proposal names one agreement's proposal: give one --agreement with it",
            field="what_if_proposal",
        )
    if verify:
        raise InvalidInput(
            "--verify builds one report two ways: give one --agreement with it", field="verify"
        )


def _round(
    settings: Settings,
    chosen: list[int] | None,
    first: date,
    last: date,
    output: ReportFormat,
    folder: Path,
    host: str,
    recompute: bool,
    username: str | None,
    engine: ReadEngine,
) -> None:
    """A renewal round at the console (``report.report_round``), each report to its file."""

    def ready(session: Session) -> None:
        require_reader(_actor(session, username))
        check_round(session, chosen, first, last)

    with reading(settings, engine, ready) as reader, unit(settings) as session:
        documents = report_round(
            session,
            actor=_actor(session, username),
            agreement_ids=chosen,
            start=first,
            end=last,
            rules=rules_from(settings),
            output=output,
            via="cli",
            recompute=recompute,
            reader=reader,
        )
    folder.mkdir(parents=True, exist_ok=True)
    for document in documents:
        name = f"oversight-{document.agreement.id}-{first}-{last}.{output.value}"
        write(render(document, output, host=host), folder / name)
        out.print(f"wrote {folder / name} ({output.value}); report SHA-256 {sha256(document)}")
