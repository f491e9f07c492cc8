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
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from openpars.agreements.models import Agreement
from openpars.audit import log
from openpars.audit.models import AuditEntry
from openpars.cli import app
from openpars.db import Database
from openpars.oversight import duck, facts
from openpars.oversight import explain_sql as xsql
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


def _console(url: str, *args: str) -> Any:
    result = CliRunner().invoke(app, ["oversight", *args, "--format", "json", "--db", url])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_explain_and_coverage_at_the_console_on_duckdb(fresh_db: Database) -> None:
    # ``openpars oversight explain|coverage --engine duckdb``: the statement built for DuckDB
    # (dialect duckdb: its sweeps read the copied entries, not the per-user index) runs on
    # DuckDB attached to the store and gives each agency's pairs, codes and coverage exactly
    # as the store does; the requests are audited in the store.
    store = fresh_db
    with store.session() as session:
        world = build_world(session)
    traffic = build_traffic(store, world, seed=3)
    with store.session() as session:
        log.integrate(session)
    # The facts are not refreshed here: the command brings them up to the log and commits.
    assert isinstance(store.bind, Engine)
    url = store.bind.url.render_as_string(hide_password=False)
    period = ["--from", traffic.start.date().isoformat(), "--to", traffic.end.date().isoformat()]
    with store.session() as session:
        agencies = sorted(
            session.scalars(
                select(AuditEntry.agency_id)
                .where(AuditEntry.agreement_id.is_not(None), AuditEntry.agency_id.is_not(None))
                .distinct()
            )
        )
    assert agencies
    codes: dict[str, int] = {}
    for agency in agencies:
        chosen = [*period, "--agency", str(agency)]
        for by in ("user", "week", "purpose"):
            on_duckdb = _console(url, "coverage", *chosen, "--by", by, "--engine", "duckdb")
            assert on_duckdb == _console(url, "coverage", *chosen, "--by", by), (agency, by)
        page = ["explain", *chosen, "--limit", "10000"]
        on_duckdb = _console(url, *page, "--engine", "duckdb")
        assert on_duckdb == _console(url, *page), agency
        assert on_duckdb["total"] == len(on_duckdb["items"])
        for item in on_duckdb["items"]:
            codes[item["code"]] = codes.get(item["code"], 0) + 1
    # Every rule, and every reason the harness injects misuse for, was compared.
    assert {r.value for r in Rule} | set(traffic.misuse.values()) <= set(codes), codes
    with store.session() as session:
        audited = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action.in_(("oversight.coverage", "oversight.explanations")))
        )
    assert audited == len(agencies) * 8


def _join_types(plan: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for node in plan:
        kind = node.get("extra_info", {}).get("Join Type")
        if kind is not None:
            found.append(str(kind))
        found += _join_types(node.get("children", []))
    return found


def test_the_explanation_builds_its_hashes_on_the_sets_joined_to_the_facts(
    fresh_db: Database, tmp_path: Path
) -> None:
    # ``duck.joins_as_written``: DuckDB's estimate of the facts CTE is a fraction of its rows,
    # and it swapped the left join of the facts to the charge states into a right join, the
    # hash built on the 10M facts (out of its 1 GB at 10M: docs/benchmarks.md, h13mem). As
    # written, every left join of the facts builds on the set joined (charge states, cited
    # references, sweeps), none is swapped, and the setting is undone afterwards. The
    # plan is what is compared (the records are inflated to give the estimates of 10M).
    store = fresh_db
    with store.session() as session:
        world = build_world(session)
    traffic = build_traffic(store, world, seed=4)
    with store.session() as session:
        log.integrate(session)
    with store.session() as session:
        facts.refresh(session)
    start = traffic.start.replace(hour=0, minute=0, second=0, microsecond=0)
    end = traffic.end + timedelta(days=1)
    with store.session() as session:
        grants = purpose_grants(session, Selection(start=start, end=end))
        agreements = frozenset(session.scalars(select(Agreement.id)))
        url = session.get_bind().url
    selection = Selection(start=start, end=end, agreement_ids=agreements)
    sql = str(
        xsql.explanations(selection, Rules(), grants, "duckdb").compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
    )
    with duck.reader(url, kept_file=tmp_path / "kept.duckdb") as reader:
        # The estimates of the 10M store at this size: the facts fewer than the sets made of
        # them, the records they are joined to copied over themselves (in this test's file).
        for _ in range(8):
            for table in ("involvements", "oversight_charge_timeline", "arrests"):
                reader.execute(text(f"INSERT INTO main.{table} SELECT * FROM main.{table}"))
        reader.commit()

        def plan() -> list[str]:
            rows = reader.execute(text(f"EXPLAIN (FORMAT json) {sql}")).all()
            return _join_types(json.loads(rows[0][1]))

        swapped = plan()
        with duck.joins_as_written(reader):
            written = plan()
        undone = reader.execute(text("SELECT current_setting('disabled_optimizers')")).scalar()
        reader.rollback()
    assert "LEFT" in written and "RIGHT" not in written, written
    assert undone == "", undone
    # Without the setting DuckDB swaps at least one here (the test can fail).
    assert "RIGHT" in swapped, swapped
