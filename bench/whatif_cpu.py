"""CPU of the what-if page's work, in one process, side by side: the replay every view ran
(``compute``) against the stored read the page and API now do (``replay_proposal``, a page of
50); median of 7 after a warm-up, ``time.process_time``; nothing is kept (each unit rolled back).

    .venv/bin/python bench/whatif_cpu.py DATABASE_URL   (a database ``openpars demo`` built)
    .venv/bin/python bench/whatif_cpu.py --quick        (the demo built on a temporary SQLite)

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from openpars.config import Settings
from openpars.db import Database, make_engine
from openpars.governance.models import Proposal
from openpars.oversight.explain_cli import OVERSEER
from openpars.oversight.whatif import WHATIF_MONTHS, _proposed_of, compute, replay_proposal

QUICK_ARRESTS = 60  # the demo's arrests when --quick builds it (its default seed)


def measure(url: str) -> dict[str, dict[str, float]]:
    engine = make_engine(url)
    db = Database(engine)
    with db.session() as s:
        pid = s.scalars(select(Proposal.id).where(Proposal.agreement_id.is_not(None))).first()
    if pid is None:
        raise SystemExit(f"{url}: no agreement proposal; build it with `openpars demo --no-serve`")

    def live() -> int:
        with db.session() as s:
            r = compute(s, _proposed_of(s, pid), months=WHATIF_MONTHS, max_queries=20_000)
            s.rollback()
            return r.totals.queries

    def stored() -> int:
        with db.session() as s:
            r = replay_proposal(s, actor=OVERSEER, proposal_id=pid, offset=0, limit=50, via="cli")
            s.rollback()  # the read's audit entry not kept: the measure writes nothing
            return r.totals.queries

    out: dict[str, dict[str, float]] = {}
    measured: tuple[tuple[str, Callable[[], int]], ...] = (
        ("live_replay", live),
        ("stored_read", stored),
    )
    for name, fn in measured:
        fn()
        t = []
        for _ in range(7):
            c = time.process_time()
            q = fn()
            t.append((time.process_time() - c) * 1000)
        t.sort()
        out[name] = {"queries": q, "cpu_ms_median": round(t[3], 1), "cpu_ms_min": round(t[0], 1)}
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="a database `openpars demo` built")
    parser.add_argument("--quick", action="store_true", help="build the demo on a temporary SQLite")
    args = parser.parse_args()
    if args.quick:
        from openpars.demo.cli import build_demo

        with tempfile.TemporaryDirectory(prefix="openpars-bench-whatif-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'demo.db'}"
            build_demo(
                Settings(database_url=url, log_key_path=Path(tmp) / "log.key"),
                arrests=QUICK_ARRESTS,
                seed=1,
            )
            print(json.dumps(measure(url)))
        return
    if args.url is None:
        parser.error("give DATABASE_URL (a database `openpars demo` built) or --quick")
    print(json.dumps(measure(args.url)))


if __name__ == "__main__":
    main()
