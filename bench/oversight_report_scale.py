"""The renewal report (``report.build_report``) on a kept store, on PostgreSQL and on DuckDB.

    .venv/bin/python bench/oversight_report_scale.py --store NAME [--days 365]
        [--engines store,duckdb] [--agreements 1,2 | all] [--duckdb-file PATH]
        [--memory-limit 1GB] [--explanation-alone] [--refresh] [--round [--temporary-table]]
        [--out FILE.json]

``NAME`` is a PostgreSQL store kept by ``bench/oversight.py --engine postgresql --keep-db``, its
facts brought up to the log. The store is only read: each report's transaction is rolled back,
and ``build_report``'s refresh (nothing to read on a kept store, but it claims the facts'
watermark FOR UPDATE, which other runs on a shared store wait for) is skipped unless
``--refresh``, the facts checked up to the log first. DuckDB attaches the store READ_ONLY. For
each engine, the report of each agreement over the store's whole period (``--days`` from
bench/oversight.py's first day), timed whole and by statement (SQLAlchemy's cursor events, each
statement named by the row set it reads: the pairs' summary, i.e. the explanation of the
agreement's pairs and their counts; the weekly queries; the refusals; the flags; the rest),
then, to tell the report's own figures from the explanation, the explanation of the same
agreement alone (``explain_sql.explanations``, counted). The plain scan of the period's entries
(bench/oversight.py's ``baseline_scan``) is timed in the same run.
Every report's canonical JSON (``generated_at`` fixed) is hashed (``sha256``), and
the reports in their order per engine (``reports_sha256``): equal digests, equal documents.
Peak RSS is this process's (DuckDB included); on DuckDB the peak sizes of its spill folder and
of its database file (with its WAL) are sampled every half second, per phase (``duckdb_disk_*``).
The last line printed is one JSON object.
``--round``: a renewal round as ``report.report_round`` runs it: the chosen agreements' pairs
explained once (on the store ``explain.materialise``, on DuckDB ``explain.materialise_on``; timed
as ``round_explanation_s``), every report then built from them: the same documents (the digest
is the per-report run's).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, Table, event, func, select, text
from sqlalchemy.orm import Session

from openpars.agreements.models import Agreement
from openpars.config import Settings
from openpars.db import make_engine
from openpars.oversight import duck
from openpars.oversight import explain as explain_module
from openpars.oversight import explain_sql as xsql
from openpars.oversight import report as report_module
from openpars.oversight.explain import (
    Explained,
    Period,
    materialise,
    materialise_on,
    purpose_grants,
    rules_from,
    select_period,
)
from openpars.oversight.explain_sql import Rules
from openpars.oversight.report import build_report, canonical, reader_size

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oversight as generator  # bench/oversight.py, beside this script

NOW = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
# Which statement a cursor execution is, by a name its SQL carries (first match wins).
KINDS = (
    ("pairs_summary", "report_summary"),
    ("flags", "report_flags"),
    ("refusals", "oversight_access_refusals"),
    ("weekly_queries", "oversight_access_queries"),
    ("refresh", "oversight_watermarks"),
)


class Statements:
    """Seconds per kind of statement run on an engine, while armed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started: list[float] = []

    def attach(self, engine: Any) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _before(*_: Any) -> None:
            self._started.append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def _after(_conn: Any, _cursor: Any, statement: str, *__: Any) -> None:
            took = time.perf_counter() - self._started.pop()
            kind = next((k for k, marker in KINDS if marker in statement), "other")
            self.seconds[kind] = self.seconds.get(kind, 0.0) + took

    def take(self) -> dict[str, float]:
        taken = {k: round(v, 3) for k, v in sorted(self.seconds.items())}
        self.seconds = {}
        return taken


def _rss() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _tree_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (or of the file), skipping those removed meanwhile."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except FileNotFoundError:
                continue
    return total


class Disk:
    """Peak bytes of DuckDB's spill folder and of its database file (with its WAL), sampled
    every half second from a thread (the spill folder is removed when the reader closes)."""

    def __init__(self, reader: Session) -> None:
        spill = reader.execute(text("SELECT current_setting('temp_directory')")).scalar_one()
        database = reader.execute(
            text("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
        ).scalar_one()
        self.spill, self.database = Path(str(spill)), Path(str(database))
        self.peak = {"spill": 0, "file": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            wal = Path(str(self.database) + ".wal")
            now = {
                "spill": _tree_bytes(self.spill) if self.spill.exists() else 0,
                "file": sum(_tree_bytes(p) for p in (self.database, wal) if p.exists()),
            }
            self.peak = {k: max(v, now[k]) for k, v in self.peak.items()}

    def take(self) -> dict[str, float]:
        """The peaks so far in MiB, and the sampling restarted from zero."""
        taken = {f"{k}_peak_mib": round(v / 2**20, 1) for k, v in self.peak.items()}
        self.peak = {"spill": 0, "file": 0}
        return taken

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def _reader(
    url: str, engine_name: str, kept: Path | None, memory: str, figures: dict[str, Any]
) -> Iterator[Session | None]:
    if engine_name == "store":
        yield None
        return
    started = time.perf_counter()
    with duck.reader(url, memory_limit=memory, kept_file=kept) as reader:
        figures["duckdb_setup_s"] = round(time.perf_counter() - started, 3)
        yield reader


def _round_cycle(
    session: Session,
    reader: Session | None,
    chosen: list[int],
    first: date,
    last: date,
    rules: Rules,
) -> Explained:
    """The round's one explanation, as ``report.report_round`` makes it (the facts' refresh
    skipped: the store is read only, its facts checked up to the log)."""
    selection = select_period(session, Period(start=first, end=last, agreement_id=chosen[0]))
    if reader is None:
        return materialise(
            session, start=selection.start, end=selection.end, agreement_ids=chosen,
            rules=rules, refreshed=True,
        )  # fmt: skip
    return materialise_on(
        reader, session, start=selection.start, end=selection.end, agreement_ids=chosen,
        rules=rules, size=reader_size(session, reader),
    )  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    url = generator.PG_URL.rsplit("/", 1)[0] + "/" + args.store
    engine = make_engine(url)
    first = generator.T0.date()
    last = (generator.T0 + timedelta(days=args.days - 1)).date()
    rules = rules_from(Settings())
    result: dict[str, Any] = {"store": args.store, "from": str(first), "to": str(last)}
    with engine.connect() as conn:
        result["entries"] = conn.execute(text("SELECT max(id) FROM audit_entries")).scalar()
        result["flags_stored"] = conn.execute(text("SELECT count(*) FROM oversight_flags")).scalar()
        result["kept_explanations"] = conn.execute(
            text("SELECT count(*) FROM oversight_explanation_rules")
        ).scalar()
        read = conn.execute(
            text("SELECT size FROM oversight_watermarks WHERE name = 'access_facts'")
        )
        leaves = conn.execute(text("SELECT max(leaf_index) + 1 FROM audit_leaves")).scalar()
        result["facts_watermark"], result["leaves"] = read.scalar(), leaves
    result["baseline_scan"] = generator.baseline_scan(engine, 1, int(result["entries"]))
    if not args.refresh:
        # The kept store's facts are read up to its log (checked): the refresh would only claim
        # the watermark FOR UPDATE, making every other run on the shared store wait for this
        # report's transaction (and this one for theirs: 21-24 s of lock waits in a report).
        if result["facts_watermark"] != result["leaves"]:
            raise SystemExit("the store's facts are not read up to its log: run with --refresh")
        report_module.refresh = lambda _session: None  # type: ignore[assignment]
    result["refresh_in_reports"] = bool(args.refresh)
    result["round"] = bool(args.round)
    result["temporary_table"] = bool(args.temporary_table)
    if args.temporary_table:
        # The product's table before branch h13round: TEMPORARY on DuckDB too (in memory).
        def temporary(session: Session, name: str, columns: Any) -> Table:
            table = Table(
                name, MetaData(), *(Column(c.name, c.type) for c in columns),
                prefixes=["TEMPORARY"],
            )  # fmt: skip
            session.execute(text(f"DROP TABLE IF EXISTS {name}"))
            table.create(session.connection())
            return table

        explain_module._temporary = temporary  # type: ignore[assignment]
    statements = Statements()
    statements.attach(engine)
    for engine_name in args.engines.split(","):
        figures: dict[str, Any] = {}
        with (
            _reader(url, engine_name, args.duckdb_file, args.memory_limit, figures) as reader,
            Session(engine) as session,
        ):
            disk = None
            if reader is not None:
                statements.attach(reader.get_bind())
                disk = Disk(reader)
                figures["duckdb_disk_at_setup"] = disk.take()
            ids = list(session.scalars(select(Agreement.id).order_by(Agreement.id)))
            chosen = (
                ids if args.agreements == "all" else [int(a) for a in args.agreements.split(",")]
            )
            digest = hashlib.sha256()
            per: list[dict[str, Any]] = []
            cycle = None
            if args.round:
                # A renewal round (``report.report_round``): every chosen agreement's pairs
                # explained once, then each report read from them.
                statements.take()
                started = time.perf_counter()
                cycle = _round_cycle(session, reader, chosen, first, last, rules)
                figures["round_explanation_s"] = round(time.perf_counter() - started, 3)
                figures["round_statements_s"] = statements.take()
                figures["round_pairs"] = int(
                    (session if reader is None else reader)
                    .execute(select(func.count()).select_from(cycle.table))
                    .scalar_one()
                )
                figures["peak_rss_mib_after_round_explanation"] = _rss()
                if disk is not None:
                    figures["duckdb_disk_round_explanation"] = disk.take()
                print(json.dumps({engine_name: {k: v for k, v in figures.items()}}), flush=True)
            for agreement_id in chosen:
                agreement = session.get(Agreement, agreement_id)
                assert agreement is not None
                period = Period(start=first, end=last, agreement_id=agreement_id)
                statements.take()
                started = time.perf_counter()
                document = build_report(
                    session, agreement=agreement, period=period, rules=rules, now=NOW,
                    reader=reader, cycle=cycle,
                )  # fmt: skip
                row: dict[str, Any] = {
                    "agreement": agreement_id,
                    "report_s": round(time.perf_counter() - started, 3),
                    "statements_s": statements.take(),
                    "pairs": document.figure("pairs").value,
                    "queries": document.figure("queries").value,
                    "refusals": document.figure("refusals").value,
                    "flags": document.flags_total,
                    "tree_size": document.tree_size,
                }
                digest.update(canonical(document))
                row["sha256"] = hashlib.sha256(canonical(document)).hexdigest()
                # Each report's transaction ends here: its refresh holds the facts' watermark
                # (FOR UPDATE) until then, which other runs on the shared store wait for. (A
                # round's store cycle is a temporary table of this transaction: kept.)
                if cycle is None or reader is not None:
                    session.rollback()
                if args.explanation_alone:
                    # The explanation of the same pairs alone, counted (no report figures).
                    source = session if reader is None else reader
                    selection = select_period(session, period)
                    pairs = xsql.explanations(
                        selection, rules, purpose_grants(session, selection),
                        source.get_bind().dialect.name,
                    ).subquery("alone")  # fmt: skip
                    started = time.perf_counter()
                    source.execute(select(func.count()).select_from(pairs)).scalar_one()
                    row["explanation_alone_s"] = round(time.perf_counter() - started, 3)
                    statements.take()
                per.append(row)
                print(json.dumps({engine_name: row}), flush=True)
            if cycle is not None:
                cycle.drop(session if reader is None else reader)
            session.rollback()
            if disk is not None:
                figures["duckdb_disk_reports"] = disk.take()
                disk.stop()
        figures["reports"] = per
        figures["reports_s"] = round(sum(r["report_s"] for r in per), 3)
        figures["reports_sha256"] = digest.hexdigest()
        figures["peak_rss_mib"] = _rss()
        result[engine_name] = figures
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="the kept PostgreSQL store's database (bench/oversight.py)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="build (or reuse) bench/oversight.py's small kept store (QUICK_KEPT) and read it",
    )
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--engines", default="store,duckdb")
    parser.add_argument("--agreements", default="all", help="ids (1,2) or all")
    parser.add_argument("--duckdb-file", type=Path, default=None)
    parser.add_argument("--memory-limit", default=duck.DEFAULT_MEMORY_LIMIT)
    parser.add_argument(
        "--explanation-alone",
        action="store_true",
        help="also time the explanation of each agreement's pairs alone",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="let each report refresh the facts (claims the watermark FOR UPDATE: other runs "
        "on the shared store wait for it); by default skipped, the facts checked up to the log",
    )
    parser.add_argument(
        "--round",
        action="store_true",
        help="a renewal round: explain every chosen agreement's pairs once (report_round), "
        "then build each report from them",
    )
    parser.add_argument(
        "--temporary-table",
        action="store_true",
        help="with --round on DuckDB: the round's pairs in a TEMPORARY table of DuckDB (held "
        "in memory: the product's table before branch h13round) instead of a table of the "
        "reader's file, to compare peak RSS and spills",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.store, args.days = generator.kept_quick_store(), generator.QUICK_KEPT.days
    elif args.store is None:
        parser.error("give --store DBNAME (a store kept by bench/oversight.py) or --quick")
    started = time.perf_counter()
    result = run(args)
    result["wall_s"] = round(time.perf_counter() - started, 3)
    result["peak_rss_mib"] = _rss()
    line = json.dumps(result)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(line)


if __name__ == "__main__":
    main()
