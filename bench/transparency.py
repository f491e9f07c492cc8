"""The public transparency report over a month of external traffic, beside a plain scan.

A fresh SQLite file (or, with ``--pg SERVER``, a scratch PostgreSQL database dropped after):
two external agencies, ACCOUNTS accounts, and ENTRIES external audit entries in one past
month (answered reads with a purpose, one in ten a refusal), plus as many internal entries the
report must skip. Timed, interleaved round by round:

* ``scan``: ``SELECT count(*)`` of the month's external entries joined to their contents (the
  floor: reading the same rows);
* ``exact``: the grouped statement behind the report (JSON purpose and error code, the
  per-account clamp as a window function), unclamped and clamped;
* ``release``: a whole release in a rolled-back savepoint: categories, clamped counts, OpenDP's
  discrete Laplace over every cell, the document and the ledger row.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, make_url, select

from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.models import AuditEntry
from openpars.audit.service import append_many_ids
from openpars.config import Settings
from openpars.db import Base, Database, make_engine
from openpars.identity import service as identity
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Role
from openpars.identity.schemas import AgencyCreate, UserCreate
from openpars.models import load_all_models
from openpars.oversight import transparency as tr

MONTH = "2026-10"
START = datetime(2026, 10, 1, tzinfo=UTC)
PURPOSES = ("criminal-investigation", "warrant-check", "immigration-enforcement")


def build(db: Database, entries: int, accounts: int) -> Principal:
    """Agencies, accounts, an overseer and the month's entries."""
    from openpars.console import SYSTEM

    with db.session() as s:
        agencies = [
            identity.create_agency(
                s, actor=SYSTEM, data=AgencyCreate(name=name, kind=AgencyKind.EXTERNAL)
            ).id
            for name in ("Agency A", "Agency B")
        ]
        city = identity.create_agency(
            s, actor=SYSTEM, data=AgencyCreate(name="City", kind=AgencyKind.CITY)
        ).id
        users = []
        for i in range(accounts):
            user = identity.create_user(
                s, actor=SYSTEM,
                data=UserCreate(username=f"ext{i}", display_name=f"Ext {i}",
                                agency_id=agencies[i % 2], roles=[Role.EXTERNAL_QUERY]),
            )  # fmt: skip
            users.append((user.id, agencies[i % 2]))
        overseer = identity.create_user(
            s, actor=SYSTEM,
            data=UserCreate(username="overseer", display_name="O", agency_id=city,
                            roles=[Role.OVERSIGHT]),
        )  # fmt: skip
        principal = identity.principal_for(s, overseer)
    batch = 5000
    seconds = 28 * 24 * 3600
    for lo in range(0, entries, batch):
        events = []
        for n in range(lo, min(entries, lo + batch)):
            user_id, agency_id = users[n % len(users)]
            refused = n % 10 == 0
            events.append(
                AuditEvent(
                    kind=AuditKind.REFUSED if refused else AuditKind.SEARCH,
                    action="GET /api/v1/persons" if refused else "person.search",
                    outcome=Outcome.REFUSED if refused else Outcome.OK,
                    user_id=user_id, agency_id=agency_id,
                    params={"query": {"sid": f"S{n}"}, "purpose": PURPOSES[n % 3]},
                    error_code="purpose_not_allowed" if refused else None,
                )
            )  # fmt: skip
        internal = [AuditEvent(kind=AuditKind.SEARCH, action="person.search", agency_id=city)]
        with db.session() as s:
            moment = START + timedelta(seconds=(lo * seconds) // max(1, entries))
            append_many_ids(s, events, at=moment)
            append_many_ids(s, internal * len(events), at=moment)
    return principal


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def one_round(
    db: Database, month: tr.Month, overseer: Principal, settings: Settings
) -> dict[str, float]:
    """Each path once, in one transaction."""
    with db.session() as s:
        cats = tr.categories(s)
        external = [c.id for c in cats]
        scan = (
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.content.is_not(None),
                AuditEntry.agency_id.in_(external),
                AuditEntry.at >= month.start,
                AuditEntry.at < month.end,
            )
        )
        out = {
            "scan": timed(lambda: s.scalar(scan)),
            "exact": timed(lambda: tr.exact_counts(s, month, cats, bound=None)),
            "clamped": timed(lambda: tr.exact_counts(s, month, cats, bound=50)),
        }
        nested = s.begin_nested()
        out["release"] = timed(
            lambda: tr.release_month(s, actor=overseer, month=month.label, settings=settings)
        )
        nested.rollback()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 entries, 2 rounds")
    parser.add_argument("--entries", type=int, default=500_000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pg",
        help="a PostgreSQL server URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/"
        "postgres): the bench creates a database of its own there and drops it afterwards "
        "(default: a fresh SQLite file)",
    )
    args = parser.parse_args()
    entries, rounds = (20_000, 2) if args.quick else (args.entries, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        drop: Callable[[], None] | None = None
        if args.pg:
            url, drop = scratch_database(args.pg)
        try:
            run(url, entries, rounds, args.accounts)
        finally:
            if drop is not None:
                drop()


def scratch_database(server: str) -> tuple[str, Callable[[], None]]:
    """A new, empty PostgreSQL database on the server, and how to drop it and its role."""
    name = f"openpars_bench_transparency_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}_external"')
        admin.dispose()

    return make_url(server).set(database=name).render_as_string(hide_password=False), drop


def run(url: str, entries: int, rounds: int, accounts: int) -> None:
    """Build the site, time every path ROUNDS times, print the medians."""
    settings = Settings(database_url=url)
    load_all_models()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    db = Database.from_settings(settings)
    t0 = time.perf_counter()
    overseer = build(db, entries, accounts)
    built = time.perf_counter() - t0
    month = tr.parse_month(MONTH)
    runs: dict[str, list[float]] = {"scan": [], "exact": [], "clamped": [], "release": []}
    for _ in range(rounds):
        for name, seconds in one_round(db, month, overseer, settings).items():
            runs[name].append(seconds)
    result = {
        "bench": "transparency",
        "backend": db.dialect,
        "external_entries": entries,
        "internal_entries": entries,
        "accounts": accounts,
        "build_s": round(built, 2),
        **{f"{k}_s_median": round(statistics.median(v), 4) for k, v in runs.items()},
    }
    for name, values in runs.items():
        print(f"{name:8s} median {statistics.median(values):.3f} s over {len(values)} rounds")
    print(json.dumps(result))
    db.dispose()
    engine.dispose()


if __name__ == "__main__":
    main()
