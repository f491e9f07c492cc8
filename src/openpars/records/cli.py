"""``openpars import``: submit arrests from a JSON-lines file through the intake service.

Each line is one ``ArrestCreate`` payload, exactly what ``POST /api/v1/arrests`` accepts, and is
submitted in its own transaction: a bad line is reported with its number and field and the
import goes on, so one typo does not hold back a night's bookings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.service import append
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
from openpars.errors import DomainError, InvalidInput, NotFound
from openpars.identity import repository as identity_repo
from openpars.identity.principal import Principal
from openpars.identity.roles import Role
from openpars.identity.service import principal_for
from openpars.records.schemas import ArrestCreate
from openpars.records.service import submit_arrest

USER_SCAN_LIMIT = 10_000


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


def import_line(database: Database, actor: Principal, line: str) -> bool:
    """Submit one payload in its own transaction; True if it was a replay of an earlier one."""
    data = ArrestCreate.model_validate_json(line)
    with database.session() as session:
        result = submit_arrest(session, actor=actor, data=data)
    return result.replayed


def _problem(exc: Exception) -> tuple[str, str | None]:
    """The message and field of a refused line."""
    if isinstance(exc, ValidationError):
        field_name, message = describe_validation(exc)
        return message, field_name
    assert isinstance(exc, DomainError)
    return exc.message, exc.field


def record_refusal(
    database: Database, actor: Principal, exc: DomainError, *, path: Path, line: int
) -> None:
    """Audit a refused line in a transaction of its own, as the API audits a refused request."""
    with database.session() as session:
        append(
            session,
            AuditEvent(
                kind=AuditKind.REFUSED,
                action="arrest.create",
                outcome=Outcome.REFUSED,
                user_id=actor.user_id,
                username=actor.username,
                agency_id=actor.agency_id,
                params={"via": "cli", "file": path.name, "line": line, "status": exc.status},
                error_code=exc.code,
            ),
        )


def import_file(database: Database, actor: Principal, path: Path) -> ImportSummary:
    """Import every non-blank line of ``path``, reporting each failure and carrying on."""
    summary = ImportSummary()
    lines = path.read_text(encoding="utf-8").splitlines()
    with progress() as bar:
        task = bar.add_task(f"importing {path.name}", total=len(lines))
        for number, line in enumerate(lines, start=1):
            bar.advance(task)
            if not line.strip():
                continue
            try:
                replayed = import_line(database, actor, line)
            except (ValidationError, DomainError) as exc:
                message, field_name = _problem(exc)
                if isinstance(exc, DomainError):
                    record_refusal(database, actor, exc, path=path, line=number)
                summary.failed += 1
                summary.problems.append((number, message, field_name))
                suffix = f" (field: {field_name})" if field_name else ""
                bar.console.print(
                    f"line {number}: error: {message}{suffix}",
                    style="red",
                    markup=False,
                    soft_wrap=True,
                )
                continue
            summary.replayed += replayed
            summary.created += not replayed
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
    db: DbOption = None,
) -> None:
    """Import arrests from a JSON-lines file, one transaction per line."""
    with open_database(settings_for(db)) as database:
        with database.session() as session:
            actor = resolve_actor(session, as_user)
        summary = import_file(database, actor, file)
    out.print(f"created {summary.created}, replayed {summary.replayed}, failed {summary.failed}")
    if summary.failed:
        fail(
            f"{summary.failed} line(s) were not imported; fix them and import the file again "
            "(lines already imported are replayed, not duplicated)",
            code=EXIT_REFUSED,
        )
