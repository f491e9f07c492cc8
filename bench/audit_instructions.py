"""Issue 12 target 1 counted in instructions: an audited read against the floor, under callgrind.

On a loaded machine the wall and even the thread CPU of `bench/audit_overhead.py` move by more
between runs than the ~20 µs target 1 turns on. Instructions executed do not: this runs each
variant of `bench/audit_overhead.py`'s external read in its own process under
``valgrind --tool=callgrind`` (same data, same SIDs, same warm-up) and reports each variant's
instructions per call beside the floor's: ``(total(variant) - total(floor)) / calls``, the
interpreter's start and the data's load being the same in every process.

Variants (external SID lookups through the real path, one committed transaction each):

* ``startup``: the floor's warm-up calls only, to take the interpreter's start, the imports and
  every first call's one-time work out of the floor's own count;
* ``floor``: the bare read plus one integer row (``unaudited_plus_one_row_write``);
* ``floor_again``: the floor once more, in its own process: the method's own noise (the
  interpreter's hash seed is fixed, ``PYTHONHASHSEED=0``, but addresses and the salts are not);
* ``audited``: `access.service.search_persons`, the call every request makes;
* ``audited_no_canary_trigger``: the same on a copy of the database without the SQLite canary
  trigger (NOT a guarantee kept: what the trigger costs);
* ``audited_no_foreign_keys``: the same with ``PRAGMA foreign_keys=OFF`` (what the entry's two
  key probes cost).

Caution (docs/benchmarks.md, h12lite6): the processes without the trigger or the keys also ran
~110K instructions a call less Python than the audited one, work that is not the guarantee and was
not identified; read the guarantees' costs from the SQLite and libc parts of the callgrind outputs
(``--keep``), not from those rows alone.

Instructions are user-space only (the kernel's write and fsync are not counted), and valgrind
counts a ``rep stosb`` memset one instruction per byte and runs OpenSSL's SHA-256 without the
CPU's SHA extensions: both weigh more here than on the CPU. SQLite only.

    .venv/bin/python bench/audit_instructions.py [--quick] [--persons N] [--calls K]
                                                 [--variants a,b]

``--quick`` is the one bench option that does not finish in a minute: under valgrind each of its
three processes spends about a minute starting the interpreter and loading the data.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = (
    "floor",
    "floor_again",
    "audited",
    "audited_no_canary_trigger",
    "audited_no_foreign_keys",
)
WARM_UP = 30


def prepare(directory: Path, persons: int, calls: int) -> None:
    """The bench's database (and a copy without the canary trigger) and the SIDs to read."""
    import audit_overhead as ao

    from openpars.db import Database, make_engine
    from openpars.models import load_all_models

    load_all_models()
    url = f"sqlite:///{directory / 'audit.db'}"
    data, external = ao._prepare("sqlite", url, persons)
    rng = random.Random(3)
    sids = [data.random_sid(rng) for _ in range(calls + WARM_UP)]
    # Every call claims a place in both rate windows, and a full window grows by 64 places: how
    # often depends on how many calls fall in a minute, so on valgrind's pace. Run every call
    # once here, at full speed, so that the windows already hold a place for each and the counts
    # below do not depend on the clock; then wait out the minute, so that every place is free.
    db = Database(make_engine(url))
    for sid in sids:
        ao.external_read(db, external, sid, audit=False, scratch_write=True)
    db.dispose()
    time.sleep(61)
    with sqlite3.connect(directory / "audit.db", isolation_level=None) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copy(directory / "audit.db", directory / "no-trigger.db")
    conn = sqlite3.connect(directory / "no-trigger.db", isolation_level=None)
    conn.execute("DROP TRIGGER audit_entries_canary")
    conn.close()
    (directory / "meta.pkl").write_bytes(pickle.dumps({"external": external, "sids": sids}))


def run(directory: Path, variant: str) -> None:
    """One variant's calls (inside callgrind): warm-up, then every SID once."""
    import audit_overhead as ao
    from sqlalchemy import event

    from openpars.db import Database, make_engine
    from openpars.models import load_all_models

    load_all_models()
    meta = pickle.loads((directory / "meta.pkl").read_bytes())
    name = "no-trigger.db" if variant == "audited_no_canary_trigger" else "audit.db"
    work = Path(tempfile.mkdtemp(prefix="openpars-instr-"))
    try:
        shutil.copy(directory / name, work / name)
        engine = make_engine(f"sqlite:///{work / name}")
        if variant == "audited_no_foreign_keys":

            @event.listens_for(engine, "connect")
            def _no_keys(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute("PRAGMA foreign_keys=OFF")

        db = Database(engine)
        audit = variant.startswith("audited")
        for sid in meta["sids"][:WARM_UP] if variant == "startup" else meta["sids"]:
            ao.external_read(db, meta["external"], sid, audit=audit, scratch_write=not audit)
        db.dispose()
    finally:
        shutil.rmtree(work)


def _instructions(log: str) -> int:
    match = re.search(r"Collected : (\d+)", log)
    if match is None:
        raise RuntimeError(f"no callgrind total in:\n{log[-2000:]}")
    return int(match.group(1))


def main() -> None:
    """Prepare, run every variant under callgrind (two at a time), print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--keep", type=Path, help="copy the callgrind outputs into this directory")
    parser.add_argument("--run", nargs=2, metavar=("DIR", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1,000 persons, 20 calls, the floor and the audited read only: a smoke run of about "
        "2.5 minutes, not one (each process starts the interpreter under valgrind, about a "
        "minute whatever the calls)",
    )
    args = parser.parse_args()
    if args.quick:
        args.persons, args.calls, args.variants = 1_000, 20, "floor,audited"
    if args.run:
        run(Path(args.run[0]), args.run[1])
        return
    variants = args.variants.split(",")
    if "floor" not in variants:
        variants.insert(0, "floor")
    variants.insert(0, "startup")  # the warm-up alone
    with tempfile.TemporaryDirectory(prefix="openpars-instr-") as tmp:
        directory = Path(tmp)
        prepare(directory, args.persons, args.calls)
        procs = {}
        totals: dict[str, int] = {}
        pending = list(variants)
        while pending or procs:
            while pending and len(procs) < 2:
                variant = pending.pop(0)
                procs[variant] = subprocess.Popen(
                    ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/{variant}.cg",
                     sys.executable, __file__, "--run", tmp, variant],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                    env={**os.environ, "PYTHONHASHSEED": "0"},
                )  # fmt: skip
            variant, proc = next(iter(procs.items()))
            totals[variant] = _instructions(proc.communicate()[0])
            del procs[variant]
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for variant in variants:
                shutil.copy(directory / f"{variant}.cg", args.keep / f"{variant}.cg")
    calls = args.calls + WARM_UP
    floor = (totals["floor"] - totals["startup"]) / args.calls
    per_call = {v: round((totals[v] - totals["floor"]) / calls) for v in variants[1:]}
    result = {
        "floor_per_call": round(floor),
        "vs_floor": {v: round(1 + per_call[v] / floor, 3) for v in variants[2:]},
        "persons": args.persons,
        "calls_per_variant": calls,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "instructions_total": totals,
        "over_floor_per_call": per_call,
    }
    audited = per_call.get("audited")
    if audited:
        for v in variants:
            if v.startswith("audited_"):
                result.setdefault("guarantee_cost_per_call", {})[v] = audited - per_call[v]
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
