"""The whole store's oversight reads on DuckDB attached to the store, as the product runs them.

    .venv/bin/python bench/oversight_duckdb_pass.py --store NAME [--compare] | --quick
        [--copied TABLE,...] [--memory-limit 1500MB] [--threads 2] [--skip-explain]
        [--duckdb-file PATH [--reuse] [--kept-only] [--rewind-day]
            [--append-day --entries N --persons N --days N]]

``NAME`` is a PostgreSQL store kept by ``bench/oversight.py --engine postgresql --keep-db
/tmp/NAME`` with its facts brought up to the log (``--incremental-only``). In one process:

1. ``oversight.duck.reader``: one in-memory DuckDB, the PostgreSQL scanner loaded by path, the
   store ATTACHed read-only, each store table a view of it (instants as naive UTC); the tables
   named by ``--copied`` are read into DuckDB's own storage instead (timed: ``setup_s``).
2. The baseline: the plain scan of the same entries in the same run (every entry's content
   length summed) through the same DuckDB (``scan_duckdb_s``) and, with ``--compare``, on
   PostgreSQL (``scan_postgresql_s``).
3. The explanation of every pair of every agreement over the period: the statement the product
   builds on DuckDB (``explain_sql.explanations`` for dialect ``duckdb``, compiled for
   PostgreSQL with literal binds, as bench/oversight_duckdb.py), into a DuckDB temporary
   table; coverage in all and per agency, user, purpose and week from it
   (``explain_duckdb_s``, ``coverage_duckdb_s``).
4. Every detector of ``flags.DETECTORS`` over the whole store, its own statements on DuckDB
   (dialect ``duckdb``), each timed; the drafts' digest (``drafts_sha256``). With
   ``--compare`` the same detectors on PostgreSQL (each timed) and their digest: ``same_drafts``.

With ``--duckdb-file PATH`` (the setting ``oversight_duckdb_file``: ``oversight.duck_kept``),
before the pass, in the same process: the temporary copy the pass makes without it, opened
and closed (``kept.copy_s``), then the kept file removed and built (``kept.build_s``), then
opened again with nothing new in the store (``kept.nochange_s``); with ``--append-day`` (it
WRITES to the store: a store of your own, built with ``--entries``/``--persons``/``--days``
given here as well), bench/oversight.py's next day appended and integrated, the facts
refreshed, the file opened again (``kept.day_s``), and the day removed at the end (the file is
then another log's and is removed too). The pass then reads through the kept file (its
``setup_s`` another refresh with nothing new). The file's size and the peak RSS after the
copies are reported.

Peak RSS is this process's (DuckDB included; ``memory_limit`` bounds its buffers). Nothing is
written to the store. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import column, select, table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from openpars.agreements.models import Agreement
from openpars.config import Settings
from openpars.db import make_engine
from openpars.models import load_all_models
from openpars.oversight import duck
from openpars.oversight import explain_sql as xsql
from openpars.oversight.detection import FlagDraft
from openpars.oversight.explain import purpose_grants, rules_from
from openpars.oversight.explain_sql import Dimension, Selection
from openpars.oversight.facts import whole_store_memory
from openpars.oversight.flags import DETECTORS

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oversight as generator  # bench/oversight.py, beside this script

PG_URL = os.environ.get(
    "OPENPARS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # bench/oversight.py's first day
# The explanation's columns coverage reads.
COLUMNS = ("code", "never_charged", "agency_id", "user_id", "purpose", "at")
# The plain scan of the same entries: the store's table itself (through the scanner on DuckDB;
# its copy holds only what the readers parse of the content).
SCAN = "SELECT count(*), sum(octet_length(content)) FROM {}audit_entries"


def digest(drafts: list[FlagDraft]) -> str:
    rows = sorted(
        (
            d.detector,
            d.dedupe_key,
            d.rule,
            d.threshold,
            d.subject_user_id,
            d.subject_agency_id,
            d.subject_agreement_id,
            tuple(d.entry_ids),
            d.raised_at.astimezone(UTC).isoformat(),
        )
        for d in drafts
    )
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def detect(session: Session, figures: dict[str, float]) -> list[FlagDraft]:
    found: list[FlagDraft] = []
    for detector in DETECTORS:
        started = time.perf_counter()
        found += detector(session, None, None)
        figures[detector.__name__] = round(time.perf_counter() - started, 3)
        print(detector.__name__, figures[detector.__name__], file=sys.stderr, flush=True)
    return found


def explanation_sql(session: Session, days: int) -> str:
    end = T0 + timedelta(days=days)
    grants = purpose_grants(session, Selection(start=T0, end=end))
    agreements = frozenset(session.scalars(select(Agreement.id)))
    selection = Selection(start=T0, end=end, agreement_ids=agreements)
    # Built for dialect duckdb, as ``openpars oversight explain|coverage --engine duckdb`` builds
    # it (its sweeps scan the copied entries), compiled with PostgreSQL's literal binds.
    pairs = xsql.explanations(selection, rules_from(Settings()), grants, "duckdb")
    compiled = pairs.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled)


def _opened(url: str, args: argparse.Namespace, kept_file: Path | None) -> float:
    """Seconds to open a reader (its copy made or brought up) and close it."""
    started = time.perf_counter()
    with duck.reader(
        url, memory_limit=args.memory_limit, threads=args.threads, kept_file=kept_file
    ) as reader:
        reader.connection()
    return round(time.perf_counter() - started, 3)


def rewound_day(args: argparse.Namespace, url: str, kept_file: Path) -> dict[str, Any]:
    """A day's bring-up on a store this bench may not write: the file's last day taken out
    of the file (the entries of its last 1/365 of leaves, their leaves and facts, and the
    watermarks it keeps moved back to match), then the file opened (timed): it reads that
    day again from the store, as after a day's appends and refresh. Then the copy's row
    counts against the store's."""
    import duckdb

    con = duckdb.connect(str(kept_file))
    leaves = int(con.execute("SELECT count(*) FROM audit_leaves").fetchone()[0])  # type: ignore[index]
    cut = leaves - leaves // args.days
    top = con.execute("SELECT max(entry_id) FROM audit_leaves WHERE leaf_index < ?", [cut])
    first = int(top.fetchone()[0]) + 1  # type: ignore[index]
    con.execute("DELETE FROM audit_leaves WHERE leaf_index >= ?", [cut])
    con.execute("DELETE FROM audit_entries WHERE id >= ?", [first])
    con.execute("DELETE FROM oversight_access_facts WHERE entry_id >= ?", [first])
    head = con.execute(
        "SELECT entry_id, leaf_hash FROM audit_leaves WHERE leaf_index = ?", [cut - 1]
    ).fetchone()
    assert head is not None
    marks = {"leaves": cut, "facts_leaves": cut, "head_hash": f"{head[0]}:{bytes(head[1]).hex()}"}
    for key, value in marks.items():
        con.execute("UPDATE openpars_kept_copy SET value = ? WHERE key = ?", [str(value), key])
    con.close()
    figures: dict[str, Any] = {"rewound_leaves": leaves - cut}
    figures["rewound_day_s"] = _opened(url, args, kept_file)
    print("rewound_day_s", figures["rewound_day_s"], file=sys.stderr, flush=True)
    with duck.reader(url, kept_file=kept_file) as reader:
        counts = [
            reader.execute(
                text(
                    f"SELECT (SELECT count(*) FROM main.{t}), "
                    f"(SELECT count(*) FROM store.public.{t})"
                )
            ).one()
            for t in ("audit_entries", "audit_leaves", "oversight_access_facts")
        ]
    figures["rewound_same_counts"] = all(a == b for a, b in counts)
    return figures


def kept_phases(
    args: argparse.Namespace, url: str, engine: Any, kept_file: Path
) -> tuple[dict[str, Any], int | None]:
    """The full copy against the kept file built and brought up, in this process; the first
    entry of the appended day (``--append-day``), removed by the caller at the end."""
    kept: dict[str, Any] = {"file": str(kept_file), "reused": args.reuse}
    phases = ("nochange_s",) if args.reuse else ("copy_s", "build_s", "nochange_s")
    for phase in phases:
        if phase == "build_s":
            kept_file.unlink(missing_ok=True)
        kept[phase] = _opened(url, args, None if phase == "copy_s" else kept_file)
        print(phase, kept[phase], file=sys.stderr, flush=True)
    kept["file_mib"] = round(kept_file.stat().st_size / 2**20, 1)
    kept["peak_rss_mib_after_copies"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    if args.rewind_day:
        kept.update(rewound_day(args, url, kept_file))
    if not args.append_day:
        return kept, None
    shape = generator.Shape(persons=args.persons, entries=args.entries, days=args.days)
    lo, hi = generator.append_day(engine, shape)
    kept["day_entries"] = hi - lo + 1
    kept["day_facts_refresh"] = generator._refresh_to_log(engine)
    kept["day_s"] = _opened(url, args, kept_file)
    print("day_s", kept["day_s"], file=sys.stderr, flush=True)
    kept["nochange_after_day_s"] = _opened(url, args, kept_file)
    return kept, lo


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_all_models()
    url = PG_URL.rsplit("/", 1)[0] + f"/{args.store}"
    copied = [t for t in args.copied.split(",") if t]
    figures: dict[str, Any] = {
        "store": args.store,
        "copied": copied,
        "memory_limit": args.memory_limit,
        "threads": args.threads,
    }
    engine = make_engine(url)
    kept_file = Path(args.duckdb_file) if args.duckdb_file else None
    day_from = None
    if kept_file is not None:
        figures["kept"], day_from = kept_phases(args, url, engine, kept_file)
        if args.kept_only:
            if day_from is not None:
                generator._drop_entries_from(engine, day_from)
                kept_file.unlink()
            engine.dispose()
            figures["peak_rss_mib"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            )
            figures["load_average_1m"] = round(os.getloadavg()[0], 2)
            return figures
    started = time.perf_counter()
    with duck.reader(
        url,
        copied=copied,
        memory_limit=args.memory_limit,
        threads=args.threads,
        kept_file=kept_file,
    ) as reader:
        reader.connection()
        figures["setup_s"] = round(time.perf_counter() - started, 3)
        print("setup_s", figures["setup_s"], file=sys.stderr, flush=True)
        started = time.perf_counter()
        figures["scan_rows"] = list(reader.execute(text(SCAN.format("store.public."))).one())
        figures["scan_duckdb_s"] = round(time.perf_counter() - started, 3)
        print("scan_duckdb_s", figures["scan_duckdb_s"], file=sys.stderr, flush=True)
        total = time.perf_counter()
        if not args.skip_explain:
            with Session(engine) as pg:
                sql = explanation_sql(pg, args.days)
            started = time.perf_counter()
            with duck.joins_as_written(reader):
                reader.execute(text(f"CREATE TABLE duck_pairs AS {sql}"))
            figures["explain_duckdb_s"] = round(time.perf_counter() - started, 3)
            print("explain_duckdb_s", figures["explain_duckdb_s"], file=sys.stderr, flush=True)
            figures["pairs"] = reader.execute(text("SELECT count(*) FROM duck_pairs")).scalar()
            started = time.perf_counter()
            pairs = select(table("duck_pairs", *(column(c) for c in COLUMNS)))
            coverage = [
                row
                for by in (None, *Dimension)
                for row in reader.execute(xsql.coverage(pairs, by, "duckdb")).all()
            ]
            figures["coverage_duckdb_s"] = round(time.perf_counter() - started, 3)
            print("coverage_duckdb_s", figures["coverage_duckdb_s"], file=sys.stderr, flush=True)
            figures["coverage_rows"] = len(coverage)
            # The cycle's explanations dropped once read, as the product's pass drops its table.
            reader.execute(text("DROP TABLE duck_pairs"))
        times: dict[str, float] = {}
        started = time.perf_counter()
        drafts = detect(reader, times)
        figures["detectors_duckdb_s"] = round(time.perf_counter() - started, 3)
        figures["detector_duckdb_s"] = times
        figures["pass_duckdb_s"] = round(time.perf_counter() - total, 3)
        figures["drafts"] = len(drafts)
        figures["drafts_sha256"] = digest(drafts)
    figures["peak_rss_mib_after_duckdb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    if args.compare:
        with Session(engine) as pg:
            started = time.perf_counter()
            figures["scan_rows_postgresql"] = list(pg.execute(text(SCAN.format(""))).one())
            figures["scan_postgresql_s"] = round(time.perf_counter() - started, 3)
            times = {}
            started = time.perf_counter()
            with whole_store_memory(pg):
                on_pg = detect(pg, times)
            figures["detectors_postgresql_s"] = round(time.perf_counter() - started, 3)
            figures["detector_postgresql_s"] = times
            figures["drafts_sha256_postgresql"] = digest(on_pg)
            figures["same_drafts"] = figures["drafts_sha256_postgresql"] == figures["drafts_sha256"]
            pg.rollback()
    if day_from is not None and kept_file is not None:
        generator._drop_entries_from(engine, day_from)
        kept_file.unlink()
    engine.dispose()
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    figures["cpus"] = os.cpu_count()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    generator.add_kept_store_arguments(parser)
    parser.add_argument("--compare", action="store_true", help="the detectors on PostgreSQL too")
    parser.add_argument(
        "--copied",
        default=",".join(duck.DEFAULT_COPIED),
        help="tables copied into DuckDB, comma-separated (none: '')",
    )
    parser.add_argument("--memory-limit", default=duck.DEFAULT_MEMORY_LIMIT)
    parser.add_argument("--threads", type=int, default=duck.DEFAULT_THREADS)
    parser.add_argument("--skip-explain", action="store_true", help="the detectors alone")
    parser.add_argument(
        "--duckdb-file",
        help="a kept DuckDB file (removed, built, brought up: timed against the full copy)",
    )
    parser.add_argument(
        "--append-day",
        action="store_true",
        help="with --duckdb-file: WRITES a day to the store (removed after), timing the "
        "kept file brought up over it; give the store's --entries and --persons",
    )
    parser.add_argument(
        "--rewind-day",
        action="store_true",
        help="with --duckdb-file: the file's last day taken out of the file and read again "
        "(a day's bring-up without writing to the store)",
    )
    parser.add_argument(
        "--kept-only", action="store_true", help="with --duckdb-file: the copies alone, no pass"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --duckdb-file: the file as an earlier run left it, brought up (no full copy, "
        "no rebuild): the pass as a site with the setting runs it",
    )
    parser.add_argument("--entries", type=int, help="the store's entries (--append-day)")
    parser.add_argument("--persons", type=int, help="the store's persons (--append-day)")
    args = generator.kept_store_arguments(parser)
    if args.reuse and (args.duckdb_file is None or not Path(args.duckdb_file).is_file()):
        parser.error("--reuse needs --duckdb-file naming a file an earlier run built")
    if args.append_day and (args.duckdb_file is None or not args.entries or not args.persons):
        parser.error("--append-day needs --duckdb-file, --entries and --persons")
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
