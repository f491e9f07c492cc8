"""CPU of the what-if page's work, in one process, side by side: the replay every view ran
(``compute``) against the stored read the page and API now do (``replay_proposal``, a page of
50); median of 7 after a warm-up, ``time.process_time``; nothing is kept (each unit rolled back).

    .venv/bin/python bench/whatif_cpu.py DATABASE_URL   (a database ``openpars demo`` built)
"""

import json
import sys
import time

from sqlalchemy import select

from openpars.db import Database, make_engine
from openpars.governance.models import Proposal
from openpars.oversight.explain_cli import OVERSEER
from openpars.oversight.whatif import WHATIF_MONTHS, _proposed_of, compute, replay_proposal

url = sys.argv[1]
db = Database(make_engine(url))
with db.session() as s:
    pid = s.scalars(select(Proposal.id).where(Proposal.agreement_id.is_not(None))).first()


def live() -> int:
    assert pid is not None, "the demo holds an agreement proposal"
    with db.session() as s:
        r = compute(s, _proposed_of(s, pid), months=WHATIF_MONTHS, max_queries=20_000)
        s.rollback()
        return r.totals.queries


def stored() -> int:
    assert pid is not None, "the demo holds an agreement proposal"
    with db.session() as s:
        r = replay_proposal(s, actor=OVERSEER, proposal_id=pid, offset=0, limit=50, via="cli")
        s.rollback()  # the read's audit entry not kept: the measure writes nothing
        return r.totals.queries


out: dict[str, dict[str, float]] = {}
for name, fn in (("live_replay", live), ("stored_read", stored)):
    fn()
    t = []
    for _ in range(7):
        c = time.process_time()
        q = fn()
        t.append((time.process_time() - c) * 1000)
    t.sort()
    out[name] = {"queries": q, "cpu_ms_median": round(t[3], 1), "cpu_ms_min": round(t[0], 1)}
print(json.dumps(out))
