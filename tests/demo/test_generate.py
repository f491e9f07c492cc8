"""The demo plan: deterministic, in the past, realistic in its mix, valid for intake."""

from __future__ import annotations

import re
from collections import Counter

from openpars.demo.generate import TIMELINE_END, plan_arrests
from openpars.demo.statutes import OFFENCES, STATUTES
from openpars.records.enums import BailType, ChargingOutcome, InvolvementRole
from openpars.records.validation import STATUTE_RE


def test_same_seed_same_plan() -> None:
    first, second = plan_arrests(120, 9), plan_arrests(120, 9)
    dump = [a.payload({}, first.persons).model_dump_json() for a in first.arrests]
    assert dump == [a.payload({}, second.persons).model_dump_json() for a in second.arrests]
    other = plan_arrests(120, 10)
    assert dump != [a.payload({}, other.persons).model_dump_json() for a in other.arrests]


def test_every_citation_is_valid_and_every_offence_uses_known_statutes() -> None:
    assert len(STATUTES) >= 40
    for citation in STATUTES:
        assert STATUTE_RE.match(citation), citation
    for offence in OFFENCES:
        assert offence.lead in STATUTES
        assert all(c in STATUTES for c, _ in offence.extras)


def test_plan_mix_is_realistic() -> None:
    plan = plan_arrests(1500, 1)
    arrests = plan.arrests
    assert all(a.arrested_at <= TIMELINE_END for a in arrests)
    steps = [a.custody.at for a in arrests if a.custody] + [
        a.arraignment.arraigned_at for a in arrests if a.arraignment
    ]
    assert max(steps) <= TIMELINE_END
    repeats = sum(
        any(i.person is None and i.role is InvolvementRole.ARRESTEE for i in a.involvements)
        for a in arrests
    )
    assert 0.10 < repeats / len(arrests) < 0.20
    with_others = sum(
        any(i.role in (InvolvementRole.VICTIM, InvolvementRole.WITNESS) for i in a.involvements)
        for a in arrests
    )
    assert 0.4 < with_others / len(arrests) < 0.7
    bail = Counter(a.arraignment.bail_type for a in arrests if a.arraignment)
    total = sum(bail.values())
    assert 0.22 < bail[BailType.ROR] / total < 0.38
    assert 0.14 < bail[BailType.UNSECURED] / total < 0.27
    assert 0.30 < bail[BailType.MONETARY] / total < 0.48
    assert bail[BailType.DENIED] > 0
    assert bail[BailType.NONMONETARY] > 0
    outcomes = Counter(a.charging.outcome if a.charging else None for a in arrests)
    assert outcomes[ChargingOutcome.DECLINED] > 0
    assert outcomes[None] > 0  # some still waiting for the DA
    assert sum(a.seal is not None for a in arrests) > 0
    born_abroad = [p for p in plan.persons.values() if p.citizenship not in (None, "United States")]
    assert born_abroad
    assert all(re.match(r"^MC-51-(CR|SU)-\d{7}-2025$", a.arraignment.docket_number)
               for a in arrests if a.arraignment)  # fmt: skip
    juveniles = [a for a in arrests if a.fields.get("report_id") and a.involvements[0].person
                 and a.involvements[0].person.birth_date
                 and (a.arrested_at.date() - a.involvements[0].person.birth_date).days
                 < 18 * 365]  # fmt: skip
    assert juveniles
