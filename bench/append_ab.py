"""SQLite: an external read's writes (rate windows and audit append) with the entry's salt and
content in a table of their own (main before h12lite5) and on the entry's own row (h12lite5),
interleaved in one process (issue 12 targets 1 and 3).

One database of bench/search.py's data (``--persons``, built here by this branch's schema),
copied once per side, each copy on its own connection configured as openpars configures SQLite
(WAL, ``synchronous=FULL``, foreign keys, ``secure_delete``, ``wal_autocheckpoint=0`` so the
``-wal`` file's growth counts the frames). The sides:

* ``main``: the entry's row without salt and content (both NULL), which go to
  ``audit_entry_contents`` (entry_id primary key, a foreign key to the entry), as main's
  ``audit.repository.insert_entry`` writes them: two rows in two B-trees, two statements;
* ``branch``: this branch: one row, salt and content on it, one statement.

Both have no index on the entry table (the integrator keeps them) and claim the rate windows
as ``access.rate`` does. Each round runs, on each side in turn, the floor (``BEGIN
IMMEDIATE``, one integer into an unindexed table, ``COMMIT``), then one transaction of an
external read's writes: a place taken in the user's and the agency's window (``--places``
places each, full: each claim takes the place its window used ``places - 1`` claims before),
then the entry naming one person. Also the append alone (no windows) and the windows alone.
Reported: this thread's CPU per transaction (p50, µs), its excess over the same side's floor,
and WAL frames per transaction.

    .venv/bin/python bench/append_ab.py [--quick] [--persons 50000] [--rounds 1500] [--places 64]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import search

ENTRY = "at, kind, action, outcome, user_id, agency_id, agreement_id, commitment, person_ids"
WINDOW_US = 60_000_000


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in (
        "journal_mode=WAL",
        "synchronous=FULL",
        "foreign_keys=ON",
        "wal_autocheckpoint=0",
        "busy_timeout=5000",
        "secure_delete=ON",
    ):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_scratch (n INTEGER)")
    return conn


def _as_main(conn: sqlite3.Connection) -> None:
    """The content table as main has it."""
    conn.execute(
        "CREATE TABLE audit_entry_contents (entry_id INTEGER NOT NULL PRIMARY KEY "
        "REFERENCES audit_entries (id), salt BLOB NOT NULL, content BLOB NOT NULL)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=1500)
    parser.add_argument("--places", type=int, default=64, help="places in each window")
    parser.add_argument("--quick", action="store_true", help="5,000 persons, 200 rounds")
    args = parser.parse_args()
    if args.quick:
        args.persons, args.rounds = 5_000, 200
    tmp = Path(tempfile.mkdtemp(prefix="openpars-append-ab-"))
    with search.database("sqlite", args.persons, tmp) as (url, _kept):
        search.prepare_data(url, args.persons)
    source = tmp / f"search-{args.persons}.db"
    # Everything into the main file before it is copied (the loader's engine left a WAL).
    with sqlite3.connect(source) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sides: dict[str, Any] = {}
    for side in ("main", "branch"):
        copy = tmp / f"{side}.db"
        shutil.copy(source, copy)
        conn = _connect(copy)
        if side == "main":
            _as_main(conn)
        # The bench data's external reader if it has one, else its first user.
        user, agency = conn.execute(
            "SELECT u.id, u.agency_id FROM users u JOIN agencies a ON a.id = u.agency_id "
            "ORDER BY a.kind = 'external' DESC, u.id LIMIT 1"
        ).fetchone()
        conn.execute("DELETE FROM rate_slots")
        # Used a minute ago, one place a step: the steady state of a full window.
        start = time.time_ns() // 1000 - WINDOW_US
        conn.executemany(
            "INSERT INTO rate_slots (kind, owner_id, slot, at_us) VALUES (?, ?, ?, ?)",
            [
                (k, o, s, start + s * (WINDOW_US // (args.places - 1) + 1))
                for k, o in ((0, user), (1, agency))
                for s in range(args.places)
            ],
        )
        agreement = conn.execute("SELECT min(id) FROM agreements").fetchone()[0]
        persons = [r[0] for r in conn.execute("SELECT id FROM persons ORDER BY id LIMIT 5000")]
        content = conn.execute(
            "SELECT content FROM audit_entries WHERE content IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sides[side] = {
            "conn": conn,
            "wal": Path(f"{copy}-wal"),
            "who": (user, agency, agreement),
            "content": content[0] if content else b"{}" * 300,
        }
    rng = random.Random(12)
    samples: dict[str, list[tuple[float, int]]] = {}
    # Each side's own clock, one step a claim: a window of ``places`` places full at this pace,
    # so each claim takes the place used ``places - 1`` claims ago (its window's oldest).
    clock = {side: time.time_ns() // 1000 for side in sides}
    step = WINDOW_US // (args.places - 1) + 1

    def timed(name: str, conn: sqlite3.Connection, wal: Path, *work: Any) -> None:
        size = wal.stat().st_size if wal.exists() else 0
        cpu = time.thread_time()
        conn.execute("BEGIN IMMEDIATE")
        for step in work:
            step()
        conn.execute("COMMIT")
        samples.setdefault(name, []).append((time.thread_time() - cpu, wal.stat().st_size - size))

    def claim(side: str, conn: sqlite3.Connection) -> None:
        """Both windows, as access.rate takes a place on SQLite (since 2026-12-07, branch
        h12lite: one UPDATE a window, taken or not by its row count)."""
        from openpars.access import rate

        user, agency, _ = sides[side]["who"]
        clock[side] += step
        now = clock[side]
        for kind, owner, limit in ((0, user, 10_000), (1, agency, 100_000)):
            cursor = conn.execute(rate._SQLITE_CLAIM, (now, kind, owner, limit, now - WINDOW_US))
            assert cursor.rowcount == 1, (side, kind)

    def append(side: str, conn: sqlite3.Connection, person: int) -> None:
        user, agency, agreement = sides[side]["who"]
        content = sides[side]["content"]
        at = time.strftime("%Y-%m-%d %H:%M:%S.000000")
        entry = (at, "search", "person.search", "ok", user, agency, agreement, os.urandom(32))
        cursor = conn.cursor()
        if side == "branch":
            cursor.execute(
                f"INSERT INTO audit_entries ({ENTRY}, salt, content) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?)",
                (*entry, f"[{person}]", os.urandom(32), content),
            )
            return
        cursor.execute(
            f"INSERT INTO audit_entries ({ENTRY}) VALUES (?,?,?,?,?,?,?,?,?)",
            (*entry, f"[{person}]"),
        )
        cursor.execute(
            "INSERT INTO audit_entry_contents (entry_id, salt, content) VALUES (?, ?, ?)",
            (cursor.lastrowid, os.urandom(32), content),
        )

    load_before = [round(x, 2) for x in os.getloadavg()]
    for n in range(args.rounds):
        for side in list(sides) if n % 2 == 0 else list(reversed(sides)):
            conn, wal = sides[side]["conn"], sides[side]["wal"]
            person = rng.choice(persons)
            scratch = partial(conn.execute, "INSERT INTO bench_scratch VALUES (1)")
            timed(f"{side}/floor", conn, wal, scratch)
            timed(f"{side}/windows", conn, wal, partial(claim, side, conn))
            timed(f"{side}/append", conn, wal, partial(append, side, conn, person))
            timed(
                f"{side}/windows_and_append",
                conn,
                wal,
                partial(claim, side, conn),
                partial(append, side, conn, person),
            )
    frame = 4096 + 24
    out: dict[str, Any] = {}
    for name, rows in sorted(samples.items()):
        cpu = sorted(r[0] for r in rows)
        out[name] = {
            "cpu_p50_us": round(cpu[len(cpu) // 2] * 1e6, 1),
            "frames": round(sum(r[1] for r in rows) / len(rows) / frame, 2),
        }
    for name, row in out.items():
        side = name.split("/")[0]
        if not name.endswith("/floor"):
            row["cpu_over_floor_us"] = round(
                row["cpu_p50_us"] - out[f"{side}/floor"]["cpu_p50_us"], 1
            )
    for name, row in out.items():
        print(name, row, flush=True)
    shutil.rmtree(tmp)
    print(
        json.dumps(
            out
            | {
                "rounds": args.rounds,
                "persons": args.persons,
                "places": args.places,
                "loadavg_before": load_before,
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
