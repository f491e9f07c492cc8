"""Durable audit append throughput with group commit, side by side with a bare INSERT.

One process, one core, one SQLite file in WAL mode with ``synchronous=FULL``: every commit
fsyncs the WAL before it returns, so a committed entry survives power loss (openpars's default;
``OPENPARS_SQLITE_SYNCHRONOUS=NORMAL`` survives a process crash but may lose the last commits
on power loss). Each transaction carries BATCH entries, as a group commit does. Paths,
interleaved round by round so machine noise hits them alike:

* ``bare``: the very same pre-computed rows (entry with its subject ids, content) inserted the
  way the audit path inserts them (multi-row INSERTs through the DB-API cursor) into copies of
  the tables with the same indexes but no foreign keys: the floor.
* ``append_many``: `openpars.audit.log.append_many` on fresh events: canonical JSON, a random
  salt, the SHA-256 commitment, the inserts with their foreign-key checks.
* ``integrate``: the integrator giving those entries leaf indexes, storing subtree hashes and
  copying their subjects into the subject index by person and by arrest.
* ``append`` (context): `service.append` one entry at a time (the request path: each entry
  its own INSERTs), BATCH of them per transaction.
* ``proofs_from_db``: inclusion and consistency proof latency at the final tree size, each
  proof one batched read of its O(log n) stored subtree hashes.

Both wall-clock and CPU rates are reported: on a shared machine wall time also measures the
neighbours. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from openpars.audit import log
from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append, canonical_bytes, commitment_of, entry_document
from openpars.db import Base, Database, make_engine, utcnow
from openpars.models import load_all_models

BATCH = 1000
PROOFS = 1000
TARGET = 20_000

BARE_DDL = [
    "CREATE TABLE bare_entries (id INTEGER PRIMARY KEY, at DATETIME, kind VARCHAR(20), "
    "action VARCHAR(100), outcome VARCHAR(10), user_id INTEGER, agency_id INTEGER, "
    "agreement_id INTEGER, commitment BLOB, person_ids TEXT, arrest_ids TEXT)",
    "CREATE TABLE bare_contents (entry_id INTEGER PRIMARY KEY, salt BLOB, content BLOB)",
    # The same secondary indexes as the audit tables, so the baseline differs only by the
    # audit machinery (canonical JSON, salt, hashing, building rows, foreign keys).
    "CREATE INDEX bare_entries_user_at ON bare_entries (user_id, at)",
    "CREATE INDEX bare_entries_agency_at ON bare_entries (agency_id, at)",
]


def events(count: int, offset: int) -> list[AuditEvent]:
    """Realistic external-search entries: purpose, parameters, a few returned ids."""
    return [
        AuditEvent(
            kind=AuditKind.SEARCH,
            action="external.search",
            user_id=None,
            username="fbi.agent",
            source_ip="10.20.30.40",
            params={
                "purpose": "fugitive apprehension",
                "case_reference": f"FBI-PH-{offset + i}",
                "query": {"last_name": "SMITH", "dob_year": 1990},
                "decision": "permit",
                "clauses": ["scope.arrestees_only", "purpose.listed"],
            },
            person_ids=[offset + i, offset + i + 1],
            arrest_ids=[offset + i],
        )
        for i in range(count)
    ]


def bare_rows(batch: list[AuditEvent], first_id: int) -> tuple[list[tuple[Any, ...]], ...]:
    """The rows append_many would write, computed up front for the bare INSERT."""
    entries, contents = [], []
    for n, item in enumerate(batch):
        entry_id = first_id + n
        moment = utcnow()
        content = canonical_bytes(entry_document(item, at=moment))
        salt = os.urandom(32)
        entries.append(
            (entry_id, moment.replace(tzinfo=None).isoformat(" "), item.kind.value, item.action,
             item.outcome.value, None, None, None, commitment_of(salt, content),
             repr(item.person_ids) if item.person_ids else None,
             repr(item.arrest_ids) if item.arrest_ids else None)
        )  # fmt: skip
        contents.append((entry_id, salt, content))
    return entries, contents


def timed(work: Callable[..., object], *args: Any) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    work(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


ROWS_PER_INSERT = 500  # as the audit path does on SQLite


def multi_row_insert(cursor: Any, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows with multi-row INSERTs of ROWS_PER_INSERT rows (the audit path's strategy)."""
    width = len(rows[0])
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        values = ", ".join(["(" + ", ".join("?" * width) + ")"] * len(chunk))
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES {values}", [v for row in chunk for v in row]
        )


def bare_insert(engine: Engine, rows: tuple[list[tuple[Any, ...]], ...]) -> None:
    """The baseline: the same rows, inserted as the audit path inserts them, one durable commit."""
    entries, contents = rows
    with engine.begin() as conn:
        cursor = conn.connection.cursor()
        multi_row_insert(
            cursor,
            "bare_entries",
            "id, at, kind, action, outcome, user_id, agency_id, agreement_id, commitment, "
            "person_ids, arrest_ids",
            entries,
        )
        multi_row_insert(cursor, "bare_contents", "entry_id, salt, content", contents)


def group_commit(db: Database, batch: list[AuditEvent]) -> None:
    """The audit path: a batch of entries in one durable transaction."""
    with db.session() as session:
        log.append_many(session, batch)


def one_at_a_time(db: Database, batch: list[AuditEvent]) -> None:
    """The request path: service.append per entry, the batch in one transaction."""
    with db.session() as session:
        for item in batch:
            append(session, item)


def run(total: int, single_total: int, proof_count: int) -> dict[str, Any]:
    """Measure every path on one fresh database file; return the figures."""
    load_all_models()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        # After openpars's own pragmas: make every commit durable.
        event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA synchronous=FULL"))
        Base.metadata.create_all(engine)
        with engine.begin() as conn:
            for ddl in BARE_DDL:
                conn.exec_driver_sql(ddl)
        with engine.connect() as conn:
            # The figures are only meaningful if every commit really is fsynced.
            durability = {
                "journal_mode": conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                "synchronous": {2: "FULL", 3: "EXTRA"}.get(
                    conn.exec_driver_sql("PRAGMA synchronous").scalar(), "not durable"
                ),
            }
        assert durability == {"journal_mode": "wal", "synchronous": "FULL"}, durability
        db = Database(engine)
        totals = {name: [0.0, 0.0] for name in ("bare", "append_many", "integrate", "append")}

        def add(name: str, figures: tuple[float, float]) -> None:
            totals[name][0] += figures[0]
            totals[name][1] += figures[1]

        for round_start in range(0, total, BATCH):
            batch = events(BATCH, round_start)
            rows = bare_rows(batch, round_start + 1)

            add("bare", timed(bare_insert, engine, rows))
            add("append_many", timed(group_commit, db, batch))
            add("integrate", timed(log.integrate_all, db))

        for round_start in range(0, single_total, BATCH):
            add("append", timed(one_at_a_time, db, events(BATCH, total + round_start)))
        proofs = proof_latency(db, proof_count)
        engine.dispose()

    def rate(name: str, count: int) -> dict[str, float]:
        wall, cpu = totals[name]
        return {"per_s": round(count / wall), "per_cpu_s": round(count / cpu)}

    figures = {
        "entries": total,
        "batch": BATCH,
        **durability,
        "bare_insert": rate("bare", total),
        "append_many": rate("append_many", total),
        "integrate": rate("integrate", total),
        "append_one_at_a_time": rate("append", single_total),
    }
    both = totals["append_many"][0] + totals["integrate"][0]
    figures["append_plus_integrate_per_s"] = round(total / both)
    figures["append_many_vs_bare_wall"] = round(totals["append_many"][0] / totals["bare"][0], 2)
    figures["append_many_vs_bare_cpu"] = round(totals["append_many"][1] / totals["bare"][1], 2)
    figures["proofs_from_db"] = proofs
    figures["target_per_s"] = TARGET
    figures["meets_target"] = figures["append_many"]["per_s"] >= TARGET
    return figures


def proof_latency(db: Database, count: int) -> dict[str, Any]:
    """Inclusion and consistency proofs read from the database: p50/p99 in ms, one session."""
    rng = random.Random(5)
    inclusion: list[float] = []
    consistency: list[float] = []
    with db.session() as session:
        size = repo.tree_size(session)
        for _ in range(count):
            index = rng.randrange(size)
            start = time.perf_counter()
            log.inclusion_proof(session, index=index, size=size)
            inclusion.append((time.perf_counter() - start) * 1000)
            first = rng.randrange(1, size)
            start = time.perf_counter()
            log.consistency_proof(session, first=first, second=size)
            consistency.append((time.perf_counter() - start) * 1000)

    def pct(samples: list[float], q: float) -> float:
        return round(sorted(samples)[max(0, math.ceil(q * len(samples)) - 1)], 3)

    return {
        "tree_size": size,
        "inclusion_p50_ms": pct(inclusion, 0.5),
        "inclusion_p99_ms": pct(inclusion, 0.99),
        "consistency_p50_ms": pct(consistency, 0.5),
        "consistency_p99_ms": pct(consistency, 0.99),
    }


def main() -> None:
    """Parse arguments, run, print a summary and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    args = parser.parse_args()
    total, single_total = (10_000, 1_000) if args.quick else (200_000, 10_000)
    figures = run(total, single_total, 200 if args.quick else PROOFS)
    for key, value in figures.items():
        print(f"{key:32} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
