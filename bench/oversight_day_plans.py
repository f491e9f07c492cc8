"""EXPLAIN (ANALYZE, BUFFERS) of the daily run's explanation and never_charged statements on a
kept PostgreSQL store (bench/oversight.py --keep-db): the bench's next day appended, the facts
refreshed, the cycle explained and never_charged run, each of the two statements explained
with its plan printed; everything in one transaction, rolled back (the store is left as kept).

Usage: python bench/oversight_day_plans.py DBNAME [--entries N --persons N --days N]
       python bench/oversight_day_plans.py --quick   (bench/oversight.py's small kept store)

The last line is one JSON object: the two statements' backend CPU and wall seconds, the day's
flags and their digest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, os.path.dirname(__file__))
import oversight as bench

from openpars.agreements.models import Agreement
from openpars.config import Settings
from openpars.db import make_engine
from openpars.models import load_all_models
from openpars.oversight import detectors, facts, flags
from openpars.oversight.detection import DetectionPeriod
from openpars.oversight.explain import materialise, rules_from

WATCHED = ("INSERT INTO oversight_never_charged_tested", "INSERT INTO oversight_cycle_pairs")


def _backend_cpu(session: Session) -> float:
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(session: Session, cpu: float, wall: float) -> dict[str, float]:
    """The backend CPU and wall seconds since ``cpu`` and ``wall`` were read."""
    return {
        "backend_cpu_s": round(_backend_cpu(session) - cpu, 3),
        "wall_s": round(time.perf_counter() - wall, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    bench.add_named_store_arguments(parser)
    args = parser.parse_args()
    load_all_models()
    shape = bench.named_store(parser, args)
    figures: dict[str, Any] = {"store": args.db, "entries": shape.entries}
    url = bench.PG_URL.rsplit("/", 1)[0] + f"/{args.db}"
    engine = make_engine(url)

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def explain(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool):  # type: ignore[no-untyped-def]
        if any(w in statement for w in WATCHED):
            statement = "EXPLAIN (ANALYZE, BUFFERS, VERBOSE OFF) " + statement
        return statement, params

    @event.listens_for(engine, "after_cursor_execute")
    def show(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.startswith("EXPLAIN"):
            print("=" * 30, next(w for w in WATCHED if w in statement))
            for (line,) in cursor.fetchall():
                print(line)
            sys.stdout.flush()

    with Session(engine) as session:
        assert session.execute(text("SELECT MAX(id) FROM audit_entries")).scalar() == shape.entries
        conn = session.connection()
        lo, hi = shape.entries + 1, shape.entries + shape.per_day
        statements = bench._statements(bench.Dialect("postgresql"), shape)
        conn.exec_driver_sql("SET session_replication_role = replica")
        for table in bench.ENTRY_TABLES:
            conn.execute(text(statements[table]), {"lo": lo, "hi": hi})
        conn.exec_driver_sql("SET session_replication_role = origin")
        end = bench.T0 + timedelta(days=shape.days)
        print("refresh", facts.refresh(session).facts, flush=True)
        agreements = list(session.scalars(select(Agreement.id).order_by(Agreement.id)))
        cpu, wall = _backend_cpu(session), time.perf_counter()
        cycle = materialise(
            session,
            start=end,
            end=end + timedelta(days=1),
            agreement_ids=agreements,
            rules=rules_from(Settings()),
        )
        figures["explanation"] = _timed(session, cpu, wall)
        print(f"explanation: {figures['explanation']}", flush=True)
        cycle.drop(session)
        period = DetectionPeriod(start=end, end=end + timedelta(days=1))
        cpu, wall = _backend_cpu(session), time.perf_counter()
        flags.run_detectors(session, (detectors.never_charged,), period)
        figures["never_charged"] = _timed(session, cpu, wall)
        print(f"never_charged: {figures['never_charged']}", flush=True)
        # The day's flags of every detector (as the bench's daily pass raises them), digested.
        session.execute(text("DELETE FROM oversight_flag_entries"))
        session.execute(text("DELETE FROM oversight_flags"))
        for detector in flags.DETECTORS:
            flags.run_detectors(session, (detector,), period)
        count = session.execute(text("SELECT COUNT(*) FROM oversight_flags")).scalar_one()
        figures.update(flags=count, flags_sha256=bench._flags_digest(session))
        session.rollback()
    engine.dispose()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
