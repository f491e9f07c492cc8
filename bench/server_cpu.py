"""CPU per call, the client's and PostgreSQL's, of the issue 12 service calls (target 3).

Wall-clock ratios on a shared machine measure the run queue; CPU time does not (much). This
counts, per call, the calling thread's CPU (``time.thread_time``) and the CPU of every
PostgreSQL backend connected to the benchmark's database (``/proc/<pid>/stat``: the server
must run on this machine, as the benchmarks' loopback server does), for the floor (the bare
search plus the smallest durable write), the internal service call and the external one (as
the external role), by SID and by name prefix, on bench/search.py's 50,000 persons.

    .venv/bin/python bench/server_cpu.py [--quick] [--database NAME] [--calls N]

The database is kept (named ``--database``) and reused while its schema matches, like
bench/search.py's ``--data-dir``. The last line of output is one JSON object; each figure is
the best (lowest total) of three runs of ``--calls`` calls.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

import search
from search_data.agreement import PURPOSE, SCOPE, external_reader

from openpars.access import repository as repo
from openpars.access.schemas import ReadContext
from openpars.db import Database, make_engine, make_unpooled_engine
from openpars.models import load_all_models

TICKS = os.sysconf("SC_CLK_TCK")


def _server_cpu_s(admin: Engine, database: str) -> float:
    """User and system CPU seconds of every backend connected to ``database`` so far."""
    with admin.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": database}
        ).scalars()
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a backend that ended meanwhile
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def _per_call(
    admin: Engine, database: str, call: Callable[[str], None], values: list[str], calls: int
) -> dict[str, float]:
    best: tuple[float, float, float] | None = None
    for _ in range(3):
        server, client, wall = (
            _server_cpu_s(admin, database),
            time.thread_time(),
            time.perf_counter(),
        )
        for i in range(calls):
            call(values[i % len(values)])
        wall = time.perf_counter() - wall
        client = time.thread_time() - client
        server = _server_cpu_s(admin, database) - server
        if best is None or client + server < best[0] + best[1]:
            best = (client, server, wall)
    assert best is not None
    client, server, wall = (x / calls * 1000 for x in best)
    return {
        "client_cpu_ms": round(client, 3),
        "server_cpu_ms": round(server, 3),
        "cpu_ms": round(client + server, 3),
        "wall_ms": round(wall, 3),
    }


def main() -> None:
    """Load or reuse the data, then time each call kind."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", default="openpars_bench_server_cpu")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="50 calls (the kept database reused; built first if missing)",
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
    url = search.PG_URL.rsplit("/", 1)[0] + f"/{args.database}"
    data, _ = search.prepare_data(url, 50_000)
    engine = make_engine(url)
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
        for call in variants.values():  # warm: past psycopg's prepare threshold
            for value in values[:10]:
                call(value)
        result = {
            name: _per_call(admin, args.database, call, values, args.calls)
            for name, call in variants.items()
        }
        ext, floor, internal = result["external"], result["floor"], result["internal"]
        for key in ("cpu_ms", "server_cpu_ms", "client_cpu_ms"):
            ext[f"vs_floor_{key}"] = round(ext[key] / floor[key], 2) if floor[key] else None
            ext[f"vs_internal_{key}"] = (
                round(ext[key] / internal[key], 2) if internal[key] else None
            )
        figures[kind] = result
        print(f"{kind}: {json.dumps(result)}", file=sys.stderr, flush=True)
    figures["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    engine.dispose()
    admin.dispose()
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
