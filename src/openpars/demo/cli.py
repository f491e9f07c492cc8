"""``openpars demo``: a running openpars with realistic synthetic data, in one command.

Re-running on a database that already holds the demo is safe: nothing is generated again, every
demo account gets a fresh token, password and authenticator secret, and the credentials file is
rewritten (secrets are never stored readable, so old ones cannot be shown again). A database
holding anything else is refused.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import inspect

from openpars.config import Settings
from openpars.console import (
    DbOption,
    err,
    fail,
    migrations_present,
    open_database,
    out,
    progress,
    reports_errors,
    run_server,
    settings_for,
)
from openpars.db import Base, make_engine
from openpars.demo.agreements import seed_agreements
from openpars.demo.generate import plan_arrests
from openpars.demo.oversight import seed_oversight
from openpars.demo.seed import (
    CITY,
    COURT,
    DA,
    FBI,
    Credential,
    SeedSummary,
    create_accounts,
    demo_state,
    enrol_authenticators,
    issue_tokens,
    seed_arrests,
)
from openpars.identity import mfa
from openpars.identity import mfa_crypto as crypto
from openpars.models import load_all_models
from openpars.oversight.explain import rules_from


def ensure_schema(url: str) -> None:
    """Bring the schema up: the migrations when this build ships them, else from the models.

    A database whose tables were created from the models (tests, or before migrations existed)
    has no Alembic version table; it is left as it is rather than migrated over itself.
    """
    load_all_models()
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        if migrations_present() and (not tables or "alembic_version" in tables):
            from openpars.migrate import upgrade

            upgrade(url)
        elif not tables:
            Base.metadata.create_all(engine)
    finally:
        engine.dispose()


def build_demo(
    settings: Settings, *, arrests: int, seed: int
) -> tuple[list[Credential], SeedSummary | None]:
    """Create (or find) the demo site and issue fresh tokens; None summary when it existed."""
    ensure_schema(settings.database_url)
    summary = None
    agreement_id = 0
    with open_database(settings) as database, database.session() as session:
        state = demo_state(session)
        if state == "other":
            fail(
                "this database already holds agencies that are not the demo's; run the demo on "
                "a new database, e.g. --db sqlite:///demo.db",
                field="db",
            )
        if state == "empty":
            create_accounts(session)
            agreement_id = seed_agreements(session, grantee=FBI, owners=(DA, COURT, CITY))
            plan = plan_arrests(arrests, seed)
            with progress() as bar:
                task = bar.add_task("entering arrests", total=len(plan.arrests))
                summary = seed_arrests(session, plan, on_arrest=lambda: bar.advance(task))
    with open_database(settings) as database:
        if summary is not None:
            # The arrests are committed: the analyst's reads run in units of their own, as
            # requests do; then the detectors and the renewal see them.
            summary.oversight = seed_oversight(
                database, agreement_id=agreement_id, rules=rules_from(settings)
            )
        with database.session() as session:
            lifetime = timedelta(days=settings.token_lifetime_days)
            credentials = issue_tokens(session, lifetime=lifetime)
            key = crypto.load_key(settings, may_create=not mfa.any_enrolled(session))
            enrol_authenticators(session, credentials, key=key, issuer=settings.site_name)
    return credentials, summary


def write_credentials(path: Path, base_url: str, credentials: list[Credential]) -> None:
    """The credentials file: base URL and every account with its token and password (0600)."""
    document = {
        "base_url": base_url,
        "users": [
            {
                "username": c.username,
                "agency": c.agency,
                "roles": c.roles,
                "token": c.token,
                "password": c.password,
                "totp_secret": c.totp_secret,
                "otpauth_uri": c.otpauth_uri,
            }
            for c in credentials
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)


def print_instructions(
    base_url: str, path: Path, credentials: list[Credential], summary: SeedSummary | None
) -> None:
    """How to log in and what to try first."""
    if summary is None:
        out.print("the database already holds the demo; nothing generated, new tokens issued")
    else:
        states = ", ".join(f"{n} {s}" for s, n in sorted(summary.states.items()))
        out.print(
            f"created {summary.arrests} arrests ({states}; {summary.sealed} sealed) "
            f"involving {summary.persons} persons"
        )
        if summary.oversight is not None:
            made = summary.oversight
            out.print(
                f"the FBI analyst made {made.reads} reads; the detectors raised {made.flags} "
                f"flags (review them at {base_url}/oversight as 'oversight'); renewal proposal "
                f"{made.proposal_id} awaits the owners' votes ({base_url}/proposals/"
                f"{made.proposal_id}, its what-if replay and oversight report)",
                soft_wrap=True,
            )
    table = Table("username", "agency", "roles", title="demo accounts")
    for c in credentials:
        table.add_row(c.username, c.agency, ", ".join(c.roles))
    out.print(table)
    reader = next(c for c in credentials if c.username == "reader")
    out.print(f"tokens for every account are in {path}; for example, as '{reader.username}':")
    out.print(
        f'  curl -H "Authorization: Bearer {reader.token}" {base_url}/api/v1/users/me',
        markup=False,
        soft_wrap=True,
    )
    out.print(f"API docs: {base_url}/docs  (OpenAPI: {base_url}/openapi.json)")
    charging = next(c for c in credentials if c.username == "charging")
    out.print(
        f"in a browser: {base_url}/login as '{charging.username}' with the password "
        f"'{charging.password}' and the one-time code of the TOTP secret {charging.totp_secret} "
        f"(every account's password and secret are in {path}; add its otpauth_uri to an "
        "authenticator app, or print the current code with "
        f".venv/bin/python -c \"import pyotp; print(pyotp.TOTP('{charging.totp_secret}').now())\")",
        markup=False,
        soft_wrap=True,
    )


@reports_errors
def demo(
    db: DbOption = None,
    arrests: Annotated[int, typer.Option(min=0, max=1_000_000, help="Arrests to create.")] = 500,
    seed: Annotated[int, typer.Option(min=0, help="Random seed: same seed, same data.")] = 1,
    credentials_out: Annotated[
        Path, typer.Option(dir_okay=False, help="Where to write the tokens (JSON).")
    ] = Path("credentials.json"),
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Set up, then exit.")] = False,
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8000,
) -> None:
    """Create a demo site with synthetic arrests, write its credentials, and serve it.

    Same seed, same data. Run again on a database that holds the demo, it generates nothing and
    issues every account a fresh token; a database holding anything else is refused.
    """
    settings = settings_for(db)
    base_url = f"http://{host}:{port}"
    err.print(f"demo database: {settings.database_url}")
    credentials, summary = build_demo(settings, arrests=arrests, seed=seed)
    write_credentials(credentials_out, base_url, credentials)
    print_instructions(base_url, credentials_out, credentials, summary)
    if not no_serve:
        run_server(settings, host=host, port=port)
