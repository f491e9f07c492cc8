"""``openpars user mfa enrol|reset|status``: an account's second factor, at the console.

A person normally enrols their own authenticator at their first logon (docs/accounts.md). The
console enrols one for a person handed a phone in person, and resets one that was lost. Every
act is audited like the same act through the API.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from openpars.audit.events import AuditKind
from openpars.console import DbOption, audit_console, fail, out, reports_errors, settings_for, unit
from openpars.identity import mfa
from openpars.identity import mfa_crypto as crypto
from openpars.identity.cli import find_user
from openpars.identity.principal import SYSTEM

mfa_app = typer.Typer(help="Multi-factor authentication: enrol an authenticator, reset one.")


@mfa_app.command("enrol")
@reports_errors
def mfa_enrol(
    username: str,
    qr_svg: Annotated[
        Path | None,
        typer.Option("--qr-svg", dir_okay=False, help="Also write the QR code to this SVG file."),
    ] = None,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm/--no-confirm",
            help="Ask for the authenticator's first code before enrolling (the default); "
            "--no-confirm enrols at once, for scripted set-ups that keep the secret.",
        ),
    ] = True,
    db: DbOption = None,
) -> None:
    """Enrol a TOTP authenticator for a user: shows the secret and its QR code, then the ten
    recovery codes (each shown once)."""
    settings = settings_for(db)
    if confirm and not sys.stdin.isatty():
        fail("no terminal to type the first code at; use --no-confirm to enrol without one")
    with unit(settings) as session:
        user = find_user(session, username)
        key = crypto.load_key(settings, may_create=not mfa.any_enrolled(session))
        started = mfa.console_start(
            session, actor=SYSTEM, user_id=user.id, key=key, issuer=settings.site_name
        )
        user_id = user.id
    out.print(f"secret for {username}: {started.secret}", markup=False)
    out.print(started.uri, markup=False, soft_wrap=True)
    if qr_svg is not None:
        qr_svg.write_text(started.qr_svg, encoding="utf-8")
        out.print(f"QR code written to {qr_svg}", markup=False)
    code = typer.prompt("Code the authenticator shows now") if confirm else None
    with unit(settings) as session:
        codes = mfa.console_confirm(session, actor=SYSTEM, user_id=user_id, key=key, code=code)
    out.print(f"{username} is enrolled. Recovery codes (each works once; shown only now):")
    for recovery in codes:
        out.print(f"  {recovery}", markup=False)


@mfa_app.command("reset")
@reports_errors
def mfa_reset(username: str, db: DbOption = None) -> None:
    """Clear a user's authenticator and recovery codes (a lost phone): the user enrols again at
    the next logon; their open sessions end now."""
    with unit(settings_for(db)) as session:
        user = find_user(session, username)
        mfa.reset(session, actor=SYSTEM, user_id=user.id)
    out.print(f"the MFA of {username} is reset; they enrol again at their next logon")


@mfa_app.command("status")
@reports_errors
def mfa_status(username: str, db: DbOption = None) -> None:
    """Whether a user is enrolled, since when, and how many recovery codes are left."""
    with unit(settings_for(db)) as session:
        user = find_user(session, username)
        left = mfa.remaining_recovery_codes(session, user.id)
        audit_console(session, kind=AuditKind.ACCOUNT, action="mfa.status", user=user.id)
        since = user.mfa_enrolled_at
    if since is None:
        out.print(f"{username} has no authenticator enrolled; they enrol at their next logon")
    else:
        out.print(f"{username} enrolled at {since.isoformat()}; {left} recovery codes left")
