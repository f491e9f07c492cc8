"""``openpars agreement ...`` and ``openpars floor ...``: agreements and the site floor.

The operator acts as ``system`` unless ``--as USERNAME`` names an account; every act is audited
by the service it calls, exactly as through the API. Documents are JSON files (``-`` is stdin).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from openpars.agreements import floor as floors
from openpars.agreements import killswitch, lifecycle, service
from openpars.agreements.models import AgreementStatus, SuspensionTarget
from openpars.agreements.schemas import parse_document
from openpars.console import DbOption, out, refusal_names, reports_errors, settings_for, unit
from openpars.db import utcnow
from openpars.errors import InvalidInput, NotFound
from openpars.governance.decisions import void_stale_now
from openpars.identity import repository as identity_repo
from openpars.identity.principal import SYSTEM, Principal
from openpars.identity.roles import Permission
from openpars.identity.service import principal_for
from openpars.ranges import INT32_MAX

app = typer.Typer(help="Data-sharing agreements and the site floor.", no_args_is_help=True)
agreement_app = typer.Typer(help="Data-sharing agreements: drafts, versions, kill switch.")
floor_app = typer.Typer(help="The site floor: what no external agreement may ever grant.")
app.add_typer(agreement_app, name="agreement")
app.add_typer(floor_app, name="floor")

AsOption = Annotated[
    str | None,
    typer.Option("--as", help="Act as this user (default: the console's system account)."),
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why; kept in the history.")]
FileArgument = Annotated[str, typer.Argument(help="JSON document file, or - for stdin.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a summary.")]


def _actor(session: Session, username: str | None) -> Principal:
    if username is None:
        return SYSTEM
    user = identity_repo.get_user_by_username(session, username)
    if user is None:
        raise NotFound(f"no user is called '{username}'", field="as")
    return principal_for(session, user)


def load_document(path: str) -> dict[str, Any]:
    """A JSON object from a file ('-': stdin), or InvalidInput naming the file."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"file: not valid JSON ({exc.msg} at line {exc.lineno})", field="file"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidInput("file: the document must be a JSON object", field="file")
    return data


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


@agreement_app.command("create")
@reports_errors
def create(path: FileArgument, as_user: AsOption = None, db: DbOption = None) -> None:
    """Create an agreement as a draft from a JSON document."""
    document = parse_document(load_document(path))
    with unit(settings_for(db)) as session:
        agreement = service.create_agreement(session, actor=_actor(session, as_user), data=document)
        version = service.current_version(session, agreement=agreement)
        out.print(
            f"created agreement {agreement.id} '{agreement.name}' as a draft, version "
            f"{version.version} (sha256 {version.content_hash})"
        )


@agreement_app.command("update")
@reports_errors
def update(
    agreement_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    path: FileArgument,
    reason: ReasonOption,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Write a new version of an agreement from a complete JSON document."""
    document = parse_document(load_document(path))
    with unit(settings_for(db)) as session:
        agreement = service.update_agreement(
            session,
            actor=_actor(session, as_user),
            agreement_id=agreement_id,
            data=document,
            reason=reason,
        )
        version = service.current_version(session, agreement=agreement)
        out.print(
            f"agreement {agreement.id} is now at version {version.version} "
            f"(sha256 {version.content_hash})"
        )
    # Proposals on the replaced version are voided at once, in a transaction of their own.
    with unit(settings_for(db)) as session:
        events = void_stale_now(session, agreement_id=agreement_id, actor=_actor(session, as_user))
    for event in events:
        out.print(f"proposal {event.proposal_id} voided: {event.detail}")


@agreement_app.command("show")
@reports_errors
def show(
    agreement_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    as_json: JsonOption = False,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Show an agreement, its status and every version."""
    with unit(settings_for(db)) as session:
        result = service.show_agreement(
            session, actor=_actor(session, as_user), agreement_id=agreement_id
        )
    if as_json:
        _print_json(result.model_dump(mode="json"))
        return
    out.print(f"agreement {result.id}: {result.name}", markup=False)
    out.print(
        f"  grantee agency {result.grantee_agency_id}; status {result.status.value} "
        f"(effective now: {result.effective_status.value})"
    )
    out.print(
        f"  in force {result.in_force_from or '-'} to {result.in_force_until or '-'}, "
        f"version {result.active_version or '-'} in force"
    )
    for v in result.versions:
        out.print(
            f"  v{v.version} {v.created_at:%Y-%m-%d %H:%M} by {v.created_by}: "
            f"{v.reason} (sha256 {v.content_hash[:16]}...)",
            markup=False,
        )


@agreement_app.command("list")
@reports_errors
def list_(
    status: Annotated[AgreementStatus | None, typer.Option(help="Only this status.")] = None,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """List agreements."""
    with unit(settings_for(db)) as session:
        page = service.list_agreements(
            session, actor=_actor(session, as_user), offset=0, limit=500, status=status
        )
    table = Table("id", "name", "grantee", "status", "effective", "version", "until")
    for a in page.items:
        table.add_row(
            str(a.id),
            a.name,
            str(a.grantee_agency_id),
            a.status.value,
            a.effective_status.value,
            str(a.current_version),
            f"{a.in_force_until or ''}",
        )
    out.print(table)
    out.print(f"{page.total} agreement(s)")


@agreement_app.command("propose")
@reports_errors
def propose(
    agreement_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    reason: ReasonOption = "proposed for approval",
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Check a draft against the site floor and submit it for the stakeholders' vote."""
    with unit(settings_for(db)) as session:
        agreement = lifecycle.propose(
            session, actor=_actor(session, as_user), agreement_id=agreement_id, reason=reason
        )
        version = service.current_version(session, agreement=agreement)
        out.print(
            f"agreement {agreement.id} is pending approval; the vote binds to version "
            f"{version.version}, sha256 {version.content_hash}"
        )


@agreement_app.command("suspend")
@reports_errors
def suspend(
    agreement_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    reason: ReasonOption,
    target: Annotated[SuspensionTarget, typer.Option(help="What to cut off.")] = (
        SuspensionTarget.AGREEMENT
    ),
    target_id: Annotated[int | None, typer.Option(help="The unit or account id.")] = None,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Kill switch: cut off the agreement, one sub-unit or one account, from now."""
    with unit(settings_for(db)) as session:
        actor = _actor(session, as_user)
        actor.require(Permission.AGREEMENT_SUSPEND)
        row = killswitch.suspend(
            session,
            actor=actor,
            agreement_id=agreement_id,
            target=target,
            target_id=target_id,
            reason=reason,
        )
        out.print(
            f"suspension {row.id}: {target.value} {row.target_id} cut off from "
            f"{row.suspended_at.isoformat()}; resume with 'openpars agreement resume "
            f"{row.id}'"
        )


@agreement_app.command("resume")
@reports_errors
def resume(
    suspension_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    reason: ReasonOption,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Lift one kill-switch suspension, from now: only as the stakeholder that imposed it."""
    # A refusal is audited once, by reports_errors, under the act's own name.
    refusal_names("agreement.resume", suspension_id=suspension_id)
    with unit(settings_for(db)) as session:
        actor = _actor(session, as_user)
        row = killswitch.resume(session, actor=actor, suspension_id=suspension_id, reason=reason)
        out.print(f"suspension {suspension_id} lifted at {row.resumed_at.isoformat()}")


@agreement_app.command("timeline")
@reports_errors
def timeline(
    agreement_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    as_json: JsonOption = False,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Every version, status change and kill-switch act of an agreement, oldest first."""
    with unit(settings_for(db)) as session:
        events = service.timeline(
            session, actor=_actor(session, as_user), agreement_id=agreement_id
        )
    if as_json:
        _print_json([e.model_dump(mode="json") for e in events])
        return
    table = Table("at", "event", "status", "version", "by", "reason")
    for e in events:
        change = (
            f"{e.from_status or ''} -> {e.to_status or ''}"
            if e.from_status
            else str(e.to_status or "")
        )
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.kind.value,
            change,
            str(e.version or ""),
            e.by,
            e.reason or "",
        )
    out.print(table)


@floor_app.command("show")
@reports_errors
def floor_show(as_user: AsOption = None, db: DbOption = None) -> None:
    """Show the site floor in force (JSON) and who set it."""
    with unit(settings_for(db)) as session:
        result = floors.show_floor(session, actor=_actor(session, as_user))
    origin = (
        f"version {result.version}, set by {result.changed_by} at {result.changed_at}"
        if result.version
        else "shipped defaults"
    )
    out.print(f"site floor ({origin}); sha256 {result.content_hash}", markup=False)
    _print_json(result.floor)


@floor_app.command("set")
@reports_errors
def floor_set(
    path: FileArgument, reason: ReasonOption, as_user: AsOption = None, db: DbOption = None
) -> None:
    """Tighten the site floor from a JSON document; a loosening needs a floor proposal."""
    floor = floors.parse_floor(load_document(path))
    with unit(settings_for(db)) as session:
        row = floors.set_floor(
            session, actor=_actor(session, as_user), floor=floor, reason=reason, at=utcnow()
        )
        out.print(f"site floor version {row.version} set (sha256 {row.content_hash})")
