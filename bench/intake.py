"""Benchmark arrest intake: the service layer vs a plain bulk insert, and the HTTP API.

Runs on fresh SQLite files in one temp directory, with the same synthetic arrests (the
demo generator, every person described inline):

1. service: ``records.service.submit_arrest`` with each arrest in its own transaction, as the
   API does (validation, identifier matching, versions, the audit entry, commit); and batch:
   ``records.batch.submit_arrests`` with 200 arrests per transaction (the same rules, the SQL
   shared across the batch), as ``openpars import`` and ``POST /arrests/batch`` do.
2. plain: the same domain rows (persons, aliases, arrests, involvements, charges) written with
   SQLAlchemy Core ``executemany`` in one transaction: the floor no rule-keeping path can beat.
   Also reported: the same Core inserts with one transaction per arrest, which separates the
   cost of committing each arrest from the cost of the rules (versions, audit, matching).
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
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert

from openpars.config import Settings
from openpars.db import Base, Database, make_engine, utcnow
from openpars.demo.generate import plan_arrests
from openpars.demo.seed import create_accounts, issue_tokens, workflow_principals
from openpars.identity import repository as identity_repo
from openpars.models import load_all_models
from openpars.records.batch import submit_arrests
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


def fresh_database(directory: Path, name: str) -> tuple[str, Engine]:
    """A new SQLite file with the schema and the demo's agencies and users."""
    url = f"sqlite:///{directory / name}.db"
    load_all_models()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Database(engine).session() as session:
        create_accounts(session)
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


def main() -> None:
    """Run the three measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument("--arrests", type=int, help="arrests per run (default 2000, quick 120)")
    args = parser.parse_args()
    count = args.arrests or (120 if args.quick else 2000)
    items = payloads(count, seed=11)
    with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
        directory = Path(tmp)
        _, service_engine = fresh_database(directory, "service")
        service = run_service(service_engine, items)
        _, batch_engine = fresh_database(directory, "batch")
        batched = run_batch(batch_engine, items)
        _, plain_engine = fresh_database(directory, "plain")
        plain = run_plain(plain_engine, items)
        _, per_arrest_engine = fresh_database(directory, "plain_tx")
        plain_tx = run_plain_per_arrest(per_arrest_engine, items)
        api_url, api_engine = fresh_database(directory, "api")
        latencies = run_api(api_url, api_engine, items[: max(1, count // 2)])
        for engine in (service_engine, batch_engine, plain_engine, per_arrest_engine, api_engine):
            engine.dispose()
    figures = {
        "arrests": count,
        "service_per_s": round(service.per_s, 1),
        "plain_per_s": round(plain.per_s, 1),
        "service_vs_plain": round(service.per_s / plain.per_s, 4),
        "batch_per_s": round(batched.per_s, 1),
        "batch_size": BATCH,
        "batch_service_vs_plain": round(batched.per_s / plain.per_s, 4),
        "target_service_vs_plain": round(1 / 3, 4),
        "plain_tx_per_s": round(plain_tx.per_s, 1),
        "service_vs_plain_tx": round(service.per_s / plain_tx.per_s, 4),
        "service_cpu_ms": round(service.cpu_ms, 2),
        "batch_cpu_ms": round(batched.cpu_ms, 3),
        "batch_vs_plain_cpu": round(plain.cpu_ms / batched.cpu_ms, 4),
        "plain_cpu_ms": round(plain.cpu_ms, 3),
        "plain_tx_cpu_ms": round(plain_tx.cpu_ms, 3),
        "api_requests": len(latencies),
        "api_per_s": round(1000 / statistics.mean(latencies), 1),
        "api_p50_ms": round(percentile(latencies, 50), 2),
        "api_p99_ms": round(percentile(latencies, 99), 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(
        f"service layer : {service.per_s:9.1f} arrests/s, {service.cpu_ms:7.2f} CPU ms each "
        "(one transaction per arrest)"
    )
    print(
        f"batch service : {batched.per_s:9.1f} arrests/s, {batched.cpu_ms:7.3f} CPU ms each "
        f"(submit_arrests, {BATCH} per transaction)"
    )
    print(
        f"plain insert  : {plain.per_s:9.1f} arrests/s, {plain.cpu_ms:7.3f} CPU ms each "
        "(Core executemany, one transaction)"
    )
    print(f"plain, 1 tx   : {plain_tx.per_s:9.1f} arrests/s, {plain_tx.cpu_ms:7.3f} CPU ms each")
    print(
        f"ratio         : batch {figures['batch_service_vs_plain']:.4f}, single "
        f"{figures['service_vs_plain']:.4f} (target >= 0.3333); single vs 1 tx per arrest "
        f"{figures['service_vs_plain_tx']:.4f}"
    )
    print(
        f"HTTP API      : p50 {figures['api_p50_ms']} ms, p99 {figures['api_p99_ms']} ms "
        f"(load average {figures['load_average_1m']} on {figures['cpus']} CPUs)"
    )
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
