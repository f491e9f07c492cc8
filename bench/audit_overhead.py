"""Overhead of auditing a query: the same query audited and unaudited, side by side (issue 5).

Data: bench/search_data (N synthetic persons with arrests, involvements, charges). Every
variant is one transaction per query, committed, on the same random existing values, the
variants interleaved in a rotating order (bench/search.py's `measure`). Figures are wall and
CPU p50/p99 in ms and each variant's ratio to ``unaudited``.

* ``external_unaudited`` / ``external_audited``: an external agency's SID lookup under a
  compiled agreement policy (row filter, field projection and masks, as bench/search.py
  builds it), then, for the audited one, the entry `openpars.access.service` appends for it
  (query, purpose, decision, returned ids) through `service.append`, in the same transaction;
  ``audited_driver`` appends the same entry through `log.append_many`'s driver-level path.
* ``internal_service``: the real `openpars.access.service.search_persons` for a reader,
  which always audits, against ``internal_unaudited``, the same steps without the append.

The last line printed is one JSON object.

    .venv/bin/python bench/audit_overhead.py [--quick] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import PAGE, database, external_compiler, measure
from search_data.load import Loaded, load

from openpars.access import repository as repo
from openpars.access import service, shaping
from openpars.access.enforcement import policy_for
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.audit import log
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.db import Base, Database, make_engine, utcnow
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Role
from openpars.models import load_all_models


def external_lookup(
    db: Database, policy: Callable[[], ReadPolicy], sid: str, audit: str | None
) -> None:
    """An external SID lookup; `audit` says how its entry is appended before the commit."""
    with db.session() as session:
        pol = policy()
        stmt = repo.person_search(pol, PersonQuery(sid=sid))
        rows = repo.page(session, stmt, offset=0, limit=PAGE)
        repo.capped_total(session, stmt)
        items = [shaping.person_read(p, pol) for p in rows]
        if audit is not None:
            event = AuditEvent(
                kind=AuditKind.SEARCH,
                action="person.search",
                user_id=None,
                username="ice.agent",
                agency_id=None,
                source_ip="10.1.2.3",
                params={
                    "query": {"sid": sid},
                    "purpose": "criminal-investigation",
                    "case_reference": "BENCH-1",
                    "decision": pol.explain(),
                },
                person_ids=[p.id for p in rows],
            )
            if audit == "orm":
                append(session, event)
            else:
                log.append_many(session, [event])
        del items


def internal_unaudited(db: Database, principal: Principal, sid: str) -> None:
    """`service.search_persons` step by step, minus its audit append."""
    with db.session() as session:
        at = utcnow()
        policy = policy_for(session, principal=principal, context=ReadContext(), at=at)
        stmt = repo.person_search(policy, PersonQuery(sid=sid))
        rows = repo.page(session, stmt, offset=0, limit=PAGE)
        repo.capped_total(session, stmt)
        [shaping.person_read(p, policy) for p in rows]


def internal_service(db: Database, principal: Principal, sid: str) -> None:
    """The real read service, which audits every call."""
    with db.session() as session:
        service.search_persons(
            session, principal=principal, query=PersonQuery(sid=sid), context=ReadContext()
        )


def run_backend(backend: str, persons: int, queries: int, tmp: Path) -> dict[str, Any]:
    """Load data into a fresh database of the backend and measure both comparisons."""
    with database(backend, tmp) as url:
        loader = make_engine(url)
        Base.metadata.create_all(loader)
        data: Loaded = load(loader, persons=persons, seed=20261128)
        loader.dispose()
        engine = make_engine(url)
        try:
            db = Database(engine)
            rng = random.Random(11)
            sids = [data.random_sid(rng) for _ in range(queries)]
            external, how = external_compiler()
            reader = Principal(
                user_id=data.user_id,
                username="bench-reader",
                agency_id=data.agency_id,
                agency_kind=AgencyKind.POLICE,
                roles=frozenset({Role.READER}),
            )
            result: dict[str, Any] = {"policy": how}
            result["external"] = measure(
                {
                    "bare": lambda v: external_lookup(db, external, v, audit=None),
                    "audited": lambda v: external_lookup(db, external, v, audit="orm"),
                    "audited_driver": lambda v: external_lookup(db, external, v, audit="driver"),
                },
                sids,
            )
            result["internal_service"] = measure(
                {
                    "bare": lambda v: internal_unaudited(db, reader, v),
                    "audited": lambda v: internal_service(db, reader, v),
                },
                sids,
            )
            return result
        finally:
            engine.dispose()


def main() -> None:
    """Parse arguments, run, print the JSON line (``bare`` in it means unaudited)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="5,000 persons, 150 queries, SQLite only"
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql", "both"),
        default=None,
        help="default: both, or sqlite with --quick (to stay under a minute)",
    )
    args = parser.parse_args()
    load_all_models()
    persons, queries = (5_000, 150) if args.quick else (200_000, 1000)
    chosen = args.backend or ("sqlite" if args.quick else "both")
    backends = ("sqlite", "postgresql") if chosen == "both" else (chosen,)
    figures: dict[str, Any] = {"persons": persons, "queries": queries, "target_ratio_p50": 1.1}
    with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
        for backend in backends:
            figures[backend] = run_backend(backend, persons, queries, Path(tmp))
            for name in ("external", "internal_service"):
                print(f"{backend} {name}: {figures[backend][name]['audited']}", file=sys.stderr)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
