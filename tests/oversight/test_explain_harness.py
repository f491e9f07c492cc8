"""The synthetic-traffic harness: legitimate use is explained, every injected misuse is not."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from openpars.audit import log
from openpars.db import Database
from openpars.identity.principal import Principal
from openpars.identity.roles import Role
from openpars.oversight.explain import Period, Rule, Rules, explain
from tests.factories import World
from tests.oversight.harness import ICE, build_traffic

OVERSEER = Principal(
    user_id=None, username="overseer", agency_id=None, agency_kind=None,
    roles=frozenset({Role.OVERSIGHT}),
)  # fmt: skip


def _all_pairs(db: Database, agreement_id: int, start: date, end: date) -> list[dict[str, object]]:
    with db.session() as session:
        log.integrate(session)
    rows: list[dict[str, object]] = []
    with db.session() as session:
        offset = 0
        while True:
            page = explain(
                session, actor=OVERSEER, rules=Rules(), offset=offset, limit=500,
                period=Period(start=start, end=end, agreement_id=agreement_id),
            )  # fmt: skip
            rows.extend(item.model_dump() for item in page.items)
            offset += len(page.items)
            if offset >= page.total:
                return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_legitimate_traffic_is_explained_and_misuse_is_not(
    db: Database, world: World, seed: int
) -> None:
    traffic = build_traffic(db, world, seed=seed)
    pairs = []
    for agreement_id in traffic.agreements.values():
        pairs += _all_pairs(db, agreement_id, traffic.start.date(), traffic.end.date())
    by_pair = {(p["entry_id"], p["person_id"]): p for p in pairs}
    legit = [p for p in pairs if p["entry_id"] in traffic.legit]
    explained = [p for p in legit if p["explained"]]
    assert len(legit) > 100
    share = len(explained) / len(legit)
    assert share >= 0.95, Counter(str(p["code"]) for p in legit)
    rules_used = Counter(str(p["code"]) for p in explained)
    assert set(rules_used) == {r.value for r in Rule}, rules_used
    wrong = {
        pair: (expected, by_pair[pair]["code"] if pair in by_pair else "missing")
        for pair, expected in traffic.misuse.items()
        if pair not in by_pair or by_pair[pair]["code"] != expected
    }
    assert not wrong, wrong
    reasons = Counter(traffic.misuse.values())
    assert {"no_case_cited", "case_not_involving_person", "never_charged",
            "charges_declined_or_withdrawn", "bulk_or_enumerating"} <= set(reasons)  # fmt: skip
    assert ICE in traffic.agreements
