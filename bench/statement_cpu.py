"""PostgreSQL's CPU per statement of the issue 12 service calls (target 3): where it goes.

bench/server_cpu.py counts each call's server CPU whole, in clock ticks (10 ms; a figure is a
mean over hundreds of calls). This reads, around every statement a call sends, the on-CPU
nanoseconds the kernel keeps for the backend that runs it (``/proc/<pid>/schedstat``: the
server must run on this machine, as the benchmarks' loopback server does), for the floor (the
bare search plus the smallest durable write), the internal service call and the external one
(as the external role), by SID and by name prefix, on bench/search.py's 50,000 persons.

Pipelines are turned off while counting, so that each statement runs alone and its backend's
time is its own: the statements and what the server does for each are the calls' own, only the
round trips differ. The first statement of a transaction carries its BEGIN (psycopg sends it
with the statement). Per statement: how many a call sends, and the median microseconds.

    .venv/bin/python bench/statement_cpu.py [--quick] [--database NAME] [--calls N]

The database is kept (named ``--database``) and reused while its schema matches, like
bench/server_cpu.py's. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

import search
from search_data.agreement import PURPOSE, SCOPE, external_reader

import openpars.prepared
from openpars.access import repository as repo
from openpars.access.schemas import ReadContext
from openpars.db import Database, make_engine, make_unpooled_engine
from openpars.models import load_all_models

# A statement's label: its first characters, whitespace folded.
LABEL = 90


def _on_cpu_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


class Counting:
    """Every statement's backend CPU, by label, while a variant is named."""

    def __init__(self) -> None:
        self.variant: str | None = None
        self.samples: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        self._execute = psycopg.Cursor.execute
        self._commit = psycopg.Connection.commit

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Count the driver's statements and commits; pipelines off."""
        counting = self
        execute, commit = self._execute, self._commit
        pipeline = openpars.prepared._pipeline

        def counted_execute(cursor: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            pid = cursor.connection.info.backend_pid
            before = _on_cpu_ns(pid)
            result = execute(cursor, query, params, **kw)
            counting.add(query, _on_cpu_ns(pid) - before)
            return result

        def counted_commit(connection: Any) -> None:
            pid = connection.info.backend_pid
            before = _on_cpu_ns(pid)
            commit(connection)
            counting.add("COMMIT (the driver's)", _on_cpu_ns(pid) - before)

        psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
        psycopg.Connection.commit = counted_commit  # type: ignore[method-assign]
        openpars.prepared._pipeline = lambda _connection: contextlib.nullcontext()  # type: ignore[assignment]
        try:
            yield
        finally:
            psycopg.Cursor.execute = execute  # type: ignore[method-assign]
            psycopg.Connection.commit = commit  # type: ignore[method-assign]
            openpars.prepared._pipeline = pipeline

    def add(self, query: Any, ns: int) -> None:
        """One statement's CPU under the current variant."""
        if self.variant is None:
            return
        label = " ".join(str(query).split())[:LABEL]
        self.samples[self.variant][label].append(ns)


def _summary(samples: dict[str, list[int]], calls: int) -> dict[str, Any]:
    rows = sorted(samples.items(), key=lambda item: -sum(item[1]))
    statements = [
        {
            "statement": label,
            "per_call": round(len(ns) / calls, 2),
            "median_us": round(statistics.median(ns) / 1000, 1),
            "mean_us": round(statistics.mean(ns) / 1000, 1),
        }
        for label, ns in rows
    ]
    total = sum(s["median_us"] * s["per_call"] for s in statements)
    return {"sum_of_medians_us": round(total, 1), "statements": statements}


def main() -> None:
    """Load or reuse the data, then count each call kind's statements."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", default="openpars_bench_server_cpu")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument(
        "--quick", action="store_true", help="50 calls (the kept database reused; built if missing)"
    )
    args = parser.parse_args()
    if args.quick:
        args.calls = 50
    load_all_models()
    admin = make_unpooled_engine(search.PG_URL)
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": args.database}
        )
        if exists.first() is None:
            conn.exec_driver_sql(f'CREATE DATABASE "{args.database}"')
    admin.dispose()
    url = search.PG_URL.rsplit("/", 1)[0] + f"/{args.database}"
    data, _ = search.prepare_data(url, 50_000)
    engine = make_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # As bench/search.py leaves its sets: the name index's pages all-visible.
        conn.exec_driver_sql("VACUUM (ANALYZE) visible_persons")
    db = Database(engine)
    external = external_reader(engine, SCOPE)
    policy = search.external_compiler()()
    columns = repo.person_columns(policy)
    aliases = policy.person_fields.shows("aliases")
    rng = random.Random(7)
    figures: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "calls": args.calls,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    counting = Counting()
    for kind in ("sid", "name_prefix"):
        pick = data.random_sid if kind == "sid" else data.random_family_prefix
        values = [pick(rng) for _ in range(40)]
        variants: dict[str, Callable[[str], None]] = {
            "floor": partial(
                search.bare, db, columns, aliases, kind, count=False, durable_write=True
            ),
            "internal": partial(search.full_service, db, data.reader(), ReadContext(), kind),
            "external": partial(
                search.full_service, db, external, ReadContext(purpose=PURPOSE), kind
            ),
        }
        counting.samples.clear()
        with counting.installed():
            for call in variants.values():  # warm: past psycopg's prepare threshold
                for value in values[:10]:
                    call(value)
            for i in range(args.calls):  # the variants interleaved, call by call
                for name, call in variants.items():
                    counting.variant = name
                    call(values[i % len(values)])
                    counting.variant = None
        result = {name: _summary(counting.samples[name], args.calls) for name in variants}
        figures[kind] = result
        for name, summary in result.items():
            print(f"{kind} {name}: {summary['sum_of_medians_us']} us", file=sys.stderr)
            for row in summary["statements"]:
                print(
                    f"  {row['per_call']:4.1f}x {row['median_us']:8.1f} us  {row['statement']}",
                    file=sys.stderr,
                )
    figures["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    engine.dispose()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
