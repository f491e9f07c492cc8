"""SQLite WAL frames per committed call of the issue 12 variants (issue 12 targets 1 and 3).

Every page a commit dirties is one frame (page + 24-byte header) appended to the ``-wal`` file
and fsynced: with automatic checkpoints off (``openpars.db.SQLITE_WAL_AUTOCHECKPOINT = 0``),
the file's growth over a run of calls, divided by the frame size, is the frames per call. The
data and the calls are bench/search.py's (the ``issue12_whole_call`` variants: the floor, the
internal and the external service call, by SID and by name prefix); each variant runs
``--calls`` times after ``--warmup`` calls, variant after variant on the same database.

    .venv/bin/python bench/wal_frames.py [--quick] [--persons 50000] [--calls 200] [--keep DIR]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import search

from openpars import db as dbmodule
from openpars.access.schemas import ReadContext
from openpars.db import Database, make_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None, help="keep and reuse the data here")
    parser.add_argument("--quick", action="store_true", help="5,000 persons, 50 calls")
    args = parser.parse_args()
    if args.quick:
        args.persons, args.calls = 5_000, 50
    dbmodule.SQLITE_WAL_AUTOCHECKPOINT = 0
    with search.database("sqlite", args.persons, args.keep) as (url, _kept):
        data, _load_s = search.prepare_data(url, args.persons)
        engine = make_engine(url)
        db = Database(engine)
        external = search.external_reader(engine, search.SCOPE)
        internal = data.reader()
        policy = search.external_compiler()()
        columns = search.repo.person_columns(policy)
        aliases = policy.person_fields.shows("aliases")
        context = ReadContext(purpose=search.PURPOSE)
        rng = random.Random(7)
        values = {
            "sid": [data.random_sid(rng) for _ in range(args.calls + args.warmup)],
            "name_prefix": [
                data.random_family_prefix(rng) for _ in range(args.calls + args.warmup)
            ],
        }
        wal = Path(url.removeprefix("sqlite:///") + "-wal")
        with engine.connect() as conn:
            page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        frame = page_size + 24
        figures: dict[str, Any] = {}
        for kind in ("sid", "name_prefix"):
            variants = {
                "floor": partial(
                    search.bare, db, columns, aliases, kind, count=False, durable_write=True
                ),
                "service_internal": partial(search.full_service, db, internal, ReadContext(), kind),
                "service_external": partial(search.full_service, db, external, context, kind),
            }
            for name, call in variants.items():
                for value in values[kind][: args.warmup]:
                    call(value)
                before = wal.stat().st_size
                for value in values[kind][args.warmup :]:
                    call(value)
                grown = wal.stat().st_size - before
                figures[f"{kind}/{name}"] = round(grown / frame / args.calls, 2)
                print(f"{kind} {name}: {figures[f'{kind}/{name}']} frames a call", flush=True)
        engine.dispose()
    print(f"openpars from {Path(dbmodule.__file__).parent}", flush=True)
    print(
        json.dumps(
            {
                "frames_per_call": figures,
                "persons": args.persons,
                "calls": args.calls,
                "loadavg": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
