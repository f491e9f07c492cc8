"""The ``openpars`` command: one root Typer app assembled from each feature's commands."""

from __future__ import annotations

import typer

from openpars import __version__
from openpars.access.cli import search_app, show_app
from openpars.audit.cli import app as audit_app
from openpars.cli import db, serve
from openpars.demo.cli import demo
from openpars.identity.cli import agency_app, token_app, user_app
from openpars.records.cli import import_arrests

app = typer.Typer(
    name="openpars",
    help="openpars: real-time arrest reporting with governed, audited data sharing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(agency_app, name="agency")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(search_app, name="search")
app.add_typer(show_app, name="show")
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
