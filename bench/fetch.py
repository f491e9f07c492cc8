"""An external fetch (get_arrest, get_person) through the real service: wall, CPU, statements.

Loads the search data (``search_data``), an external agency with an agreement in force for
one of two scopes, and measures in rotating order: the agency's ``get_arrest`` and
``get_person`` of records it may see (each in the external login's unit, audited and
committed, as the API runs them) and the internal reader's ``get_arrest`` of the same arrests.
``narrow``: the search benchmark's scope (aliases shown, three arrest fields, no arrest part);
``wide``: the same with every arrest part (charges, charging decisions, bail
recommendations, arraignment, custody) granted. Statements and (PostgreSQL) round trips of one
call of each are counted at the driver (``roundtrips``).

Run the same script against another tree's code to compare (the script only calls the
service): ``PYTHONPATH=/path/to/other/src .venv/bin/python bench/fetch.py ...``.

The last line printed is one JSON object.

    .venv/bin/python bench/fetch.py [--quick] [--backend sqlite|postgresql] [--scope narrow|wide]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audit_overhead import database, measure
from roundtrips import count
from search_data.agreement import PURPOSE, SCOPE, external_reader
from search_data.load import load
from sqlalchemy import select

import openpars
from openpars.access import service
from openpars.access.schemas import ReadContext
from openpars.db import Base, Database, make_engine
from openpars.errors import NotFound
from openpars.identity.principal import Principal
from openpars.models import load_all_models
from openpars.records.enums import InvolvementRole
from openpars.records.models import Involvement

PARTS = ("charges", "charging_decisions", "bail_recommendations", "arraignment", "custody")
SCOPES: dict[str, dict[str, Any]] = {
    "narrow": SCOPE,
    "wide": {
        **SCOPE,
        "arrest_fields": {**SCOPE["arrest_fields"], **dict.fromkeys(PARTS, "visible")},
    },
}


def _arrest(db: Database, who: Principal, arrest_id: int) -> None:
    external = who.is_external
    context = ReadContext(purpose=PURPOSE) if external else ReadContext()
    with db.session(external=external) as session:
        service.get_arrest(session, principal=who, arrest_id=arrest_id, context=context)


def _person(db: Database, who: Principal, person_id: int) -> None:
    with db.session(external=True) as session:
        service.get_person(
            session, principal=who, person_id=person_id, context=ReadContext(purpose=PURPOSE)
        )


def _shown(db: Database, who: Principal, candidates: list[tuple[int, int]], n: int) -> list[str]:
    """``n`` (arrest id, arrestee id) pairs the agency may fetch, as 'arrest:person'."""
    found: list[str] = []
    for arrest_id, person_id in candidates:
        try:
            _arrest(db, who, arrest_id)
            _person(db, who, person_id)
        except NotFound:
            continue
        found.append(f"{arrest_id}:{person_id}")
        if len(found) == n:
            break
    return found


def run(backend: str, scope: str, persons: int, calls: int, tmp: Path) -> dict[str, Any]:
    """Load, then measure the three fetches and count one call of each."""
    with database(backend, tmp) as url:
        loader = make_engine(url)
        Base.metadata.create_all(loader)
        data = load(loader, persons=persons, seed=20261128)
        external = external_reader(loader, SCOPES[scope])
        with loader.connect() as conn:
            stmt = select(Involvement.arrest_id, Involvement.person_id).where(
                Involvement.role == InvolvementRole.ARRESTEE
            )
            pairs = [(int(a), int(p)) for a, p in conn.execute(stmt)]
        loader.dispose()
        random.Random(7).shuffle(pairs)
        engine = make_engine(url)
        db = Database(engine)
        try:
            values = _shown(db, external, pairs, calls)
            reader = data.reader()

            def ids(value: str) -> tuple[int, int]:
                a, p = value.split(":")
                return int(a), int(p)

            variants: dict[str, Callable[[str], None]] = {
                "internal_arrest": lambda v: _arrest(db, reader, ids(v)[0]),
                "external_arrest": lambda v: _arrest(db, external, ids(v)[0]),
                "external_person": lambda v: _person(db, external, ids(v)[1]),
            }
            result: dict[str, Any] = {"measured": measure(variants, values)}
            engines = (db.external_engine(), engine)
            result["cost_per_call"] = {
                name: count(engines, lambda v=name: variants[v](values[0])) for name in variants
            }
            return result
        finally:
            db.dispose()


def main() -> None:
    """Parse arguments, run, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--scope", choices=tuple(SCOPES), default="wide")
    parser.add_argument("--persons", type=int, default=5_000)
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--quick", action="store_true", help="2,000 persons, 40 calls")
    args = parser.parse_args()
    if args.quick:
        args.persons, args.calls = 2_000, 40
    load_all_models()
    figures: dict[str, Any] = {
        "backend": args.backend,
        "scope": args.scope,
        "persons": args.persons,
        "code": str(Path(openpars.__file__).parent),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
        figures |= run(args.backend, args.scope, args.persons, args.calls, Path(tmp))
    figures["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    for name, result in figures["measured"].items():
        if name != "n":
            print(f"{name}: {result} {figures['cost_per_call'][name]}", file=sys.stderr)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
