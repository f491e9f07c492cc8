"""The whole period's explanation, two versions of its statement alternated in one process.

    .venv/bin/python bench/oversight_explain_ab.py --store NAME --before REV [--rounds 2]
        [--postgresql] [--no-duckdb] [--versions V,...] [--profile PATH] | --quick

``REV`` is a git revision of this repository: its ``src/openpars/oversight/explain_sql.py`` is
loaded as a module of its own (``before``) beside the working tree's (``after``), and each
builds the statement the product runs for every pair of every agreement over the bench's period
(as bench/oversight_duckdb_pass.py: compiled for PostgreSQL with literal binds); the working
tree's and the revision's are also built for dialect ``duckdb`` (``after_duckdb``,
``before_duckdb``, as ``openpars oversight explain|coverage --engine duckdb`` builds it).
Then, alternated A B (C D) then (D C) B A (``--rounds`` times):

- on DuckDB reading the store as the product's pass does (``oversight.duck.reader``, the default
  copied tables, memory limit and threads), each into a table (``explain_duckdb_s``) followed by
  coverage in all and per agency, user, purpose and week (``coverage_duckdb_s``);
- with ``--postgresql``, on the store itself into a temporary table (``explain_postgresql_s``,
  in ``facts.whole_store_memory``).

Each result's codes are digested (``codes_md5_*``: every row's entry, person and code, sorted)
and the two versions' digests compared on each engine (``same_codes``). ``--profile PATH``
writes DuckDB's ``EXPLAIN ANALYZE`` (JSON) of ``after_duckdb``. Nothing is written to the
store. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import column, select, table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from openpars.agreements.models import Agreement
from openpars.config import Settings
from openpars.db import make_engine
from openpars.models import load_all_models
from openpars.oversight import duck
from openpars.oversight import explain_sql as after_module
from openpars.oversight.explain import purpose_grants, rules_from
from openpars.oversight.explain_sql import Selection
from openpars.oversight.facts import whole_store_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oversight as generator  # bench/oversight.py, beside this script
from oversight_duckdb_pass import COLUMNS, PG_URL, T0

ROOT = Path(__file__).resolve().parent.parent
MODULE = "src/openpars/oversight/explain_sql.py"
# The digest of a result's codes, the same spelling on both engines.
# In two levels (1,024 buckets by entry), not one string of every row: 200 MB at 10M.
DIGEST = (
    "SELECT md5(string_agg(d, ',' ORDER BY b)) FROM (SELECT entry_id % 1024 AS b, "
    "md5(string_agg(entry_id::text || ':' || person_id::text || ':' || code, ',' "
    "ORDER BY entry_id, person_id, code)) AS d FROM {} GROUP BY entry_id % 1024) AS buckets"
)


def module_at(revision: str, folder: Path) -> ModuleType:
    """``explain_sql`` as it was at ``revision`` (its imports are the working tree's)."""
    source = subprocess.run(
        ["git", "show", f"{revision}:{MODULE}"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    path = folder / "explain_sql_before.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("explain_sql_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def statement(module: Any, session: Session, days: int, dialect: str) -> str:
    """``module``'s statement as built for ``dialect`` (``postgresql``, or ``duckdb`` as the
    product's DuckDB reader builds it), compiled for PostgreSQL with literal binds (which DuckDB
    parses)."""
    end = T0 + timedelta(days=days)
    found = purpose_grants(session, Selection(start=T0, end=end))
    agreements = frozenset(session.scalars(select(Agreement.id)))
    selection = module.Selection(start=T0, end=end, agreement_ids=agreements)
    grants = [module.PurposeGrant(g.agreement_id, g.version, g.purpose, g.case_required)
              for g in found]  # fmt: skip
    rules = module.Rules(**{k: getattr(rules_from(Settings()), k) for k in module.Rules.__slots__})
    pairs = module.explanations(selection, rules, grants, dialect)
    compiled = pairs.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled)


def top_operators(plan: Any, count: int = 15) -> list[tuple[str, float, int]]:
    """The plan's operators taking the most time (their own time), with their rows out."""
    found: list[tuple[str, float, int]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
            return
        name = node.get("operator_name") or node.get("operator_type") or "?"
        extra = node.get("extra_info") or {}
        detail = extra.get("Aggregates") or extra.get("Projections") or extra.get("Table") or ""
        label = f"{name.strip()} {str(detail)[:80]}".strip()
        timing = float(node.get("operator_timing") or 0)
        found.append((label, round(timing, 3), int(node.get("operator_cardinality") or 0)))
        walk(node.get("children", []))

    walk(plan)
    return sorted(found, key=lambda t: -t[1])[:count]


def _log(key: str, value: Any) -> None:
    print(key, value, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_all_models()
    url = PG_URL.rsplit("/", 1)[0] + f"/{args.store}"
    engine = make_engine(url)
    with tempfile.TemporaryDirectory(prefix="openpars-ab-") as tmp:
        before = module_at(args.before, Path(tmp))
        with Session(engine) as pg:
            sql = {
                "before": statement(before, pg, args.days, "postgresql"),
                "after": statement(after_module, pg, args.days, "postgresql"),
                "after_duckdb": statement(after_module, pg, args.days, "duckdb"),
                "before_duckdb": statement(before, pg, args.days, "duckdb"),
            }
    figures: dict[str, Any] = {
        "store": args.store,
        "versions": {
            "before": f"explain_sql at {args.before}, built for postgresql",
            "after": "the working tree's, built for postgresql",
            "after_duckdb": "the working tree's, built for duckdb (DuckDB only)",
            "before_duckdb": f"explain_sql at {args.before}, built for duckdb (DuckDB only)",
        },
        "before": args.before,
        "rounds": args.rounds,
        "memory_limit": duck.DEFAULT_MEMORY_LIMIT,
        "threads": duck.DEFAULT_THREADS,
        "runs": [],
    }
    duck_order = [
        ("before", "before_duckdb", "after", "after_duckdb"),
        ("after_duckdb", "after", "before_duckdb", "before"),
    ]
    if args.versions:
        chosen = args.versions.split(",")
        duck_order = [tuple(v for v in o if v in chosen) for o in duck_order]
    order = [("before", "after"), ("after", "before")]
    digests: dict[str, dict[str, set[str]]] = {"duckdb": {}, "postgresql": {}, "coverage": {}}
    if not args.no_duckdb:
        started = time.perf_counter()
        with duck.reader(url, copied=duck.DEFAULT_COPIED) as reader:
            reader.connection()
            figures["setup_s"] = round(time.perf_counter() - started, 3)
            _log("setup_s", figures["setup_s"])
            if args.profile is not None:
                plan = reader.execute(
                    text(f"EXPLAIN (ANALYZE, FORMAT json) {sql['after_duckdb']}")
                ).all()
                args.profile.write_text(str(plan[0][-1]))
                figures["profile_top"] = top_operators(json.loads(str(plan[0][-1])))
                _log("profile_top", figures["profile_top"])
            for round_ in range(args.rounds):
                for name in duck_order[round_ % 2]:
                    started, cpu = time.perf_counter(), time.process_time()
                    reader.execute(text(f"CREATE OR REPLACE TABLE pairs AS {sql[name]}"))
                    explained = round(time.perf_counter() - started, 3)
                    # DuckDB runs in this process: its threads' CPU is the process's.
                    explained_cpu = round(time.process_time() - cpu, 3)
                    started = time.perf_counter()
                    pairs = select(table("pairs", *(column(c) for c in COLUMNS)))
                    # Each version's own coverage statements.
                    module = before if name.startswith("before") else after_module
                    shown = [
                        tuple(row)
                        for by in (None, *module.Dimension)
                        for row in reader.execute(module.coverage(pairs, by, "duckdb")).all()
                    ]
                    covered_md5 = hashlib.md5(repr(shown).encode()).hexdigest()
                    digests["coverage"].setdefault(name, set()).add(covered_md5)
                    covered = round(time.perf_counter() - started, 3)
                    found = reader.execute(text(DIGEST.format("pairs"))).scalar()
                    digests["duckdb"].setdefault(name, set()).add(str(found))
                    load = os.getloadavg()[0]
                    run_ = {"engine": "duckdb", "version": name, "explain_s": explained,
                            "explain_cpu_s": explained_cpu, "coverage_s": covered,
                            "codes_md5": str(found), "load_average_1m": load}  # fmt: skip
                    figures["runs"].append(run_)
                    _log("run", run_)
            figures["pairs"] = reader.execute(text("SELECT count(*) FROM pairs")).scalar()
            reader.execute(text("DROP TABLE pairs"))
    if args.postgresql:
        for round_ in range(args.rounds):
            for name in order[round_ % 2]:
                with Session(engine) as pg, whole_store_memory(pg):
                    started = time.perf_counter()
                    pg.execute(text(f"CREATE TEMP TABLE pairs AS {sql[name]}"))
                    explained = round(time.perf_counter() - started, 3)
                    found = pg.execute(text(DIGEST.format("pairs"))).scalar()
                    digests["postgresql"].setdefault(name, set()).add(str(found))
                    pg.rollback()
                run_ = {"engine": "postgresql", "version": name, "explain_s": explained,
                        "load_average_1m": os.getloadavg()[0]}  # fmt: skip
                figures["runs"].append(run_)
                _log("run", run_)
    engine.dispose()
    for engine_name, found in digests.items():
        if found and engine_name == "coverage":
            figures["coverage_md5"] = {k: sorted(v) for k, v in found.items()}
            figures["same_coverage"] = len(set().union(*found.values())) == 1
        elif found:
            figures[f"codes_md5_{engine_name}"] = {k: sorted(v) for k, v in found.items()}
            figures[f"same_codes_{engine_name}"] = len(set().union(*found.values())) == 1
    if digests["duckdb"] and digests["postgresql"]:
        both = set().union(*digests["duckdb"].values(), *digests["postgresql"].values())
        figures["same_codes_across_engines"] = len(both) == 1
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["cpus"] = os.cpu_count()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    generator.add_kept_store_arguments(parser)
    parser.add_argument("--before", required=True, help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each, A B then B A")
    parser.add_argument("--postgresql", action="store_true", help="on PostgreSQL too")
    parser.add_argument("--versions", help="on DuckDB only these, e.g. before,after_duckdb")
    parser.add_argument("--no-duckdb", action="store_true", help="PostgreSQL only")
    parser.add_argument("--profile", type=Path, help="DuckDB's EXPLAIN ANALYZE of after_duckdb")
    args = generator.kept_store_arguments(parser)
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
