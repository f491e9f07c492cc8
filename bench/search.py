"""Person search on 1,000,000 persons, SQLite and PostgreSQL: enforced vs bare SQL (issues 2, 3).

Every figure is p50/p99 over the same random existing values, the variants interleaved in a
rotating order so drift and cache warming fall on all of them alike. The last line of output is
one JSON object with every figure.

    .venv/bin/python bench/search.py [--quick] [--backend sqlite|postgresql|both]
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
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_data import shapes
from search_data.load import Loaded, load

from openpars.access import repository as repo
from openpars.access import shaping
from openpars.access.filters import person_visible
from openpars.access.policy import FieldProjection, ReadPolicy, internal_policy
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.db import Base, Database, make_engine, make_unpooled_engine
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Role
from openpars.models import load_all_models
from openpars.records.enums import ArrestState, Grade, InvolvementRole
from openpars.records.models import Person
from openpars.records.validation import name_key, prefix_upper_bound

PG_URL = os.environ.get(
    "OPENPARS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PAGE = 50
STATEMENT_TIMEOUT_MS = 30_000
EXTERNAL_FIELDS = ("family_name", "given_name", "middle_name", "birth_date", "sex", "race")
EXTERNAL_COLUMNS = "id, " + ", ".join((*EXTERNAL_FIELDS, "sid", "fbi_number"))
ALL_COLUMNS = ", ".join(c.name for c in Person.__table__.columns)


# --- the database ----------------------------------------------------------------------------


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    """An empty database of the backend (a temp file, or our own PostgreSQL database)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / f'search-{uuid.uuid4().hex[:8]}.db'}"
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
        admin.dispose()


# --- policies --------------------------------------------------------------------------------

Compile = Callable[[], ReadPolicy]


def external_compiler() -> tuple[Compile, str]:
    """Compile a real agreement scope if the agreements package imports, else build the policy."""
    try:
        from openpars.access.external import compile_grant
        from openpars.agreements.floor import SiteFloor
        from openpars.agreements.grants import Grant
        from openpars.agreements.scope import FieldPolicy, PurposeRule, QueryLimits, Scope
    except Exception as exc:
        note = f"compile_grant unavailable ({type(exc).__name__}: {exc}); ReadPolicy built by hand"
        return _hand_policy, note
    fields = {name: FieldPolicy.VISIBLE for name in EXTERNAL_FIELDS}
    fields |= {
        "aliases": FieldPolicy.VISIBLE,
        "birth_date": FieldPolicy.YEAR_ONLY,
        "sid": FieldPolicy.VISIBLE,
        "fbi_number": FieldPolicy.SHOW_LAST_4,
    }
    scope = Scope(
        roles=frozenset({InvolvementRole.ARRESTEE}),
        person_fields=fields,
        arrest_states=_STATES,
        grades=_GRADES,
        exclude_juveniles=True,
        purposes=(PurposeRule(purpose="criminal-investigation"),),
        limits=QueryLimits(exact_identifiers_only=False, name_search=True, max_results=PAGE),
    )
    now = datetime.now(UTC)
    grant = Grant(1, 1, "0" * 64, scope, now, now + timedelta(days=365))
    floor = SiteFloor()
    return (lambda: compile_grant(grant, floor)), "compile_grant over a real Scope + SiteFloor"


_STATES = frozenset(
    {ArrestState.CHARGED, ArrestState.ARRAIGNED, ArrestState.RELEASED, ArrestState.COMMITTED}
)
_GRADES = frozenset({Grade.F1, Grade.F2, Grade.F3, Grade.M1, Grade.M2})


def _hand_policy() -> ReadPolicy:
    year = lambda v: str(v.year)  # noqa: E731
    last4 = lambda v: "x" * max(0, len(str(v)) - 4) + str(v)[-4:]  # noqa: E731
    return ReadPolicy(
        external=True,
        roles=frozenset({InvolvementRole.ARRESTEE}),
        exclude_juveniles=True,
        include_sealed=False,
        arrest_states=_STATES,
        grades=_GRADES,
        person_fields=FieldProjection(
            allowed=frozenset({*EXTERNAL_FIELDS, "aliases", "sid", "fbi_number"}),
            masks={"birth_date": year, "fbi_number": last4},
        ),
        max_results=PAGE,
    )


# --- the variants ----------------------------------------------------------------------------


def _query(kind: str, value: str) -> PersonQuery:
    return PersonQuery(sid=value) if kind == "sid" else PersonQuery(name=value)


def _bare(engine: Engine, kind: str, columns: str, value: str) -> None:
    """The same lookup as plain SQL with no policy: one page plus the capped count."""
    if kind == "sid":
        where, params = "sid = :sid", {"sid": value}
    else:
        key = name_key(value)
        where, params = "name_key >= :k AND name_key < :u", {"k": key, "u": prefix_upper_bound(key)}
    with engine.connect() as conn:
        conn.execute(
            text(f"SELECT {columns} FROM persons WHERE {where} ORDER BY name_key, id LIMIT {PAGE}"),
            params,
        ).all()
        conn.execute(
            text(f"SELECT count(*) FROM (SELECT id FROM persons WHERE {where} LIMIT 1001) AS c"),
            params,
        ).scalar()
        conn.commit()


def _orm(
    db: Database, policy: Compile | None, project: bool, kind: str, value: str, how: str = "shipped"
) -> None:
    """The repository path: page + capped total (+ field shaping), one session per call.

    ``how`` picks the name shape: the shipped ``repo.person_branches`` + ``repo.search_page``
    (two index-ordered branches, proposal B adopted), or ``union`` or ``split``
    (bench/search_data/shapes.py), all under the same policy.
    """
    query = _query(kind, value)
    with db.session() as session:
        if policy is None:
            pol, stmt = _hand_policy(), shapes.no_policy_stmt(query)
        else:
            pol = policy()
            stmt = shapes.union_stmt(pol, query) if how == "union" else None
        if how == "shipped" and policy is not None:
            branches = repo.person_branches(pol, query)
            rows, _total, _exact = repo.search_page(session, branches, offset=0, limit=PAGE)
        elif stmt is None:
            rows, _total = shapes.split_search(session, pol, query, offset=0, limit=PAGE)
        else:
            rows = repo.page(session, stmt, offset=0, limit=PAGE)
            repo.capped_count(session, stmt)
        if project:
            [shaping.person_read(p, pol) for p in rows]


def _service(db: Database, principal: Principal, value: str) -> None:
    from openpars.access import service

    with db.session() as session:
        service.search_persons(
            session, principal=principal, query=PersonQuery(sid=value), context=ReadContext()
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

    CPU is this thread's time (all of SQLite's work, only the client's share on PostgreSQL):
    it is what the wall time would be on an idle machine, where the wall time is inflated
    by whatever else the machine runs. With a budget, the run stops after budget_s seconds
    (n says how many values ran); a statement cancelled by PostgreSQL's statement_timeout
    counts at the time it took and is reported under "timeouts".
    """
    names = list(variants)
    for value in values[:3]:  # Warm-up: plans, prepared statements, caches.
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
    return result


def _timed(variant: Callable[[str], None], value: str) -> tuple[float, float, bool]:
    start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
    try:
        variant(value)
        ok = True
    except OperationalError:
        ok = False
    return (time.perf_counter_ns() - start) / 1e6, (time.thread_time_ns() - start_cpu) / 1e6, ok


def time_compile(compile_policy: Compile, n: int) -> dict[str, float]:
    """Per-request policy work: compile, then the filter and statement built from it."""
    compiles: list[float] = []
    builds: list[float] = []
    for i in range(n):
        start = time.perf_counter_ns()
        policy = compile_policy()
        mid = time.perf_counter_ns()
        person_visible(policy)
        repo.person_branches(policy, PersonQuery(sid=f"{i:09d}"))
        end = time.perf_counter_ns()
        compiles.append((mid - start) / 1e6)
        builds.append((end - start) / 1e6)
    return {
        "compile_p50_ms": round(_pct(compiles, 0.5), 4),
        "compile_p99_ms": round(_pct(compiles, 0.99), 4),
        "compile_and_build_stmt_p50_ms": round(_pct(builds, 0.5), 4),
        "compile_and_build_stmt_p99_ms": round(_pct(builds, 0.99), 4),
    }


def plans(engine: Engine, policy: ReadPolicy, value: str, *, analyze: bool) -> dict[str, str]:
    """Plans of the enforced name-prefix page and capped count, shipped and proposed shapes."""
    query = PersonQuery(name=value)
    internal = internal_policy(sealed_access=False)
    stmts = {
        "internal_own_name": repo.person_branches(internal, query)[0],
        "internal_alias_only": repo.person_branches(internal, query)[1],
        "external_own_name": repo.person_branches(policy, query)[0],
        "external_alias_only": repo.person_branches(policy, query)[1],
        "internal_proposed_union": shapes.union_stmt(internal, query),
        "external_proposed_union": shapes.union_stmt(policy, query),
        "external_proposed_split_primary": shapes.split_primary_stmt(policy, query),
    }
    out: dict[str, str] = {}
    for label, stmt in stmts.items():
        count = select(func.count()).select_from(stmt.order_by(None).limit(1001).subquery())
        for part, sql_stmt in (("page", stmt.limit(PAGE)), ("count", count)):
            sql = str(
                sql_stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
            )
            out[f"{label} {part}"] = _explain(engine, sql, analyze=analyze)
    return out


def _explain(engine: Engine, sql: str, *, analyze: bool) -> str:
    # EXPLAIN ANALYZE on PostgreSQL runs the statement; SQLite only has EXPLAIN QUERY PLAN.
    if engine.dialect.name == "sqlite":
        prefix = "EXPLAIN QUERY PLAN "
    else:
        prefix = "EXPLAIN ANALYZE " if analyze else "EXPLAIN "
    try:
        with engine.connect() as conn:
            lines = [" | ".join(map(str, row)) for row in conn.exec_driver_sql(prefix + sql)]
            conn.rollback()
    except OperationalError:
        with engine.connect() as conn:
            lines = [f"(EXPLAIN ANALYZE exceeded {STATEMENT_TIMEOUT_MS} ms; estimated plan)"]
            lines += [" | ".join(map(str, row)) for row in conn.exec_driver_sql("EXPLAIN " + sql)]
            conn.rollback()
    return "\n".join(lines)


# --- one backend -----------------------------------------------------------------------------


def run_backend(
    backend: str, persons: int, sids: int, names: int, budget_s: float, tmp: Path
) -> dict[str, Any]:
    """Load the data, then measure every figure of both issues on one backend."""
    with database(backend, tmp) as url:
        loader = make_engine(url)
        Base.metadata.create_all(loader)
        started = time.perf_counter()
        data: Loaded = load(loader, persons=persons, seed=20261128)
        load_s = round(time.perf_counter() - started, 1)
        loader.dispose()
        _progress(f"[{backend}] loaded {data.counts} in {load_s} s")
        load_before = [round(x, 2) for x in os.getloadavg()]
        engine = make_engine(url)
        if backend == "postgresql":
            event.listen(engine, "connect", _statement_timeout)
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
    rng = random.Random(7)
    sid_values = [data.random_sid(rng) for _ in range(sids)]
    name_values = {
        "name_prefix": [data.random_family_prefix(rng) for _ in range(names)],
        "name_given_prefix": [data.random_family_given_prefix(rng) for _ in range(names)],
    }
    internal = lambda: internal_policy(sealed_access=False)  # noqa: E731
    external, how = external_compiler()
    issue2: dict[str, Any] = {}
    issue3: dict[str, Any] = {"policy": how}
    for section, policy, columns, shape in (
        (issue2, internal, ALL_COLUMNS, False),
        (issue3, external, EXTERNAL_COLUMNS, True),
    ):
        section["sid"] = measure(
            {
                "enforced": partial(_orm, db, policy, shape, "sid"),
                "orm_no_policy": partial(_orm, db, None, shape, "sid"),
                "bare": partial(_bare, engine, "sid", columns),
            },
            sid_values,
        )
        _add_ratios(section["sid"])
    _progress("sid done: " + json.dumps({"internal": issue2["sid"], "external": issue3["sid"]}))
    for kind, values in name_values.items():
        # The ORM path without policy is left out for names: it shares the plan of the
        # enforced one (see the plans). Every shape runs under a time budget because the
        # shipped plans grow with the number of matches at 1M (see docs/benchmarks.md).
        figures: dict[str, Any] = {}
        for how in ("shipped", "union", "split"):
            figures[how] = measure(
                {
                    "internal": partial(_orm, db, internal, False, "name", how=how),
                    "bare_internal": partial(_bare, engine, "name", ALL_COLUMNS),
                    "external": partial(_orm, db, external, True, "name", how=how),
                    "bare_external": partial(_bare, engine, "name", EXTERNAL_COLUMNS),
                },
                values,
                budget_s=budget_s,
            )
            suffix = "" if how == "shipped" else f"_proposed_{how}"
            for section, label in ((issue2, "internal"), (issue3, "external")):
                section[kind + suffix] = _pair(
                    figures[how][label], figures[how][f"bare_{label}"], figures[how]["n"]
                )
        _progress(f"{kind} done: " + json.dumps(figures))
    issue3["policy_compile"] = time_compile(external, min(2000, 10 * sids))
    issue2["service_sid"] = _measure_service(db, engine, data, sid_values)
    _progress("service done")
    plan_value = name_values["name_prefix"][0]
    return {
        "issue2_internal": issue2,
        "issue3_external": issue3,
        # A quick run skips ANALYZE: the shipped count alone takes seconds on PostgreSQL.
        "plans": plans(engine, external(), plan_value, analyze=sids >= 100) | {"value": plan_value},
    }


def _add_ratios(result: dict[str, Any]) -> None:
    """Each variant's figures divided by the bare SQL's."""
    bare = result["bare"]
    for name, figures in result.items():
        if name not in ("bare", "n") and isinstance(figures, dict):
            for key in ("p50_ms", "p99_ms", "cpu_p50_ms", "cpu_p99_ms"):
                ratio = figures[key] / bare[key] if bare[key] else math.inf
                figures[f"ratio_{key[:-3]}"] = round(ratio, 2)


def _pair(enforced: dict[str, float], bare: dict[str, float], n: int) -> dict[str, Any]:
    """An enforced figure next to its bare SQL, with the ratios."""
    ratios = {
        f"ratio_{key[:-3]}": round(enforced[key] / bare[key], 2) if bare[key] else math.inf
        for key in ("p50_ms", "p99_ms", "cpu_p50_ms", "cpu_p99_ms")
    }
    return {"enforced": enforced | ratios, "bare": bare, "n": n}


def _statement_timeout(dbapi_connection: Any, _record: Any) -> None:
    # A pathological plan must not stall the run for minutes per query; see measure().
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
    dbapi_connection.commit()


def _progress(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _measure_service(db: Database, engine: Engine, data: Loaded, sids: list[str]) -> Any:
    try:
        import openpars.access.service  # noqa: F401
    except Exception as exc:
        return {"skipped": f"openpars.access.service does not import: {exc}"}
    principal = Principal(
        user_id=data.user_id,
        username="bench-reader",
        agency_id=data.agency_id,
        agency_kind=AgencyKind.POLICE,
        roles=frozenset({Role.READER}),
    )
    result = measure(
        {
            "service": partial(_service, db, principal),
            "bare": partial(_bare, engine, "sid", ALL_COLUMNS),
        },
        sids,
    )
    _add_ratios(result)
    return result


def main() -> None:
    """Parse the arguments, run the backends, print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 persons, few queries")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--queries", type=int, default=None, help="queries per figure")
    args = parser.parse_args()
    load_all_models()
    persons = 50_000 if args.quick else 1_000_000
    sids, names, budget_s = (30, 20, 1.5) if args.quick else (500, 300, 150.0)
    if args.queries:
        sids = names = args.queries
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    figures: dict[str, Any] = {
        "persons": persons,
        "queries": {"sid": sids, "name": names, "budget_s_per_name_figure": budget_s},
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
        for backend in backends:
            figures[backend] = run_backend(backend, persons, sids, names, budget_s, Path(tmp))
    for backend in backends:
        plan = figures[backend].pop("plans")
        value = plan.pop("value")
        for label, text_plan in plan.items():
            print(f"--- {backend} plan, {label} for name prefix {value!r} ---\n{text_plan}")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
