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


def test_a_cycle_explains_once_and_every_report_reads_the_same_figures(
    db: Database, world: World
) -> None:
    """The renewal reports of a cycle read the pairs it explained once (``materialise``): the
    same document, figure for figure and week for week, as explaining each agreement again;
    and a cycle that does not cover the report (other rules, another agreement, a longer
    period) is refused rather than read."""
    from dataclasses import replace
    from datetime import UTC, datetime, time, timedelta

    from openpars.agreements.models import Agreement
    from openpars.db import utcnow
    from openpars.oversight.explain import materialise
    from openpars.oversight.report import build_report

    traffic = build_traffic(db, world, seed=4)
    with db.session() as session:
        log.integrate(session)
    first, last = traffic.start.date(), min(traffic.end.date(), utcnow().date())
    start = datetime.combine(first, time.min, UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, UTC)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ids = sorted(traffic.agreements.values())
    with db.session() as session:
        cycle = materialise(session, start=start, end=end, agreement_ids=ids, rules=Rules())
        compared = 0
        for agreement_id in ids:
            agreement = session.get(Agreement, agreement_id)
            assert agreement is not None
            period = Period(start=first, end=last, agreement_id=agreement_id)
            plain = build_report(session, agreement=agreement, period=period, rules=Rules(),
                                 now=now)  # fmt: skip
            shared = build_report(session, agreement=agreement, period=period, rules=Rules(),
                                  now=now, cycle=cycle)  # fmt: skip
            assert shared.model_dump() == plain.model_dump()
            compared += plain.figure("pairs").value
        assert compared > 100
        agreement = session.get(Agreement, ids[0])
        assert agreement is not None
        period = Period(start=first, end=last, agreement_id=ids[0])
        other_rules = replace(Rules(), bulk_results=3)
        with pytest.raises(ValueError, match="other rules"):
            build_report(session, agreement=agreement, period=period, rules=other_rules,
                         cycle=cycle)  # fmt: skip
        for narrower in (
            replace(cycle, agreement_ids=frozenset(ids[1:])),
            replace(cycle, start=start + timedelta(days=1)),
            replace(cycle, end=end - timedelta(days=1)),
        ):
            with pytest.raises(ValueError, match="not this report"):
                build_report(session, agreement=agreement, period=period, rules=Rules(),
                             cycle=narrower)  # fmt: skip
        cycle.drop(session)
        # Dropped: a second cycle in the same connection starts afresh.
        again = materialise(session, start=start, end=end, agreement_ids=ids, rules=Rules())
        again.drop(session)
