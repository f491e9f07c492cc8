"""Server CPU of one external audit append with and without each of its foreign keys (issue 12).

The real ``audit.service.append`` of an external search's entry (1 subject, then 50), run as
the external database role in one transaction per block and rolled back; the backend's CPU
from ``/proc/<pid>/stat`` (the server must run on this machine). Between blocks the append's
foreign keys are dropped or put back (``NOT VALID``: nothing is re-checked), the variants'
order alternating, so every variant sees the same tables. On bench/server_cpu.py's database
(50,000 persons; created and loaded if missing); every key is back when the run ends.

    .venv/bin/python bench/audit_append_fks.py [--quick] [--database NAME] [--appends N]
        [--blocks N]

The last line of output is one JSON object: the median server CPU per append of each variant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

import search
from search_data.agreement import PURPOSE, SCOPE, external_reader

from openpars.access import repository as repo
from openpars.access import service
from openpars.access.enforcement import policy_for
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.audit.service import append
from openpars.db import Database, make_engine, make_unpooled_engine, utcnow
from openpars.models import load_all_models

TICKS = os.sysconf("SC_CLK_TCK")
# name -> (table, constraint, definition)
KEYS = {
    "user": ("audit_entries", "fk_audit_entries_user_id_users", "(user_id) REFERENCES users(id)"),
    "agency": (
        "audit_entries",
        "fk_audit_entries_agency_id_agencies",
        "(agency_id) REFERENCES agencies(id)",
    ),
    "pending": (
        "audit_pending",
        "fk_audit_pending_entry_id_audit_entries",
        "(entry_id) REFERENCES audit_entries(id)",
    ),
}
VARIANTS: dict[str, tuple[str, ...]] = {
    "all keys": (),
    "without user and agency keys": ("user", "agency"),
    "without the pending key": ("pending",),
    "without any": tuple(KEYS),
}


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _keys(admin: Engine, dropped: tuple[str, ...]) -> None:
    with admin.connect() as conn:
        for name, (table, constraint, definition) in KEYS.items():
            there = conn.execute(
                text("SELECT 1 FROM pg_constraint WHERE conname = :c"), {"c": constraint}
            ).first()
            if name in dropped and there is not None:
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}")
            if name not in dropped and there is None:
                conn.exec_driver_sql(
                    f"ALTER TABLE {table} ADD CONSTRAINT {constraint} FOREIGN KEY "
                    f"{definition} NOT VALID"
                )


def main() -> None:
    """Time each variant's appends, blocks interleaved."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", default="openpars_bench_server_cpu")
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200 appends, 2 blocks (the kept database reused; built first if missing)",
    )
    args = parser.parse_args()
    if args.quick:
        args.appends, args.blocks = 200, 2
    load_all_models()
    server = make_unpooled_engine(search.PG_URL)
    with server.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": args.database}
        )
        if exists.first() is None:
            conn.exec_driver_sql(f'CREATE DATABASE "{args.database}"')
    server.dispose()
    url = search.PG_URL.rsplit("/", 1)[0] + f"/{args.database}"
    search.prepare_data(url, 50_000)
    engine = make_engine(url)
    admin = make_unpooled_engine(url)
    db = Database(engine)
    external = external_reader(engine, SCOPE)
    context = ReadContext(purpose=PURPOSE)
    started = [round(x, 2) for x in os.getloadavg()]
    samples: dict[str, dict[str, list[float]]] = {}
    try:
        for subjects in (1, 50):
            for block in range(args.blocks):
                order = list(VARIANTS.items())
                for name, dropped in order if block % 2 == 0 else reversed(order):
                    _keys(admin, dropped)
                    with db.session(external=True) as s:
                        pid = int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())
                        policy = policy_for(s, principal=external, context=context, at=utcnow())
                        page = repo.search_persons(s, policy, PersonQuery(name="Smi"), limit=50)
                        ids = [row["id"] for row in page.rows][:subjects]
                        event = service._event(
                            external, service.AuditKind.SEARCH, "person.search", policy,
                            context, {"name": "Smi"}, ids, [],
                        )  # fmt: skip
                        for _ in range(20):
                            append(s, event)
                        before = _cpu_s(pid)
                        for _ in range(args.appends):
                            append(s, event)
                        per = (_cpu_s(pid) - before) / args.appends * 1000
                        samples.setdefault(f"{len(ids)} subjects", {}).setdefault(name, []).append(
                            per
                        )
                        s.rollback()
    finally:
        _keys(admin, ())
        engine.dispose()
        admin.dispose()
    print(
        json.dumps(
            {
                "appends_per_block": args.appends,
                "blocks": args.blocks,
                "loadavg_before": started,
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                "server_cpu_ms_per_append_median": {
                    shape: {name: round(statistics.median(xs), 3) for name, xs in found.items()}
                    for shape, found in samples.items()
                },
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
