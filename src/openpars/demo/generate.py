"""A deterministic plan of synthetic arrests and their path through the workflow.

Nothing here touches the database: ``plan_arrests(n, seed)`` returns the same list for the same
arguments (one ``random.Random(seed)``, a fixed timeline in 2025, never the clock), and
``openpars.demo.seed`` replays it through the services.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from openpars.demo import people
from openpars.demo.plan import Plan, PlannedArrest, PlannedInvolvement, PlanState, charge
from openpars.demo.statutes import OFFENCES, Offence
from openpars.demo.workflow import plan_workflow
from openpars.records.enums import ArrestType, InvolvementRole, Sex
from openpars.records.schemas import ChargeIn, PersonIn

PPD_ORI = "PAPEP0000"
# The demo's "now": the end of its timeline, a fixed instant so the same seed gives the same data.
TIMELINE_END = datetime(2025, 9, 30, 12, 0, tzinfo=UTC)
REPEAT_RATE = 0.15
# Arrests by hour of day (Philadelphia arrests peak in the evening and the small hours).
HOUR_WEIGHTS = (5, 4, 4, 3, 2, 2, 2, 3, 4, 5, 5, 6, 6, 6, 6, 7, 8, 8, 9, 9, 9, 9, 8, 6)


def timeline_end(seed: int) -> datetime:
    """The fixed end of a seed's timeline: within the 90 days before 30 September 2025."""
    return TIMELINE_END - timedelta(days=seed % 90)


def plan_arrests(n: int, seed: int, *, repeat_rate: float = REPEAT_RATE) -> Plan:
    """Plan ``n`` arrests; the same (n, seed) always gives the same plan."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data wants reproducibility, not secrecy
    state = PlanState(rng=rng, end=timeline_end(seed), officers=people.officers(rng, 40))
    state.docket = 20_000 + rng.randint(0, 9_000)
    state.otn_base = rng.randint(1_000_000, 5_000_000)
    span = timedelta(days=max(7, n // 60 + 1))
    times = sorted(_arrest_time(rng, state.end - span, span) for _ in range(n))
    arrests = []
    for index, moment in enumerate(times):
        arrest = _plan_one(state, index, moment, repeat_rate)
        plan_workflow(state, arrest)
        arrests.append(arrest)
    return Plan(arrests=arrests, persons=state.persons)


def _arrest_time(rng: random.Random, start: datetime, span: timedelta) -> datetime:
    day = rng.randrange(span.days)
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    moment = start + timedelta(days=day, hours=hour, minutes=rng.randrange(60))
    return moment.replace(second=rng.randrange(60))


def _identifiers(state: PlanState) -> tuple[str, str | None]:
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


def _arrestee(state: PlanState, day: date, repeat_rate: float) -> PlannedInvolvement:
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
    state: PlanState, offence: Offence, day: date, arrestee: str, repeat_rate: float
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


def _affiant(state: PlanState, officer: tuple[str, str, str]) -> PlannedInvolvement:
    """The officer who swore the affidavit, a person like any other, reused across arrests."""
    key = f"officer-{officer[2]}"
    if key in state.persons:
        return PlannedInvolvement(InvolvementRole.AFFIANT, key, None)
    person = PersonIn(family_name=officer[1], given_name=officer[0], sex=Sex.UNKNOWN)
    state.persons[key] = person
    return PlannedInvolvement(InvolvementRole.AFFIANT, key, person)


def _charges(rng: random.Random, offence: Offence) -> list[ChargeIn]:
    cited = [offence.lead] + [c for c, odds in offence.extras if rng.random() < odds]
    return [charge(c, counts=1 if rng.random() < 0.85 else rng.randint(2, 4)) for c in cited]


def _plan_one(state: PlanState, index: int, moment: datetime, repeat_rate: float) -> PlannedArrest:
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
