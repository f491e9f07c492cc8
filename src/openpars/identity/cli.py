"""``openpars agency|user|token``: local administration of accounts at the console.

The operator at the console acts as the ``system`` principal; every act is audited like the
same act through the API.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from openpars.audit.events import AuditKind
from openpars.console import (
    DbOption,
    audit_console,
    err,
    fail,
    out,
    reports_errors,
    settings_for,
    unit,
)
from openpars.db import utcnow
from openpars.errors import NotFound
from openpars.identity import logon, service
from openpars.identity import repository as repo
from openpars.identity.models import Agency, User
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import AgencyKind, Role
from openpars.identity.schemas import AgencyCreate, UserCreate, UserProfile
from openpars.ranges import INT32_MAX

agency_app = typer.Typer(help="Agencies: police, DA, court, city, defender, external.")
user_app = typer.Typer(help="User accounts and their roles.")
session_app = typer.Typer(help="Logon sessions: list a user's, end one at once.")
token_app = typer.Typer(help="API tokens (stored hashed; the secret is shown once).")

LIST_LIMIT = 10_000


def find_agency(session: Session, ref: str) -> Agency:
    """An agency by id, ORI or exact name."""
    agency = repo.get_agency(session, int(ref)) if ref.isdigit() else None
    agency = agency or repo.get_agency_by_ori(session, ref) or repo.get_agency_by_name(session, ref)
    if agency is None:
        raise NotFound(f"no agency has the id, ORI or name '{ref}'", field="agency")
    return agency


def find_user(session: Session, username: str) -> User:
    """A user by username."""
    user = repo.get_user_by_username(session, username)
    if user is None:
        raise NotFound(f"no user is called '{username}'", field="username")
    return user


# ---- agencies ------------------------------------------------------------------------------


@agency_app.command("create")
@reports_errors
def agency_create(
    name: Annotated[str, typer.Argument(help="Full name, unique.")],
    kind: Annotated[AgencyKind, typer.Option(help="What the agency is.")],
    ori: Annotated[str | None, typer.Option(help="9-character ORI, e.g. PAPEP0000.")] = None,
    parent: Annotated[
        str | None, typer.Option(help="Parent agency (id, ORI or name) for a sub-unit.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Register an agency, or a sub-unit of one with --parent."""
    with unit(settings_for(db)) as session:
        parent_id = find_agency(session, parent).id if parent else None
        data = AgencyCreate(name=name, kind=kind, ori=ori, parent_id=parent_id)
        agency = service.create_agency(session, actor=SYSTEM, data=data)
        audit_console(session, kind=AuditKind.ACCOUNT, action="agency.create", agency=agency.id)
        out.print(f"created agency {agency.id}: {agency.name} ({agency.kind.value})")


@agency_app.command("list")
@reports_errors
def agency_list(db: DbOption = None) -> None:
    """List every agency."""
    with unit(settings_for(db)) as session:
        agencies = repo.list_agencies(session, offset=0, limit=LIST_LIMIT)
        audit_console(session, kind=AuditKind.ACCOUNT, action="agency.list")
        table = Table("id", "name", "kind", "ORI", "parent")
        for a in agencies:
            table.add_row(str(a.id), a.name, a.kind.value, a.ori or "", str(a.parent_id or ""))
    out.print(table)


# ---- users ---------------------------------------------------------------------------------


@user_app.command("create")
@reports_errors
def user_create(
    username: Annotated[str, typer.Argument(help="Login name: lower case, digits, . _ -")],
    agency: Annotated[str, typer.Option(help="The user's agency (id, ORI or name).")],
    role: Annotated[list[Role], typer.Option(help="A role; repeat for several.")],
    display_name: Annotated[str | None, typer.Option(help="Full name shown in logs.")] = None,
    db: DbOption = None,
) -> None:
    """Create a user in an agency with one or more roles."""
    with unit(settings_for(db)) as session:
        data = UserCreate(
            username=username,
            display_name=display_name or username,
            agency_id=find_agency(session, agency).id,
            roles=role,
        )
        user = service.create_user(session, actor=SYSTEM, data=data)
        audit_console(
            session,
            kind=AuditKind.ACCOUNT,
            action="user.create",
            user=user.id,
            roles=service.role_names(user.roles),
        )
        out.print(f"created user {user.id}: {user.username} ({', '.join(sorted(role))})")


@user_app.command("list")
@reports_errors
def user_list(
    agency: Annotated[str | None, typer.Option(help="Only this agency's users.")] = None,
    db: DbOption = None,
) -> None:
    """List users with their agency, roles and status."""
    with unit(settings_for(db)) as session:
        agency_id = find_agency(session, agency).id if agency else None
        users = repo.list_users(session, agency_id=agency_id, offset=0, limit=LIST_LIMIT)
        audit_console(session, kind=AuditKind.ACCOUNT, action="user.list", agency=agency_id)
        table = Table("id", "username", "agency", "roles", "active")
        for u in users:
            roles = ", ".join(service.role_names(u.roles))
            table.add_row(
                str(u.id), u.username, u.agency.name, roles, "yes" if u.is_active else "no"
            )
    out.print(table)


@user_app.command("roles")
@reports_errors
def user_roles(
    username: str,
    role: Annotated[list[Role], typer.Option(help="A role the user holds after; repeat.")],
    db: DbOption = None,
) -> None:
    """Replace a user's roles with the --role ones (separation of duties applies; the console
    grants no vote); the user's logon sessions end, audited with the roles before and after."""
    with unit(settings_for(db)) as session:
        user = find_user(session, username)
        changed = service.set_user_roles(
            session, actor=SYSTEM, user_id=user.id, roles=frozenset(role)
        )
        before, after = service.role_names(changed.before), service.role_names(changed.after)
    out.print(
        f"{username}: roles {', '.join(before)} -> {', '.join(after)}; "
        f"{changed.sessions_ended} open session(s) ended"
    )


def _set_active(db: str | None, username: str, *, active: bool) -> None:
    with unit(settings_for(db)) as session:
        user = find_user(session, username)
        service.set_user_active(session, actor=SYSTEM, user_id=user.id, active=active)
        action = "user.enable" if active else "user.disable"
        audit_console(session, kind=AuditKind.ACCOUNT, action=action, user=user.id)
    out.print(f"{username} is now {'enabled' if active else 'disabled'}")


@user_app.command("profile")
@reports_errors
def user_profile(
    username: str,
    family_name: Annotated[
        str | None, typer.Option(help="The user's own surname (oversight flags lookups of it).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="The user's home address (oversight flags lookups of it).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Set the surname and address oversight compares the user's lookups with (omit to clear)."""
    with unit(settings_for(db)) as session:
        user = find_user(session, username)
        data = UserProfile(family_name=family_name, address=address)
        service.set_user_profile(session, actor=SYSTEM, user_id=user.id, data=data)
        audit_console(session, kind=AuditKind.ACCOUNT, action="user.profile", user=user.id)
    out.print(f"{username}: surname {family_name or '(none)'}, address {address or '(none)'}")


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            fail("standard input held no password (one line expected)", field="--stdin")
        return password
    if not sys.stdin.isatty():
        fail("no terminal to prompt for the password; pipe it in with --stdin", field="--stdin")
    entered: str = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    return entered


@user_app.command("password")
@reports_errors
def user_password(
    username: str,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from the first line of stdin.")
    ] = False,
    force_change: Annotated[
        bool,
        typer.Option(
            "--force-change/--no-force-change",
            help="Make the user choose a new password at the next logon (a reset's default).",
        ),
    ] = True,
    db: DbOption = None,
) -> None:
    """Set (reset) a user's password; it is checked against the rules and stored hashed."""
    password = read_password(stdin)
    settings = settings_for(db)
    with unit(settings) as session:
        user = find_user(session, username)
        service.set_password(
            session,
            actor=SYSTEM,
            user_id=user.id,
            new_password=password,
            min_length=settings.password_min_length,
            force_change=force_change,
        )
        audit_console(
            session,
            kind=AuditKind.ACCOUNT,
            action="user.password.reset",
            user=user.id,
            force_change=force_change,
        )
    then = "; it must be changed at the next logon" if force_change else ""
    out.print(f"the password of {username} is set{then}")


@user_app.command("unlock")
@reports_errors
def user_unlock(username: str, db: DbOption = None) -> None:
    """Release an account locked after 5 failed logons."""
    with unit(settings_for(db)) as session:
        user = find_user(session, username)
        logon.unlock(session, actor=SYSTEM, user_id=user.id)
        audit_console(session, kind=AuditKind.ACCOUNT, action="account.unlock", user=user.id)
    out.print(f"{username} is unlocked and may log on again")


@user_app.command("disable")
@reports_errors
def user_disable(username: str, db: DbOption = None) -> None:
    """Disable an account; its tokens stop working at once."""
    _set_active(db, username, active=False)


@user_app.command("enable")
@reports_errors
def user_enable(username: str, db: DbOption = None) -> None:
    """Enable a disabled account again."""
    _set_active(db, username, active=True)


# ---- tokens --------------------------------------------------------------------------------


@token_app.command("issue")
@reports_errors
def token_issue(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    days: Annotated[int | None, typer.Option(min=1, max=366, help="Lifetime in days.")] = None,
    db: DbOption = None,
) -> None:
    """Issue an API token for a user and print its secret (shown this once)."""
    settings = settings_for(db)
    with unit(settings) as session:
        user = find_user(session, username)
        lifetime = timedelta(days=days or settings.token_lifetime_days)
        token, secret = service.issue_token(
            session, actor=SYSTEM, user_id=user.id, name=name, lifetime=lifetime
        )
        audit_console(
            session, kind=AuditKind.TOKEN, action="token.issue", token=token.id, user=user.id
        )
        expires = token.expires_at.isoformat(timespec="seconds")
    err.print(f"token {token.id} for {username}, expires {expires}; store it now:")
    out.print(secret, markup=False)


@token_app.command("list")
@reports_errors
def token_list(username: str, db: DbOption = None) -> None:
    """List a user's tokens (never their secrets)."""
    with unit(settings_for(db)) as session:
        user = find_user(session, username)
        tokens = repo.list_tokens(session, user_id=user.id)
        audit_console(session, kind=AuditKind.TOKEN, action="token.list", user=user.id)
        table = Table("id", "name", "prefix", "created", "expires", "revoked")
        for t in tokens:
            table.add_row(
                str(t.id),
                t.name,
                t.prefix,
                t.created_at.isoformat(timespec="seconds"),
                t.expires_at.isoformat(timespec="seconds"),
                t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else "",
            )
    out.print(table)


@token_app.command("revoke")
@reports_errors
def token_revoke(
    token_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)], db: DbOption = None
) -> None:
    """Revoke a token at once."""
    with unit(settings_for(db)) as session:
        service.revoke_token(session, actor=SYSTEM, token_id=token_id)
        audit_console(session, kind=AuditKind.TOKEN, action="token.revoke", token=token_id)
    out.print(f"token {token_id} is revoked")


# ---- logon sessions ------------------------------------------------------------------------


@session_app.command("list")
@reports_errors
def session_list(
    username: str,
    limit: Annotated[int, typer.Option(min=1, max=LIST_LIMIT, help="Newest first.")] = 50,
    db: DbOption = None,
) -> None:
    """List a user's logon sessions, newest first (never their secrets)."""
    with unit(settings_for(db)) as session:
        user = find_user(session, username)
        rows = repo.list_logon_sessions(session, user_id=user.id, offset=0, limit=limit)
        audit_console(session, kind=AuditKind.ACCOUNT, action="session.list", user=user.id)
        table = Table("id", "stage", "created", "last seen", "expires", "ended", "from")
        for row in rows:
            ended = row.ended_at.isoformat(timespec="seconds") if row.ended_at else ""
            table.add_row(
                str(row.id),
                logon.stage_of(row).value,
                row.created_at.isoformat(timespec="seconds"),
                row.last_seen_at.isoformat(timespec="seconds"),
                row.expires_at.isoformat(timespec="seconds"),
                f"{ended} {row.end_reason or ''}".strip(),
                row.source_ip or "",
            )
    out.print(table)


@session_app.command("end")
@reports_errors
def session_end(
    session_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)], db: DbOption = None
) -> None:
    """End a logon session at once; its cookie stops working."""
    with unit(settings_for(db)) as session:
        logon.end_session(session, actor=SYSTEM, session_id=session_id)
        audit_console(session, kind=AuditKind.ACCOUNT, action="session.end", session_id=session_id)
    out.print(f"session {session_id} is ended")


@session_app.command("end-all")
@reports_errors
def session_end_all(username: str, db: DbOption = None) -> None:
    """End every open logon session of a user at once (a stolen laptop, a departure)."""
    with unit(settings_for(db)) as session:
        user = find_user(session, username)
        ended = logon.end_all_sessions(
            session, user_id=user.id, reason="ended_by_admin", now=utcnow()
        )
        audit_console(
            session, kind=AuditKind.ACCOUNT, action="session.end", user=user.id, sessions=ended
        )
    out.print(f"{ended} open session(s) of {username} ended")
