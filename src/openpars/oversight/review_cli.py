"""``openpars oversight canary|flags|cases|detectors ...``: the review queue at the console.

Every command acts as the oversight reviewer named by ``--as`` (the console's system account
holds no oversight role, and the site administrator may not: it is among those judged), through
the same services as the API, and each leaves one audit entry. Output is JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from openpars.config import Settings
from openpars.console import DbOption, out, reports_errors, settings_for, unit
from openpars.errors import InvalidInput
from openpars.governance.cli_signing import actor_named, print_model, read_json
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.oversight import canaries, review
from openpars.oversight.detection import DetectionPeriod, Thresholds, thresholds_from
from openpars.oversight.engines import ReadEngine
from openpars.oversight.explain_cli import _day, reading
from openpars.oversight.models import CaseState, Finding
from openpars.oversight.schemas import CanaryCreate, DetectionResult, DetectorRun, OversightPage
from openpars.ranges import INT32_MAX

app = typer.Typer(help="Oversight: canary records, detector flags and the review queue.")
canary_app = typer.Typer(help="Canary records: synthetic persons no legitimate query reaches.")
flags_app = typer.Typer(help="Detector flags.")
cases_app = typer.Typer(help="Review cases: flags grouped by detector and subject.")
detectors_app = typer.Typer(help="The detectors.")
for _sub, _name in (
    (canary_app, "canary"),
    (flags_app, "flags"),
    (cases_app, "cases"),
    (detectors_app, "detectors"),
):
    _sub.info.no_args_is_help = True
    app.add_typer(_sub, name=_name)

ReviewerOption = Annotated[
    str, typer.Option("--as", help="The oversight reviewer acting (an account with the role).")
]
OffsetOption = Annotated[int, typer.Option("--offset", min=0, max=INT32_MAX)]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=500)]
CaseArgument = Annotated[int, typer.Argument(min=1, max=INT32_MAX, help="The case id.")]


def _reviewer(session: Session, username: str) -> Principal:
    return actor_named(session, username)


@canary_app.command("plant")
@reports_errors
def canary_plant(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON file: {'label': ..., 'arrest': <an arrest as police intake enters it, "
            "one new adult arrestee>}."
        ),
    ],
    as_user: ReviewerOption,
    db: DbOption = None,
) -> None:
    """Plant a canary record, pending until a second reviewer confirms it (then entered
    through intake; hidden from every internal reader)."""
    data = CanaryCreate.model_validate(read_json(file, "file"))
    with unit(settings_for(db)) as session:
        planted = canaries.plant_canary(session, actor=_reviewer(session, as_user), data=data)
    print_model(planted)


@canary_app.command("confirm")
@reports_errors
def canary_confirm(
    canary_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX, help="The canary id.")],
    as_user: ReviewerOption,
    db: DbOption = None,
) -> None:
    """Confirm a canary another reviewer planted; only then is its arrest entered."""
    with unit(settings_for(db)) as session:
        actor = _reviewer(session, as_user)
        confirmed = canaries.confirm_canary(session, actor=actor, canary_id=canary_id)
    print_model(confirmed)


@canary_app.command("list")
@reports_errors
def canary_list(
    as_user: ReviewerOption, offset: OffsetOption = 0, limit: LimitOption = 50, db: DbOption = None
) -> None:
    """The planted canaries and the flags each raised."""
    with unit(settings_for(db)) as session:
        actor = _reviewer(session, as_user)
        items, total = canaries.list_canaries(session, actor=actor, offset=offset, limit=limit)
    print_model(OversightPage(items=items, total=total, offset=offset, limit=limit))


@flags_app.command("list")
@reports_errors
def flags_list(
    as_user: ReviewerOption,
    detector: Annotated[str | None, typer.Option("--detector", help="One detector.")] = None,
    offset: OffsetOption = 0,
    limit: LimitOption = 50,
    db: DbOption = None,
) -> None:
    """Detector flags, newest first, with the audit entries that fired each."""
    with unit(settings_for(db)) as session:
        items, total = review.list_flags(
            session,
            actor=_reviewer(session, as_user),
            detector=detector,
            offset=offset,
            limit=limit,
        )
    print_model(OversightPage(items=items, total=total, offset=offset, limit=limit))


EngineOption = Annotated[
    ReadEngine,
    typer.Option(
        "--engine",
        help="Where the detectors read: the store itself, or DuckDB attached to a PostgreSQL "
        "store read-only (the facts are brought up to the log and committed first; the flags "
        "are stored and audited in the store as always).",
    ),
]


DuckFileOption = Annotated[
    Path | None,
    typer.Option(
        "--duckdb-file",
        help="With --engine duckdb: the DuckDB file to keep the copy of the store in, brought "
        "up to the store at each run instead of copied whole (default: the setting "
        "oversight_duckdb_file; unset, a temporary file). One run at a time per file.",
    ),
]


def _run(
    settings: Settings,
    as_user: str,
    engine: ReadEngine,
    period: DetectionPeriod | None = None,
    limits: Thresholds | None = None,
    duckdb_file: Path | None = None,
) -> list[int]:
    """``review.run_detectors`` in one transaction of the store; with DuckDB the facts are
    refreshed and committed in one before it (DuckDB reads what the store committed)."""
    if duckdb_file is not None and engine is not ReadEngine.DUCKDB:
        raise InvalidInput(
            "--duckdb-file is DuckDB's file: give it with --engine duckdb",
            field="duckdb_file",
            code="duckdb_file_without_duckdb",
        )
    kept = duckdb_file or settings.oversight_duckdb_file

    def ready(session: Session) -> None:
        _reviewer(session, as_user).require(Permission.OVERSIGHT_REVIEW)

    with reading(settings, engine, ready, kept) as reader, unit(settings) as session:
        return review.run_detectors(
            session, actor=_reviewer(session, as_user), period=period, limits=limits, reader=reader
        )


@detectors_app.command("run")
@reports_errors
def detectors_run(
    as_user: ReviewerOption,
    engine: EngineOption = ReadEngine.STORE,
    duckdb_file: DuckFileOption = None,
    db: DbOption = None,
) -> None:
    """Run every detector now (idempotent: a finding is flagged once)."""
    created = _run(settings_for(db), as_user, engine, duckdb_file=duckdb_file)
    print_model(DetectorRun(new_flags=created))


@app.command("detect")
@reports_errors
def detect(
    as_user: ReviewerOption,
    start: Annotated[
        str | None, typer.Option("--from", help="First day (YYYY-MM-DD, UTC), included.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day (YYYY-MM-DD, UTC), included.")
    ] = None,
    engine: EngineOption = ReadEngine.STORE,
    duckdb_file: DuckFileOption = None,
    db: DbOption = None,
) -> None:
    """Run every detector over the given days (none: the whole store); prints the new flags.

    A daily run (--from and --to the same day) reads that day plus the history each baseline
    needs. Running a period again stores nothing new."""
    first = _day(start, "from") if start else None
    last = _day(end, "to") if end else None
    period = review.detection_period(first, last)
    settings = settings_for(db)
    created = _run(settings, as_user, engine, period, thresholds_from(settings), duckdb_file)
    result = DetectionResult.model_validate({"from": first, "to": last, "new_flags": created})
    out.print_json(result.model_dump_json(by_alias=True))


@cases_app.command("list")
@reports_errors
def cases_list(
    as_user: ReviewerOption,
    state: Annotated[CaseState | None, typer.Option("--state")] = None,
    offset: OffsetOption = 0,
    limit: LimitOption = 50,
    db: DbOption = None,
) -> None:
    """Review cases, newest first."""
    with unit(settings_for(db)) as session:
        items, total = review.list_cases(
            session, actor=_reviewer(session, as_user), state=state, offset=offset, limit=limit
        )
    print_model(OversightPage(items=items, total=total, offset=offset, limit=limit))


@cases_app.command("show")
@reports_errors
def cases_show(case_id: CaseArgument, as_user: ReviewerOption, db: DbOption = None) -> None:
    """One case with its flags and append-only history."""
    with unit(settings_for(db)) as session:
        detail = review.show_case(session, actor=_reviewer(session, as_user), case_id=case_id)
    print_model(detail)


@cases_app.command("assign")
@reports_errors
def cases_assign(
    case_id: CaseArgument,
    to: Annotated[str, typer.Option("--to", help="The reviewer's username.")],
    as_user: ReviewerOption,
    db: DbOption = None,
) -> None:
    """Assign a case to an oversight reviewer (not the account it is about)."""
    with unit(settings_for(db)) as session:
        detail = review.assign_case(
            session, actor=_reviewer(session, as_user), case_id=case_id, assignee=to
        )
    print_model(detail)


@cases_app.command("note")
@reports_errors
def cases_note(
    case_id: CaseArgument,
    note: Annotated[str, typer.Option("--note", help="The note (never edited, only added).")],
    as_user: ReviewerOption,
    db: DbOption = None,
) -> None:
    """Add a note to a case."""
    with unit(settings_for(db)) as session:
        detail = review.note_case(
            session, actor=_reviewer(session, as_user), case_id=case_id, note=note
        )
    print_model(detail)


@cases_app.command("close")
@reports_errors
def cases_close(
    case_id: CaseArgument,
    finding: Annotated[Finding, typer.Option("--finding")],
    as_user: ReviewerOption,
    note: Annotated[str | None, typer.Option("--note", help="A last note.")] = None,
    db: DbOption = None,
) -> None:
    """Close a case with a finding."""
    with unit(settings_for(db)) as session:
        detail = review.close_case(
            session, actor=_reviewer(session, as_user), case_id=case_id, finding=finding,
            note=note,
        )  # fmt: skip
    print_model(detail)
