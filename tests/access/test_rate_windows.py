"""The rate windows (access.rate): at most the limit in any minute, whatever the concurrency.

An attacker's moves: many requests at once (each must hold its own place, none may read the
window before another's place is written), requests timed at the window's edge, and refused
requests (a refused purpose) used to probe without being counted.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from openpars.access import rate, service
from openpars.access.enforcement import policy_for
from openpars.access.models import RateSlot
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.db import Database, utcnow
from openpars.errors import TooManyRequests
from openpars.identity.principal import Principal
from openpars.prepared import connection_of
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.access.agreements import activate, default_scope
from tests.conftest import BACKEND
from tests.factories import World, build_world

PURPOSE = {"purpose": "warrant-service"}
CONTEXT = ReadContext(purpose="warrant-service")
POLICE = "Philadelphia Police Department"


def _limits(per_user: int, per_agency: int) -> dict[str, object]:
    return default_scope(
        limits={
            "exact_identifiers_only": False,
            "name_search": True,
            "max_results": 25,
            "rate_per_user_per_minute": per_user,
            "rate_per_agency_per_minute": per_agency,
        }
    )


def _seed(db: Database, world: World, *, per_user: int, per_agency: int = 300) -> None:
    with db.session() as s:
        activate(s, world, scope=_limits(per_user, per_agency))
        ana = data.person(s, "Alvarez", "Ana", sid="SID-3001")
        data.arrest(s, agency_id=world.agencies[POLICE], people=[(ana, InvolvementRole.ARRESTEE)])


def _decide(db: Database, principal: Principal, at: datetime) -> float | None:
    """None if admitted at ``at``, else the Retry-After of the refusal."""
    try:
        with db.session(external=True) as s:
            policy_for(s, principal=principal, context=CONTEXT, at=at)
    except TooManyRequests as refused:
        return refused.retry_after
    return None


def test_many_concurrent_searches_never_pass_the_limit(fresh_db: Database) -> None:
    with fresh_db.session() as s:
        world = build_world(s)
    _seed(fresh_db, world, per_user=5)
    ice = world.principals["ice"]
    threads = 24
    start = threading.Barrier(threads)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def search() -> None:
        start.wait()
        try:
            with fresh_db.session(external=True) as s:
                page = service.search_persons(
                    s, principal=ice, query=PersonQuery(sid="SID-3001"), context=CONTEXT
                )
            outcomes.append("found" if page.items else "empty")
        except TooManyRequests:
            outcomes.append("refused")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=search) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not errors, errors
    assert sorted(outcomes) == ["found"] * 5 + ["refused"] * (threads - 5)
    with fresh_db.session() as s:
        # The window has the limit's places, every one taken in this minute.
        held = s.scalars(
            select(RateSlot.at_us).where(
                RateSlot.kind == rate.USER, RateSlot.owner_id == ice.user_id
            )
        ).all()
    assert len(held) == 5 and min(held) > rate.micros(utcnow() - timedelta(minutes=1))


def test_the_window_frees_a_place_a_minute_after_it_was_taken(db: Database, world: World) -> None:
    _seed(db, world, per_user=3)
    ice = world.principals["ice"]
    t0 = utcnow()
    assert _decide(db, ice, t0) is None
    assert _decide(db, ice, t0 + timedelta(seconds=30)) is None
    assert _decide(db, ice, t0 + timedelta(seconds=30)) is None
    full = _decide(db, ice, t0 + timedelta(seconds=40))
    assert full == pytest.approx(20.0)
    # Exactly a minute after the oldest access it is still in the window ...
    assert _decide(db, ice, t0 + timedelta(minutes=1)) == pytest.approx(0.01)
    # ... and a microsecond later its place is free, for one access only.
    edge = t0 + timedelta(minutes=1, microseconds=1)
    assert _decide(db, ice, edge) is None
    assert _decide(db, ice, edge) == pytest.approx(30.0, abs=0.01)
    assert _decide(db, ice, t0 + timedelta(seconds=90, microseconds=1)) is None


def test_a_refused_request_gives_its_place_back_and_the_agency_window_counts_all(
    db: Database, world: World
) -> None:
    _seed(db, world, per_user=2, per_agency=3)
    ice = world.principals["ice"]
    t0 = utcnow()
    assert _decide(db, ice, t0) is None
    assert _decide(db, ice, t0) is None
    # The user's window is full: the refusal rolls back, the agency's place with it.
    assert _decide(db, ice, t0) == pytest.approx(60.0)
    with db.session() as s:
        agency_places = s.scalar(
            select(func.count())
            .select_from(RateSlot)
            .where(
                RateSlot.kind == rate.AGENCY,
                RateSlot.owner_id == ice.agency_id,
                RateSlot.at_us == rate.micros(t0),
            )
        )
    assert agency_places == 2


def _places_at(db: Database, kind: int, owner: int | None, at: datetime) -> int:
    with db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(RateSlot)
                .where(
                    RateSlot.kind == kind,
                    RateSlot.owner_id == owner,
                    RateSlot.at_us == rate.micros(at),
                )
            )
            or 0
        )


def test_a_full_agency_window_refuses_though_the_users_has_room(db: Database, world: World) -> None:
    # The windows are claimed one after the other (on SQLite one UPDATE each, taken or not by
    # its row count): the second window's refusal is not hidden by the first one's place, and
    # the first one's place goes back with the refusal.
    _seed(db, world, per_user=2, per_agency=2)
    ice = world.principals["ice"]
    t0 = utcnow()
    assert ice.agency_id is not None
    with db.session() as s:  # another of the agency's users took a place
        rate.claim_if_free(s, [rate.Window(rate.AGENCY, ice.agency_id, 2)], t0)
    assert _decide(db, ice, t0) is None
    # The user's window has a free place, the agency's none.
    assert _decide(db, ice, t0) == pytest.approx(60.0)
    assert _places_at(db, rate.USER, ice.user_id, t0) == 1
    assert _places_at(db, rate.AGENCY, ice.agency_id, t0) == 2


def test_an_admitted_request_takes_exactly_one_place_in_each_window(
    db: Database, world: World
) -> None:
    _seed(db, world, per_user=10, per_agency=10)
    ice = world.principals["ice"]
    t0 = utcnow()
    for n in range(3):
        at = t0 + timedelta(microseconds=n)
        assert _decide(db, ice, at) is None
        assert _places_at(db, rate.USER, ice.user_id, at) == 1
        assert _places_at(db, rate.AGENCY, ice.agency_id, at) == 1


def test_refused_attempts_count_while_the_window_has_room(
    db: Database, world: World, client: TestClient
) -> None:
    _seed(db, world, per_user=3)
    ice = world.auth("ice")
    params = {"sid": "SID-3001", **PURPOSE}
    assert client.get("/api/v1/persons", params=params, headers=ice).status_code == 200
    # Probing with a purpose the agreement does not allow: refused, and counted.
    for _ in range(2):
        probe = client.get(
            "/api/v1/persons", params={"sid": "SID-3001", "purpose": "curiosity"}, headers=ice
        )
        assert probe.status_code == 403, probe.text
    refused = client.get("/api/v1/persons", params=params, headers=ice)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "3 queries per minute" in refused.json()["error"]["message"]


def test_a_window_holds_only_the_places_its_busiest_minute_needed(
    db: Database, world: World
) -> None:
    _seed(db, world, per_user=10_000, per_agency=100_000)
    ice = world.principals["ice"]
    t0 = utcnow()
    for n in range(rate.GROWTH + 1):
        assert _decide(db, ice, t0 + timedelta(microseconds=n)) is None
    # A minute later the same places are used again: the window does not grow.
    for n in range(rate.GROWTH + 1):
        assert _decide(db, ice, t0 + timedelta(minutes=1, microseconds=n + 1)) is None
    with db.session() as s:
        places = s.scalar(
            select(func.count())
            .select_from(RateSlot)
            .where(RateSlot.kind == rate.USER, RateSlot.owner_id == ice.user_id)
        )
    assert places == 2 * rate.GROWTH


on_postgresql = pytest.mark.skipif(
    BACKEND != "postgresql", reason="the claim's walk from a hint is PostgreSQL's"
)


def _claims_walk(db: Database) -> int:
    """Index entries the rate windows' index has handed out in this transaction (dead ones
    included: a scan does not know an entry is dead until it has fetched its row)."""
    with db.session() as s:
        return int(
            s.scalar(text("SELECT pg_stat_get_xact_tuples_returned('pk_rate_slots'::regclass)"))
            or 0
        )


@on_postgresql
def test_a_claim_never_walks_the_places_taken_before_it(db: Database, world: World) -> None:
    # Every claim below runs in the test's one transaction, so no update's old index entry
    # can be removed: what a transaction older than the claims (a backup's snapshot, a long
    # report) does to a busy window. Walking down from a minute ago, claim n met the n
    # entries left by the claims before it (about 2,100 entries for 64 claims).
    _seed(db, world, per_user=10_000, per_agency=100_000)
    ice = world.principals["ice"]
    t0 = utcnow()
    for n in range(rate.GROWTH):
        assert _decide(db, ice, t0 + timedelta(microseconds=n)) is None
    before = _claims_walk(db)
    for n in range(rate.GROWTH):
        assert _decide(db, ice, t0 + timedelta(minutes=1, seconds=1, microseconds=n)) is None
    walked = _claims_walk(db) - before
    # Two windows (the user's and the agency's) per claim; each meets the entry its hint was
    # read from (the place the previous claim took) and the place it takes.
    assert walked <= 2 * 3 * rate.GROWTH, walked


@on_postgresql
def test_a_wrong_hint_never_refuses_a_request_that_has_a_free_place(
    db: Database, world: World
) -> None:
    _seed(db, world, per_user=2)
    ice = world.principals["ice"]
    t0 = utcnow()
    assert _decide(db, ice, t0) is None
    assert _decide(db, ice, t0) is None
    assert _decide(db, ice, t0 + timedelta(seconds=1)) == pytest.approx(59.0)
    # A hint past every place of both windows (another process's, a clock ahead, a place
    # given back below it): a minute later both places are free and one must be taken.
    for kind, owner in ((rate.USER, ice.user_id), (rate.AGENCY, ice.agency_id)):
        assert owner is not None
        rate._HINTS[(kind, owner)] = rate.micros(t0 + timedelta(days=1))
    assert _decide(db, ice, t0 + timedelta(minutes=1, microseconds=1)) is None
    assert _decide(db, ice, t0 + timedelta(minutes=1, microseconds=1)) is None
    assert _decide(db, ice, t0 + timedelta(minutes=1, microseconds=1)) == pytest.approx(60.0)


@pytest.mark.skipif(
    BACKEND != "postgresql", reason="SQLite grows a window under the request's write lock"
)
def test_a_grower_that_saw_an_older_window_cannot_add_a_taken_place_again(
    db: Database, world: World
) -> None:
    """A place's key holds its last use (the claim walks places by it), so a place taken since
    a concurrent grower read the window is no longer the row it would insert: only the unique
    index on (kind, owner, slot) stops a second place 0 (one more admitted a minute)."""
    _seed(db, world, per_user=10_000, per_agency=100_000)
    ice = world.principals["ice"]
    assert _decide(db, ice, utcnow()) is None  # the window grows to GROWTH places, one taken
    stale = rate.Claim(rate.Window(rate.USER, ice.user_id, 10_000), None, None, None, None)
    with db.session() as s:
        rate._grow(connection_of(s), stale)
        slots = s.scalars(
            select(RateSlot.slot).where(
                RateSlot.kind == rate.USER, RateSlot.owner_id == ice.user_id
            )
        ).all()
    assert sorted(slots) == list(range(rate.GROWTH))


@on_postgresql
def test_a_full_hint_table_is_emptied_and_claims_still_admit(db: Database, world: World) -> None:
    # A process that has claimed in more windows than it keeps hints for forgets them all:
    # the next claims walk their windows from the start, and still admit up to the limit.
    _seed(db, world, per_user=2)
    ice = world.principals["ice"]
    rate._HINTS.clear()
    rate._HINTS.update({(rate.USER, -n): n for n in range(1, rate._HINTS_MAX + 1)})
    t0 = utcnow()
    assert _decide(db, ice, t0) is None
    assert len(rate._HINTS) == 2 and (rate.USER, -1) not in rate._HINTS
    assert _decide(db, ice, t0) is None
    assert _decide(db, ice, t0 + timedelta(seconds=1)) == pytest.approx(59.0)
