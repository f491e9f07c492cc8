"""SQLite: the audited append's cost, subjects as rows (before h12lite3) against subjects carried
on the entry (h12lite3), interleaved in one process (issue 12 target 1).

Two copies of bench/search.py's kept databases, one per schema (``--before`` built by main at
199cf2e, ``--after`` by this branch), each on its own connection configured as openpars
configures SQLite (WAL, ``synchronous=FULL``, foreign keys, ``wal_autocheckpoint=0`` so the
``-wal`` file's growth counts the frames). Each round runs, on each side in turn, one durable
transaction of each shape, as ``audit.repository.insert_entry`` writes it at the driver: the
floor (``BEGIN IMMEDIATE``, one integer into an unindexed table, ``COMMIT``) and an external
read's entry naming ``k`` persons (entry, content, and before h12lite3 the ``k`` subject rows in
one multi-row INSERT; the canary trigger of each schema fires as it would). Reported: wall and
this thread's CPU per transaction (p50, µs) and WAL frames per transaction.

    .venv/bin/python bench/append_layout_ab.py --before OLD.db --after NEW.db [--rounds 1500]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ENTRY = "at, kind, action, outcome, user_id, agency_id, agreement_id, commitment"


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in (
        "journal_mode=WAL",
        "synchronous=FULL",
        "foreign_keys=ON",
        "wal_autocheckpoint=0",
        "busy_timeout=5000",
    ):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_scratch (n INTEGER)")
    return conn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=1500)
    parser.add_argument("--subjects", type=int, nargs="+", default=[1, 50])
    parser.add_argument(
        "--canaries",
        action="store_true",
        help="plant three canaries (ids no append names) so each side's canary trigger probes",
    )
    parser.add_argument(
        "--without-entry-indexes",
        action="store_true",
        help="a third side: the after schema without the entry's (user, at) and (agency, at)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="openpars-ab-"))
    sides: dict[str, Any] = {}
    names = [("before", args.before), ("after", args.after)]
    if args.without_entry_indexes:
        names.append(("after_without_entry_indexes", args.after))
    for side, source in names:
        copy = tmp / f"{side}.db"
        shutil.copy(source, copy)
        conn = _connect(copy)
        if side == "after_without_entry_indexes":
            # What the request path would write if the integrator kept them (measured only).
            conn.execute("DROP INDEX ix_audit_entries_user_at")
            conn.execute("DROP INDEX ix_audit_entries_agency_at")
        if args.canaries:
            # Ids above any real row's (foreign keys off for the planting only): every append
            # probes the canary table and none is a hit, as for a real read.
            conn.execute("PRAGMA foreign_keys=OFF")
            top = conn.execute("SELECT max(id) FROM persons").fetchone()[0]
            conn.executemany(
                "INSERT INTO oversight_canaries (person_id, arrest_id, label, arrest, "
                "planted_by_id, planted_at) VALUES (?, ?, 'bench', '{}', "
                "(SELECT min(id) FROM users), '2026-12-06 00:00:00.000000')",
                [(top + n, 10 * top + n) for n in (1, 2, 3)],
            )
            conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        template = conn.execute(
            "SELECT e.user_id, e.agency_id, e.agreement_id, c.content FROM audit_entries e "
            "JOIN audit_entry_contents c ON c.entry_id = e.id "
            "WHERE e.agreement_id IS NOT NULL AND e.outcome = 'ok' ORDER BY e.id DESC LIMIT 1"
        ).fetchone()
        persons = [r[0] for r in conn.execute("SELECT id FROM persons ORDER BY id LIMIT 5000")]
        sides[side] = {"conn": conn, "wal": Path(f"{copy}-wal"), "template": template}
    rng = random.Random(12)
    samples: dict[str, list[tuple[float, float, int]]] = {}

    def timed(name: str, conn: sqlite3.Connection, wal: Path, work: Any) -> None:
        size = wal.stat().st_size if wal.exists() else 0
        wall, cpu = time.perf_counter(), time.thread_time()
        conn.execute("BEGIN IMMEDIATE")
        work()
        conn.execute("COMMIT")
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        samples.setdefault(name, []).append((wall, cpu, wal.stat().st_size - size))

    def append(side: str, conn: sqlite3.Connection, ids: list[int]) -> None:
        user, agency, agreement, content = sides[side]["template"]
        at = time.strftime("%Y-%m-%d %H:%M:%S.000000")
        entry = (at, "search", "person.search", "ok", user, agency, agreement, os.urandom(32))
        cursor = conn.cursor()
        if side == "before":  # the rows as main wrote them before h12lite3
            cursor.execute(f"INSERT INTO audit_entries ({ENTRY}) VALUES (?,?,?,?,?,?,?,?)", entry)
            entry_id = cursor.lastrowid
            cursor.execute(
                "INSERT INTO audit_entry_contents (entry_id, salt, content) VALUES (?, ?, ?)",
                (entry_id, os.urandom(32), content),
            )
            values: list[Any] = []
            for person in ids:
                values += (entry_id, person, None)
            rows = ", ".join(["(?, ?, ?)"] * len(ids))
            cursor.execute(
                f"INSERT INTO audit_subjects (entry_id, person_id, arrest_id) VALUES {rows}",
                values,
            )
        else:
            cursor.execute(
                f"INSERT INTO audit_entries ({ENTRY}, person_ids, arrest_ids) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (*entry, repr(ids) if ids else None, None),
            )
            entry_id = cursor.lastrowid
            cursor.execute(
                "INSERT INTO audit_entry_contents (entry_id, salt, content) VALUES (?, ?, ?)",
                (entry_id, os.urandom(32), content),
            )

    load_before = [round(x, 2) for x in os.getloadavg()]
    for n in range(args.rounds):
        order = list(sides) if n % 2 == 0 else list(reversed(sides))
        for side in order:
            s = sides[side]
            conn, wal = s["conn"], s["wal"]
            scratch = partial(conn.execute, "INSERT INTO bench_scratch VALUES (1)")
            timed(f"{side}/floor", conn, wal, scratch)
            for k in args.subjects:
                ids = sorted(rng.sample(persons, k))
                timed(f"{side}/append_{k}", conn, wal, partial(append, side, conn, ids))

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[max(0, int(q * len(ordered)) - 1)]

    frame = 4096 + 24
    out: dict[str, Any] = {}
    for name, rows in samples.items():
        out[name] = {
            "wall_p50_us": round(pct([r[0] for r in rows], 0.5) * 1e6, 1),
            "wall_p99_us": round(pct([r[0] for r in rows], 0.99) * 1e6, 1),
            "cpu_p50_us": round(pct([r[1] for r in rows], 0.5) * 1e6, 1),
            "frames": round(sum(r[2] for r in rows) / len(rows) / frame, 2),
        }
    for side in sides:
        floor = out[f"{side}/floor"]
        for k in args.subjects:
            row = out[f"{side}/append_{k}"]
            row["cpu_over_floor_us"] = round(row["cpu_p50_us"] - floor["cpu_p50_us"], 1)
            row["wall_over_floor_us"] = round(row["wall_p50_us"] - floor["wall_p50_us"], 1)
    for name, row in sorted(out.items()):
        print(name, row, flush=True)
    shutil.rmtree(tmp)
    print(
        json.dumps(
            out
            | {
                "rounds": args.rounds,
                "loadavg_before": load_before,
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
