"""Every stage of the daily run on a kept PostgreSQL store (bench/oversight.py --keep-db), timed
by backend CPU and wall, in one transaction that is rolled back (the store is left as kept: a
shared store, read by other benches, must not gain a day).

The bench's next day is appended by the same generator, then: the facts refreshed
(``facts.refresh``), the day explained (``explain.materialise``, as the daily pass does it),
coverage in all and by each dimension, and every registered detector over the day, each timed
apart; ``--rounds`` repeats the stages after the refresh (the first round is the coldest). The
backend's CPU is read from /proc/<pid>/stat (user + system), steadier than wall on a machine
other processes load. The flags' digest (bench/oversight.py's) of the last round is printed, so
that two code versions run back-to-back can be compared for equal findings.

The headline (stderr, and ``day`` in the JSON) is the whole day as a site's daily run pays it:
the refresh plus one round's explanation, coverage and every detector, for each round, beside
the plain read of the day's entries in the same transaction (``day_scan``: every entry with its
content, after the rounds, so warm), the issue's baseline. ``explanations_sha256`` digests the
cycle's pairs and codes, as ``flags_sha256`` the flags. ``--keep-explanations`` keeps the
explanations first (``maintained.maintain``, timed apart as ``keep_explanations``): the day's
refresh then keeps the day's and the day's cycle reads them.

Usage: python bench/oversight_day_ab.py DBNAME [--entries N --persons N --days N --rounds N]
                                        [--keep-explanations] [--label NAME]
       python bench/oversight_day_ab.py --quick   (bench/oversight.py's small kept store)
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, os.path.dirname(__file__))
import oversight as bench

from openpars.agreements.models import Agreement
from openpars.config import Settings
from openpars.db import make_engine
from openpars.models import load_all_models
from openpars.oversight import explain_sql as xsql
from openpars.oversight import facts, flags, maintained
from openpars.oversight.detection import DetectionPeriod
from openpars.oversight.explain import materialise, rules_from
from openpars.oversight.explain_sql import Dimension


def _backend_cpu(session: Session) -> float:
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_io(session: Session) -> tuple[int, int]:
    """The backend's bytes read through the OS (rchar: its shared-buffer misses) and from the
    disk (read_bytes: the OS page cache's misses too); readable by the server's user or root."""
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    try:
        with open(f"/proc/{pid}/io") as io:
            fields = dict(line.split(": ") for line in io.read().splitlines())
    except PermissionError:
        return 0, 0
    return int(fields["rchar"]), int(fields["read_bytes"])


def _timed(session: Session, into: dict[str, Any], key: str, work: Callable[[], Any]) -> Any:
    """``work()``, its backend CPU, this process's CPU (the client's: Python, the driver) and
    wall (seconds) and the MiB the backend read from the OS and from the disk stored under
    ``key``. Parallel workers' CPU and reads are not counted."""
    cpu, (rchar, disk), wall = _backend_cpu(session), _backend_io(session), time.perf_counter()
    client = time.process_time()
    result = work()
    wall = time.perf_counter() - wall
    client = time.process_time() - client
    rchar_after, disk_after = _backend_io(session)
    into[key] = {
        "cpu_s": round(_backend_cpu(session) - cpu, 3),
        "client_cpu_s": round(client, 3),
        "wall_s": round(wall, 3),
        "os_read_mib": round((rchar_after - rchar) / 2**20, 1),
        "disk_read_mib": round((disk_after - disk) / 2**20, 1),
    }
    return result


FIGURES = ("cpu_s", "client_cpu_s", "wall_s", "os_read_mib", "disk_read_mib")


def _scan(session: Session, lo: int, hi: int) -> None:
    """The plain read of entries ``lo..hi`` (bench/oversight.py's baseline_scan, in this
    session's transaction, which holds the appended day)."""
    session.execute(
        text(
            "SELECT COUNT(*), SUM(LENGTH(e.content)) FROM audit_entries e "
            "WHERE e.id BETWEEN :lo AND :hi AND e.content IS NOT NULL"
        ),
        {"lo": lo, "hi": hi},
    ).one()


def _explanations_digest(session: Session, table: Any) -> str:
    """SHA-256 of the cycle's pairs with their codes, in (entry, person) order: two code versions
    explain the day the same when these are equal."""
    c = table.c
    rows = session.execute(
        select(c.entry_id, c.person_id, c.code, c.never_charged).order_by(c.entry_id, c.person_id)
    ).all()
    return hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()


def _day_total(result: dict[str, Any], one: dict[str, Any]) -> dict[str, float]:
    """The whole day as a site's daily run pays it: the refresh (once) plus one round's
    explanation, coverage and detectors."""
    return {k: round(result["refresh"][k] + one["total"][k], 3) for k in FIGURES}


def _round(session: Session, shape: bench.Shape) -> dict[str, Any]:
    """Explanations, coverage and every detector over the appended day, each timed."""
    stages: dict[str, Any] = {}
    end = bench.T0 + timedelta(days=shape.days)
    agreements = list(session.scalars(select(Agreement.id).order_by(Agreement.id)))
    cycle = _timed(
        session,
        stages,
        "explanations",
        lambda: materialise(
            session,
            start=end,
            end=end + timedelta(days=1),
            agreement_ids=agreements,
            rules=rules_from(Settings()),
            refreshed=True,
        ),
    )
    stored = select(cycle.table)

    def cover() -> None:
        session.execute(xsql.coverage(stored, None, "postgresql")).one()
        for by in Dimension:
            session.execute(xsql.coverage(stored, by, "postgresql")).all()

    _timed(session, stages, "coverage", cover)
    pairs = session.execute(select(func.count()).select_from(cycle.table)).scalar_one()
    stages["explanations_sha256"] = _explanations_digest(session, cycle.table)
    cycle.drop(session)
    session.execute(text("DELETE FROM oversight_flag_entries"))
    session.execute(text("DELETE FROM oversight_flags"))
    period = DetectionPeriod(start=end, end=end + timedelta(days=1))
    for detector in flags.DETECTORS:
        _timed(
            session,
            stages,
            getattr(detector, "__name__", repr(detector)),
            lambda detector=detector: flags.run_detectors(
                session, (detector,), period, refreshed=True
            ),
        )
    stages["pairs"] = pairs
    stages["flags"] = session.execute(text("SELECT COUNT(*) FROM oversight_flags")).scalar_one()
    stages["flags_sha256"] = bench._flags_digest(session)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser()
    bench.add_named_store_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--label", default="", help="a name for this run in the JSON")
    parser.add_argument(
        "--keep-explanations",
        action="store_true",
        help="keep the explanations first (maintained.maintain, in the same transaction, timed "
        "apart and not part of the day): the day's refresh then keeps the day's explanations "
        "and the day's cycle reads them",
    )
    args = parser.parse_args()
    load_all_models()
    shape = bench.named_store(parser, args)
    url = bench.PG_URL.rsplit("/", 1)[0] + f"/{args.db}"
    engine = make_engine(url)
    result: dict[str, Any] = {"db": args.db, "label": args.label, "load_1m": os.getloadavg()[0]}
    with Session(engine) as session:
        assert session.execute(text("SELECT MAX(id) FROM audit_entries")).scalar() == shape.entries
        if args.keep_explanations:
            _timed(
                session,
                result,
                "keep_explanations",
                lambda: maintained.maintain(session, rules_from(Settings())),
            )
        conn = session.connection()
        # A store built before the arrestee rows' day counts (facts.ArresteeDay) gains them
        # here, in the rolled-back transaction, timed apart (a kept store has them already).
        days = getattr(facts, "ArresteeDay", None)  # None: a version before them
        if days is not None:
            built = (
                conn.dialect.has_table(conn, days.__tablename__)
                and session.execute(
                    text("SELECT 1 FROM oversight_watermarks WHERE name = :n"),
                    {"n": facts.ARRESTEE_DAYS},
                ).first()
            )
            if not built:

                def build() -> None:
                    days.__table__.create(conn, checkfirst=True)
                    facts.build_arrestee_days(session)

                _timed(session, result, "arrestee_days_built", build)
        # Whether the readers test "not shredded" against the shredded entries' index (a
        # store kept before it has none until create_all builds it: bench/oversight.py's
        # --keep-db does; None: a version before it).
        indexed = getattr(facts, "shredded_indexed", None)
        result["shredded_index"] = None if indexed is None else indexed(session)
        lo, hi = shape.entries + 1, shape.entries + shape.per_day
        statements = bench._statements(bench.Dialect("postgresql"), shape)
        conn.exec_driver_sql("SET session_replication_role = replica")
        for table in bench.ENTRY_TABLES:
            conn.execute(text(statements[table]), {"lo": lo, "hi": hi})
        conn.exec_driver_sql("SET session_replication_role = origin")
        refreshed = _timed(session, result, "refresh", lambda: facts.refresh(session))
        result["facts"] = refreshed.facts
        result["rounds"] = []
        for _ in range(args.rounds):
            one = _round(session, shape)
            one["total"] = {
                k: round(sum(v[k] for v in one.values() if isinstance(v, dict)), 3) for k in FIGURES
            }
            result["rounds"].append(one)
            print(json.dumps(one), flush=True)
        # The plain read of the same day's entries (every entry with its content), in the same
        # transaction after the rounds (so warm): the baseline.
        _timed(session, result, "day_scan", lambda: _scan(session, lo, hi))
        result["day"] = [_day_total(result, one) for one in result["rounds"]]
        session.rollback()
    engine.dispose()
    result["load_1m_after"] = os.getloadavg()[0]
    scan = result["day_scan"]["wall_s"]
    for n, day in enumerate(result["day"], 1):
        print(
            f"the day (refresh + round {n}): {day['wall_s']:.2f} s wall, {day['cpu_s']:.2f} s "
            f"backend CPU, {day['client_cpu_s']:.2f} s client CPU; the day's {hi - lo + 1:,} "
            f"entries scanned in {scan:.3f} s "
            f"({day['wall_s'] / max(scan, 1e-3):.0f}x)",
            file=sys.stderr,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
