"""The external read made cheaper for the server (issue 12), and nothing it binds made looser.

Row-level security reads the site floor inline in each policy (no SQL function planned at every
call), external search pages run on their generic plan, and PostgreSQL receives every int of a
prepared statement as one type. An attacker logged in as the external role must gain nothing
from any of it: not by shadowing the floor's table, not by a plan setting left behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from openpars.access import service
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.db import Database
from openpars.prepared import compile_statement
from openpars.records.models import PersonAlias
from openpars.records.validation import name_key
from tests.access.test_lean_request import PURPOSE, _seed
from tests.access.test_rls import _engine_as, _names, _role_of
from tests.access.test_rls import _seed as _seed_floor
from tests.conftest import BACKEND
from tests.factories import World

on_postgresql = pytest.mark.skipif(
    BACKEND != "postgresql", reason="row-level security and plan settings are PostgreSQL's"
)


@pytest.fixture
def external_engine(fresh_db: Database) -> Iterator[Engine]:
    engine = _engine_as(fresh_db, _role_of(fresh_db))
    yield engine
    engine.dispose()


@on_postgresql
def test_a_temporary_table_cannot_stand_in_for_the_floor(
    fresh_db: Database, external_engine: Engine
) -> None:
    _seed_floor(fresh_db)
    with external_engine.connect() as conn:
        # The external role may create temporary tables (PUBLIC's default on a database), and
        # pg_temp is searched first for tables: a floor that admits everyone, if a policy
        # looked the floor's table up by name at run time.
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE site_floor_versions (version integer, content jsonb)"
        )
        conn.exec_driver_sql(
            "INSERT INTO site_floor_versions VALUES "
            """(999, '{"forbidden_roles": [], "forbid_juveniles": false}')"""
        )
        conn.exec_driver_sql("SET search_path = pg_temp, public")
        shadow = "SELECT max(version) FROM site_floor_versions"
        assert conn.execute(text(shadow)).scalar_one() == 999
        # The policies' floor was bound to the real table when they were created: the victim
        # and the juvenile stay hidden ('other' is a role the shipped floor allows).
        assert _names(conn) == ["Arrestee", "Other"]
        in_set = "SELECT count(*) FROM visible_persons"
        assert conn.execute(text(in_set)).scalar_one() == 2


@on_postgresql
def test_the_external_role_cannot_write_a_floor_the_policies_read(
    fresh_db: Database, external_engine: Engine
) -> None:
    _seed_floor(fresh_db)
    with external_engine.connect() as conn, pytest.raises(DBAPIError, match="permission denied"):
        conn.exec_driver_sql(
            "INSERT INTO public.site_floor_versions (version, content, content_hash, "
            "changed_by, changed_at, reason) VALUES (99, '{\"forbidden_roles\": []}', 'x', "
            "'x', now(), 'x')"
        )


@on_postgresql
def test_the_generic_plan_setting_ends_with_the_page(db: Database, world: World) -> None:
    _seed(db, world)
    with db.session() as s:
        # The page reaches the alias section: both sections' pages run on generic plans.
        ana = s.execute(text("SELECT id FROM persons WHERE family_name = 'Alvarez'")).scalar_one()
        alias = PersonAlias(person_id=ana, family_name="Alvarado", given_name="Ana")
        alias.name_key = name_key("Alvarado", "Ana")
        s.add(alias)
    ice = world.principals["ice"]
    # The second onwards sends the first page ahead with the decision; a count runs both
    # sections' capped counts on their generic plans too.
    for count in (False, False, True, True):
        with db.session(external=True) as s:
            before = s.execute(text("SHOW plan_cache_mode")).scalar_one()
            page = service.search_persons(
                s,
                principal=ice,
                query=PersonQuery(name="alva", count=count),
                context=ReadContext(**PURPOSE),
            )
            assert [p.family_name for p in page.items] == ["Alvarez"]
            assert (page.total, page.total_is_exact) == (1, True)
            # Whatever the statements after the page run, they are planned as before it.
            assert s.execute(text("SHOW plan_cache_mode")).scalar_one() == before == "auto"


def test_postgresql_receives_every_int_of_a_statement_as_one_type() -> None:
    from psycopg.types.numeric import Int8

    stmt = (
        PersonAlias.__table__.select()
        .where(PersonAlias.__table__.c.person_id.in_([7, 40_000, 3_000_000_000]))
        .limit(5)
    )
    bound = compile_statement(stmt, postgresql.psycopg.dialect())._bound({})
    ints = [v for v in bound.values() if isinstance(v, int)]
    # Ids on both sides of 32,767 (and of 2**31): psycopg would send smallint, integer and
    # bigint, and prepare the statement anew for each combination.
    assert sorted(ints) == [5, 7, 40_000, 3_000_000_000]
    assert {type(v) for v in ints} == {Int8}
    # SQLite's driver gets plain ints, as before.
    plain = compile_statement(stmt, sqlite.dialect())._bound({})
    assert {type(v) for v in plain if isinstance(v, int)} == {int}


@on_postgresql
def test_a_temporary_table_cannot_stand_in_for_the_agreements_the_read_locks(
    fresh_db: Database, external_engine: Engine
) -> None:
    # The share lock on the caller's agreements runs as their owner (a PL/pgSQL function,
    # whose names are looked up when it runs): a temporary "agreements" the external role
    # puts first on its search_path must not be what it locks, or a kill switch would not
    # wait for the read.
    with external_engine.connect() as conn:
        conn.exec_driver_sql("CREATE TEMPORARY TABLE agreements (grantee_agency_id integer)")
        conn.exec_driver_sql("INSERT INTO agreements VALUES (1), (1), (1)")
        conn.exec_driver_sql("SET search_path = pg_temp, public")
        assert conn.execute(text("SELECT count(*) FROM agreements")).scalar_one() == 3
        locked = conn.execute(text("SELECT openpars_share_lock_agreements(1)")).scalar_one()
        assert locked == 0  # the real table, which has no agreement yet


@on_postgresql
def test_the_sets_policy_is_tested_in_the_name_index_itself(
    fresh_db: Database, external_engine: Engine
) -> None:
    # The set's policy reads the person's floor verdict carried on the set row (access.rls),
    # which the name index holds too: the external role's walk of a name range is the index
    # alone, with no probe of persons per row (what it was: a sub-plan under the scan).
    _seed_floor(fresh_db)
    with external_engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_bitmapscan = off")
        (plan,) = conn.execute(
            text(
                "EXPLAIN (FORMAT JSON) SELECT person_id FROM visible_persons "
                "WHERE set_id = 1 AND name_key >= 'a' AND name_key < 'z' "
                "ORDER BY name_key, person_id"
            )
        ).scalar_one()
    scan = plan["Plan"]
    assert scan["Node Type"] == "Index Only Scan"
    assert scan["Index Name"] == "ix_visible_persons_name"
    assert scan["Filter"] == "floor_visible"
    assert "Plans" not in scan
