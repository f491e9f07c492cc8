"""The whole period's explanation on DuckDB reading the store: a feasibility bench (issue 13).

    .venv/bin/python bench/oversight_duckdb.py --store NAME [--compare] [--attached] | --quick
        [--duckdb-file PATH] [--memory-limit 1500MB]

``NAME`` is a PostgreSQL store kept by ``bench/oversight.py --engine postgresql --keep-db
/tmp/NAME`` with its facts brought up to the log (``--incremental-only`` or ``--facts-kept``).
What runs, in one process:

1. DuckDB (PyPI ``duckdb``) loads its PostgreSQL scanner from the PyPI package
   ``duckdb-extension-postgres-scanner`` (the same version: an extension is built for one DuckDB
   release), by path (``LOAD '<package>/extensions/v<version>/postgres_scanner.duckdb_extension'``):
   nothing is downloaded. It ATTACHes the store READ_ONLY.
2. Unless ``--attached``: the tables the explanation reads are copied into DuckDB's own storage
   (``CREATE TABLE AS`` from the attached table; a file under ``--duckdb-file``'s folder, or the
   given one), each timed. Of ``audit_entries`` only the columns the statement reads are copied,
   its content as ``content IS NOT NULL`` (``has_content``): the statement reads no byte of it.
3. The explanation of every pair of every agreement over the bench's year, **the statement the
   product builds** (``explain_sql.explanations`` for the whole period and every agreement, as
   ``explain.materialise`` runs it, but over the facts as a CTE, not the analysed temporary
   table PostgreSQL needs), compiled with the PostgreSQL dialect and literal binds, runs on
   DuckDB into a table (timed). With ``--attached`` it scans the attached tables instead.
4. With ``--compare``: the same compiled statement runs on PostgreSQL (``postgres_query``, its
   rows streamed into DuckDB, timed) and the two results are compared row for row (``EXCEPT
   ALL`` both ways: ``duck_minus_pg`` and ``pg_minus_duck`` are 0 when identical).

Peak RSS is this process's, DuckDB included (``memory_limit`` bounds its buffers; it spills to
``temp_directory``). Only the explanation is measured: the detectors and the reports do not run
on DuckDB yet (docs/benchmarks.md, branch h13duck). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from openpars.agreements.models import Agreement
from openpars.config import Settings
from openpars.db import make_engine
from openpars.oversight import explain_sql as xsql
from openpars.oversight.explain import purpose_grants, rules_from
from openpars.oversight.explain_sql import Selection

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oversight as generator  # bench/oversight.py, beside this script

PG_URL = os.environ.get(
    "OPENPARS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # bench/oversight.py's first day
# The tables the explanation reads; of the entries, the columns it reads.
TABLES = {
    "oversight_access_facts": "*",
    "oversight_charge_timeline": "*",
    "involvements": "*",
    "arrests": "*",
    "audit_entries": 'id, "at", user_id, agency_id, agreement_id, kind, '
    "(content IS NOT NULL) AS has_content",
    "audit_user_entries": "*",
    "audit_pending": "*",
}


def extension(package: str, name: str) -> str:
    """The path of an extension shipped by a PyPI package for this DuckDB version."""
    path = importlib.resources.files(package) / "extensions" / f"v{duckdb.__version__}"
    found = Path(str(path)) / f"{name}.duckdb_extension"
    if not found.is_file():
        sys.exit(
            f"{package} has no {name} extension for DuckDB {duckdb.__version__} ({found}): "
            "install the extension package of the same version as duckdb"
        )
    return str(found)


def statement(url: str, days: int) -> str:
    """The product's explanation of every agreement's pairs over the bench's period, as SQL."""
    end = T0 + timedelta(days=days)
    engine = make_engine(url)
    with Session(engine) as session:
        grants = purpose_grants(session, Selection(start=T0, end=end))
        agreements = frozenset(session.scalars(select(Agreement.id)))
    engine.dispose()
    selection = Selection(start=T0, end=end, agreement_ids=agreements)
    pairs = xsql.explanations(selection, rules_from(Settings()), grants, "postgresql")
    compiled = pairs.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled)


def _timed(figures: dict[str, Any], key: str, con: duckdb.DuckDBPyConnection, sql: str) -> None:
    started = time.perf_counter()
    con.execute(sql)
    figures[key] = round(time.perf_counter() - started, 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    url = PG_URL.rsplit("/", 1)[0] + f"/{args.store}"
    sql = statement(url, args.days)
    figures: dict[str, Any] = {
        "store": args.store,
        "duckdb": duckdb.__version__,
        "mode": "attached" if args.attached else "copied",
        "memory_limit": args.memory_limit,
    }
    with tempfile.TemporaryDirectory(prefix="openpars-duckdb-") as tmp:
        path = args.duckdb_file or Path(tmp) / "pass.duckdb"
        con = duckdb.connect(
            str(path),
            config={
                "memory_limit": args.memory_limit,
                "temp_directory": str(Path(tmp) / "spill"),
                "threads": os.cpu_count() or 1,
            },
        )
        con.execute(f"LOAD '{extension('duckdb_extension_postgres_scanner', 'postgres_scanner')}'")
        con.execute(
            f"ATTACH 'host=127.0.0.1 user=postgres dbname={args.store}' AS store "
            "(TYPE postgres, READ_ONLY)"
        )
        if args.attached:
            con.execute("USE store.public")
            query = sql
        else:
            copy: dict[str, float] = {}
            for table, columns in TABLES.items():
                started = time.perf_counter()
                con.execute(
                    f"CREATE OR REPLACE TABLE main.{table} AS "
                    f"SELECT {columns} FROM store.public.{table}"
                )
                copy[table] = round(time.perf_counter() - started, 3)
            figures["copy_s"] = copy
            figures["copy_total_s"] = round(sum(copy.values()), 3)
            query = sql.replace("kept.content IS NOT NULL", "kept.has_content")
            if query == sql:
                sys.exit("the statement no longer tests kept.content IS NOT NULL: update TABLES")
        _timed(figures, "explain_duckdb_s", con, f"CREATE TEMP TABLE duck_pairs AS {query}")
        figures["pairs"] = con.execute("SELECT count(*) FROM duck_pairs").fetchone()[0]  # type: ignore[index]
        figures["codes"] = dict(
            con.execute(
                "SELECT code, count(*) FROM duck_pairs GROUP BY code ORDER BY code"
            ).fetchall()
        )
        if args.compare:
            fence = "$openpars_explain$"
            _timed(
                figures,
                "explain_postgresql_s",
                con,
                f"CREATE TEMP TABLE pg_pairs AS SELECT * FROM postgres_query('store', "
                f"{fence}{sql}{fence})",
            )
            for key, a, b in (("duck_minus_pg", "duck", "pg"), ("pg_minus_duck", "pg", "duck")):
                figures[key] = con.execute(
                    f"SELECT count(*) FROM (SELECT * FROM {a}_pairs "
                    f"EXCEPT ALL SELECT * FROM {b}_pairs)"
                ).fetchone()[0]  # type: ignore[index]
            figures["identical"] = figures["duck_minus_pg"] == figures["pg_minus_duck"] == 0
        con.close()
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    figures["cpus"] = os.cpu_count()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    generator.add_kept_store_arguments(parser)
    parser.add_argument("--compare", action="store_true", help="run it on PostgreSQL too")
    parser.add_argument("--attached", action="store_true", help="scan the attached tables")
    parser.add_argument("--duckdb-file", type=Path, help="DuckDB's file (default: a temporary one)")
    parser.add_argument("--memory-limit", default="1500MB", help="DuckDB's memory_limit")
    args = generator.kept_store_arguments(parser)
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
