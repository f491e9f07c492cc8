"""The product's explanation statement runs on DuckDB reading the store and gives the same pairs.

DuckDB (with the PostgreSQL scanner shipped by the PyPI package of the same version, loaded by
path: nothing is downloaded) attaches the test's PostgreSQL store read-only and runs the very
statement ``explain_sql.explanations`` builds for a whole period and every agreement, compiled
for PostgreSQL with literal binds (bench/oversight_duckdb.py measures it at 1M and 10M). The
harness's traffic exercises every rule and every reason; the rows must equal PostgreSQL's own,
row for row. SQLite stores are not attached yet (their instants are text: the statement
compiled for PostgreSQL compares them as timestamps).
"""

from __future__ import annotations

import importlib.resources
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from openpars.agreements.models import Agreement
from openpars.audit import log
from openpars.db import Database
from openpars.oversight import explain_sql as xsql
from openpars.oversight import facts
from openpars.oversight.explain import purpose_grants
from openpars.oversight.explain_sql import Reason, Rule, Rules, Selection
from tests.conftest import BACKEND
from tests.factories import build_world
from tests.oversight.harness import build_traffic

duckdb = pytest.importorskip("duckdb")

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql",
    reason="DuckDB attaches the PostgreSQL store here; a SQLite store's instants are text",
)


def _scanner() -> str:
    path = importlib.resources.files("duckdb_extension_postgres_scanner") / "extensions"
    return str(Path(str(path)) / f"v{duckdb.__version__}" / "postgres_scanner.duckdb_extension")


@pytest.mark.parametrize("seed", [1, 2])
def test_duckdb_explains_every_pair_as_postgresql_does(fresh_db: Database, seed: int) -> None:
    # A committed store (``fresh_db``): DuckDB reads it through a connection of its own.
    store = fresh_db
    with store.session() as session:
        world = build_world(session)
    traffic = build_traffic(store, world, seed=seed)
    with store.session() as session:
        log.integrate(session)
    with store.session() as session:
        facts.refresh(session)
    start = traffic.start.replace(hour=0, minute=0, second=0, microsecond=0)
    end = traffic.end + timedelta(days=1)
    with store.session() as session:
        grants = purpose_grants(session, Selection(start=start, end=end))
        agreements = frozenset(session.scalars(select(Agreement.id)))
        url = make_url(str(session.get_bind().url))
    selection = Selection(start=start, end=end, agreement_ids=agreements)
    sql = str(
        xsql.explanations(selection, Rules(), grants, "postgresql").compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
    )
    con = duckdb.connect()
    con.execute(f"LOAD '{_scanner()}'")
    con.execute(
        f"ATTACH 'host={url.host} port={url.port or 5432} user={url.username} "
        f"dbname={url.database}' AS store (TYPE postgres, READ_ONLY)"
    )
    fence = "$openpars_explain$"
    # PostgreSQL runs it (its rows streamed in), then DuckDB over the attached tables.
    con.execute(
        f"CREATE TEMP TABLE pg_pairs AS SELECT * FROM postgres_query('store', {fence}{sql}{fence})"
    )
    con.execute("USE store.public")
    con.execute(f"CREATE TEMP TABLE duck_pairs AS {sql}")
    codes = dict(con.execute("SELECT code, count(*) FROM temp.duck_pairs GROUP BY code").fetchall())
    # Every rule, and every reason the harness injects misuse for, is given by DuckDB too.
    exercised = {r.value for r in Rule} | set(traffic.misuse.values())
    assert exercised <= set(codes) <= {r.value for r in Rule} | {r.value for r in Reason}, codes
    total = con.execute("SELECT count(*) FROM temp.pg_pairs").fetchone()
    assert total is not None and total[0] == sum(codes.values()) > 100
    for a, b in (("duck", "pg"), ("pg", "duck")):
        differing = con.execute(
            f"SELECT count(*) FROM (SELECT * FROM temp.{a}_pairs "
            f"EXCEPT ALL SELECT * FROM temp.{b}_pairs)"
        ).fetchone()
        assert differing == (0,), (a, b, differing)
    con.close()
