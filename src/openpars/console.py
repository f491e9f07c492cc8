"""What every Typer command shares: the --db option, one unit of work, errors for the operator.

Feature ``cli.py`` modules import this (not ``openpars.cli``, which imports them) so the root
command can be assembled from the features without an import cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent, AuditKind, Outcome, event_by
from openpars.audit.service import append
from openpars.config import Settings
from openpars.db import Database
from openpars.errors import DomainError
from openpars.identity.principal import SYSTEM, Principal

P = ParamSpec("P")
R = TypeVar("R")

# Exit codes: 1 when openpars refused the work, 2 when the command line itself was wrong.
EXIT_REFUSED = 1
EXIT_USAGE = 2

log = logging.getLogger(__name__)

# The settings of the database the running command opened: where its refusal is recorded.
_opened: ContextVar[Settings | None] = ContextVar("openpars_console_database", default=None)
# What a refusal of the running command is recorded as (``refusal_names``): an action and its
# parameters; None leaves the default, ``cli <module>.<command>``.
_named: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar(
    "openpars_console_refusal", default=None
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (overrides OPENPARS_DATABASE_URL), e.g. sqlite:///openpars.db.",
        show_default=False,
    ),
]


def settings_for(db: str | None) -> Settings:
    """The site's settings, with ``--db`` taking precedence over the environment."""
    return Settings(database_url=db) if db else Settings()


def fail(message: str, *, field: str | None = None, code: int = EXIT_REFUSED) -> NoReturn:
    """Print ``error: <message> (field: x)`` in red on stderr and exit."""
    suffix = f" (field: {field})" if field else ""
    err.print(f"error: {message}{suffix}", style="red", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def describe_validation(exc: ValidationError) -> tuple[str, str]:
    """The first problem of a payload validation error as (field, message)."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or "input"
    return field, str(first.get("msg", "invalid value"))


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn domain and validation errors raised by a command into a red line and an exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token, named = _opened.set(None), _named.set(None)
        try:
            return func(*args, **kwargs)
        except DomainError as exc:
            settings = _opened.get()
            if settings is not None:
                command = f"{func.__module__.removeprefix('openpars.')}.{func.__name__}"
                _record_refusal(settings, exc, command=command, as_user=kwargs.get("as_user"))
            fail(exc.message, field=exc.field)
        except ValidationError as exc:
            field, message = describe_validation(exc)
            fail(message, field=field, code=EXIT_USAGE)
        except (OperationalError, ProgrammingError) as exc:
            # A wrong URL, a server that is down, a schema that was never created: say so
            # plainly instead of a traceback.
            fail(
                f"the database could not be used ({str(exc.orig).strip()}); check --db or "
                "OPENPARS_DATABASE_URL, and run 'openpars db upgrade' on a new database",
                field="db",
            )
        finally:
            _opened.reset(token)
            _named.reset(named)

    return wrapper


def refusal_names(action: str, **params: Any) -> None:
    """Name the act a refusal of the running command is audited as, with its parameters.

    ``reports_errors`` writes the one entry of every refused command; by default its action is
    ``cli <module>.<command>``. A command whose act has a name of its own in the log (the one
    the service writes when it succeeds, such as ``audit.shred``) names it here, before the
    work, so the refusal is found under the same action as the act.
    """
    _named.set((action, params))


def _record_refusal(settings: Settings, exc: DomainError, *, command: str, as_user: object) -> None:
    """Audit a refused console command in a transaction of its own, as the API audits refusals.

    The command's own transaction was rolled back. The entry names the ``--as`` account when it
    exists (else the console's ``system``, with the name that was given) and the rule broken.
    """
    from openpars.access.enforcement import count_refused
    from openpars.db import utcnow
    from openpars.identity import repository as identity_repo
    from openpars.identity.service import principal_for

    action, named = _named.get() or (f"cli {command}", {})
    params: dict[str, Any] = {
        "via": "cli",
        "command": command,
        "field": exc.field,
        "status": exc.status,
        **named,
    }
    try:
        with unit(settings) as session:
            actor = SYSTEM
            if isinstance(as_user, str):
                user = identity_repo.get_user_by_username(session, as_user)
                if user is not None:
                    actor = principal_for(session, user)
                else:
                    params["as"] = as_user
            event = event_by(
                actor,
                kind=AuditKind.REFUSED,
                action=action,
                outcome=Outcome.REFUSED,
                params=params,
                error_code=exc.code,
            )
            append(session, event)
            count_refused(session, actor, at=utcnow())
    except Exception:  # the refusal is still reported; losing its entry is logged loudly
        log.exception("could not write the audit entry of a refused console command")


@contextmanager
def open_database(settings: Settings) -> Iterator[Database]:
    """The site's database for the length of a command; the engine is disposed afterwards."""
    database = Database.from_settings(settings)
    _opened.set(settings)
    try:
        yield database
    finally:
        database.dispose()


@contextmanager
def unit(settings: Settings) -> Iterator[Session]:
    """One command, one transaction: commits when the block ends, rolls back on any error."""
    with open_database(settings) as database, database.session() as session:
        yield session


def audit_console(
    session: Session,
    *,
    kind: AuditKind,
    action: str,
    actor: Principal = SYSTEM,
    **params: Any,
) -> None:
    """Audit an act done at the console; the operator acts as ``system`` unless named."""
    append(
        session,
        AuditEvent(
            kind=kind,
            action=action,
            user_id=actor.user_id,
            username=actor.username,
            agency_id=actor.agency_id,
            params={"via": "cli", **params},
        ),
    )


def progress() -> Progress:
    """A progress bar on stderr, so stdout stays clean for what the command reports."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def migrations_present() -> bool:
    """Whether this installation ships Alembic revisions (a fresh checkout may not yet)."""
    from openpars.migrate import MIGRATIONS_DIR

    return any((MIGRATIONS_DIR / "versions").glob("*.py"))


def run_server(settings: Settings, *, host: str, port: int) -> None:
    """Serve the HTTP API for ``settings`` with uvicorn until interrupted."""
    import uvicorn

    from openpars.audit.checkpoints import check_key
    from openpars.web.app import create_app

    # The app's start-up checks the log key too; checking first gives the console a plain
    # error line (LogKeyRefused says what to do) instead of uvicorn's traceback.
    with open_database(settings) as database:
        check_key(settings, database)
    out.print(f"serving openpars on http://{host}:{port} (API docs at /docs); Ctrl-C stops it")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
