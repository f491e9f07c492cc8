"""``openpars import``: submit arrests from a JSON-lines file through the intake service.

Each line is one ``ArrestCreate`` payload, exactly what ``POST /api/v1/arrests`` accepts. Lines
are submitted in batches (``--batch``, one transaction each) through ``records.batch``, which
keeps every rule of single intake: a bad line is reported with its number and field and the
others are written, so one typo does not hold back a night's bookings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from openpars.console import (
    EXIT_REFUSED,
    DbOption,
    describe_validation,
    fail,
    open_database,
    out,
    progress,
    reports_errors,
    settings_for,
)
from openpars.db import Database
from openpars.errors import InvalidInput, NotFound
from openpars.identity import repository as identity_repo
from openpars.identity.principal import Principal
from openpars.identity.roles import Role
from openpars.identity.service import principal_for
from openpars.records.batch import MAX_BATCH, BatchItemResult, BatchRefusal, submit_arrests
from openpars.records.schemas import ArrestCreate
from openpars.records.versions import EARLIEST_ARREST

USER_SCAN_LIMIT = 10_000
DEFAULT_BATCH = 200


@dataclass
class ImportSummary:
    """What an import did, line by line."""

    created: int = 0
    replayed: int = 0
    failed: int = 0
    arrest_ids: list[int] = field(default_factory=list)
    problems: list[tuple[int, str, str | None]] = field(default_factory=list)


def resolve_actor(session: Session, username: str | None) -> Principal:
    """The intake account the arrests are entered as: ``--as``, or the only intake user."""
    if username is not None:
        user = identity_repo.get_user_by_username(session, username)
        if user is None:
            raise NotFound(f"no user is called '{username}'", field="as")
    else:
        users = identity_repo.list_users(session, agency_id=None, offset=0, limit=USER_SCAN_LIMIT)
        intake = [u for u in users if u.is_active and Role.INTAKE in u.roles]
        if len(intake) != 1:
            raise InvalidInput(
                f"{len(intake)} active intake accounts exist; name the one to enter arrests as "
                "with --as USERNAME",
                field="as",
            )
        user = intake[0]
    if not user.is_active:
        raise InvalidInput(f"the account {user.username} is disabled", field="as")
    return principal_for(session, user)


def _problem(exc: Exception) -> tuple[str, str | None]:
    """The message and field of a line that does not parse as an ArrestCreate."""
    assert isinstance(exc, ValidationError)
    field_name, message = describe_validation(exc)
    return message, field_name


def submit_chunk(
    database: Database,
    actor: Principal,
    chunk: list[tuple[int, ArrestCreate]],
    *,
    path: Path,
    earliest: date = EARLIEST_ARREST,
) -> list[tuple[int, BatchItemResult]]:
    """Submit parsed lines as one batch in one transaction; each line's result by number.

    Refused lines are audited in the batch's transaction, one REFUSED entry each, with the
    file and line number, as the API records a refused request.
    """
    with database.session() as session:
        results = submit_arrests(
            session,
            actor=actor,
            items=[data for _, data in chunk],
            params={"via": "cli", "file": path.name},
            item_params=[{"line": number} for number, _ in chunk],
            earliest=earliest,
        )
    return [(number, result) for (number, _), result in zip(chunk, results, strict=True)]


def import_file(
    database: Database,
    actor: Principal,
    path: Path,
    *,
    batch: int = DEFAULT_BATCH,
    earliest: date = EARLIEST_ARREST,
) -> ImportSummary:
    """Import every non-blank line of ``path`` in batches, reporting each failure and going on."""
    summary = ImportSummary()
    lines = path.read_text(encoding="utf-8").splitlines()
    with progress() as bar:
        task = bar.add_task(f"importing {path.name}", total=len(lines))
        chunk: list[tuple[int, ArrestCreate]] = []
        unparsed: list[tuple[int, str, str | None]] = []

        def flush() -> None:
            problems = list(unparsed)
            if chunk:
                results = submit_chunk(database, actor, chunk, path=path, earliest=earliest)
                for number, result in results:
                    if isinstance(result, BatchRefusal):
                        problems.append((number, result.message, result.field))
                    else:
                        summary.replayed += result.replayed
                        summary.created += not result.replayed
                        summary.arrest_ids.append(result.arrest_id)
            for number, message, field_name in sorted(problems, key=lambda p: p[0]):
                summary.failed += 1
                summary.problems.append((number, message, field_name))
                suffix = f" (field: {field_name})" if field_name else ""
                bar.console.print(
                    f"line {number}: error: {message}{suffix}",
                    style="red",
                    markup=False,
                    soft_wrap=True,
                )
            bar.advance(task, len(chunk) + len(unparsed))
            chunk.clear()
            unparsed.clear()

        for number, line in enumerate(lines, start=1):
            if not line.strip():
                bar.advance(task)
                continue
            try:
                chunk.append((number, ArrestCreate.model_validate_json(line)))
            except ValidationError as exc:
                unparsed.append((number, *_problem(exc)))
            if len(chunk) >= batch:
                flush()
        flush()
    return summary


@reports_errors
def import_arrests(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines, one ArrestCreate each.")
    ],
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as", help="Intake account to enter the arrests as (default: the only one)."
        ),
    ] = None,
    batch: Annotated[
        int,
        typer.Option(
            "--batch",
            min=1,
            max=MAX_BATCH,
            help="Arrests per transaction; a refused line never holds back the others.",
        ),
    ] = DEFAULT_BATCH,
    db: DbOption = None,
) -> None:
    """Import arrests from a JSON-lines file, in batches of one transaction each."""
    settings = settings_for(db)
    with open_database(settings) as database:
        with database.session() as session:
            actor = resolve_actor(session, as_user)
        summary = import_file(
            database, actor, file, batch=batch, earliest=settings.earliest_arrest_date
        )
    out.print(f"created {summary.created}, replayed {summary.replayed}, failed {summary.failed}")
    if summary.failed:
        fail(
            f"{summary.failed} line(s) were not imported; fix them and import the file again "
            "(lines already imported are replayed, not duplicated)",
            code=EXIT_REFUSED,
        )
