"""Person search on 1,000,000 persons, SQLite and PostgreSQL: enforced vs bare SQL (issues 2, 3).

Every figure is p50/p99 over the same random existing values, the variants interleaved in a
rotating order so drift and cache warming fall on all of them alike. The last line of output is
one JSON object with every figure.

    .venv/bin/python bench/search.py [--quick] [--backend sqlite|postgresql|both] [--data-dir D]

What runs (docs/benchmarks.md explains each figure):

- enforced: the policy compiled per query (internal, or an external agreement's real Scope
  through `compile_grant`), then `access.service.person_page`: exactly what the search service
  runs between deciding the policy and writing the audit entry (prepared statements with the
  policy's row filter, the aliases of the page if shown, the field projection and masks).
- bare: the same search as plain SQL text with no policy: the same sections (own name, then
  alias only when the page reaches it), the same page of 50 plus one, the same alias fetch, the
  same columns, no row filter.
- enforced_external_role (PostgreSQL, external figures): ``enforced`` logged in as the database's
  external role, the non-superuser login production uses, so row-level security is evaluated.
- issue12_whole_call (issue 12 target 3): the whole `access.service.search_persons` call,
  audit entry and commit included, for the external caller (agreement lookup with its share
  lock, purpose, rate windows (access/rate.py); as the external role on PostgreSQL) and the
  internal one, interleaved with ``bare`` and ``floor`` (the bare search plus the smallest
  durable write: one integer into an unindexed scratch table, committed); ratios
  ``vs_floor_*`` and ``vs_internal_*``; ``cost_per_call``: statements and (PostgreSQL) round
  trips of one call of each, measured at the driver (bench/roundtrips.py); ``api_request_cost``:
  the same for one GET /api/v1/persons through the ASGI app (authentication included).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateIndex, CreateTable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from roundtrips import count as count_costs
from search_data.agreement import PURPOSE, SCOPE, external_reader
from search_data.load import Loaded, load, reloaded

from openpars.access import repository as repo
from openpars.access import service
from openpars.access.external import compile_grant
from openpars.access.policy import ReadPolicy, internal_policy
from openpars.access.schemas import Decision, PersonPage, PersonQuery, ReadContext
from openpars.access.visibility import row_key
from openpars.agreements.floor import SiteFloor
from openpars.agreements.grants import Grant
from openpars.agreements.scope import Scope
from openpars.db import Base, Database, make_engine, make_unpooled_engine, schema_ddl
from openpars.identity.principal import Principal
from openpars.models import load_all_models
from openpars.records.validation import name_key, prefix_upper_bound

PG_URL = os.environ.get(
    "OPENPARS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PAGE = 50
STATEMENT_TIMEOUT_MS = 30_000
# The smallest durable write: one integer into a table without indexes.
SCRATCH_DDL = "CREATE TABLE IF NOT EXISTS bench_scratch (v INTEGER)"
SCRATCH_INSERT = "INSERT INTO bench_scratch VALUES (1)"
SEED = 20261128
# --- the database ----------------------------------------------------------------------------


def _fingerprint(engine: Engine, persons: int) -> str:
    """What a kept database must match to be reused: the schema DDL, the size, the seed."""
    ddl = [str(CreateTable(t).compile(engine)) for t in Base.metadata.sorted_tables]
    ddl += [
        str(CreateIndex(i).compile(engine)) for t in Base.metadata.sorted_tables for i in t.indexes
    ]
    # The registered DDL too (triggers, row-level security): a kept database with an older
    # trigger would measure the older code.
    ddl += schema_ddl(engine.dialect.name)
    return hashlib.sha256(f"{persons}/{SEED}/{''.join(sorted(ddl))}".encode()).hexdigest()[:16]


@contextlib.contextmanager
def database(backend: str, persons: int, keep: Path | None) -> Iterator[tuple[str, bool]]:
    """A database URL for the backend and whether it is kept after the run.

    With `keep`, the SQLite file (in that directory) or the PostgreSQL database is named after
    the size and stays for the next run; otherwise it is a throwaway.
    """
    tag = f"{persons}"
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
            folder = keep or Path(tmp)
            yield f"sqlite:///{folder / f'search-{tag}.db'}", keep is not None
        return
    name = f"openpars_bench_search_{tag}" + ("" if keep else f"_{os.getpid()}")
    admin = make_unpooled_engine(PG_URL)
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.first() is None:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}", keep is not None
    finally:
        if keep is None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                # The schema made this database's own external role (access/rls.py).
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}_external"')
        admin.dispose()


def prepare_data(url: str, persons: int) -> tuple[Loaded, float | None]:
    """Reuse a kept database whose fingerprint matches; otherwise (re)create and load it."""
    engine = make_engine(url)
    fingerprint = _fingerprint(engine, persons)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_meta (fingerprint TEXT)")
        conn.exec_driver_sql(SCRATCH_DDL)
        kept = conn.exec_driver_sql("SELECT fingerprint FROM bench_meta").scalar()
    if kept == fingerprint:
        data = reloaded(engine, persons=persons, seed=SEED)
        engine.dispose()
        return data, None
    if engine.dialect.name == "postgresql":
        # Row-level security policies tie the tables together; start from an empty schema.
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    else:
        Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_meta (fingerprint TEXT)")
        conn.exec_driver_sql(SCRATCH_DDL)
    started = time.perf_counter()
    data = load(engine, persons=persons, seed=SEED)
    seconds = round(time.perf_counter() - started, 1)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM bench_meta")
        conn.execute(text("INSERT INTO bench_meta VALUES (:f)"), {"f": fingerprint})
    engine.dispose()
    return data, seconds


# --- policies --------------------------------------------------------------------------------

Compile = Callable[[], ReadPolicy]


def external_compiler() -> Compile:
    """Compile the benchmark's agreement scope, as each external request does."""
    now = datetime.now(UTC)
    grant = Grant(
        1, 1, "0" * 64, Scope.model_validate(SCOPE), now, now + timedelta(days=365), b"k" * 32
    )
    floor = SiteFloor()
    return lambda: compile_grant(grant, floor)


def internal_compiler() -> Compile:
    """The policy of an internal reader without sealed access."""
    return lambda: internal_policy(sealed_access=False)


# --- the variants ----------------------------------------------------------------------------


def _query(kind: str, value: str, count: bool = False) -> PersonQuery:
    if kind == "sid":
        return PersonQuery(sid=value, count=count)
    return PersonQuery(name=value, count=count)


def enforced(
    db: Database,
    compile_policy: Compile,
    kind: str,
    value: str,
    count: bool,
    external_role: bool = False,
) -> None:
    """Compile the policy, then run the page exactly as the search service does;
    ``external_role``: logged in as the external database role (PostgreSQL: RLS binds)."""
    with db.session(external=external_role) as session:
        policy = compile_policy()
        service.person_page(session, policy=policy, query=_query(kind, value, count))


def bare(
    db: Database,
    columns: tuple[str, ...],
    aliases: bool,
    kind: str,
    value: str,
    count: bool,
    durable_write: bool = False,
) -> None:
    """The same search as plain SQL, no policy: same branches, page, columns, aliases, count,
    in the same unit of work (a session, committed) and at the driver level as the enforced
    statements, handed back as the same page model (the response every search builds).
    ``durable_write`` adds one integer row to an unindexed scratch table before the commit."""
    listed = ", ".join(columns)
    pg = db.dialect == "postgresql"

    def mark(name: str) -> str:
        return f"%({name})s" if pg else f":{name}"

    if kind == "sid":
        branches = [f"sid = {mark('sid')}"]
        params: dict[str, Any] = {"sid": value}
    else:
        key = name_key(value)
        own = f"name_key >= {mark('k')} AND name_key < {mark('u')}"
        alias = f"id IN (SELECT person_id FROM person_aliases WHERE {own}) AND NOT ({own})"
        branches = [own, alias]
        params = {"k": key, "u": prefix_upper_bound(key)}
    with db.session() as session:
        conn = session.connection()
        rows: list[Any] = []
        for where in branches:
            # Own-name matches first; the alias section only if the page reaches it.
            order = f"ORDER BY name_key, id LIMIT {PAGE + 1 - len(rows)}"
            rows += conn.exec_driver_sql(
                f"SELECT {listed} FROM persons WHERE {where} {order}", params
            ).fetchall()
            if len(rows) > PAGE:
                break
        page = rows[:PAGE]
        total = len(page)
        if count and len(rows) > PAGE:
            total = 0
            for where in branches:
                capped = f"SELECT id FROM persons WHERE {where} LIMIT {repo.TOTAL_CAP + 1}"
                total += conn.exec_driver_sql(
                    f"SELECT count(*) FROM ({capped}) AS c", params
                ).scalar_one()
        found: dict[int, list[dict[str, Any]]] = {}
        if aliases and page:
            ids = ", ".join(str(r[0]) for r in page)
            for pid, family, given in conn.exec_driver_sql(
                "SELECT person_id, family_name, given_name FROM person_aliases "
                f"WHERE person_id IN ({ids}) ORDER BY person_id, id"
            ):
                found.setdefault(pid, []).append({"family_name": family, "given_name": given})
        if durable_write:
            # The smallest durable write (the floor of any audited read): one integer, committed.
            conn.exec_driver_sql(SCRATCH_INSERT)
    shown = columns[1:]
    PersonPage(
        items=[
            {"id": r[0], **dict(zip(shown, r[1:], strict=True)), "aliases": found.get(r[0], [])}
            for r in page
        ],
        total=total,
        total_is_exact=len(rows) <= PAGE,
        has_more=len(rows) > PAGE,
        offset=0,
        limit=PAGE,
        decision=Decision(external=False),
    )


def full_service(
    db: Database, principal: Principal, context: ReadContext, kind: str, value: str
) -> None:
    """The whole search service call: policy, checks, page, audit entry, commit.

    An external caller's call runs as the external database role on PostgreSQL (ADR 0004), as
    the API runs it: a non-superuser, so row-level security binds it.
    """
    with db.session(external=principal.is_external) as session:
        service.search_persons(
            session, principal=principal, query=_query(kind, value), context=context
        )


# --- measurement -----------------------------------------------------------------------------


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _summary(wall: list[float], cpu: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(wall, 0.5), 3),
        "p99_ms": round(_pct(wall, 0.99), 3),
        "cpu_p50_ms": round(_pct(cpu, 0.5), 3),
        "cpu_p99_ms": round(_pct(cpu, 0.99), 3),
    }


def measure(
    variants: dict[str, Callable[[str], None]], values: list[str], budget_s: float | None = None
) -> dict[str, Any]:
    """Run every variant on every value, rotating the order; wall and CPU p50/p99 in ms.

    Every variant first runs once on every value (a warm-up, not counted). CPU is this thread's
    time (all of SQLite's work, only the client's share on PostgreSQL): what the wall time would
    be on an idle machine, where the wall time is inflated by whatever else the machine runs.
    With a budget the run stops after budget_s seconds (n says how many values ran); a
    statement cancelled by PostgreSQL's statement_timeout counts at the time it took and is
    reported under "timeouts".
    """
    names = list(variants)
    # Warm-up: every variant on every value once, so prepared statements, plans and the pages
    # the values touch are in memory as on a live system; otherwise the first figure measured
    # pays the cold reads for all the others (its p99 was 3-10x the same figure measured later).
    for value in values:
        for name in names:
            _timed(variants[name], value)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    timeouts = dict.fromkeys(names, 0)
    began = time.perf_counter()
    for i, value in enumerate(values):
        if budget_s is not None and i >= 10 and time.perf_counter() - began > budget_s:
            break
        for name in names[i % len(names) :] + names[: i % len(names)]:
            elapsed, used, ok = _timed(variants[name], value)
            wall[name].append(elapsed)
            cpu[name].append(used)
            timeouts[name] += not ok
    result: dict[str, Any] = {name: _summary(wall[name], cpu[name]) for name in names}
    for name in names:
        if timeouts[name]:
            result[name]["timeouts"] = timeouts[name]
    result["n"] = len(wall[names[0]])
    _add_ratios(result)
    return result


def _timed(variant: Callable[[str], None], value: str) -> tuple[float, float, bool]:
    start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
    try:
        variant(value)
        ok = True
    except OperationalError:
        ok = False
    return (time.perf_counter_ns() - start) / 1e6, (time.thread_time_ns() - start_cpu) / 1e6, ok


def _add_ratios(result: dict[str, Any]) -> None:
    """Each variant's figures divided by the bare SQL's."""
    base = result.get("bare")
    if base is None:
        return
    for name, figures in result.items():
        if name not in ("bare", "n") and isinstance(figures, dict):
            for key in ("p50_ms", "p99_ms", "cpu_p50_ms", "cpu_p99_ms"):
                ratio = figures[key] / base[key] if base[key] else math.inf
                figures[f"ratio_{key[:-3]}"] = round(ratio, 2)


def time_compile(compile_policy: Compile, n: int) -> dict[str, float]:
    """Policy compile per request (compile_grant over a real Scope and the site floor)."""
    samples: list[float] = []
    for _ in range(n):
        start = time.perf_counter_ns()
        compile_policy()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return {
        "compile_p50_ms": round(_pct(samples, 0.5), 4),
        "compile_p99_ms": round(_pct(samples, 0.99), 4),
    }


def plans(db: Database, policy: ReadPolicy, value: str) -> dict[str, str]:
    """Query plans of the prepared statements of an external name-prefix search."""
    key = name_key(value)
    values = {"name_key": key, "name_upper": prefix_upper_bound(key)}
    query = PersonQuery(name=value, count=True)
    out: dict[str, str] = {}
    with db.session() as session:
        # Run once so every statement of the search (page and count) is prepared.
        repo.search_persons(session, policy, query, limit=1)
        shape = (False, False, False, False, True)
        columns = repo.person_columns(policy)
        for branch in ("own", "alias"):
            for mode in (repo.PAGE, repo.CAPPED):
                stmt = repo.prepared_person_statement(
                    session, policy, shape, columns, branch, mode, True, (PAGE + 1, False)
                )
                params = dict(stmt.constants) | values
                params["vis_key"] = row_key(policy)
                bound: Any = params if stmt.order is None else tuple(params[n] for n in stmt.order)
                prefix = (
                    "EXPLAIN QUERY PLAN "
                    if db.dialect == "sqlite"
                    else "EXPLAIN (ANALYZE, BUFFERS) "
                )
                rows = session.connection().exec_driver_sql(prefix + stmt.sql, bound).all()
                label = f"{branch} {mode}"
                out[label] = "\n".join(" | ".join(map(str, r)) for r in rows)
        session.rollback()
    return out


# --- one backend -----------------------------------------------------------------------------


def run_backend(
    backend: str, persons: int, sids: int, names: int, budget_s: float, keep: Path | None
) -> dict[str, Any]:
    """Load (or reuse) the data, then measure every figure of both issues on one backend."""
    with database(backend, persons, keep) as (url, _kept):
        data, load_s = prepare_data(url, persons)
        how = f"loaded in {load_s} s" if load_s is not None else "reused"
        _progress(f"[{backend}] data ready ({how})")
        engine = make_engine(url)
        if backend == "postgresql":
            event.listen(engine, "connect", _statement_timeout)
        load_before = [round(x, 2) for x in os.getloadavg()]
        try:
            figures = _measure_all(engine, data, sids, names, budget_s)
        finally:
            engine.dispose()
    return figures | {
        "load_s": load_s,
        "rows": data.counts,
        "loadavg_before": load_before,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def _measure_all(
    engine: Engine, data: Loaded, sids: int, names: int, budget_s: float
) -> dict[str, Any]:
    db = Database(engine)
    # The agreement's adoption builds its visibility set (kept with the data when reused).
    started = time.perf_counter()
    external = external_reader(engine, SCOPE)
    adoption_s = round(time.perf_counter() - started, 2)
    if engine.dialect.name == "postgresql":
        # What autovacuum does soon after a bulk insert; every other table was vacuumed after
        # the load: the set's index-only scans then skip the heap.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) visible_persons")
    with db.session() as session:
        visible = session.scalar(text("SELECT count(*) FROM visible_persons"))
    _progress(f"agreement adopted in {adoption_s} s ({visible} persons in its visibility set)")
    rng = random.Random(7)
    values = {
        "sid": [data.random_sid(rng) for _ in range(sids)],
        "name_prefix": [data.random_family_prefix(rng) for _ in range(names)],
        "name_given_prefix": [data.random_family_given_prefix(rng) for _ in range(names)],
    }
    sections: dict[str, dict[str, Any]] = {}
    for section, compile_policy in (
        ("issue2_internal", internal_compiler()),
        ("issue3_external", external_compiler()),
    ):
        policy = compile_policy()
        columns = repo.person_columns(policy)
        aliases = policy.person_fields.shows("aliases")
        figures: dict[str, Any] = {}
        for kind, kind_values in values.items():
            counts = (False, True) if kind == "name_prefix" else (False,)
            for count in counts:
                label = kind + ("_count" if count else "")
                variants = {
                    "enforced": partial(enforced, db, compile_policy, kind, count=count),
                    "bare": partial(bare, db, columns, aliases, kind, count=count),
                }
                if section == "issue3_external" and engine.dialect.name == "postgresql":
                    # As production runs it: the non-superuser external login, RLS evaluated.
                    variants["enforced_external_role"] = partial(
                        enforced, db, compile_policy, kind, count=count, external_role=True
                    )
                figures[label] = measure(
                    variants,
                    kind_values,
                    budget_s=budget_s,
                )
                _progress(f"{section} {label}: {json.dumps(figures[label])}")
        sections[section] = figures
    sections["issue3_external"]["policy_compile"] = time_compile(external_compiler(), 2000)
    sections["issue3_external"]["adoption"] = {"seconds": adoption_s, "visible_persons": visible}
    _measure_services(db, external, data, values, sections, budget_s)
    plan_value = values["name_prefix"][0]
    return sections | {
        "plans": plans(db, external_compiler()(), plan_value),
        "plan_for": plan_value,
    }


def _measure_services(
    db: Database,
    external: Principal,
    data: Loaded,
    values: dict[str, list[str]],
    sections: dict[str, dict[str, Any]],
    budget_s: float,
) -> None:
    """Issue 12 target 3: the whole service call, external and internal, interleaved, against
    the bare search and the floor of any audited read (the bare search plus the smallest
    durable write); and what each call costs the database (statements, round trips)."""
    internal = data.reader()
    policy = external_compiler()()
    columns = repo.person_columns(policy)
    aliases = policy.person_fields.shows("aliases")
    context = ReadContext(purpose=PURPOSE)
    figures: dict[str, Any] = {}
    engines = (db.external_engine(), db.bind.engine)
    for kind in ("sid", "name_prefix"):
        variants: dict[str, Callable[[str], None]] = {
            "bare": partial(bare, db, columns, aliases, kind, count=False),
            "floor": partial(bare, db, columns, aliases, kind, count=False, durable_write=True),
            "service_internal": partial(full_service, db, internal, ReadContext(), kind),
            "service_external": partial(full_service, db, external, context, kind),
        }
        result = measure(variants, values[kind], budget_s=budget_s)
        service, floor = result["service_external"], result["floor"]
        for key in ("p50_ms", "p99_ms", "cpu_p50_ms"):
            service[f"vs_floor_{key[:-3]}"] = round(service[key] / floor[key], 2)
            inner = result["service_internal"][key]
            service[f"vs_internal_{key[:-3]}"] = round(service[key] / inner, 2)
            result["service_internal"][f"vs_floor_{key[:-3]}"] = round(inner / floor[key], 2)
        one = values[kind][0]
        result["cost_per_call"] = {
            name: count_costs(engines, partial(variants[name], one)) for name in variants
        }
        figures[f"service_{kind}"] = result
        _progress(f"issue12 service_{kind}: {json.dumps(result)}")
    figures["api_request_cost"] = {
        "external": _api_request_cost(db, external, {"sid": values["sid"][0], "purpose": PURPOSE}),
        "internal": _api_request_cost(db, internal, {"sid": values["sid"][0]}),
    }
    sections["issue12_whole_call"] = figures


def _api_request_cost(db: Database, principal: Principal, params: dict[str, str]) -> Any:
    """What one GET /api/v1/persons costs the database through the ASGI app (no network to
    the app; every database round trip real): the edge's authentication transaction (on
    PostgreSQL, an external caller's is on the main login and commits first) and the read."""
    from fastapi.testclient import TestClient

    from openpars.config import Settings
    from openpars.identity.service import issue_token
    from openpars.web.app import create_app

    with db.session() as session:
        _, secret = issue_token(
            session,
            actor=principal,
            user_id=principal.user_id or 0,
            name="bench",
            lifetime=timedelta(hours=1),
        )
    client = TestClient(create_app(Settings(database_url=str(db.bind.engine.url)), database=db))
    headers = {"Authorization": f"Bearer {secret}"}

    def request() -> None:
        response = client.get("/api/v1/persons", params=params, headers=headers)
        assert response.status_code == 200, response.text

    for _ in range(6):  # past psycopg's prepare threshold, as a live process is
        request()
    return count_costs((db.external_engine(), db.bind.engine), request)


def _statement_timeout(dbapi_connection: Any, _record: Any) -> None:
    # A pathological plan must not stall the run for minutes per query; see measure().
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
    dbapi_connection.commit()


def _progress(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def main() -> None:
    """Parse the arguments, run the backends, print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 persons, few queries")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--queries", type=int, default=None, help="queries per figure")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the loaded data (SQLite file here, PostgreSQL database by size) and reuse it",
    )
    args = parser.parse_args()
    load_all_models()
    persons = 50_000 if args.quick else 1_000_000
    sids, names, budget_s = (40, 30, 2.0) if args.quick else (500, 300, 120.0)
    if args.queries:
        sids = names = args.queries
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    figures: dict[str, Any] = {
        "persons": persons,
        "queries": {"sid": sids, "name": names, "budget_s_per_figure": budget_s},
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
    }
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    for backend in backends:
        figures[backend] = run_backend(backend, persons, sids, names, budget_s, args.data_dir)
    for backend in backends:
        plan = figures[backend].pop("plans")
        value = figures[backend].pop("plan_for")
        for label, text_plan in plan.items():
            print(f"--- {backend} plan, external {label} for name prefix {value!r} ---")
            print(text_plan)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
