"""``openpars db``: bring the schema up to date and check it matches the code."""

from __future__ import annotations

import typer

from openpars import migrate
from openpars.console import (
    DbOption,
    err,
    fail,
    migrations_present,
    out,
    reports_errors,
    settings_for,
)

app = typer.Typer(help="Database schema: migrate and check for drift.", no_args_is_help=True)


@app.command("upgrade")
@reports_errors
def upgrade(db: DbOption = None, revision: str = typer.Option("head", help="Target.")) -> None:
    """Apply the migrations up to REVISION (default: the newest)."""
    settings = settings_for(db)
    if not migrations_present():
        fail(
            "this openpars build ships no migrations; reinstall it or run from a full checkout",
            field="revision",
        )
    migrate.upgrade(settings.database_url, revision)
    out.print(f"database is at migration {revision}: {settings.database_url}")


@app.command("check")
@reports_errors
def check(db: DbOption = None) -> None:
    """Exit non-zero if the database schema differs from the models (migration drift)."""
    settings = settings_for(db)
    differences = migrate.drift(settings.database_url)
    if differences:
        err.print(f"{len(differences)} difference(s) between the database and the models:")
        for difference in differences:
            err.print(f"  {difference}", markup=False, soft_wrap=True)
        fail("the schema has drifted; write a migration for the model change", field="schema")
    out.print("no drift: the database matches the models")
