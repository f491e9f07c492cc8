"""Synthetic traffic for oversight: real case data, real external queries, injected misuse.

``build_traffic(db, world, seed=...)`` writes, through the real services, a small city's arrests
(intake by the police, charging decisions by the DA, arraignments by the court) and then eight
weeks of external queries through the real read services (``access.service``), each in its own
transaction as a request would be:

* legitimate work: an agency working its own cases by OTN or docket number (the arrest, then
  the arrestee, a name search under the same case, which the follow-up rule explains), and
  warrant checks by SID under the ``warrant-check`` purpose;
* injected misuse, each pair with the reason it must get: no case cited; a case of someone else;
  persons never charged (arrests awaiting the DA); persons whose charges were declined (found by
  name through another arrest); foreign-born persons never charged, looked up by name thinly over
  many users and weeks; and an enumeration sweep of SIDs;
* injected misuse for every detector (``Traffic.scenarios``, each incident's entries by detector
  name): a volume burst and off-hours use by steady users (who check warrants on weekdays in
  business hours, so they have a pattern to break), wildcard name searches, a walk over
  consecutive person ids, a day of zero-hit searches, a date-range sweep, one case cited for
  many people, one person looked up by many users in a day, users looking up their own surname
  and their own address, a departed (disabled) account and a long-dormant one querying; the
  foreign-born persons never charged are the incident of the skew and never-charged detectors.
  Background arrestees (mostly born locally, never looked up) make the population the skew
  detector compares with.

The seed decides every choice; the same seed gives the same traffic.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from openpars.access import service as reads
from openpars.access.schemas import ArrestQuery, PersonQuery, ReadContext
from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.models import AuditEntry
from openpars.audit.service import append
from openpars.db import Database, utcnow
from openpars.errors import Forbidden
from openpars.identity import service as identity
from openpars.identity.models import User
from openpars.identity.principal import SYSTEM, Principal
from openpars.identity.roles import Role
from openpars.identity.schemas import UserProfile
from openpars.records import workflow
from openpars.records.intake import submit_arrest
from openpars.records.schemas import ArraignmentCreate, ArrestCreate, ChargingDecisionCreate
from tests.access.agreements import activate, default_scope
from tests.factories import World, add_user
from tests.records.factories import arrest_payload, person_payload

ICE = "Immigration and Customs Enforcement"
FBI = "Federal Bureau of Investigation"
INVESTIGATION = "criminal-investigation"
WARRANT = "warrant-check"
FOREIGN = [("Santo Domingo, DO", "DO"), ("Ho Chi Minh City, VN", "VN"), ("Lagos, NG", "NG")]


@dataclass(frozen=True, slots=True)
class Case:
    """One arrest and its arrestee, as the harness made them."""

    arrest_id: int
    otn: str
    docket: str | None
    person_id: int
    sid: str
    name: str
    status: str  # filed | pending (never charged) | declined
    address: str = ""


@dataclass
class Traffic:
    """What was generated: the period, the legitimate entries and each misuse pair's reason."""

    start: datetime
    end: datetime
    agreements: dict[str, int]
    legit: set[int] = field(default_factory=set)
    misuse: dict[tuple[int, int], str] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    # Injected misuse by detector name: each incident's entries (one flag must name one).
    scenarios: dict[str, list[set[int]]] = field(default_factory=dict)
    # Every entry of injected misuse, whatever it was injected for.
    injected: set[int] = field(default_factory=set)


class _Builder:
    def __init__(self, db: Database, world: World, seed: int) -> None:
        self.db, self.world, self.rng = db, world, random.Random(seed)
        self.seed = seed
        # Traffic runs over eight whole weeks from a Monday's midnight (UTC) thirteen weeks
        # before this week's; records are written the Saturday before. Anchored to the calendar,
        # not to the moment the test runs: every draw of the seed lands on the same weekday and
        # hour whatever the clock says (a start at the wall clock's time of day once carried
        # seed 1's walk over consecutive person ids across a midnight, split it into two days
        # and hid it from the sequential detector).
        today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        monday = today - timedelta(days=today.weekday())
        self.start = monday - timedelta(weeks=13)
        self.t0 = self.start - timedelta(days=2)
        self.end = self.start + timedelta(weeks=8)
        self.serial = seed * 10_000

    # -- world ----------------------------------------------------------------------------

    def users(self) -> dict[str, list[Principal]]:
        with self.db.session() as session:
            for agency, prefix, n in ((ICE, "ice", 10), (FBI, "fbi", 4)):
                for i in range(n):
                    add_user(session, self.world, f"{prefix}-{i}", agency, [Role.EXTERNAL_QUERY])
            add_user(session, self.world, "ice-sweep", ICE, [Role.EXTERNAL_QUERY])
            for name, agency in SPECIAL.items():
                add_user(session, self.world, name, agency, [Role.EXTERNAL_QUERY])
        p = self.world.principals
        with self.db.session() as session:
            for n, name in enumerate(sorted(p)):
                if name.startswith(("ice-", "fbi-")):
                    # Surnames and addresses no person has: the own-name detector must not
                    # fire on them (precision), only on the two injected below.
                    profile = UserProfile(
                        family_name=f"Userhasnosuchname{n}", address=f"{n} Nowhere Ln"
                    )
                    identity.set_user_profile(
                        session, actor=SYSTEM, user_id=p[name].user_id or 0, data=profile
                    )
            # A long-dormant account: created long before its first read.
            dormant = session.get(User, p["ice-dormant"].user_id)
            assert dormant is not None
            dormant.created_at = self.start - timedelta(days=70)
        return {
            "ice": [p[f"ice-{i}"] for i in range(10)],
            "fbi": [p[f"fbi-{i}"] for i in range(4)],
            "sweep": [p["ice-sweep"]],
            **{name: [p[name]] for name in SPECIAL},
        }

    def agreements(self) -> dict[str, int]:
        purposes = [{"purpose": INVESTIGATION}, {"purpose": WARRANT}]
        ids = {}
        with self.db.session() as session:
            for agency in (ICE, FBI):
                agreement = activate(
                    session, self.world, grantee=agency, scope=default_scope(purposes=purposes)
                )
                ids[agency] = agreement.id
        return ids

    # -- case data through intake, charging and arraignment ---------------------------------

    def _next(self) -> int:
        self.serial += 1
        return self.serial

    def _intake(
        self, person: dict[str, Any] | None = None, person_id: int | None = None, solo: bool = False
    ) -> Any:
        n = self._next()
        arrestee: dict[str, Any] = (
            {"role": "arrestee", "person_id": person_id}
            if person_id is not None
            else {"role": "arrestee", "person": person}
        )
        payload = arrest_payload(
            report_id=f"PPD-H-{n:08d}",
            otn=f"H{n:08d}-{n % 10}",
            incident_number=f"2026{n:08d}",
            involvements=[arrestee]
            if solo
            else [arrestee, {"role": "witness", "person": person_payload(n, offset=2)}],
        )
        with self.db.session() as session:
            created = submit_arrest(
                session,
                actor=self.world.principals["intake"],
                data=ArrestCreate.model_validate(payload),
                now=self.t0,
            )
        return created, payload

    def _person(self, foreign: bool, name: tuple[str, str] | None = None) -> dict[str, Any]:
        n = self._next()
        place, citizenship = self.rng.choice(FOREIGN) if foreign else ("Philadelphia, PA", "US")
        named = {"family_name": name[0], "given_name": name[1]} if name else {}
        return person_payload(
            n,
            **named,
            sid=f"{n % 1000:03d}-{n // 1000 % 1000:03d}-{n % 97:02d}",
            fbi_number=f"{n:08d}H",
            place_of_birth=place,
            citizenship=citizenship,
            # Drawn, not rotated with the serial: the serial's step differs between kinds of
            # case, which would tie race and sex to who is looked up (a skew nobody injected).
            sex=self.rng.choice("MF"),
            race=self.rng.choice("BWAWBU"),
        )

    def _decide(self, arrest_id: int, outcome: str, at: datetime) -> None:
        body: dict[str, Any] = {"outcome": outcome}
        if outcome == "declined":
            body["reason"] = "insufficient evidence"
        with self.db.session() as session:
            workflow.decide_charges(
                session,
                actor=self.world.principals["charging"],
                arrest_id=arrest_id,
                data=ChargingDecisionCreate.model_validate(body),
                now=at,
            )

    def _arraign(self, arrest_id: int, arrested_at: datetime, docket: str) -> None:
        data = ArraignmentCreate.model_validate(
            {
                "arraigned_at": (arrested_at + timedelta(hours=6)).isoformat(),
                "magistrate": "Arraignment Court Magistrate",
                "bail_type": "ror",
                "docket_number": docket,
            }
        )
        with self.db.session() as session:
            workflow.arraign(
                session,
                actor=self.world.principals["court"],
                arrest_id=arrest_id,
                data=data,
                now=self.t0 + timedelta(hours=2),
            )

    def _case(
        self, foreign: bool, status: str, name: tuple[str, str] | None = None, solo: bool = False
    ) -> Case:
        person = self._person(foreign, name)
        created, payload = self._intake(person, solo=solo)
        arrest_id, person_id = created.arrest_id, created.person_ids[0]
        docket = None
        if status == "filed":
            self._decide(arrest_id, "approved", self.t0 + timedelta(hours=1))
            if self.rng.random() < 0.5:
                docket = f"MC-51-CR-{self._next():07d}-2026"
                arrested = datetime.fromisoformat(payload["arrested_at"])
                self._arraign(arrest_id, arrested, docket)
        elif status == "declined":
            # Declined on one arrest, visible through a second one still awaiting the DA.
            self._decide(arrest_id, "declined", self.t0 + timedelta(hours=1))
            created, payload = self._intake(person_id=person_id)
            arrest_id = created.arrest_id
        name = f"{person['family_name']} {person['given_name']}"
        return Case(
            arrest_id, payload["otn"], docket, person_id, person["sid"], name, status,
            person["address"],
        )  # fmt: skip

    def cases(self) -> dict[str, list[Case]]:
        made: dict[str, list[Case]] = {
            "filed": [], "pending": [], "declined": [], "foreign": [], "namesakes": []
        }  # fmt: skip
        for _ in range(36):
            made["filed"].append(self._case(self.rng.random() < 0.3, "filed"))
        # Another charged person of the same name as some: a name search under one's case
        # returns both, and the follow-up rule explains the second.
        for case in self.rng.sample(made["filed"], 6):
            family, given = case.name.split(" ", 1)
            made["namesakes"].append(self._case(False, "filed", (family, given)))
        for _ in range(8):
            made["pending"].append(self._case(False, "pending"))
        for _ in range(4):
            made["declined"].append(self._case(False, "declined"))
        for _ in range(FOREIGN_NEVER_CHARGED):
            made["foreign"].append(self._case(True, "pending"))
        # Persons with consecutive ids (one person per arrest, made in a row), never charged.
        made["sequential"] = [self._case(False, "pending", solo=True) for _ in range(6)]
        # The arrestee population nobody looks up: mostly born locally.
        made["background"] = [
            self._case(self.rng.random() < 0.05, "pending", solo=True) for _ in range(BACKGROUND)
        ]
        return made


def _last_entry(db: Database, user_id: int | None) -> tuple[int, list[int]]:
    with db.session() as session:
        entry = session.execute(
            select(func.max(AuditEntry.id)).where(AuditEntry.user_id == user_id)
        ).scalar_one()
        persons = session.execute(
            select(AuditEntry.person_ids).where(AuditEntry.id == entry)
        ).scalar_one()
        if isinstance(persons, str):  # SQLite keeps the ids as the text of a JSON array
            persons = json.loads(persons)
        return int(entry), [int(p) for p in persons or []]


@dataclass(frozen=True, slots=True)
class _Planned:
    at: datetime
    seq: int
    who: Principal
    call: Callable[..., Any]
    kw: dict[str, Any]
    legit: bool
    reason: str | None  # misuse only: None means each person's reason follows their status
    # (detector, incident) the access is injected for; judged: checked by the explanation test
    tag: tuple[str, str] | None = None
    judged: bool = True


class _Traffic:
    """Plans the queries, then sends them in time order (rate limits count the log by time)."""

    def __init__(self, builder: _Builder, out: Traffic) -> None:
        self.b, self.out, self.rng = builder, out, builder.rng
        self.plan: list[_Planned] = []
        self.incidents: dict[str, dict[str, set[int]]] = {}
        self.own: tuple[Case, Case] | None = None

    def add(
        self, who: Principal, at: datetime, call: Callable[..., Any], *, legit: bool,
        reason: str | None = None, tag: tuple[str, str] | None = None, judged: bool = True,
        **kw: Any,
    ) -> None:  # fmt: skip
        self.plan.append(_Planned(at, len(self.plan), who, call, kw, legit, reason, tag, judged))

    def inject(self, detector: str, incident: str, who: Principal, at: datetime,
               call: Callable[..., Any], **kw: Any) -> None:  # fmt: skip
        """An access injected for a detector only (the explanation test does not judge it)."""
        self.add(who, at, call, legit=False, tag=(detector, incident), judged=False, **kw)

    def moment(self) -> datetime:
        seconds = self.rng.randrange(int((self.b.end - self.b.start).total_seconds()) - 7200)
        return self.b.start + timedelta(seconds=seconds)

    def legit(self, who: Principal, case: Case) -> None:
        """Working one's own case: the arrest, its arrestee, a name search, all under the case."""
        at = self.moment()
        ref = case.docket if case.docket and self.rng.random() < 0.5 else case.otn
        context = ReadContext(purpose=INVESTIGATION, case_number=ref)
        query = ArrestQuery(docket_number=ref) if ref == case.docket else ArrestQuery(otn=ref)
        self.add(who, at, reads.search_arrests, legit=True, query=query, context=context)
        steps: list[tuple[Callable[..., Any], dict[str, Any]]] = [
            (reads.get_arrest, {"arrest_id": case.arrest_id}),
            (reads.get_person, {"person_id": case.person_id}),
            (reads.search_persons, {"query": PersonQuery(name=case.name)}),
        ]
        for n, (call, kw) in enumerate(steps, start=1):
            self.add(who, at + timedelta(minutes=3 * n), call, legit=True, context=context, **kw)

    def warrant(self, who: Principal, case: Case) -> None:
        context = ReadContext(purpose=WARRANT)
        self.add(who, self.moment(), reads.search_persons, legit=True,
                 query=PersonQuery(sid=case.sid), context=context)  # fmt: skip

    def misuse(self, who: Principal, at: datetime, reason: str | None, **kw: Any) -> None:
        """One injected access; ``reason`` None: each person's reason follows their status."""
        call = kw.pop("call")
        self.add(who, at, call, legit=False, reason=reason, **kw)

    def run(self) -> None:
        for planned in sorted(self.plan, key=lambda p: (p.at, p.seq)):
            with self.b.db.session(external=True) as session:
                planned.call(session, principal=planned.who, now=planned.at, **planned.kw)
            entry, persons = _last_entry(self.b.db, planned.who.user_id)
            if planned.tag is not None:
                detector, incident = planned.tag
                self.incidents.setdefault(detector, {}).setdefault(incident, set()).add(entry)
            if planned.legit:
                self.out.legit.add(entry)
                continue
            self.out.injected.add(entry)
            if not planned.judged:
                continue
            assert persons, "an injected access must return someone to be judged"
            for person in persons:
                self.out.misuse[(entry, person)] = (
                    planned.reason
                    or {
                        "pending": "never_charged",
                        "declined": "charges_declined_or_withdrawn",
                        "filed": "no_case_cited",
                    }[self.out.status[person]]
                )


def build_traffic(db: Database, world: World, *, seed: int) -> Traffic:
    """Case data and eight weeks of legitimate and injected external queries."""
    builder = _Builder(db, world, seed)
    users = builder.users()
    out = Traffic(builder.start, builder.end, builder.agreements())
    cases = builder.cases()
    for group, rows in cases.items():
        for case in rows:
            out.status[case.person_id] = {"foreign": "pending", "namesakes": "filed"}.get(
                group, group
            )
    traffic = _Traffic(builder, out)
    _legitimate(traffic, users, cases["filed"])
    _steady(traffic, users, cases["filed"])
    _injected(traffic, users, cases)
    _injected_for_detectors(traffic, users, cases)
    set_profiles(db, world, traffic)
    traffic.run()
    out.scenarios = {d: list(by.values()) for d, by in traffic.incidents.items()}
    return out


def _legitimate(t: _Traffic, users: dict[str, list[Principal]], filed: list[Case]) -> None:
    fbi_cases, ice_cases = filed[:18], filed[18:]
    for agency, own in (("fbi", fbi_cases), ("ice", ice_cases)):
        for case in own:
            t.legit(t.rng.choice(users[agency]), case)
        for case in t.rng.sample(own, 8):
            t.warrant(t.rng.choice(users[agency]), case)


def _injected(t: _Traffic, users: dict[str, list[Principal]], cases: dict[str, list[Case]]) -> None:
    ice = users["ice"]
    filed = cases["filed"]
    fbi_cases = filed[:18]  # cases no ICE user works: citing one is citing someone else's case
    investigate = ReadContext(purpose=INVESTIGATION)
    for case in t.rng.sample(filed, 6):  # no case cited
        t.misuse(t.rng.choice(ice), t.moment(), "no_case_cited", call=reads.search_persons,
                 query=PersonQuery(sid=case.sid), context=investigate)  # fmt: skip
    for case in t.rng.sample(fbi_cases, 6):  # a case of someone else
        other = t.rng.choice([c for c in filed if c.person_id != case.person_id])
        context = ReadContext(purpose=INVESTIGATION, case_number=case.otn)
        t.misuse(t.rng.choice(ice), t.moment(), "case_not_involving_person",
                 call=reads.get_person, person_id=other.person_id, context=context)  # fmt: skip
    for case in cases["pending"]:  # never charged, even with their own arrest cited
        context = ReadContext(purpose=INVESTIGATION, case_number=case.otn)
        t.misuse(t.rng.choice(ice), t.moment(), "never_charged", call=reads.search_persons,
                 query=PersonQuery(sid=case.sid), context=context)  # fmt: skip
    for case in cases["declined"]:  # found by name through another arrest
        t.misuse(t.rng.choice(ice), t.moment(), None, call=reads.search_persons,
                 query=PersonQuery(name=case.name), context=investigate)  # fmt: skip
    # Foreign-born, never charged: thinly, one user and one week each. The incident of the
    # skew and never-charged detectors (the agency's aggregate, not any one user's).
    for week, case in enumerate(cases["foreign"]):
        at = t.b.start + timedelta(weeks=week % 8, hours=t.rng.randrange(1, 160))
        t.add(ice[week % len(ice)], at, reads.search_persons, legit=False, reason=None,
              tag=("foreign_never_charged", "ice"), query=PersonQuery(name=case.name),
              context=investigate)  # fmt: skip
    # An enumeration sweep: 24 SIDs in 24 minutes, each citing the person's own arrest.
    at = t.moment()
    for n, case in enumerate(sorted(filed, key=lambda c: c.sid)[:24]):
        context = ReadContext(purpose=INVESTIGATION, case_number=case.otn)
        query = PersonQuery(sid=case.sid)
        t.misuse(users["sweep"][0], at + timedelta(minutes=n), "bulk_or_enumerating",
                 call=reads.search_persons, query=query, context=context)  # fmt: skip


# Users with one part each in the injected misuse (beyond ice-0..9, fbi-0..3 and ice-sweep).
SPECIAL = {
    "ice-steady": ICE, "fbi-steady": FBI, "ice-seq": ICE, "ice-fish": ICE, "ice-dates": ICE,
    "ice-kin": ICE, "ice-home": ICE, "ice-departed": ICE, "ice-dormant": ICE,
}  # fmt: skip
FOREIGN_NEVER_CHARGED = 36
BACKGROUND = 150


def _work_moment(t: _Traffic, day: int) -> datetime:
    """A moment in business hours (13:00-20:59 UTC, 9 to 5 in Philadelphia) of a day."""
    midnight = (t.b.start + timedelta(days=day)).replace(hour=0, minute=0, second=0)
    return midnight + timedelta(hours=13, seconds=t.rng.randrange(8 * 3600))


def _steady(t: _Traffic, users: dict[str, list[Principal]], filed: list[Case]) -> None:
    """Two users checking warrants on weekdays in business hours: a pattern to break."""
    for name, own in (("ice-steady", filed[18:]), ("fbi-steady", filed[:18])):
        for day in range(54):
            if (t.b.start + timedelta(days=day)).weekday() >= 5:
                continue
            for _ in range(2):
                case = t.rng.choice(own)
                t.add(
                    users[name][0],
                    _work_moment(t, day),
                    reads.search_persons,
                    legit=True,
                    query=PersonQuery(sid=case.sid),
                    context=ReadContext(purpose=WARRANT),
                )


def _weekday(t: _Traffic, first: int) -> int:
    """The first weekday on or after day ``first`` of the traffic."""
    day = first
    while (t.b.start + timedelta(days=day)).weekday() >= 5:
        day += 1
    return day


def _injected_for_detectors(
    t: _Traffic, users: dict[str, list[Principal]], cases: dict[str, list[Case]]
) -> None:
    ice, filed = users["ice"], cases["filed"]
    warrant = ReadContext(purpose=WARRANT)
    investigate = ReadContext(purpose=INVESTIGATION)
    # A volume burst: 30 warrant checks in one working day, in business hours.
    day = _weekday(t, 40 + t.rng.randrange(5))
    for _ in range(30):
        case = t.rng.choice(filed)
        t.inject(
            "volume_burst",
            "burst",
            users["ice-steady"][0],
            _work_moment(t, day),
            reads.search_persons,
            query=PersonQuery(sid=case.sid),
            context=warrant,
        )
    # Off hours: two nights of four checks at 02:00-03:59 UTC.
    for night in (_weekday(t, 36), _weekday(t, 47)):
        midnight = (t.b.start + timedelta(days=night)).replace(hour=2, minute=0, second=0)
        for _ in range(4):
            at = midnight + timedelta(seconds=t.rng.randrange(2 * 3600))
            case = t.rng.choice(filed[:18])
            t.inject(
                "off_hours",
                f"night-{night}",
                users["fbi-steady"][0],
                at,
                reads.search_persons,
                query=PersonQuery(sid=case.sid),
                context=warrant,
            )
    # Wildcards: name prefixes of two letters.
    who = t.rng.choice(ice)
    for prefix in ("Zq", "Xv", "Qj"):
        t.inject("enumeration_wildcard", prefix, who, t.moment(), reads.search_persons,
                 query=PersonQuery(name=prefix), context=investigate)  # fmt: skip
    # Sequential identifiers: six persons with consecutive ids, fetched one after the other.
    at = t.moment()
    for n, case in enumerate(cases["sequential"]):
        t.inject(
            "enumeration_sequential",
            "walk",
            users["ice-seq"][0],
            at + timedelta(minutes=2 * n),
            reads.get_person,
            person_id=case.person_id,
            context=investigate,
        )
    # Zero hits: twelve names nobody has and two that exist, in one afternoon.
    day = t.rng.randrange(50)
    for n in range(12):
        t.inject("enumeration_zero_hits", "fishing", users["ice-fish"][0], _work_moment(t, day),
                 reads.search_persons, query=PersonQuery(name=f"Nobodyhere Fishing{n}"),
                 context=investigate)  # fmt: skip
    for case in t.rng.sample(filed, 2):
        t.inject(
            "enumeration_zero_hits",
            "fishing",
            users["ice-fish"][0],
            _work_moment(t, day),
            reads.search_persons,
            query=PersonQuery(name=case.name),
            context=investigate,
        )
    # A date-range sweep: six single days of arrests, read by date alone.
    day = t.rng.randrange(50)
    for n in range(6):
        first = datetime(2025, 5, 1, tzinfo=UTC) + timedelta(days=n)
        query = ArrestQuery(arrested_from=first, arrested_to=first + timedelta(days=1))
        t.inject("enumeration_date_sweep", "dates", users["ice-dates"][0], _work_moment(t, day),
                 _refused_arrest_search, query=query, context=investigate)  # fmt: skip
    # One case for many people: an FBI case's OTN cited for six other persons in ten days.
    cited = filed[0]
    others = t.rng.sample([c for c in filed[1:]], 6)
    base = t.b.start + timedelta(days=t.rng.randrange(40))
    for n, other in enumerate(others):
        context = ReadContext(purpose=INVESTIGATION, case_number=cited.otn)
        t.inject(
            "shared_case_reference",
            "otn",
            t.rng.choice(ice),
            base + timedelta(days=n, hours=14),
            reads.get_person,
            person_id=other.person_id,
            context=context,
        )
    # One person looked up by six users in one UTC day.
    target = t.rng.choice(filed)
    day = t.rng.randrange(50)
    for who in t.rng.sample(ice, 6):
        t.inject("person_many_users", "target", who, _work_moment(t, day), reads.search_persons,
                 query=PersonQuery(sid=target.sid), context=warrant)  # fmt: skip
    # Their own surname, their own address: the profiles are set in ``_profiles``.
    kin, home = t.rng.sample(filed[18:], 2)
    t.own = (kin, home)
    context = ReadContext(purpose=INVESTIGATION, case_number=kin.otn)
    t.inject("own_surname_or_address", "surname", users["ice-kin"][0], t.moment(),
             reads.search_persons, query=PersonQuery(name=kin.name), context=context)  # fmt: skip
    context = ReadContext(purpose=INVESTIGATION, case_number=home.otn)
    t.inject("own_surname_or_address", "address", users["ice-home"][0], t.moment(),
             reads.get_person, person_id=home.person_id, context=context)  # fmt: skip
    # A departed account: a legitimate check before it was disabled (day 20), two after.
    departed = users["ice-departed"][0]
    case = t.rng.choice(filed[18:])
    t.add(departed, _work_moment(t, _weekday(t, 10)), reads.search_persons, legit=True,
          query=PersonQuery(sid=case.sid), context=warrant)  # fmt: skip
    after = _weekday(t, 30)
    for _ in range(2):
        t.inject(
            "dormant_account",
            "departed",
            departed,
            _work_moment(t, after),
            reads.search_persons,
            query=PersonQuery(sid=case.sid),
            context=warrant,
        )
    # A long-dormant account (created 70 days before the traffic) reading on day 5.
    t.inject("dormant_account", "dormant", users["ice-dormant"][0], _work_moment(t, 5),
             reads.search_persons, query=PersonQuery(sid=case.sid), context=warrant)  # fmt: skip


def _refused_arrest_search(
    session: Any, *, principal: Principal, now: datetime, query: ArrestQuery, context: ReadContext
) -> None:
    """An arrest search the read service refuses (an outside agency's must name a case), and
    the refusal's audit entry as the API's error handler writes it (web/errors.py)."""
    try:
        reads.search_arrests(session, principal=principal, query=query, context=context, now=now)
    except Forbidden as exc:
        params = {
            "query": {
                "arrested_from": query.arrested_from.isoformat() if query.arrested_from else None,
                "arrested_to": query.arrested_to.isoformat() if query.arrested_to else None,
            },
            "status": exc.status,
        }
        event = AuditEvent(
            kind=AuditKind.REFUSED, action="GET /api/v1/arrests", outcome=Outcome.REFUSED,
            user_id=principal.user_id, username=principal.username,
            agency_id=principal.agency_id, params=params, error_code=exc.code,
        )  # fmt: skip
        append(session, event, at=now)
        return
    raise AssertionError("an outside agency's search by date alone must be refused")


def set_profiles(db: Database, world: World, traffic: _Traffic) -> None:
    """Give ice-kin the surname of the person it looks up, ice-home their address."""
    assert traffic.own is not None
    kin, home = traffic.own
    with db.session() as session:
        p = world.principals
        identity.set_user_profile(
            session,
            actor=SYSTEM,
            user_id=p["ice-kin"].user_id or 0,
            data=UserProfile(family_name=kin.name.split(" ", 1)[0]),
        )
        identity.set_user_profile(session, actor=SYSTEM, user_id=p["ice-home"].user_id or 0,
                                  data=UserProfile(address=home.address))  # fmt: skip
        departed = session.get(User, p["ice-departed"].user_id)
        assert departed is not None
        departed.is_active = False
        departed.disabled_at = traffic.b.start + timedelta(days=20)
