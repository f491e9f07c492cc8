"""`openpars search ...` and `openpars show ...`: reads at the console, as a named user.

Console reads go through the same enforcement point and leave the same audit entries as the API;
the operator names the account they act as, so an external agency's scope applies at the
console exactly as it does over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.table import Table
from sqlalchemy.orm import Session

from openpars.access import service
from openpars.access.schemas import ArrestQuery, PersonQuery, ReadContext
from openpars.config import Settings
from openpars.console import (
    DbOption,
    fail,
    open_database,
    out,
    refusal_names,
    reports_errors,
    settings_for,
)
from openpars.errors import InvalidInput
from openpars.identity import repository as identity_repo
from openpars.identity.principal import Principal
from openpars.identity.service import principal_for
from openpars.ranges import INT32_MAX, Instant
from openpars.records.enums import ArrestState

search_app = typer.Typer(help="Search persons and arrests (enforced and audited).")
show_app = typer.Typer(help="Show one person or arrest (enforced and audited).")

AsUser = Annotated[str, typer.Option("--as", help="Username whose access applies.")]
Purpose = Annotated[str | None, typer.Option(help="Why you are asking (external accounts).")]
CaseNumber = Annotated[str | None, typer.Option(help="Case reference, where needed.")]
OnBehalf = Annotated[str | None, typer.Option(help="Who you are asking for, if not yourself.")]
AsJSON = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
When = Annotated[
    str | None,
    typer.Option(help="An instant with its zone, ISO 8601 (2025-09-29T22:15:00Z)."),
]
_INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


def _instant(value: str | None, field: str) -> datetime | None:
    """A search bound as the API reads it: ISO 8601 with its zone, representable in UTC."""
    if value is None:
        return None
    try:
        return _INSTANT.validate_python(value)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise InvalidInput(
            f"{field} '{value}' is not an instant with its zone ({reason}); write it as "
            "2025-09-29T22:15:00Z or 2025-09-29T18:15:00-04:00",
            field=field,
        ) from None


Count = Annotated[
    bool, typer.Option("--count", help="Count the visible rows (up to 200) for the total.")
]


def _principal(session: Session, username: str) -> Principal:
    user = identity_repo.get_user_by_username(session, username)
    if user is None or not user.is_active:
        fail(f"no active user named '{username}'", field="--as")
    return principal_for(session, user)


@contextmanager
def read_unit(
    settings: Settings, *, username: str, action: str, params: dict[str, Any]
) -> Iterator[tuple[Session, Principal]]:
    """One read as a named user; a refusal is audited in a transaction of its own.

    The read's own transaction rolls back on a refusal, so, as the API's error handler does,
    ``console.reports_errors`` writes the refused attempt separately, under this read's action.
    """
    # A refusal is audited once, by reports_errors, under the read's action (as the API does).
    refusal_names(action, query=params)
    with open_database(settings) as database:
        with database.session() as session:
            principal = _principal(session, username)
            if not (principal.is_external and database.dialect == "postgresql"):
                yield session, principal
                return
        # An external account reads as the external database role (ADR 0004), in one
        # transaction with its audit entry.
        with database.session(external=True) as session:
            yield session, principal


def _params(query: PersonQuery | ArrestQuery) -> dict[str, Any]:
    return {k: str(v) for k, v in asdict(query).items() if v is not None}


@search_app.command("persons")
@reports_errors
def search_persons(
    as_user: AsUser,
    name: Annotated[str | None, typer.Option(help="Name prefix.")] = None,
    birth_date: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    birth_year: Annotated[int | None, typer.Option(help="Year of birth.")] = None,
    sid: str | None = None,
    fbi_number: str | None = None,
    offset: int = 0,
    limit: int | None = None,
    count: Count = False,
    purpose: Purpose = None,
    case_number: CaseNumber = None,
    on_behalf_of: OnBehalf = None,
    as_json: AsJSON = False,
    db: DbOption = None,
) -> None:
    """Search persons by name prefix, date or year of birth, SID or FBI number.

    The criteria, limit and offset are checked exactly as the API checks them.
    """
    query = PersonQuery(
        name=name,
        birth_date=birth_date.date() if birth_date else None,
        birth_year=birth_year,
        sid=sid,
        fbi_number=fbi_number,
        offset=offset,
        limit=limit,
        count=count,
    )
    context = ReadContext(purpose=purpose, case_number=case_number, on_behalf_of=on_behalf_of)
    with read_unit(
        settings_for(db), username=as_user, action="person.search", params=_params(query)
    ) as (session, principal):
        page = service.search_persons(session, principal=principal, query=query, context=context)
    if as_json:
        out.print_json(page.model_dump_json())
        return
    table = Table(title=f"{page.total}{'' if page.total_is_exact else '+'} persons")
    for column in ("id", "family name", "given name", "birth date", "SID"):
        table.add_column(column)
    for p in page.items:
        table.add_row(
            str(p.id), p.family_name or "", p.given_name or "", str(p.birth_date or ""), p.sid or ""
        )
    out.print(table)


@search_app.command("arrests")
@reports_errors
def search_arrests(
    as_user: AsUser,
    otn: str | None = None,
    incident_number: str | None = None,
    docket_number: str | None = None,
    arrested_from: When = None,
    arrested_to: When = None,
    statute: str | None = None,
    state: ArrestState | None = None,
    offset: int = 0,
    limit: int | None = None,
    count: Count = False,
    purpose: Purpose = None,
    case_number: CaseNumber = None,
    on_behalf_of: OnBehalf = None,
    as_json: AsJSON = False,
    db: DbOption = None,
) -> None:
    """Search arrests by OTN, incident or docket number, arrest time, statute or state.

    The criteria, limit and offset are checked exactly as the API checks them.
    """
    query = ArrestQuery(
        otn=otn,
        incident_number=incident_number,
        docket_number=docket_number,
        arrested_from=_instant(arrested_from, "arrested_from"),
        arrested_to=_instant(arrested_to, "arrested_to"),
        statute=statute,
        state=state,
        offset=offset,
        limit=limit,
        count=count,
    )
    context = ReadContext(purpose=purpose, case_number=case_number, on_behalf_of=on_behalf_of)
    with read_unit(
        settings_for(db), username=as_user, action="arrest.search", params=_params(query)
    ) as (session, principal):
        page = service.search_arrests(session, principal=principal, query=query, context=context)
    if as_json:
        out.print_json(page.model_dump_json())
        return
    table = Table(title=f"{page.total}{'' if page.total_is_exact else '+'} arrests")
    for column in ("id", "OTN", "arrested at", "state", "docket"):
        table.add_column(column)
    for a in page.items:
        table.add_row(
            str(a.id),
            a.otn or "",
            a.arrested_at.isoformat() if a.arrested_at else "",
            a.state.value if a.state else "",
            a.docket_number or "",
        )
    out.print(table)


@show_app.command("person")
@reports_errors
def show_person(
    person_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    as_user: AsUser,
    purpose: Purpose = None,
    case_number: CaseNumber = None,
    on_behalf_of: OnBehalf = None,
    db: DbOption = None,
) -> None:
    """One person with every involvement the account may see, as JSON."""
    context = ReadContext(purpose=purpose, case_number=case_number, on_behalf_of=on_behalf_of)
    with read_unit(
        settings_for(db), username=as_user, action="person.get", params={"person_id": person_id}
    ) as (session, principal):
        result = service.get_person(
            session, principal=principal, person_id=person_id, context=context
        )
    out.print_json(result.model_dump_json())


@show_app.command("arrest")
@reports_errors
def show_arrest(
    arrest_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    as_user: AsUser,
    purpose: Purpose = None,
    case_number: CaseNumber = None,
    on_behalf_of: OnBehalf = None,
    db: DbOption = None,
) -> None:
    """One arrest with everything in it the account may see, as JSON."""
    context = ReadContext(purpose=purpose, case_number=case_number, on_behalf_of=on_behalf_of)
    with read_unit(
        settings_for(db), username=as_user, action="arrest.get", params={"arrest_id": arrest_id}
    ) as (session, principal):
        result = service.get_arrest(
            session, principal=principal, arrest_id=arrest_id, context=context
        )
    out.print_json(result.model_dump_json())


__all__ = ["search_app", "show_app"]
