"""How a planned arrest moves through the workflow: the DA's decision, bail, arraignment, custody.

Each step is placed after the one before it and only if it falls before the end of the timeline,
so the newest arrests are still waiting, as on a live system.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from openpars.demo import people
from openpars.demo.plan import PlannedArrest, PlanState, charge
from openpars.demo.statutes import DECLINE_REASONS, MODIFY_REASONS
from openpars.records.enums import BailType, ChargingOutcome, CustodyOutcome, Grade, Sex
from openpars.records.schemas import (
    ArraignmentCreate,
    BailRecommendationCreate,
    ChargeIn,
    ChargingDecisionCreate,
    CustodyCreate,
    SealCreate,
)

BAIL_TYPES = (
    BailType.ROR,
    BailType.UNSECURED,
    BailType.MONETARY,
    BailType.NONMONETARY,
    BailType.DENIED,
)
# Bail type weights by how serious the lead charge is (the mix overall: about 30/20/40/7/3).
BAIL_WEIGHTS = {
    "felony1": (8, 12, 64, 6, 10),
    "felony": (22, 18, 52, 6, 2),
    "minor": (44, 26, 20, 9, 1),
}
LESSER = {
    "18 § 3701(a)(1)": "18 § 3701(a)(1)(v)",
    "18 § 2702(a)(1)": "18 § 2702(a)(4)",
    "18 § 3502(a)(1)": "18 § 3502(a)(4)",
    "35 § 780-113(a)(30)": "35 § 780-113(a)(16)",
    "18 § 2701(a)(1)": "18 § 2709(a)(1)",
}


def plan_workflow(state: PlanState, arrest: PlannedArrest) -> None:
    """Walk the arrest forward as far as the timeline allows."""
    rng = state.rng
    at = arrest.arrested_at + timedelta(minutes=rng.randint(60, 480))
    if at > state.end:
        return
    arrest.charging, arrest.charging_at = _decision(rng, arrest.charges), at
    if arrest.charging.outcome is ChargingOutcome.DECLINED:
        _maybe_seal(state, arrest, at, "expunge")
        return
    lead = (arrest.charging.charges or arrest.charges)[0]
    bail_type = rng.choices(BAIL_TYPES, weights=BAIL_WEIGHTS[_seriousness(lead.grade)])[0]
    amount = _bail_amount(rng, bail_type, lead.grade)
    bail_at = at + timedelta(minutes=rng.randint(30, 150))
    if rng.random() < 0.9 and bail_at <= state.end:
        recommended = bail_type if rng.random() < 0.7 else _more_lenient(bail_type)
        arrest.bail = BailRecommendationCreate(
            bail_type=recommended,
            amount=_bail_amount(rng, recommended, lead.grade),
            conditions=_conditions(rng, recommended),
        )
        arrest.bail_at = bail_at
    arraigned_at = max(bail_at, arrest.arrested_at + timedelta(hours=rng.randint(4, 20)))
    if arraigned_at > state.end:
        return
    arrest.arraignment = _arraignment(state, arrest, arraigned_at, bail_type, amount)
    custody_at = arraigned_at + timedelta(minutes=rng.randint(60, 480))
    if custody_at > state.end or rng.random() < 0.05:
        return
    arrest.custody = _custody(rng, arrest, bail_type, amount, custody_at)
    if arrest.custody.outcome is CustodyOutcome.RELEASED:
        _maybe_seal(state, arrest, custody_at, "seal")


def _decision(rng: random.Random, charges: list[ChargeIn]) -> ChargingDecisionCreate:
    minor = charges[0].grade in (Grade.S, Grade.M3)
    roll = rng.random()
    if roll < (0.15 if minor else 0.05):
        return ChargingDecisionCreate(
            outcome=ChargingOutcome.DECLINED, reason=rng.choice(DECLINE_REASONS)
        )
    if roll < (0.27 if minor else 0.17):
        modified = _modified(charges)
        if modified is not None:
            return ChargingDecisionCreate(
                outcome=ChargingOutcome.MODIFIED,
                reason=rng.choice(MODIFY_REASONS),
                charges=modified,
            )
    return ChargingDecisionCreate(outcome=ChargingOutcome.APPROVED)


def _modified(charges: list[ChargeIn]) -> list[ChargeIn] | None:
    """The DA's version: a companion charge withdrawn, or the lead graded down."""
    if len(charges) > 1:
        return charges[:-1]
    lesser = LESSER.get(charges[0].statute)
    return [charge(lesser, charges[0].counts)] if lesser else None


def _seriousness(grade: Grade) -> str:
    if grade is Grade.F1:
        return "felony1"
    return "felony" if grade in (Grade.F2, Grade.F3) else "minor"


def _bail_amount(rng: random.Random, bail_type: BailType, grade: Grade) -> Decimal | None:
    if bail_type not in (BailType.MONETARY, BailType.UNSECURED):
        return None
    low, high = {"felony1": (25, 500), "felony": (5, 100), "minor": (1, 25)}[_seriousness(grade)]
    return Decimal(rng.randint(low, high) * 1000)


def _more_lenient(bail_type: BailType) -> BailType:
    order = (
        BailType.DENIED,
        BailType.MONETARY,
        BailType.NONMONETARY,
        BailType.UNSECURED,
        BailType.ROR,
    )
    return order[min(order.index(bail_type) + 1, len(order) - 1)]


def _conditions(rng: random.Random, bail_type: BailType) -> str | None:
    if bail_type is not BailType.NONMONETARY and rng.random() < 0.7:
        return None
    return rng.choice(
        (
            "stay away from the complainant",
            "report to pretrial services weekly",
            "electronic monitoring; curfew 9 p.m. to 6 a.m.",
            "surrender passport; do not leave Philadelphia County",
            "drug treatment assessment within 7 days",
        )
    )


def _arraignment(
    state: PlanState,
    arrest: PlannedArrest,
    at: datetime,
    bail_type: BailType,
    amount: Decimal | None,
) -> ArraignmentCreate:
    rng = state.rng
    state.docket += 1
    lead = (arrest.charging.charges if arrest.charging else None) or arrest.charges
    case_type = "SU" if all(c.grade is Grade.S for c in lead) else "CR"
    return ArraignmentCreate(
        arraigned_at=at,
        magistrate=rng.choice(people.MAGISTRATES),
        bail_type=bail_type,
        bail_amount=amount,
        conditions=_conditions(rng, bail_type),
        preliminary_hearing_date=at.date() + timedelta(days=rng.randint(10, 21)),
        docket_number=f"MC-51-{case_type}-{state.docket:07d}-{at.year}",
    )


def _custody(
    rng: random.Random,
    arrest: PlannedArrest,
    bail_type: BailType,
    amount: Decimal | None,
    at: datetime,
) -> CustodyCreate:
    posted = (
        bail_type is BailType.MONETARY
        and amount is not None
        and (amount <= 10_000 or rng.random() < 0.3)
    )
    if bail_type in (BailType.ROR, BailType.UNSECURED, BailType.NONMONETARY) or posted:
        return CustodyCreate(outcome=CustodyOutcome.RELEASED, at=at)
    arrestee = arrest.involvements[0].person
    born = arrestee.birth_date if arrestee is not None else None
    if born is not None and (at.date() - born).days < 18 * 365:
        facility = people.JUVENILE_CENTRE
    elif arrestee is not None and arrestee.sex is Sex.FEMALE:
        facility = people.WOMENS_JAIL
    else:
        facility = rng.choice(people.JAILS)
    return CustodyCreate(outcome=CustodyOutcome.COMMITTED, at=at, facility=facility)


def _maybe_seal(state: PlanState, arrest: PlannedArrest, after: datetime, action: str) -> None:
    """A few finished cases are sealed or expunged by court order."""
    rng = state.rng
    at = after + timedelta(days=rng.randint(1, 30))
    if rng.random() >= 0.06 or at > state.end:
        return
    arrest.seal = SealCreate.model_validate(
        {
            "action": action,
            "order_reference": f"CP-51-MD-{rng.randint(1, 9999):07d}-{at.year}",
            "reason": "petition granted under 18 Pa.C.S. § 9122"
            if action == "expunge"
            else "limited access order under 18 Pa.C.S. § 9122.1",
        }
    )
    arrest.seal_at = at
