"""``openpars oversight explain|coverage|refresh``: explanations of external access at the console.

The operator acts as a named account holding ``oversight:read`` (``--as``), or, without it, as
the console's ``system`` principal in the oversight role (whoever runs these commands already
holds the database). Every run is audited like the same request over the API.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from openpars.config import Settings
from openpars.console import DbOption, fail, out, reports_errors, settings_for, unit
from openpars.errors import InvalidInput
from openpars.identity import repository as identity_repo
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission, Role
from openpars.identity.service import principal_for
from openpars.oversight import engines, maintained
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
from openpars.oversight.facts import refresh
from openpars.ranges import INT32_MAX

app = typer.Typer(
    help="Oversight: explain every external access to a person (issue 13).", no_args_is_help=True
)

OVERSEER = Principal(
    user_id=None,
    username="system",
    agency_id=None,
    agency_kind=None,
    roles=frozenset({Role.OVERSIGHT}),
)


class Format(StrEnum):
    """How a command prints its answer."""

    TABLE = "table"
    JSON = "json"


AgreementOpt = Annotated[
    int | None, typer.Option("--agreement", help="Agreement id.", min=1, max=INT32_MAX)
]
AgencyOpt = Annotated[int | None, typer.Option("--agency", help="Agency id.", min=1, max=INT32_MAX)]
FromOpt = Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC), included.")]
ToOpt = Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD, UTC), included.")]
AsOpt = Annotated[
    str | None, typer.Option("--as", help="Username holding oversight:read (default: system).")
]
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json.")]


EngineOpt = Annotated[
    ReadEngine,
    typer.Option("--engine", help=ENGINE_HELP[0].upper() + ENGINE_HELP[1:] + "."),
]


@contextmanager
def reading(
    settings: Settings,
    engine: ReadEngine,
    ready: Callable[[Session], None],
    kept_file: Path | None = None,
) -> Iterator[Session | None]:
    """``engines.reading`` at the console: the refresh in a command's own transaction."""
    with engines.reading(
        settings, engine, ready, lambda: unit(settings), kept_file=kept_file
    ) as reader:
        yield reader


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{field} '{value}' is not a day; write it as YYYY-MM-DD (e.g. 2026-08-31)",
            field=field,
        ) from None


def _actor(session: Session, username: str | None) -> Principal:
    if username is None:
        return OVERSEER
    user = identity_repo.get_user_by_username(session, username)
    if user is None or not user.is_active:
        fail(f"no active user named '{username}'", field="--as")
    return principal_for(session, user)


def _may_read(username: str | None, period: Period | None = None) -> Callable[[Session], None]:
    """The checks made before DuckDB is opened: the actor holds ``oversight:read``, and the
    arguments make a period (``select_period``: a refused request copies nothing and writes
    nothing but its refusal)."""

    def check(session: Session) -> None:
        _actor(session, username).require(Permission.OVERSIGHT_READ)
        if period is not None:
            select_period(session, period)

    return check


def _period(agreement: int | None, agency: int | None, start: str, end: str) -> Period:
    return Period(
        start=_day(start, "from"), end=_day(end, "to"), agreement_id=agreement, agency_id=agency
    )


@app.command("explain")
@reports_errors
def explain_command(
    start: FromOpt,
    end: ToOpt,
    agreement: AgreementOpt = None,
    agency: AgencyOpt = None,
    unexplained_only: Annotated[
        bool, typer.Option("--unexplained-only", help="Only pairs no rule explains.")
    ] = False,
    offset: Annotated[int, typer.Option(min=0, max=INT32_MAX, help="Skip this many.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    output: FormatOpt = Format.TABLE,
    username: AsOpt = None,
    engine: EngineOpt = ReadEngine.STORE,
    db: DbOption = None,
) -> None:
    """Each (external access, person returned) pair: the rule that explains it, or why not."""
    settings = settings_for(db)
    period = _period(agreement, agency, start, end)
    with (
        reading(settings, engine, _may_read(username, period)) as reader,
        unit(settings) as session,
    ):
        page = explain(
            session, actor=_actor(session, username), period=period, rules=rules_from(settings),
            unexplained_only=unexplained_only, offset=offset, limit=limit, via="cli",
            reader=reader,
        )  # fmt: skip
    _print_page(page, output)


def _print_page(page: ExplanationPage, output: Format) -> None:
    if output is Format.JSON:
        sys.stdout.write(page.model_dump_json(indent=2) + "\n")
        return
    table = Table("entry", "person", "at", "user", "purpose", "case", "action", "code")
    for item in page.items:
        table.add_row(
            str(item.entry_id), str(item.person_id), item.at.isoformat(timespec="seconds"),
            str(item.user_id), item.purpose or "", item.case_reference or "", item.action,
            item.code,
        )  # fmt: skip
    out.print(table)
    out.print(f"{len(page.items)} of {page.total} pairs (offset {page.offset})")


@app.command("coverage")
@reports_errors
def coverage_command(
    start: FromOpt,
    end: ToOpt,
    agreement: AgreementOpt = None,
    agency: AgencyOpt = None,
    by: Annotated[
        Dimension | None, typer.Option("--by", help="Group by agency, user, purpose or week.")
    ] = None,
    output: FormatOpt = Format.TABLE,
    username: AsOpt = None,
    engine: EngineOpt = ReadEngine.STORE,
    db: DbOption = None,
) -> None:
    """The explained share of external accesses to persons, in all and per group."""
    settings = settings_for(db)
    period = _period(agreement, agency, start, end)
    with (
        reading(settings, engine, _may_read(username, period)) as reader,
        unit(settings) as session,
    ):
        report = coverage(
            session, actor=_actor(session, username), period=period, rules=rules_from(settings),
            by=by, via="cli", reader=reader,
        )  # fmt: skip
    _print_coverage(report, output)


def _print_coverage(report: CoverageReport, output: Format) -> None:
    if output is Format.JSON:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return
    table = Table(report.by.value if report.by else "", "pairs", "explained", "share", "never ch.")
    for row in [*report.rows, report.total]:
        share = f"{row.share:.1%}" if row.share is not None else "-"
        table.add_row(row.key, str(row.pairs), str(row.explained), share, str(row.never_charged))
    out.print(table)
    reasons = {k: v for k, v in report.total.reasons.items() if v}
    out.print("unexplained by reason: " + (json.dumps(reasons) if reasons else "none"))


@app.command("refresh")
@reports_errors
def refresh_command(db: DbOption = None) -> None:
    """Derive the access facts of the log's entries integrated since the last refresh."""
    with unit(settings_for(db)) as session:
        done = refresh(session)
    out.print(f"read leaves [{done.start}, {done.end}): {done.facts} access facts")


@app.command("keep-explanations")
@reports_errors
def keep_explanations_command(
    stop: Annotated[
        bool, typer.Option("--stop", help="Keep none: delete the kept rows and their rules.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Keep every access's explanation up to date under the site's rules (OPENPARS_OVERSIGHT_*),
    so that renewal reports read them instead of explaining a year again; every refresh then
    keeps them current. Run it again after changing the rules: it explains every fact again."""
    settings = settings_for(db)
    with unit(settings) as session:
        if stop:
            maintained.stop(session)
            out.print("explanations are no longer kept; readers explain afresh")
            return
        rules = rules_from(settings)
        done = maintained.maintain(session, rules)
    out.print(
        f"explanations kept under rules {maintained.fingerprint(rules)[:12]}; "
        f"read leaves [{done.start}, {done.end})"
    )
