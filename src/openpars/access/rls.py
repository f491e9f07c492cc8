"""PostgreSQL row-level security: a backstop that holds even if application code has a bug.

The application marks each external caller's transaction with ``openpars.external = 'on'``
(transaction-local). Restrictive policies then hide, whatever SQL runs, the roles the site floor
forbids (victims, witnesses, complainants, affiants), sealed and expunged arrests, and persons
who have no other involvement. Internal transactions are unaffected. RLS does not bind superusers
or roles with BYPASSRLS, so production connects as an ordinary role (see docs/architecture.md).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from openpars.db import register_schema_ddl

EXTERNAL_FLAG = "openpars.external"
FLOOR_ROLES = ("victim", "witness", "complainant", "affiant")

_EXTERNAL = f"coalesce(current_setting('{EXTERNAL_FLAG}', true), '') = 'on'"
_ROLES = ", ".join(f"'{r}'" for r in FLOOR_ROLES)


def rls_ddl() -> list[str]:
    """Statements enabling forced RLS with a permissive base and restrictive floor policies."""
    statements: list[str] = []
    for table in (
        "persons",
        "involvements",
        "arrests",
        "person_aliases",
        "charges",
        "visible_persons",
    ):
        statements += [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"DROP POLICY IF EXISTS {table}_base ON {table}",
            f"CREATE POLICY {table}_base ON {table} USING (true) WITH CHECK (true)",
        ]
    floor = {
        "involvements": (
            f"role NOT IN ({_ROLES}) AND juvenile = false AND "  # noqa: S608 - constants only
            "EXISTS (SELECT 1 FROM arrests a WHERE a.id = involvements.arrest_id)"
        ),
        "arrests": "sealed_at IS NULL AND expunged_at IS NULL",
        "persons": ("EXISTS (SELECT 1 FROM involvements i WHERE i.person_id = persons.id)"),
        # A visibility set's copy of a person (access.models) is held to the same floor.
        "visible_persons": (
            "EXISTS (SELECT 1 FROM involvements i WHERE i.person_id = visible_persons.person_id)"
        ),
        "person_aliases": (
            "EXISTS (SELECT 1 FROM persons p WHERE p.id = person_aliases.person_id)"
        ),
        "charges": "EXISTS (SELECT 1 FROM arrests a WHERE a.id = charges.arrest_id)",
    }
    for table, condition in floor.items():
        statements += [
            f"DROP POLICY IF EXISTS {table}_floor ON {table}",
            f"CREATE POLICY {table}_floor ON {table} AS RESTRICTIVE FOR SELECT "
            f"USING (NOT {_EXTERNAL} OR ({condition}))",
        ]
    return statements


def mark_external(session: Session) -> None:
    """Flag the current transaction as an external caller's (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT set_config('{EXTERNAL_FLAG}', 'on', true)"))


register_schema_ddl(lambda dialect: rls_ddl() if dialect == "postgresql" else [])
