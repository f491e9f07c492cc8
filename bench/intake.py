"""Benchmark arrest intake: the service layer vs a plain bulk insert, and the HTTP API.

Runs on fresh SQLite files in one temp directory, with the same synthetic arrests (the
demo generator, every person described inline):

1. service: ``records.service.submit_arrest`` with each arrest in its own transaction, as the
   API does (validation, identifier matching, versions, the audit entry, commit); and batch:
   ``records.batch.submit_arrests`` with 200 arrests per transaction (the same rules, the SQL
   shared across the batch), as ``openpars import`` and ``POST /arrests/batch`` do. Every
   database keeps one visibility set (an arrestees-only agreement's), which each write path
   maintains.
2. plain: the same domain rows (persons, aliases, arrests, involvements, charges) written with
   SQLAlchemy Core ``executemany`` in one transaction: the issue's baseline. Also reported:
   the same rows through the driver's own ``executemany`` (values converted as the column
   types would, no SQLAlchemy per-row work), a lower floor, since intake writes its rows that
   way too; and the same Core inserts with one transaction per arrest, which separates the
   cost of committing each arrest from the cost of the rules (versions, audit, matching).
   Batch and both plain inserts run ``--rounds`` times on fresh files, in turn, and each
   ratio is the median of its rounds' ratios: on a machine shared with other jobs one round
   can be off by a third.
3. api: ``POST /api/v1/arrests`` through the real app with FastAPI's TestClient; per-request
   latency p50 / p99.

``--quick`` finishes in under a minute. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Date, Engine, Table, insert
from sqlalchemy import Enum as SAEnum

from openpars.access.policy import ReadPolicy
from openpars.access.visibility import ensure_set
from openpars.config import Settings
from openpars.db import Base, Database, UTCDateTime, make_engine, utcnow
from openpars.demo.generate import plan_arrests
from openpars.demo.seed import create_accounts, issue_tokens, workflow_principals
from openpars.identity import repository as identity_repo
from openpars.models import load_all_models
from openpars.records.batch import submit_arrests
from openpars.records.enums import ArrestState, Grade, InvolvementRole
from openpars.records.intake import intake_digest
from openpars.records.models import Arrest, Charge, Involvement, Person, PersonAlias
from openpars.records.schemas import ArrestCreate, ArrestCreated
from openpars.records.service import submit_arrest
from openpars.records.validation import name_key
from openpars.records.versions import is_juvenile

# Arrests per batch on the batch path, as `openpars import` sends them by default.
BATCH = 200


@dataclass(frozen=True)
class Rate:
    """Arrests written, wall-clock seconds and this process's CPU seconds."""

    count: int
    wall: float
    cpu: float

    @property
    def per_s(self) -> float:
        """Arrests per wall-clock second."""
        return self.count / self.wall

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per arrest (less sensitive to other load on the machine)."""
        return self.cpu * 1000 / self.count


# The row filter of an arrestees-only agreement (adults, unsealed, charged and later, felonies
# and the higher misdemeanours), as the FBI holds in the demo.
SET_FILTER = ReadPolicy(
    external=True,
    roles=frozenset({InvolvementRole.ARRESTEE}),
    exclude_juveniles=True,
    arrest_states=frozenset(
        {ArrestState.CHARGED, ArrestState.ARRAIGNED, ArrestState.RELEASED, ArrestState.COMMITTED}
    ),
    grades=frozenset({Grade.F1, Grade.F2, Grade.F3, Grade.M1, Grade.M2}),
)


def fresh_database(directory: Path, name: str) -> tuple[str, Engine]:
    """A new SQLite file with the schema and the demo's agencies and users."""
    url = f"sqlite:///{directory / name}.db"
    load_all_models()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Database(engine).session() as session:
        create_accounts(session)
        # A site with one external agreement in force keeps its visibility set: every write
        # path below maintains it (the triggers fire on the plain inserts too).
        ensure_set(session, SET_FILTER)
    return url, engine


def payloads(count: int, seed: int) -> list[ArrestCreate]:
    """``count`` intake payloads, every person new (so all three runs write the same rows)."""
    plan = plan_arrests(count, seed, repeat_rate=0.0)
    return [arrest.payload({}, plan.persons) for arrest in plan.arrests]


def run_service(engine: Engine, items: list[ArrestCreate]) -> Rate:
    """Arrests per second through submit_arrest, one transaction each."""
    database = Database(engine)
    with database.session() as session:
        actor = workflow_principals(session)["booking"]
    started, cpu = time.perf_counter(), time.process_time()
    for data in items:
        with database.session() as session:
            submit_arrest(session, actor=actor, data=data)
    return Rate(len(items), time.perf_counter() - started, time.process_time() - cpu)


def run_batch(engine: Engine, items: list[ArrestCreate], size: int = BATCH) -> Rate:
    """Arrests per second through submit_arrests, batches of ``size`` committed one by one."""
    database = Database(engine)
    with database.session() as session:
        actor = workflow_principals(session)["booking"]
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(items), size):
        with database.session() as session:
            results = submit_arrests(session, actor=actor, items=items[start : start + size])
        refused = [r for r in results if not isinstance(r, ArrestCreated)]
        if refused:
            raise SystemExit(f"the batch path refused an arrest: {refused[0]}")
    return Rate(len(items), time.perf_counter() - started, time.process_time() - cpu)


Rows = dict[Any, list[dict[str, Any]]]
MODELS = (Person, PersonAlias, Arrest, Involvement, Charge)


def arrest_rows(data: ArrestCreate, arrest_id: int, person_id: int, agency_id: int) -> Rows:
    """The domain rows intake writes for one arrest, ids assigned here (persons from person_id)."""
    now = utcnow()
    rows: Rows = {model: [] for model in MODELS}
    rows[Arrest].append(
        {"id": arrest_id, **data.model_dump(exclude={"involvements", "charges"}),
         "state": "entered", "source_agency_id": agency_id,
         "intake_digest": intake_digest(data), "version": 1, "created_at": now,
         "updated_at": now}
    )  # fmt: skip
    for offset, involvement in enumerate(data.involvements):
        person = involvement.person
        assert person is not None
        pid = person_id + offset
        key = name_key(person.family_name, person.given_name, person.middle_name)
        rows[Person].append(
            {"id": pid, **person.model_dump(exclude={"aliases"}), "name_key": key,
             "version": 1, "created_at": now, "updated_at": now}
        )  # fmt: skip
        for alias in person.aliases:
            rows[PersonAlias].append(
                {"person_id": pid, "family_name": alias.family_name,
                 "given_name": alias.given_name,
                 "name_key": name_key(alias.family_name, alias.given_name)}
            )  # fmt: skip
        rows[Involvement].append(
            {"arrest_id": arrest_id, "person_id": pid, "role": involvement.role,
             "juvenile": is_juvenile(person.birth_date, data.arrested_at)}
        )  # fmt: skip
    for sequence, charge in enumerate(data.charges, start=1):
        rows[Charge].append(
            {"arrest_id": arrest_id, "stage": "recommended", "revision": 1,
             "sequence": sequence, **charge.model_dump(), "created_at": now}
        )  # fmt: skip
    return rows


def all_rows(items: list[ArrestCreate], agency_id: int) -> list[Rows]:
    """Each arrest's rows, with person ids running on across arrests."""
    result, person_id = [], 1
    for arrest_id, data in enumerate(items, start=1):
        result.append(arrest_rows(data, arrest_id, person_id, agency_id))
        person_id += len(data.involvements)
    return result


def police_agency_id(engine: Engine) -> int:
    """The demo police agency's id in a fresh database."""
    with Database(engine).session() as session:
        police = identity_repo.get_agency_by_ori(session, "PAPEP0000")
        assert police is not None
        return police.id


def insert_rows(conn: Connection, rows: Rows) -> None:
    """Core executemany of every table's rows, parents first."""
    for model in MODELS:
        if rows[model]:
            conn.execute(insert(model.__table__), rows[model])  # type: ignore[arg-type]


def run_plain(engine: Engine, items: list[ArrestCreate]) -> Rate:
    """Arrests per second for a Core executemany of the same rows in one transaction."""
    agency_id = police_agency_id(engine)
    started, cpu = time.perf_counter(), time.process_time()
    merged: Rows = {model: [] for model in MODELS}
    for rows in all_rows(items, agency_id):
        for model in MODELS:
            merged[model] += rows[model]
    with engine.begin() as conn:
        insert_rows(conn, merged)
    return Rate(len(items), time.perf_counter() - started, time.process_time() - cpu)


def driver_converter(column: Any) -> Callable[[Any], Any] | None:
    """How a column's type binds a value on SQLite, as a plain function (None: as it is)."""
    if isinstance(column.type, UTCDateTime):
        return lambda v: v if v is None else sqlite_instant(v)
    if isinstance(column.type, Date):
        return lambda v: v if v is None else v.isoformat()
    if isinstance(column.type, SAEnum):
        return lambda v: v if v is None else str(v)  # a StrEnum's str() is its value
    return None


def sqlite_instant(moment: datetime) -> str:
    """A UTCDateTime value as SQLAlchemy binds it on SQLite (naive UTC text)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def run_plain_driver(engine: Engine, items: list[ArrestCreate]) -> Rate:
    """Arrests per second for the driver's executemany of the same rows in one transaction."""
    agency_id = police_agency_id(engine)
    started, cpu = time.perf_counter(), time.process_time()
    merged: Rows = {model: [] for model in MODELS}
    for rows in all_rows(items, agency_id):
        for model in MODELS:
            merged[model] += rows[model]
    with engine.begin() as conn:
        for model in MODELS:
            table: Table = model.__table__  # type: ignore[assignment]
            names = list(merged[model][0])
            converters = [(i, driver_converter(table.c[name])) for i, name in enumerate(names)]
            special = [(i, f) for i, f in converters if f is not None]
            tuples = []
            for row in merged[model]:
                values = list(row.values())
                for i, f in special:
                    values[i] = f(values[i])
                tuples.append(tuple(values))
            statement = (
                f"INSERT INTO {table.name} ({', '.join(names)}) "
                f"VALUES ({', '.join('?' for _ in names)})"
            )
            conn.exec_driver_sql(statement, tuples)
    return Rate(len(items), time.perf_counter() - started, time.process_time() - cpu)


def run_plain_per_arrest(engine: Engine, items: list[ArrestCreate]) -> Rate:
    """Arrests per second for the same Core inserts with one transaction per arrest."""
    agency_id = police_agency_id(engine)
    started, cpu = time.perf_counter(), time.process_time()
    for rows in all_rows(items, agency_id):
        with engine.begin() as conn:
            insert_rows(conn, rows)
    return Rate(len(items), time.perf_counter() - started, time.process_time() - cpu)


def run_api(url: str, engine: Engine, items: list[ArrestCreate]) -> list[float]:
    """Per-request latencies (ms) of POST /api/v1/arrests through the real app."""
    from fastapi.testclient import TestClient

    from openpars.web.app import create_app

    with Database(engine).session() as session:
        token = next(
            c.token for c in issue_tokens(session, lifetime=timedelta(days=1))
            if c.username == "booking"
        )  # fmt: skip
    app = create_app(Settings(database_url=url))
    latencies = []
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for data in items:
            body = data.model_dump_json()
            started = time.perf_counter()
            response = client.post("/api/v1/arrests", content=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                raise SystemExit(f"API refused an arrest: {response.status_code} {response.text}")
    app.state.db.bind.dispose()
    return latencies


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@dataclass
class Rounds:
    """Each round's rate of the batch path and of both plain inserts, written in turn."""

    batch: list[Rate]
    plain: list[Rate]
    driver: list[Rate]

    def wall_ratio(self, other: str = "plain") -> list[float]:
        """Batch arrests/s over a plain insert's, per round."""
        return [b.per_s / p.per_s for b, p in zip(self.batch, getattr(self, other), strict=True)]

    def cpu_ratio(self, other: str = "plain") -> list[float]:
        """A plain insert's CPU time per arrest over the batch path's, per round."""
        return [p.cpu_ms / b.cpu_ms for b, p in zip(self.batch, getattr(self, other), strict=True)]


def run_rounds(directory: Path, items: list[ArrestCreate], rounds: int) -> Rounds:
    """Batch, plain Core and plain driver inserts, each on a fresh file, ``rounds`` times."""
    result = Rounds([], [], [])
    for n in range(rounds):
        for name, runner, rates in (
            ("batch", run_batch, result.batch),
            ("plain", run_plain, result.plain),
            ("driver", run_plain_driver, result.driver),
        ):
            _, engine = fresh_database(directory, f"{name}{n}")
            rates.append(runner(engine, items))
            engine.dispose()
    return result


def median(values: list[float]) -> float:
    """The median (the mean of the middle two for an even count)."""
    return statistics.median(values)


def main() -> None:
    """Run the measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument("--arrests", type=int, help="arrests per run (default 2000, quick 120)")
    parser.add_argument("--rounds", type=int, help="batch/plain rounds (default 3, quick 1)")
    args = parser.parse_args()
    count = args.arrests or (120 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)
    items = payloads(count, seed=11)
    load_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
        directory = Path(tmp)
        _, service_engine = fresh_database(directory, "service")
        service = run_service(service_engine, items)
        service_engine.dispose()
        measured = run_rounds(directory, items, rounds)
        _, per_arrest_engine = fresh_database(directory, "plain_tx")
        plain_tx = run_plain_per_arrest(per_arrest_engine, items)
        per_arrest_engine.dispose()
        api_url, api_engine = fresh_database(directory, "api")
        latencies = run_api(api_url, api_engine, items[: max(1, count // 2)])
        api_engine.dispose()
    batch_per_s = median([r.per_s for r in measured.batch])
    plain_per_s = median([r.per_s for r in measured.plain])
    driver_per_s = median([r.per_s for r in measured.driver])
    batch_cpu = median([r.cpu_ms for r in measured.batch])
    plain_cpu = median([r.cpu_ms for r in measured.plain])
    driver_cpu = median([r.cpu_ms for r in measured.driver])
    # Each name says what it measures: the path (single: one arrest per transaction, as
    # POST /arrests; batch: BATCH per transaction; plain: Core executemany, one transaction;
    # plain_driver: sqlite3 executemany; plain_per_arrest_tx: Core, one transaction per arrest),
    # then the unit: per_s is arrests per wall-clock second, cpu_ms CPU milliseconds per arrest;
    # x_vs_y_wall is x's rate over y's, x_vs_y_cpu is y's CPU per arrest over x's.
    figures = {
        "arrests": count,
        "rounds": rounds,
        "batch_size": BATCH,
        "single_per_s": round(service.per_s, 1),
        "single_cpu_ms": round(service.cpu_ms, 2),
        "batch_per_s": round(batch_per_s, 1),
        "batch_cpu_ms": round(batch_cpu, 3),
        "plain_per_s": round(plain_per_s, 1),
        "plain_cpu_ms": round(plain_cpu, 3),
        "plain_driver_per_s": round(driver_per_s, 1),
        "plain_driver_cpu_ms": round(driver_cpu, 3),
        "plain_per_arrest_tx_per_s": round(plain_tx.per_s, 1),
        "plain_per_arrest_tx_cpu_ms": round(plain_tx.cpu_ms, 3),
        "batch_vs_plain_wall": round(median(measured.wall_ratio()), 4),
        "batch_vs_plain_wall_rounds": [round(r, 3) for r in measured.wall_ratio()],
        "batch_vs_plain_cpu": round(median(measured.cpu_ratio()), 4),
        "batch_vs_plain_cpu_rounds": [round(r, 3) for r in measured.cpu_ratio()],
        "target_batch_vs_plain_wall": round(1 / 3, 4),
        "batch_vs_plain_driver_wall": round(median(measured.wall_ratio("driver")), 4),
        "batch_vs_plain_driver_cpu": round(median(measured.cpu_ratio("driver")), 4),
        "single_vs_plain_wall": round(service.per_s / plain_per_s, 4),
        "single_vs_plain_per_arrest_tx_wall": round(service.per_s / plain_tx.per_s, 4),
        # POST /api/v1/arrests through Starlette's TestClient (in process, no socket), one at
        # a time: the rate is the inverse of the mean latency.
        "api_testclient_requests": len(latencies),
        "api_testclient_sequential_per_s": round(1000 / statistics.mean(latencies), 1),
        "api_testclient_p50_ms": round(percentile(latencies, 50), 2),
        "api_testclient_p99_ms": round(percentile(latencies, 99), 2),
        "load_average_1m_start": load_start,
        "load_average_1m_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(
        f"service layer : {service.per_s:9.1f} arrests/s, {service.cpu_ms:7.2f} CPU ms each "
        "(one transaction per arrest)"
    )
    print(
        f"batch service : {batch_per_s:9.1f} arrests/s, {batch_cpu:7.3f} CPU ms each "
        f"(submit_arrests, {BATCH} per transaction; medians of {rounds} rounds)"
    )
    print(
        f"plain insert  : {plain_per_s:9.1f} arrests/s, {plain_cpu:7.3f} CPU ms each "
        "(Core executemany, one transaction)"
    )
    print(
        f"plain, driver : {driver_per_s:9.1f} arrests/s, {driver_cpu:7.3f} CPU ms each "
        "(sqlite3 executemany, one transaction)"
    )
    print(f"plain, 1 tx   : {plain_tx.per_s:9.1f} arrests/s, {plain_tx.cpu_ms:7.3f} CPU ms each")
    print(
        f"ratio         : batch {figures['batch_vs_plain_wall']:.4f} by wall "
        f"(rounds {figures['batch_vs_plain_wall_rounds']}), {figures['batch_vs_plain_cpu']:.4f} "
        f"by CPU (rounds {figures['batch_vs_plain_cpu_rounds']}) (target >= 0.3333); single "
        f"{figures['single_vs_plain_wall']:.4f}; batch vs driver-level plain "
        f"{figures['batch_vs_plain_driver_wall']:.4f}; single vs 1 tx per arrest "
        f"{figures['single_vs_plain_per_arrest_tx_wall']:.4f}"
    )
    print(
        f"API (TestClient): p50 {figures['api_testclient_p50_ms']} ms, p99 "
        f"{figures['api_testclient_p99_ms']} ms (load average {figures['load_average_1m_start']}"
        f" to {figures['load_average_1m_end']} on {figures['cpus']} CPUs)"
    )
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
