"""Overhead of auditing a query: the same query audited and unaudited, side by side (issue 5).

Data: bench/search_data (N synthetic persons with arrests, involvements, charges). Every
variant is one transaction per query, committed, on the same random existing SIDs, the
variants interleaved in a rotating order. Figures are wall and CPU p50/p99 in ms and each
variant's ratio to ``bare``, the same query unaudited.

* ``external``: an external agency's SID lookup under a policy compiled from a real
  agreement scope (row filter, field projection, masks). ``audited`` appends the entry
  `openpars.access.service` would (query, purpose, decision, returned ids) with
  `audit.service.append` in the same transaction, before the rows are handed back.
* ``internal_service``: the real `openpars.access.service.search_persons` for a reader
  (which always audits) as ``audited``, against the same steps without the append.

Durability is each database's as openpars configures it by default: SQLite in WAL mode with
``synchronous=FULL`` (the WAL fsynced at every commit: an access and its entry survive a power
loss) and PostgreSQL with ``synchronous_commit=on`` (each commit that wrote waits for its WAL
to be flushed to disk). An unaudited read writes nothing, so its commit has nothing to make
durable. To show what that costs, ``external`` also has, as decomposition:

* ``unaudited_plus_one_row_write``: the unaudited query plus the smallest durable write, one
  one-integer row inserted through the driver cursor into a scratch table without indexes
  (``bench_scratch``, created by this bench), committed: the floor under ANY durable
  per-read record, whatever its content and format;
* SQLite ``audited_synchronous_normal``: the audited variant with
  ``OPENPARS_SQLITE_SYNCHRONOUS=NORMAL`` (survives a crash of openpars, may lose the last
  commits on a power loss);
* PostgreSQL ``audited_without_wal_flush``: the audited variant on connections opened with
  ``synchronous_commit=off`` (the commit does not wait for the WAL flush: NOT durable). The
  difference to ``audited`` is the flush wait alone; the difference to ``bare`` is the append
  statement's round trip and its work in the server.

``fsync`` is the raw flush latency of the disk under the SQLite file: wall and CPU p50/p99 of
rewriting one 4 KiB block of a file in the same directory and ``os.fsync`` (no size change,
as when a WAL reuses its file), 300 rounds; ``postgresql_same_device`` says whether
PostgreSQL's data directory is on that device (None if it is not visible from here). Each
backend's ``budget`` sets the 1.1x target's allowance (0.1 x the unaudited p50) beside that
fsync and the measured extra cost of the one-row write and of the audited variant.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_data.load import Loaded, load

from openpars.access import service
from openpars.access.enforcement import policy_for
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.db import Base, Database, make_engine, make_unpooled_engine, utcnow
from openpars.identity.principal import Principal
from openpars.models import load_all_models
from openpars.records.enums import ArrestState, Grade, InvolvementRole

PAGE = 50
PG_URL = os.environ.get(
    "OPENPARS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
EXTERNAL_FIELDS = ("family_name", "given_name", "middle_name", "birth_date", "sex", "race")
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


def external_policy() -> ReadPolicy:
    """An external agency's policy compiled from a real agreement scope and the site floor."""
    from openpars.access.external import compile_grant
    from openpars.agreements.floor import SiteFloor
    from openpars.agreements.grants import Grant
    from openpars.agreements.scope import FieldPolicy, PurposeRule, QueryLimits, Scope

    fields = {name: FieldPolicy.VISIBLE for name in EXTERNAL_FIELDS}
    fields |= {"birth_date": FieldPolicy.YEAR_ONLY, "fbi_number": FieldPolicy.SHOW_LAST_4}
    scope = Scope(
        roles=frozenset({InvolvementRole.ARRESTEE}),
        person_fields=fields,
        arrest_states=frozenset({ArrestState.CHARGED, ArrestState.RELEASED}),
        grades=frozenset({Grade.F1, Grade.F2, Grade.F3, Grade.M1, Grade.M2}),
        exclude_juveniles=True,
        purposes=(PurposeRule(purpose="criminal-investigation"),),
        limits=QueryLimits(exact_identifiers_only=False, name_search=True, max_results=PAGE),
    )
    now = datetime.now(UTC)
    grant = Grant(1, 1, "0" * 64, scope, now, now + timedelta(days=365), b"k" * 32)
    return compile_grant(grant, SiteFloor())


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
    """The 1.1x allowance at p50 beside one fsync and the measured extra costs, in ms."""
    bare = external["bare"]["p50_ms"]
    allowed = round(0.1 * bare, 3)
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


def external_lookup(
    db: Database,
    policy: Callable[[], ReadPolicy],
    sid: str,
    *,
    audit: bool,
    actor: tuple[int | None, int | None] = (None, None),
    scratch_write: bool = False,
) -> None:
    """An external SID lookup; if `audit`, its entry is appended before the commit.

    `actor` is the (user id, agency id) the entry names: real rows, so the entry pays for its
    foreign-key checks and index keys as a real agent's would. `scratch_write` instead inserts
    one row into the scratch table (the smallest durable write) before the commit.
    """
    with db.session() as session:
        pol = policy()
        page = service.person_page(session, policy=pol, query=PersonQuery(sid=sid, limit=PAGE))
        if scratch_write:
            session.connection().connection.cursor().execute(SCRATCH_INSERT)
        if audit:
            append(
                session,
                AuditEvent(
                    kind=AuditKind.SEARCH,
                    action="person.search",
                    user_id=actor[0],
                    username="ice.agent",
                    agency_id=actor[1],
                    source_ip="10.1.2.3",
                    params={
                        "query": {"sid": sid},
                        "purpose": "criminal-investigation",
                        "case_reference": "BENCH-1",
                        "decision": pol.explain(),
                    },
                    person_ids=[p.id for p in page.items],
                ),
            )


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


def run_backend(backend: str, persons: int, queries: int, tmp: Path) -> dict[str, Any]:
    """Load data into a fresh database of the backend and measure both comparisons."""
    with database(backend, tmp) as url:
        loader = make_engine(url)
        Base.metadata.create_all(loader)
        data: Loaded = load(loader, persons=persons, seed=20261128)
        with loader.begin() as conn:
            conn.exec_driver_sql(SCRATCH_DDL)
        loader.dispose()
        engine = make_engine(url)
        # The same database on connections of another durability (see the docstring): set
        # when connecting, so the measured transactions carry no extra statement.
        if backend == "sqlite":
            other = make_engine(url, sqlite_synchronous="NORMAL")
        else:
            other = make_engine(f"{url}?options=-csynchronous_commit%3Doff")
        probe = "PRAGMA synchronous" if backend == "sqlite" else "SHOW synchronous_commit"
        with other.connect() as conn:
            assert conn.exec_driver_sql(probe).scalar() in (1, "off"), "durability not set"
        try:
            db, other_db = Database(engine), Database(other)
            rng = random.Random(11)
            sids = [data.random_sid(rng) for _ in range(queries)]
            policy = external_policy
            reader = data.reader()
            result: dict[str, Any] = {}
            actor = (data.user_id, data.agency_id)
            external: dict[str, Callable[[str], None]] = {
                "bare": lambda v: external_lookup(db, policy, v, audit=False),
                "audited": lambda v: external_lookup(db, policy, v, audit=True, actor=actor),
                "unaudited_plus_one_row_write": lambda v: external_lookup(
                    db, policy, v, audit=False, scratch_write=True
                ),
            }
            other_name = (
                "audited_synchronous_normal" if backend == "sqlite" else "audited_without_wal_flush"
            )
            external[other_name] = lambda v: external_lookup(
                other_db, policy, v, audit=True, actor=actor
            )
            result["external"] = measure(external, sids)
            result["internal_service"] = measure(
                {
                    "bare": lambda v: internal_unaudited(db, reader, v),
                    "audited": lambda v: internal_service(db, reader, v),
                },
                sids,
            )
            return result
        finally:
            engine.dispose()
            other.dispose()


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
    figures: dict[str, Any] = {"persons": persons, "queries": queries, "target_ratio_p50": 1.1}
    with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
        fsync = fsync_latency(Path(tmp))
        figures["fsync"] = {"directory": tmp, **fsync}
        if "postgresql" in backends:
            figures["fsync"]["postgresql_same_device"] = postgresql_same_device(PG_URL, Path(tmp))
        print(f"fsync (4 KiB rewrite + os.fsync): {figures['fsync']}", file=sys.stderr)
        for backend in backends:
            figures[backend] = run_backend(backend, persons, queries, Path(tmp))
            figures[backend]["budget"] = budget(figures[backend]["external"], fsync)
            for name in ("external", "internal_service"):
                for variant, result in figures[backend][name].items():
                    if variant != "n":
                        print(f"{backend} {name} {variant}: {result}", file=sys.stderr)
            print(f"{backend} budget: {figures[backend]['budget']}", file=sys.stderr)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
