"""The ``openpars`` command: one root Typer app assembled from each feature's commands."""

from __future__ import annotations

import typer

from openpars import __version__
from openpars.access.cli import search_app, show_app
from openpars.agreements.cli import agreement_app, floor_app
from openpars.audit.cli import app as audit_app
from openpars.cli import db, serve
from openpars.demo.cli import demo
from openpars.governance.cli import board_app, proposal_app
from openpars.governance.cli_signing import keys_app, vote_app
from openpars.identity.cli import agency_app, session_app, token_app, user_app
from openpars.identity.mfa_cli import mfa_app
from openpars.oversight import transparency_cli  # noqa: F401  (registers `report transparency`)
from openpars.oversight.cli import app as oversight_app
from openpars.oversight.report_cli import app as report_app
from openpars.records.cli import import_arrests

app = typer.Typer(
    name="openpars",
    help="openpars: real-time arrest reporting with governed, audited data sharing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Each feature owns its commands; the root only names them.
user_app.add_typer(mfa_app, name="mfa")
for group, name in (
    (db.app, "db"),
    (agency_app, "agency"),
    (user_app, "user"),
    (token_app, "token"),
    (session_app, "session"),
    (search_app, "search"),
    (show_app, "show"),
    (agreement_app, "agreement"),
    (floor_app, "floor"),
    (proposal_app, "proposal"),
    (vote_app, "vote"),
    (keys_app, "keys"),
    (board_app, "board"),
    (audit_app, "audit"),
    (oversight_app, "oversight"),
    (report_app, "report"),
):
    app.add_typer(group, name=name)
app.command("serve")(serve.serve)
app.command("import")(import_arrests)
app.command("demo")(demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"openpars {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """openpars: real-time arrest reporting with governed, audited data sharing."""


def main() -> None:
    """Console-script entry point."""
    app()
