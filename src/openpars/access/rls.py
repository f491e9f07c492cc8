"""PostgreSQL row-level security bound to the external login role (ADR 0004).

An external caller's transaction runs on a connection logged in as the database's external role,
``<database>_external`` (``openpars_external_role()``), never as the application's own role. That
role holds only what an external read needs (SELECT on the record tables, the agreement and floor
tables; INSERT on the audit tables for its entry), and restrictive policies ``TO`` it hide, from
any SQL it runs, what the site floor in force forbids: the floor's forbidden roles, juveniles
unless the floor admits them (only a *known* adult, ``juvenile IS FALSE``), sealed and expunged
arrests, and everything hanging off a hidden row. The policies read the floor from
``site_floor_versions`` at each statement, so a floor change binds in the transaction that makes
it, with no DDL; the persons policy reads ``persons.floor_visible`` instead, which triggers here
recompute from the base tables and that floor in the transaction of every change of either, and
the visibility sets' policy reads the copy of it each set row carries, which the same triggers
rewrite in the same statements (ADR 0004). Nothing the application sets per transaction
matters: the binding is the login. SQLite has no roles; none of this exists there.
"""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from openpars.access.models import INVOLVEMENT_PERSON_IDS
from openpars.agreements.floor import SiteFloor
from openpars.db import EXTERNAL_SESSION, register_schema_ddl

EXTERNAL_ROLE_FUNCTION = "openpars_external_role"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _floor_defaults() -> str:
    """The shipped floor's clauses RLS reads, used while no floor version is stored."""
    floor = SiteFloor()
    # ", " and ": " separators: a colon followed by a word would read as a bind parameter when
    # the migration runs this text through SQLAlchemy.
    return json.dumps(
        {
            "forbidden_roles": sorted(str(role) for role in floor.forbidden_roles),
            "forbid_juveniles": floor.forbid_juveniles,
        }
    )


# The floor in force as the policies read it: the newest stored version over the shipped
# defaults. Written into the policies themselves rather than called through SQL functions: a
# SQL function whose body has a sub-select is never inlined, and PostgreSQL (15) plans its body
# again at every call, 0.12-0.15 ms each (EXPLAIN ANALYZE as the external role, a warm
# session), paid once per policy instance per statement (a search page joins two tables that
# each check an involvement: four calls, ~0.5 ms, a quarter of the page). Inline, each
# sub-select below is planned with the statement (and cached with a prepared one) and runs once
# per statement as an init plan: 7-15 us. The price is a larger plan to build where a statement
# is planned afresh, which is why the external name pages and counts run on their generic plans
# (access.repository). A policy's expression is bound to the tables and functions it names when
# it is created, so no temporary table or search_path the external role sets can stand in for
# ``site_floor_versions`` (tests/access/test_external_plans.py).
_FLOOR = (
    f"({_literal(_floor_defaults())}::jsonb || coalesce((SELECT content FROM "  # noqa: S608 - constants
    "site_floor_versions ORDER BY version DESC LIMIT 1), '{}'::jsonb))"
)

# Record tables an external read touches (loading an arrest loads its parts), and the condition
# each row must meet for the external role. Sub-selects in a condition are themselves filtered by
# the referenced table's policies, so a row hanging off a hidden row is hidden too.
_ARREST_PART = "EXISTS (SELECT 1 FROM arrests a WHERE a.id = {table}.arrest_id)"
FLOOR_CONDITIONS: dict[str, str] = {
    "arrests": "sealed_at IS NULL AND expunged_at IS NULL",
    "involvements": (
        # A sub-select is run once per statement (an init plan), not once per row; the cast
        # makes ALL read it as one array rather than as a set of rows.
        "role::text <> ALL (CAST((SELECT ARRAY(SELECT jsonb_array_elements_text("  # noqa: S608 - constants
        f"{_FLOOR} -> 'forbidden_roles'))) AS text[])) "
        # Unknown age (NULL) is hidden like a juvenile: only a known adult passes. Anything but
        # an explicit false in the floor keeps juveniles hidden.
        "AND (juvenile IS FALSE OR "
        f"(SELECT coalesce({_FLOOR} -> 'forbid_juveniles' = 'false'::jsonb, false))) "
        "AND EXISTS (SELECT 1 FROM arrests a WHERE a.id = involvements.arrest_id)"
    ),
    # Whether the floor admits the person at all, kept by the triggers below (_floor_column):
    # a person is read as one column instead of proving an involvement and its arrest again for
    # every row (issue 12: a name page's 51 rows are checked in two tables, persons and the
    # set, and those sub-plans were two thirds of its server time).
    "persons": "floor_visible",
    "person_aliases": "EXISTS (SELECT 1 FROM persons p WHERE p.id = person_aliases.person_id)",
    # A visibility set's copy of a person (access.models) is held to the same floor by the
    # same verdict, carried on the copy (kept with the person's, _floor_column): a column test
    # where it was a probe of `persons` for every row, which a name page then joins to
    # `persons` under that table's policy anyway (issue 12: ~65 us of a page's server time).
    "visible_persons": "floor_visible",
    **{
        table: _ARREST_PART.format(table=table)
        for table in (
            "charges",
            "charging_decisions",
            "bail_recommendations",
            "arraignments",
            "custody_events",
        )
    },
}
# Read, unfiltered, by an external transaction: which agreement is in force and what it says,
# the floor, and the visibility sets' index.
EXTERNAL_READS = (
    "agreements",
    "agreement_versions",
    "agreement_suspensions",
    "agreement_resumptions",
    "site_floor_versions",
    "visibility_sets",
    # Whether any of the above changed (agreements.models.GovernanceGeneration).
    "governance_generation",
)
# The audit entry of the read, written in the same transaction. Of the entries themselves the
# role reads back only the new id.
AUDIT_INSERTS = ("audit_entries", "audit_pending")
AUDIT_READ_COLUMNS = ("id",)
# The rate windows (access.rate): a read takes a place, a full window grows.
RATE_WRITES = "rate_slots"


# Stand for the external role's and the schema's quoted names in statements run by
# _as_external. (No "%" in any statement here: psycopg would read it as a placeholder.)
ROLE = "@external_role@"


SCHEMA = "@schema@"


def _as_external(*statements: str) -> str:
    """A DO block running statements in which ROLE names the external role, SCHEMA openpars'."""
    body = " ".join(
        f"EXECUTE replace(replace({_literal(statement)}, '{ROLE}', quote_ident(r)), "
        f"'{SCHEMA}', quote_ident(current_schema()));"
        for statement in statements
    )
    return f"DO $do$ DECLARE r name := {EXTERNAL_ROLE_FUNCTION}(); BEGIN {body} END $do$"


def _role_ddl() -> list[str]:
    """The role's name, then its creation and the checks on it."""
    return [
        # Per database, so two openpars databases on one server (sites, staging, test runs)
        # never share a role or its grants. 54 + 9 characters fit PostgreSQL's 63.
        f"CREATE OR REPLACE FUNCTION {EXTERNAL_ROLE_FUNCTION}() RETURNS name LANGUAGE sql STABLE "
        "RETURN (left(current_database(), 54) || '_external')::name",
        create_role(),
    ]


def create_role() -> str:
    """Create the external role unless it exists; safe when two sessions run it at once."""
    return (
        f"DO $do$ DECLARE r name := {EXTERNAL_ROLE_FUNCTION}(); BEGIN "  # noqa: S608 - constants
        "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN "
        "BEGIN EXECUTE 'CREATE ROLE ' || quote_ident(r) || ' LOGIN NOSUPERUSER NOCREATEDB "
        "NOCREATEROLE NOREPLICATION NOBYPASSRLS'; "
        # Another migration of this database created it meanwhile: the same role, fine.
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; "
        "WHEN insufficient_privilege THEN RAISE EXCEPTION USING MESSAGE = "
        "'openpars reads for external agencies as the database role ' || quote_ident(r) || "
        "', which does not exist, and ' || quote_ident(current_user) || ' may not create roles; "
        "ask the DBA to run CREATE ROLE ' || quote_ident(r) || ' LOGIN, then run openpars db "
        "upgrade again (docs/deployment.md)'; END; "
        "END IF; "
        "IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r AND (rolsuper OR rolbypassrls)) "
        "THEN RAISE EXCEPTION USING MESSAGE = 'the database role ' || quote_ident(r) || ' is a "
        "superuser or bypasses row-level security, so the floor would not bind external reads; "
        "run ALTER ROLE ' || quote_ident(r) || ' NOSUPERUSER NOBYPASSRLS'; END IF; END $do$"
    )


def _floor_functions() -> list[str]:
    """What the external role calls as the owner (the floor itself is read inline, _FLOOR)."""
    return [
        # FOR SHARE needs UPDATE privilege, which the external role must not have; this takes the
        # read's share lock on the grantee's agreements (agreements.repository) as their owner,
        # every one of them (PERFORM runs the query to its end), and returns how many. PL/pgSQL
        # keeps the statement's plan for the session; a SQL function's body is planned again at
        # every call (81 us against 17 us a call on the bench's data, issue 12). Its names are
        # looked up when it runs, so its search_path is fixed to openpars' schema: no temporary
        # table the external role creates can stand in for ``agreements``.
        "CREATE OR REPLACE FUNCTION openpars_share_lock_agreements(grantee integer) "
        "RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$ DECLARE locked bigint; BEGIN "
        "PERFORM 1 FROM agreements WHERE grantee_agency_id = grantee FOR SHARE; "
        "GET DIAGNOSTICS locked = ROW_COUNT; RETURN locked; END $$",
        "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_share_lock_agreements(integer) "
        "SET search_path = ' || quote_ident(current_schema()) || ', pg_temp'; END $do$",
        "REVOKE ALL ON FUNCTION openpars_share_lock_agreements(integer) FROM PUBLIC",
        # The same lock, then the governance generation (agreements.in_force) read once it is
        # held, as "number hex-token" (NULL: no generation row). A volatile function's every
        # statement takes a snapshot of its own, so this read sees whatever change the lock
        # waited for, as the statement that read it after the lock did; a column of the
        # calling statement would read its snapshot of before the wait.
        "CREATE OR REPLACE FUNCTION openpars_share_lock_generation(grantee integer) "
        "RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$ DECLARE found text; BEGIN "
        "PERFORM openpars_share_lock_agreements(grantee); "
        "SELECT generation::text || ' ' || encode(token, 'hex') INTO found "
        "FROM governance_generation WHERE id = 1; RETURN found; END $$",
        "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_share_lock_generation(integer) "
        "SET search_path = ' || quote_ident(current_schema()) || ', pg_temp'; END $do$",
        "REVOKE ALL ON FUNCTION openpars_share_lock_generation(integer) FROM PUBLIC",
    ]


# persons.floor_visible (records.models) of the person ``q``, computed from the base tables and
# the floor in force exactly as the involvements and arrests policies above decide a row: the
# person has an involvement in a role the floor does not forbid, of a known adult unless the
# floor admits juveniles, on an arrest neither sealed nor expunged.
_FLOOR_VERDICT = (
    "EXISTS (SELECT 1 FROM involvements i JOIN arrests a ON a.id = i.arrest_id "
    "WHERE i.person_id = q.id AND i.role::text <> ALL (forbidden) "
    "AND (i.juvenile IS FALSE OR juveniles) AND a.sealed_at IS NULL AND a.expunged_at IS NULL)"
)
# The column recomputed for the persons in ``ids``, then the copies of it the visibility sets
# carry (visible_persons.floor_visible, access.models): each its own statement, so the second
# reads the first's result, and set rows committed while the first waited for a row lock.
_FLOOR_RECOMPUTE = (
    "UPDATE persons p SET floor_visible = c.visible FROM (SELECT q.id, "  # noqa: S608 - constants
    f"{_FLOOR_VERDICT} AS visible FROM persons q WHERE q.id = ANY(ids)) c "
    "WHERE p.id = c.id AND p.floor_visible IS DISTINCT FROM c.visible; "
    "UPDATE visible_persons v SET floor_visible = p.floor_visible FROM persons p "
    "WHERE v.person_id = ANY(ids) AND p.id = v.person_id "
    "AND v.floor_visible IS DISTINCT FROM p.floor_visible"
)

# One statement-level trigger function for every input of the column: a new floor version
# recomputes every person; an involvement inserted, updated or deleted, or an arrest sealed,
# unsealed or expunged, recomputes the persons it touches. Locks come first and the recompute
# after them, on a snapshot taken once they are held (each statement of a PL/pgSQL function
# takes a new one under READ COMMITTED), so two transactions changing one person's floor are
# serialized and the later one computes from the earlier one's committed rows: the arrests of
# new involvements are share-locked (a seal in flight holds its arrest: an involvement added
# meanwhile waits for it), then the persons are locked in id order, as the visibility triggers
# (access.models) lock them. A new floor version waits for every writer of involvements and
# arrests in flight and holds off new ones until it commits (SHARE locks): a writer computing
# with the old floor cannot commit after the recompute under the new one; it then locks, in id
# order, the persons whose admission the new floor changes, and recomputes those.
#
# The persons' FOR UPDATE lock is also what keeps the sets' copies of the column true: a set
# row is inserted holding its person's FOR KEY SHARE lock (its foreign key's check), which
# conflicts with FOR UPDATE. A set row inserted first makes the recompute wait for its commit,
# and then rewrites it; a set row inserted after the lock waits for the recompute's commit, and
# the check on set rows (_SET_FLOOR_GUARD) then compares it with the committed column.
_FLOOR_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION openpars_floor_rows_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids integer[];
  everyone boolean := TG_TABLE_NAME = 'site_floor_versions' OR TG_OP = 'TRUNCATE';
  floor_in_force jsonb;
  forbidden text[];
  juveniles boolean;
BEGIN
  IF everyone THEN
    LOCK TABLE involvements, arrests IN SHARE MODE;
  ELSIF TG_TABLE_NAME = 'involvements' THEN
    IF TG_OP <> 'DELETE' THEN
      PERFORM 1 FROM arrests WHERE id IN (SELECT arrest_id FROM new_rows) ORDER BY id FOR SHARE;
    END IF;
    {INVOLVEMENT_PERSON_IDS}
  ELSE
    SELECT array_agg(DISTINCT i.person_id) INTO ids FROM involvements i WHERE i.arrest_id IN (
      SELECT n.id FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id
      WHERE o.id IS NULL OR o.sealed_at IS DISTINCT FROM n.sealed_at
         OR o.expunged_at IS DISTINCT FROM n.expunged_at);
  END IF;
  IF NOT everyone THEN
    IF ids IS NULL THEN
      RETURN NULL;
    END IF;
    PERFORM 1 FROM persons WHERE id = ANY(ids) ORDER BY id FOR UPDATE;
  END IF;
  floor_in_force := {_FLOOR};
  forbidden := ARRAY(SELECT jsonb_array_elements_text(floor_in_force -> 'forbidden_roles'));
  juveniles := coalesce(floor_in_force -> 'forbid_juveniles' = 'false'::jsonb, false);
  IF everyone THEN
    SELECT array_agg(q.id) INTO ids FROM persons q
      WHERE q.floor_visible IS DISTINCT FROM {_FLOOR_VERDICT};
    IF ids IS NULL THEN
      RETURN NULL;
    END IF;
    PERFORM 1 FROM persons WHERE id = ANY(ids) ORDER BY id FOR UPDATE;
  END IF;
  {_FLOOR_RECOMPUTE};
  RETURN NULL;
END $$
"""  # noqa: S608 - constants

# A set row's floor_visible must be its person's: checked after every statement that inserts or
# updates set rows, on a snapshot taken after the statement's foreign-key checks locked each
# row's person (see above), so a copy computed before a recompute committed is refused rather
# than kept. The recompute's own update of the copies passes it (it copies the column).
_SET_FLOOR_GUARD = """
CREATE OR REPLACE FUNCTION openpars_set_floor_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_rows n JOIN persons p ON p.id = n.person_id
             WHERE n.floor_visible IS DISTINCT FROM p.floor_visible) THEN
    RAISE EXCEPTION USING MESSAGE = 'visible_persons.floor_visible is its person''s ' ||
      'persons.floor_visible (access/rls.py): copy it from the person';
  END IF;
  RETURN NULL;
END $$
"""

# The column is the database's alone: a statement of anyone else (a trigger's statement runs
# at depth 2) that sets it is refused, so neither the application nor a bug in it can admit a
# person the floor hides. (The external role may not write persons at all.)
_FLOOR_GUARD = """
CREATE OR REPLACE FUNCTION openpars_floor_column_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pg_trigger_depth() > 1 THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF EXISTS (SELECT 1 FROM new_rows WHERE floor_visible) THEN
      RAISE EXCEPTION USING MESSAGE = 'persons.floor_visible is kept by the database ' ||
        '(access/rls.py): insert a person without it';
    END IF;
  ELSIF EXISTS (SELECT 1 FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id
                WHERE n.floor_visible IS DISTINCT FROM coalesce(o.floor_visible, false)) THEN
    RAISE EXCEPTION USING MESSAGE = 'persons.floor_visible is kept by the database ' ||
      '(access/rls.py) from the involvements, arrests and site floor; it cannot be set';
  END IF;
  RETURN NULL;
END $$
"""

# (table, events) of each input of the column; the guard's on persons.
# A TRUNCATE fires no row or statement DELETE trigger: it recomputes every person (of the
# floor versions: the floor falls back to the shipped defaults).
_FLOOR_TRIGGERS = {
    "site_floor_versions": ("INSERT", "TRUNCATE"),
    "involvements": ("INSERT", "UPDATE", "DELETE", "TRUNCATE"),
    "arrests": ("UPDATE", "TRUNCATE"),
}
_TRANSITION_TABLES = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows ",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows ",
    "DELETE": "REFERENCING OLD TABLE AS old_rows ",
    "TRUNCATE": "",
}


def _floor_column() -> list[str]:
    """The functions and triggers that keep persons.floor_visible and the sets' copies of it,
    and their guards."""
    statements = [
        " ".join(text.split()) for text in (_FLOOR_FUNCTIONS, _FLOOR_GUARD, _SET_FLOOR_GUARD)
    ]
    for function in (
        "openpars_floor_rows_changed",
        "openpars_floor_column_guard",
        "openpars_set_floor_guard",
    ):
        # Names looked up when they run: fixed to openpars' schema (see the share lock).
        statements.append(
            f"DO $do$ BEGIN EXECUTE 'ALTER FUNCTION {function}() SET search_path = ' || "
            "quote_ident(current_schema()) || ', pg_temp'; END $do$"
        )
    # The recompute's plan is the same for every few persons (primary-key probes), but its
    # generic plan estimates more rows than a custom plan for three ids, so PostgreSQL kept
    # planning it again at every call: 1.35 ms of server CPU added to one arrest's involvements
    # against 0.3 ms on the generic plan (50,000 persons).
    statements.append(
        "ALTER FUNCTION openpars_floor_rows_changed() SET plan_cache_mode = force_generic_plan"
    )
    triggers = [
        (t, op, "openpars_floor_rows_changed") for t, ops in _FLOOR_TRIGGERS.items() for op in ops
    ]
    triggers += [("persons", op, "openpars_floor_column_guard") for op in ("INSERT", "UPDATE")]
    triggers += [("visible_persons", op, "openpars_set_floor_guard") for op in ("INSERT", "UPDATE")]
    for table, op, function in triggers:
        # "floor_" sorts before "visibility_": on involvements and arrests the column is
        # recomputed before the visibility triggers run (both lock persons in id order).
        statements.append(
            f"CREATE OR REPLACE TRIGGER floor_{table}_{op.lower()} AFTER {op} ON {table} "
            f"{_TRANSITION_TABLES[op]}FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {function}()"
        )
    return statements


def _policies() -> list[str]:
    statements: list[str] = []
    for table in FLOOR_CONDITIONS:
        statements += [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"DROP POLICY IF EXISTS {table}_base ON {table}",
            # Every role may use every row (its privileges decide what it may do) ...
            f"CREATE POLICY {table}_base ON {table} USING (true) WITH CHECK (true)",
            f"DROP POLICY IF EXISTS {table}_floor ON {table}",
        ]
    # ... except the external role, which sees only rows above the floor.
    statements.append(
        _as_external(
            *(
                f"CREATE POLICY {table}_floor ON {table} AS RESTRICTIVE FOR SELECT TO {ROLE} "
                f"USING ({condition})"
                for table, condition in FLOOR_CONDITIONS.items()
            )
        )
    )
    return statements


def _grants() -> list[str]:
    """What the external role may do: read through the policies, append its audit entry."""
    reads = ", ".join((*FLOOR_CONDITIONS, *EXTERNAL_READS))
    return [
        _as_external(
            # Explicitly: a schema recreated by hand gives PUBLIC no USAGE (PostgreSQL 15).
            f"GRANT USAGE ON SCHEMA {SCHEMA} TO {ROLE}",
            f"GRANT SELECT ON {reads} TO {ROLE}",
            f"GRANT SELECT ({', '.join(AUDIT_READ_COLUMNS)}) ON audit_entries TO {ROLE}",
            f"GRANT INSERT ON {', '.join(AUDIT_INSERTS)} TO {ROLE}",
            f"GRANT SELECT, INSERT, UPDATE ON {RATE_WRITES} TO {ROLE}",
            f"GRANT USAGE ON SEQUENCE audit_entries_id_seq TO {ROLE}",
            f"GRANT EXECUTE ON FUNCTION openpars_share_lock_agreements(integer) TO {ROLE}",
            f"GRANT EXECUTE ON FUNCTION openpars_share_lock_generation(integer) TO {ROLE}",
        )
    ]


def rls_ddl() -> list[str]:
    """The external role, its grants, and forced RLS with restrictive floor policies."""
    return [*_role_ddl(), *_floor_functions(), *_floor_column(), *_policies(), *_grants()]


def require_external_session(session: Session) -> None:
    """Refuse to read for an external caller outside a transaction bound to the external role.

    A path that forgot to open its transaction with ``Database.session(external=True)`` would
    run as the application's role, which no floor policy binds: fail closed instead.
    """
    if session.get_bind().dialect.name == "postgresql" and not session.info.get(EXTERNAL_SESSION):
        raise RuntimeError(
            "an external caller's read must run in a transaction opened with "
            "Database.session(external=True), which logs in as the external database role"
        )


register_schema_ddl(lambda dialect: rls_ddl() if dialect == "postgresql" else [])
