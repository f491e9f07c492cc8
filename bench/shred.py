"""Wall time of one crypto-shredding of N entries, on a fresh database per size (h12lite5).

Each size: an empty database (SQLite: a temp file; PostgreSQL: ``--pg-url``'s database, its
tables dropped and created again), one arrest sealed under a court order, N read entries naming
it appended in one group commit, then ``audit.log.shred`` by arrest, timed from the call to
its return (the shredding entries appended, the contents erased under the database's guard),
in the transaction that then commits. The arrest comes from tests/audit/records.py, so run it
from the repository's root (``cwd`` on ``sys.path``), which also lets it run against another
checkout's code: ``cd /work/main && .venv/bin/python /path/to/bench/shred.py``.

    .venv/bin/python bench/shred.py [--quick] [--sizes 100,1000,5000,20000] [--pg-url URL]

The last line printed is one JSON object: seconds per size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())

from openpars.audit import log
from openpars.audit.events import AuditEvent, AuditKind
from openpars.db import Base, Database, make_engine
from openpars.identity.principal import Principal
from openpars.identity.roles import Role
from openpars.models import load_all_models
from tests.audit import records

ORDER = "CP-51-MD-1-2026"
COURT = Principal(
    user_id=None, username="judge", agency_id=None, agency_kind=None, roles=frozenset({Role.COURT})
)


def one(url: str, entries: int) -> float:
    """Seconds to shred ``entries`` entries about one sealed arrest."""
    engine = make_engine(url)
    if engine.dialect.name != "sqlite":
        Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    db = Database(engine)
    try:
        with db.session() as session:
            records.arrest(session, 1, order=ORDER, person_ids=[1])
        events = [
            AuditEvent(kind=AuditKind.READ, action="arrest.read", params={"i": i}, arrest_ids=[1])
            for i in range(entries)
        ]
        with db.session() as session:
            log.append_many(session, events)
        with db.session() as session:
            start = time.perf_counter()
            shredded = log.shred(session, actor=COURT, order_reference=ORDER, arrest_id=1)
            seconds = time.perf_counter() - start
        assert len(shredded) == entries
        return seconds
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000,20000")
    parser.add_argument("--pg-url", default=None, help="a PostgreSQL database to use (emptied)")
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1,000")
    args = parser.parse_args()
    if args.quick:
        args.sizes = "100,1000"
    load_all_models()
    figures: dict[str, object] = {"loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    for size in (int(s) for s in args.sizes.split(",")):
        if args.pg_url:
            url = args.pg_url
        else:
            url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='openpars-shred-')) / 's.db'}"
        figures[str(size)] = round(one(url, size), 3)
        print(size, figures[str(size)], file=sys.stderr, flush=True)
    figures["backend"] = "postgresql" if args.pg_url else "sqlite"
    figures["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
