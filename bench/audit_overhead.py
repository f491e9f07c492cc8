"""The cost of an audited read over the physical floor (issue 12 target 1; issue 5 before it).

Data: bench/search_data (N synthetic persons with arrests, involvements, charges) and an external
agency with an agreement in force, adopted through the real lifecycle (its visibility set built).
Every variant is one transaction per query, committed, on the same random existing SIDs, the
variants interleaved in a rotating order. Figures are wall and CPU p50/p99 in ms, each
variant's ratio to ``bare``, and the audited read's ratio to the floor.

* ``external``, run as the API runs an external read (``Database.session(external=True)``: on
  PostgreSQL the external login, row-level security bound):
  * ``audited``: `openpars.access.service.search_persons`, the call every request makes:
    agreement in force (with its share lock), purpose, a place taken in both rate windows
    (access/rate.py), policy, page, shaping, and the audit entry in the same transaction before
    the commit;
  * ``bare``: the same steps without the append (`policy_for`, rate windows included, and
    `person_page`): the same unaudited read. Since 2026-12-06 the rate windows are a write
    (two rows updated), so ``bare`` commits a write of its own and the floor below holds the
    rate windows' cost as well as the one-row write: the audited/floor ratio charges the
    windows to the read, not to the audit;
  * ``unaudited_plus_one_row_write``, **the floor**: ``bare`` plus the smallest durable write,
    one integer into a scratch table without indexes (``bench_scratch``), committed: the floor
    under ANY durable per-read record, whatever its content and format. The target: audited at
    most 1.15x the floor at p50 and 1.3x at p99 (``audited_vs_floor_*`` in the JSON);
  * SQLite ``audited_synchronous_normal`` / PostgreSQL ``audited_without_wal_flush``: the
    audited variant on connections that do not wait for the disk (NOT durable), to show what
    the flush costs; measured after the other three, not among them (its writes through other
    connections would make the durable connections' next read reload SQLite's page cache).
* ``internal_service``: the real `search_persons` for a reader (which always audits) as
  ``audited``, against the same steps without the append.
* ``cost_per_call``: one call of each external variant, measured at the driver (statements;
  on PostgreSQL round trips on the wire, bench/roundtrips.py).

Durability is each database's as openpars configures it: SQLite in WAL mode with
``synchronous=FULL`` and PostgreSQL with ``synchronous_commit=on``. ``fsync`` is the raw flush
latency of the disk under the SQLite file (4 KiB rewritten and ``os.fsync``ed, 300 rounds);
``postgresql_same_device`` says whether PostgreSQL's data directory is on that device. Each
backend's ``budget`` sets the 1.15x allowance (0.15 x the floor's p50) beside that fsync and the
measured extra cost of the one-row write and of the audited variant.

The agreement's rate limits are the highest a scope allows (10,000 per user and 100,000 per
agency per minute): the bench's own pace must not trip them. A window holds as many places as
its busiest minute needed (grown 64 at a time), and a claim takes one place whatever the limit.

The last line printed is one JSON object.

    .venv/bin/python bench/audit_overhead.py [--quick] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from roundtrips import count
from search_data.agreement import PURPOSE, SCOPE, external_reader
from search_data.load import Loaded, load
from sqlalchemy import Engine

from openpars.access import service
from openpars.access.enforcement import policy_for
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.db import Base, Database, make_engine, make_unpooled_engine, utcnow
from openpars.identity.principal import Principal
from openpars.models import load_all_models

PAGE = 50
PG_URL = os.environ.get(
    "OPENPARS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# The smallest durable write: one integer into a table without indexes (SQLite: a rowid table).
SCRATCH_DDL = "CREATE TABLE bench_scratch (v INTEGER)"
SCRATCH_INSERT = "INSERT INTO bench_scratch VALUES (1)"
FSYNC_ROUNDS = 300


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    """An empty database of the backend (a temp file, or our own PostgreSQL database)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / f'overhead-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"openpars_bench_{uuid.uuid4().hex[:12]}"
    admin = make_unpooled_engine(PG_URL)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            # The schema made this database's own external role (access/rls.py).
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}_external"')
        admin.dispose()


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def fsync_latency(directory: Path, rounds: int = FSYNC_ROUNDS) -> dict[str, Any]:
    """Wall and CPU p50/p99 in ms of rewriting one 4 KiB block of a file and fsyncing it."""
    path = directory / f"fsync-probe-{uuid.uuid4().hex[:8]}"
    block = os.urandom(4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    wall: list[float] = []
    cpu: list[float] = []
    try:
        os.write(fd, block)
        os.fsync(fd)
        for _ in range(rounds + 20):  # the first 20 are warm-up
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            os.pwrite(fd, block, 0)
            os.fsync(fd)
            cpu.append((time.thread_time_ns() - start_cpu) / 1e6)
            wall.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        os.close(fd)
        path.unlink()
    wall, cpu = wall[20:], cpu[20:]
    return {
        "rounds": rounds,
        "p50_ms": round(_pct(wall, 0.5), 3),
        "p99_ms": round(_pct(wall, 0.99), 3),
        "cpu_p50_ms": round(_pct(cpu, 0.5), 3),
        "cpu_p99_ms": round(_pct(cpu, 0.99), 3),
    }


def postgresql_same_device(url: str, directory: Path) -> bool | None:
    """Whether PostgreSQL's data directory is on the device of `directory` (None: not visible)."""
    engine = make_unpooled_engine(url)
    try:
        with engine.connect() as conn:
            data_directory = str(conn.exec_driver_sql("SHOW data_directory").scalar())
        return os.stat(data_directory).st_dev == os.stat(directory).st_dev
    except Exception:  # not allowed to read the setting, or a remote server
        return None
    finally:
        engine.dispose()


def budget(external: dict[str, Any], fsync: dict[str, Any]) -> dict[str, Any]:
    """The 1.15x allowance over the floor at p50 beside one fsync and the measured extra
    costs, in ms."""
    bare = external["bare"]["p50_ms"]
    allowed = round(0.15 * external["unaudited_plus_one_row_write"]["p50_ms"], 3)
    return {
        "allowed_extra_p50_ms": allowed,
        "fsync_p50_ms": fsync["p50_ms"],
        "fsync_p50_over_allowed": round(fsync["p50_ms"] / allowed, 2) if allowed else None,
        "one_row_write_extra_p50_ms": round(
            external["unaudited_plus_one_row_write"]["p50_ms"] - bare, 3
        ),
        "audited_extra_p50_ms": round(external["audited"]["p50_ms"] - bare, 3),
    }


def measure(variants: dict[str, Callable[[str], None]], values: list[str]) -> dict[str, Any]:
    """Every variant on every value in rotating order; wall and CPU p50/p99 and ratios to bare.

    CPU is this thread's time: roughly what the wall time would be on an idle machine.
    """
    names = list(variants)
    for value in values[:20]:  # warm-up: plans, prepared statements, caches
        for name in names:
            variants[name](value)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for i, value in enumerate(values):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            variants[name](value)
            cpu[name].append((time.thread_time_ns() - start_cpu) / 1e6)
            wall[name].append((time.perf_counter_ns() - start) / 1e6)
    result: dict[str, Any] = {"n": len(values)}
    for name in names:
        result[name] = {
            "p50_ms": round(_pct(wall[name], 0.5), 3),
            "p99_ms": round(_pct(wall[name], 0.99), 3),
            "cpu_p50_ms": round(_pct(cpu[name], 0.5), 3),
            "cpu_p99_ms": round(_pct(cpu[name], 0.99), 3),
        }
    for name in names[1:]:
        for key in ("p50_ms", "p99_ms", "cpu_p50_ms", "cpu_p99_ms"):
            base = result[names[0]][key]
            result[name][f"ratio_{key[:-3]}"] = round(result[name][key] / base, 2) if base else None
    return result


def external_read(
    db: Database, principal: Principal, sid: str, *, audit: bool, scratch_write: bool = False
) -> None:
    """An external agency's SID lookup through the real path, in the external login's unit.

    ``audit``: `access.service.search_persons`, the call every request makes (agreement in
    force with its share lock, purpose, both rate windows, policy, page,
    shaping, the audit entry). Otherwise the same steps without the append: `policy_for`
    (with the rate windows) and `person_page`; ``scratch_write`` then adds the smallest
    durable write (one integer into the scratch table) before the commit.
    """
    query, context = PersonQuery(sid=sid, limit=PAGE), ReadContext(purpose=PURPOSE)
    with db.session(external=True) as session:
        if audit:
            service.search_persons(session, principal=principal, query=query, context=context)
            return
        policy = policy_for(session, principal=principal, context=context, at=utcnow())
        service.person_page(session, policy=policy, query=query)
        if scratch_write:
            session.connection().connection.cursor().execute(SCRATCH_INSERT)


def internal_unaudited(db: Database, principal: Principal, sid: str) -> None:
    """`service.search_persons` step by step, minus its audit append."""
    with db.session() as session:
        at = utcnow()
        policy = policy_for(session, principal=principal, context=ReadContext(), at=at)
        service.person_page(session, policy=policy, query=PersonQuery(sid=sid, limit=PAGE))


def internal_service(db: Database, principal: Principal, sid: str) -> None:
    """The real read service, which audits every call."""
    with db.session() as session:
        service.search_persons(
            session, principal=principal, query=PersonQuery(sid=sid), context=ReadContext()
        )


def _other_engine(backend: str, url: str) -> Engine:
    """The same database on connections that do not wait for the disk (NOT durable)."""
    if backend == "sqlite":
        other = make_engine(url, sqlite_synchronous="NORMAL")
    else:
        other = make_engine(f"{url}?options=-csynchronous_commit%3Doff")
    probe = "PRAGMA synchronous" if backend == "sqlite" else "SHOW synchronous_commit"
    with other.connect() as conn:
        assert conn.exec_driver_sql(probe).scalar() in (1, "off"), "durability not set"
    return other


def _prepare(backend: str, url: str, persons: int) -> tuple[Loaded, Principal]:
    """Load the data, the scratch table and an external agency with an agreement in force."""
    loader = make_engine(url)
    Base.metadata.create_all(loader)
    data: Loaded = load(loader, persons=persons, seed=20261128)
    with loader.begin() as conn:
        conn.exec_driver_sql(SCRATCH_DDL)
        if backend == "postgresql":
            # The external login writes the scratch row as it writes its entry (ADR 0004).
            conn.exec_driver_sql("GRANT INSERT ON bench_scratch TO PUBLIC")
    external = external_reader(loader, SCOPE)
    if backend == "postgresql":
        with loader.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) visible_persons")
    loader.dispose()
    return data, external


def run_backend(backend: str, persons: int, queries: int, tmp: Path) -> dict[str, Any]:
    """Load data into a fresh database of the backend and measure both comparisons."""
    with database(backend, tmp) as url:
        data, external = _prepare(backend, url, persons)
        engine = make_engine(url)
        other = _other_engine(backend, url)
        db, other_db = Database(engine), Database(other)
        try:
            rng = random.Random(11)
            sids = [data.random_sid(rng) for _ in range(queries)]
            reader = data.reader()
            result: dict[str, Any] = {}
            variants: dict[str, Callable[[str], None]] = {
                "bare": lambda v: external_read(db, external, v, audit=False),
                "audited": lambda v: external_read(db, external, v, audit=True),
                "unaudited_plus_one_row_write": lambda v: external_read(
                    db, external, v, audit=False, scratch_write=True
                ),
            }
            other_name = (
                "audited_synchronous_normal" if backend == "sqlite" else "audited_without_wal_flush"
            )
            result["external"] = measure(variants, sids)
            # The not-durable variant writes the same database through other connections: on
            # SQLite that makes the next read on the durable connections reload their page cache.
            # In the rotation it was followed by ``bare`` in 3 rounds of 4 and ``audited`` in 1,
            # the floor never, so it is measured on its own after the others.
            result["external"].update(
                measure(
                    {other_name: lambda v: external_read(other_db, external, v, audit=True)}, sids
                )
            )
            result["external"]["n"] = len(sids)
            bare_figures, alone = result["external"]["bare"], result["external"][other_name]
            for key in ("p50_ms", "p99_ms", "cpu_p50_ms", "cpu_p99_ms"):
                base = bare_figures[key]
                alone[f"ratio_{key[:-3]}"] = round(alone[key] / base, 2) if base else None
            floor = result["external"]["unaudited_plus_one_row_write"]
            for key in ("p50_ms", "p99_ms", "cpu_p50_ms"):
                ratio = result["external"]["audited"][key] / floor[key] if floor[key] else None
                result["external"]["audited"][f"vs_floor_{key[:-3]}"] = (
                    None if ratio is None else round(ratio, 2)
                )
            engines = (db.external_engine(), engine)
            result["cost_per_call"] = {
                name: costs(engines, lambda v=name: variants[v](sids[0]))
                for name in ("bare", "audited", "unaudited_plus_one_row_write")
            }
            result["internal_service"] = measure(
                {
                    "bare": lambda v: internal_unaudited(db, reader, v),
                    "audited": lambda v: internal_service(db, reader, v),
                },
                sids,
            )
            return result
        finally:
            db.dispose()
            other_db.dispose()


def costs(engines: tuple[Engine, ...], unit: Callable[[], object]) -> dict[str, Any]:
    """Statements, commits and (PostgreSQL) round trips of one call, measured."""
    return count(engines, unit)


def main() -> None:
    """Parse arguments, run, print the JSON line (``bare`` in it means unaudited)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="5,000 persons, 150 queries, SQLite only"
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql", "both"),
        default=None,
        help="default: both, or sqlite with --quick (to stay under a minute)",
    )
    args = parser.parse_args()
    load_all_models()
    persons, queries = (5_000, 150) if args.quick else (200_000, 1000)
    chosen = args.backend or ("sqlite" if args.quick else "both")
    backends = ("sqlite", "postgresql") if chosen == "both" else (chosen,)
    figures: dict[str, Any] = {
        "persons": persons,
        "queries": queries,
        "target_vs_floor": {"p50": 1.15, "p99": 1.3},
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
        fsync = fsync_latency(Path(tmp))
        figures["fsync"] = {"directory": tmp, **fsync}
        if "postgresql" in backends:
            figures["fsync"]["postgresql_same_device"] = postgresql_same_device(PG_URL, Path(tmp))
        print(f"fsync (4 KiB rewrite + os.fsync): {figures['fsync']}", file=sys.stderr)
        for backend in backends:
            figures[backend] = run_backend(backend, persons, queries, Path(tmp))
            figures[backend]["budget"] = budget(figures[backend]["external"], fsync)
            audited = figures[backend]["external"]["audited"]
            for key in ("p50", "p99"):
                figures[f"audited_vs_floor_{key}_{backend}"] = audited[f"vs_floor_{key}"]
            for name in ("external", "internal_service"):
                for variant, result in figures[backend][name].items():
                    if variant != "n":
                        print(f"{backend} {name} {variant}: {result}", file=sys.stderr)
            print(f"{backend} budget: {figures[backend]['budget']}", file=sys.stderr)
    figures["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
