"""A deterministic plan of synthetic arrests and their path through the workflow.

Nothing here touches the database: ``plan_arrests(n, seed)`` returns the same list for the same
arguments (one ``random.Random(seed)``, a fixed timeline in 2025, never the clock), and
``openpars.demo.seed`` replays it through the services.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from openpars.demo import people
from openpars.demo.statutes import DECLINE_REASONS, MODIFY_REASONS, OFFENCES, STATUTES, Offence
from openpars.records.enums import (
    ArrestType,
    BailType,
    ChargingOutcome,
    CustodyOutcome,
    Grade,
    InvolvementRole,
    Sex,
)
from openpars.records.schemas import (
    ArraignmentCreate,
    ArrestCreate,
    BailRecommendationCreate,
    ChargeIn,
    ChargingDecisionCreate,
    CustodyCreate,
    InvolvementIn,
    PersonIn,
    SealCreate,
)

PPD_ORI = "PAPEP0000"
# The demo's "now": the end of its timeline, a fixed instant so the same seed gives the same data.
TIMELINE_END = datetime(2025, 9, 30, 12, 0, tzinfo=UTC)
REPEAT_RATE = 0.15
# Arrests by hour of day (Philadelphia arrests peak in the evening and the small hours).
HOUR_WEIGHTS = (5, 4, 4, 3, 2, 2, 2, 3, 4, 5, 5, 6, 6, 6, 6, 7, 8, 8, 9, 9, 9, 9, 8, 6)
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


@dataclass
class PlannedInvolvement:
    """One role in a planned arrest: a new person, or ``person=None`` for one seen earlier."""

    role: InvolvementRole
    key: str
    person: PersonIn | None


@dataclass
class PlannedArrest:
    """An arrest and every workflow step it will go through (None: not reached yet)."""

    index: int
    fields: dict[str, object]
    involvements: list[PlannedInvolvement]
    charges: list[ChargeIn]
    charging: ChargingDecisionCreate | None = None
    charging_at: datetime | None = None
    bail: BailRecommendationCreate | None = None
    bail_at: datetime | None = None
    arraignment: ArraignmentCreate | None = None
    custody: CustodyCreate | None = None
    seal: SealCreate | None = None
    seal_at: datetime | None = None

    @property
    def arrested_at(self) -> datetime:
        """When the arrest happened."""
        value = self.fields["arrested_at"]
        assert isinstance(value, datetime)
        return value

    def payload(self, person_ids: dict[str, int], persons: dict[str, PersonIn]) -> ArrestCreate:
        """The intake payload: earlier persons by id when known, else described again."""
        involvements = []
        for item in self.involvements:
            if item.person is None and item.key in person_ids:
                involvements.append(InvolvementIn(role=item.role, person_id=person_ids[item.key]))
            else:
                person = item.person or persons[item.key]
                involvements.append(
                    InvolvementIn(role=item.role, person=person, create_new_person=True)
                )
        return ArrestCreate.model_validate(
            {**self.fields, "involvements": involvements, "charges": self.charges}
        )


@dataclass
class _State:
    rng: random.Random
    end: datetime
    persons: dict[str, PersonIn] = field(default_factory=dict)
    arrestees: list[str] = field(default_factory=list)
    sids: set[str] = field(default_factory=set)
    officers: list[tuple[str, str, str]] = field(default_factory=list)
    docket: int = 0
    otn_base: int = 0

    def new_key(self, person: PersonIn) -> str:
        key = f"p{len(self.persons) + 1}"
        self.persons[key] = person
        return key


@dataclass
class Plan:
    """The arrests to create and every person they mention, by key."""

    arrests: list[PlannedArrest]
    persons: dict[str, PersonIn]


def timeline_end(seed: int) -> datetime:
    """The fixed end of a seed's timeline: within the 90 days before 30 September 2025."""
    return TIMELINE_END - timedelta(days=seed % 90)


def plan_arrests(n: int, seed: int, *, repeat_rate: float = REPEAT_RATE) -> Plan:
    """Plan ``n`` arrests; the same (n, seed) always gives the same plan."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data wants reproducibility, not secrecy
    state = _State(rng=rng, end=timeline_end(seed), officers=people.officers(rng, 40))
    state.docket = 20_000 + rng.randint(0, 9_000)
    state.otn_base = rng.randint(1_000_000, 5_000_000)
    span = timedelta(days=max(7, n // 60 + 1))
    times = sorted(_arrest_time(rng, state.end - span, span) for _ in range(n))
    arrests = []
    for index, moment in enumerate(times):
        arrest = _plan_one(state, index, moment, repeat_rate)
        _plan_workflow(state, arrest)
        arrests.append(arrest)
    return Plan(arrests=arrests, persons=state.persons)


def _arrest_time(rng: random.Random, start: datetime, span: timedelta) -> datetime:
    day = rng.randrange(span.days)
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    moment = start + timedelta(days=day, hours=hour, minutes=rng.randrange(60))
    return moment.replace(second=rng.randrange(60))


def _identifiers(state: _State) -> tuple[str, str | None]:
    while True:
        sid = f"{state.rng.randrange(10**8, 10**9)}"
        if sid not in state.sids:
            state.sids.add(sid)
            break
    letters = "ABCDEFGHJKLMNPRTUVWXY"
    pair = state.rng.choice(letters) + state.rng.choice(letters)
    # The SID's tail keeps FBI numbers unique too.
    fbi = f"{state.rng.randrange(10**5, 10**6)}{pair}{sid[-2:]}"
    return sid, fbi if state.rng.random() < 0.7 else None


def _otn(number: int) -> str:
    """An OTN: a letter, eight digits, a hyphen and a check digit (sum of digits mod 10)."""
    digits = f"{number % 10**8:08d}"
    return f"N{digits}-{sum(map(int, digits)) % 10}"


def _arrestee(state: _State, day: date, repeat_rate: float) -> PlannedInvolvement:
    rng = state.rng
    if state.arrestees and rng.random() < repeat_rate:
        key = rng.choice(state.arrestees)
        return PlannedInvolvement(InvolvementRole.ARRESTEE, key, None)
    juvenile = rng.random() < 0.02
    person = people.person(
        rng,
        on=day,
        min_age=15 if juvenile else 18,
        max_age=17 if juvenile else rng.choice((25, 35, 35, 50, 68)),
        with_ids=_identifiers(state),
        alias=rng.random() < 0.1,
    )
    key = state.new_key(person)
    state.arrestees.append(key)
    return PlannedInvolvement(InvolvementRole.ARRESTEE, key, person)


def _others(
    state: _State, offence: Offence, day: date, arrestee: str, repeat_rate: float
) -> list[PlannedInvolvement]:
    rng = state.rng
    found: list[PlannedInvolvement] = []
    if not offence.victims:
        return found
    for _ in range(1 if rng.random() < 0.85 else 2):
        if repeat_rate and state.arrestees and rng.random() < 0.03:  # an arrestee, now a victim
            key = rng.choice(state.arrestees)
            if key != arrestee and all(key != f.key for f in found):
                found.append(PlannedInvolvement(InvolvementRole.VICTIM, key, None))
            continue
        minor = rng.random() < 0.05
        victim = people.person(rng, on=day, min_age=8 if minor else 18, max_age=17 if minor else 80)
        found.append(PlannedInvolvement(InvolvementRole.VICTIM, state.new_key(victim), victim))
    role = InvolvementRole.COMPLAINANT if rng.random() < 0.2 else InvolvementRole.WITNESS
    if rng.random() < offence.witness_odds:
        witness = people.person(rng, on=day, min_age=18, max_age=75)
        found.append(PlannedInvolvement(role, state.new_key(witness), witness))
    return found


def _affiant(state: _State, officer: tuple[str, str, str]) -> PlannedInvolvement:
    """The officer who swore the affidavit, a person like any other, reused across arrests."""
    key = f"officer-{officer[2]}"
    if key in state.persons:
        return PlannedInvolvement(InvolvementRole.AFFIANT, key, None)
    person = PersonIn(family_name=officer[1], given_name=officer[0], sex=Sex.UNKNOWN)
    state.persons[key] = person
    return PlannedInvolvement(InvolvementRole.AFFIANT, key, person)


def _charges(rng: random.Random, offence: Offence) -> list[ChargeIn]:
    cited = [offence.lead] + [c for c, odds in offence.extras if rng.random() < odds]
    return [_charge(c, counts=1 if rng.random() < 0.85 else rng.randint(2, 4)) for c in cited]


def _charge(citation: str, counts: int = 1) -> ChargeIn:
    statute = STATUTES[citation]
    return ChargeIn(
        statute=statute.citation,
        description=statute.description,
        grade=statute.grade,
        counts=counts,
    )


def _plan_one(state: _State, index: int, moment: datetime, repeat_rate: float) -> PlannedArrest:
    rng = state.rng
    day = moment.date()
    offence = rng.choices(OFFENCES, weights=[o.weight for o in OFFENCES])[0]
    officer = rng.choice(state.officers)
    arrest_type = rng.choices(
        (ArrestType.ON_VIEW, ArrestType.WARRANT, ArrestType.SUMMONS), weights=(64, 31, 5)
    )[0]
    arrestee = _arrestee(state, day, repeat_rate)
    involvements = [arrestee, *_others(state, offence, day, arrestee.key, repeat_rate)]
    if arrest_type is ArrestType.WARRANT:
        involvements.append(_affiant(state, rng.choice(state.officers)))
    where = people.place(rng)
    year = moment.year % 100
    fields: dict[str, object] = {
        "report_id": f"PPD-{moment.year}-{index + 1:06d}",
        "otn": _otn(state.otn_base + index),
        "incident_number": f"{year:02d}-{rng.randint(1, 39):02d}-{rng.randint(1, 99999):06d}",
        "ori": PPD_ORI,
        "arresting_officer": f"P/O {officer[0]} {officer[1]} #{officer[2]}",
        "arrested_at": moment,
        "location": where,
        "arrest_type": arrest_type,
        "narrative": offence.narrative.format(n=rng.randint(2, 6), place=where),
    }
    return PlannedArrest(index, fields, involvements, _charges(rng, offence))


def _plan_workflow(state: _State, arrest: PlannedArrest) -> None:
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
    return [_charge(lesser, charges[0].counts)] if lesser else None


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
    state: _State,
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


def _maybe_seal(state: _State, arrest: PlannedArrest, after: datetime, action: str) -> None:
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
