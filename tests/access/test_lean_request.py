"""The external request made lean (issue 12): batched reads that must decide exactly as before.

The decision sends the rate-limit reads with the limits the agency's agreement had last time
(a guess, to travel with the agreement lookup); the search's audit entry travels with the page's
alias reads. Neither may loosen anything: a stale guess is read again with the real limits, and
an entry that cannot be written returns nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg.pq import Trace
from sqlalchemy import Connection, select, text

from openpars.access import decision, enforcement, service
from openpars.access.enforcement import policy_for
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.access.visibility import drop_sets_except
from openpars.agreements.floor import SiteFloor, set_floor
from openpars.audit.models import AuditEntry
from openpars.db import Database, utcnow
from openpars.records.enums import InvolvementRole
from openpars.records.models import PersonAlias
from openpars.records.validation import name_key
from tests.access import data
from tests.access.agreements import activate, default_scope
from tests.access.wire import turns
from tests.conftest import BACKEND
from tests.factories import World

PURPOSE = {"purpose": "warrant-service"}
POLICE = "Philadelphia Police Department"


def _seed(db: Database, world: World, *, per_user: int = 30) -> None:
    with db.session() as s:
        limits = {
            "exact_identifiers_only": False,
            "name_search": True,
            "max_results": 25,
            "rate_per_user_per_minute": per_user,
            "rate_per_agency_per_minute": 300,
        }
        scope = default_scope(limits=limits)
        scope["person_fields"] |= {"aliases": "visible"}
        activate(s, world, scope=scope)
        ana = data.person(s, "Alvarez", "Ana", sid="SID-2001")
        alias = PersonAlias(person_id=ana.id, family_name="Alvares", given_name="Anita")
        alias.name_key = name_key("Alvares", "Anita")
        s.add(alias)
        data.arrest(s, agency_id=world.agencies[POLICE], people=[(ana, InvolvementRole.ARRESTEE)])


def test_a_stale_limit_guess_never_loosens_the_rate_limit(
    db: Database, world: World, client: TestClient
) -> None:
    _seed(db, world, per_user=2)
    ice = world.auth("ice")
    agency = world.principals["ice"].agency_id
    params = {"sid": "SID-2001", **PURPOSE}
    for _ in range(2):
        # An attacker's best case: every request is sent with the loosest limits there are.
        decision.remember_limits(agency, (10_000, 100_000))
        assert client.get("/api/v1/persons", params=params, headers=ice).status_code == 200
    decision.remember_limits(agency, (10_000, 100_000))
    refused = client.get("/api/v1/persons", params=params, headers=ice)
    assert refused.status_code == 429, refused.text
    assert "2 queries per minute" in refused.json()["error"]["message"]
    # The real limits are what the next request is sent with.
    assert decision.last_limits(agency) == (2, 300)


def test_the_limit_guesses_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decision, "_LAST_LIMITS", {})
    monkeypatch.setattr(decision, "_LAST_LIMITS_MAX", 2)
    for agency in (1, 2, 3):
        decision.remember_limits(agency, (agency, None))
    assert decision.last_limits(3) == (3, None)
    assert decision.last_limits(1) == (None, None)


def test_an_external_search_whose_entry_cannot_be_written_returns_nothing(
    db: Database, world: World, client: TestClient
) -> None:
    _seed(db, world)
    ice = world.auth("ice")
    found = client.get("/api/v1/persons", params={"name": "alvarez", **PURPOSE}, headers=ice)
    assert found.status_code == 200 and found.json()["items"], found.text
    # A real refusal by the database, not an application hook.
    with db.session() as session:
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER test_refuse_search BEFORE INSERT ON audit_entries "
                "WHEN NEW.action = 'person.search' "
                "BEGIN SELECT RAISE(ABORT, 'disk full (simulated by a constraint)'); END"
            )
        else:
            connection.execute(
                text(
                    "ALTER TABLE audit_entries ADD CONSTRAINT test_refuse_search "
                    "CHECK (action <> 'person.search') NOT VALID"
                )
            )
    for params in ({"name": "alvarez"}, {"sid": "SID-2001"}):
        refused = client.get("/api/v1/persons", params={**params, **PURPOSE}, headers=ice)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "audit_unavailable"
        assert "Ana" not in refused.text and "SID-2001" not in refused.text


def test_a_policy_compiled_before_a_floor_change_is_never_served_after_it(
    db: Database, world: World, client: TestClient
) -> None:
    _seed(db, world)
    ice = world.auth("ice")
    params = {"sid": "SID-2001", **PURPOSE}
    before = client.get("/api/v1/persons", params=params, headers=ice)
    assert before.status_code == 200 and before.json()["items"], before.text
    with db.session() as s:
        floor = SiteFloor(
            forbidden_person_fields=frozenset({"place_of_birth", "citizenship", "sid"})
        )
        set_floor(s, actor=world.principals["agreements"], floor=floor, reason="SIDs stay home")
    after = client.get("/api/v1/persons", params=params, headers=ice)
    assert after.status_code == 403, after.text
    assert "the site floor removes person.sid" in after.json()["error"]["message"]


def test_the_explanation_kept_per_policy_follows_a_floor_change_at_the_next_request(
    db: Database, world: World, client: TestClient
) -> None:
    # The decision a response and its audit entry carry is built once per compiled policy
    # (service._explained): a floor change compiles a new policy, so the very next request
    # explains (and records) the new clauses, and the entry records what the response says.
    _seed(db, world)
    ice = world.auth("ice")
    params = {"sid": "SID-2001", **PURPOSE}
    before = client.get("/api/v1/persons", params=params, headers=ice)
    assert before.status_code == 200 and before.json()["items"], before.text
    with db.session() as s:
        floor = SiteFloor(
            forbidden_person_fields=frozenset({"place_of_birth", "citizenship", "phone"})
        )
        set_floor(s, actor=world.principals["agreements"], floor=floor, reason="phones stay home")
    after = client.get("/api/v1/persons", params=params, headers=ice)
    assert after.status_code == 200 and after.json()["items"], after.text
    removed = "floor: person.phone removed"
    assert removed not in before.json()["decision"]["clauses"]
    assert removed in after.json()["decision"]["clauses"]
    for response in (before, after):
        with db.session() as s:
            content = s.scalars(
                select(AuditEntry.content).where(AuditEntry.id == response.json()["audit_entry"])
            ).one()
        assert json.loads(content)["params"]["decision"] == response.json()["decision"]


def test_the_compiled_policies_stay_bounded(
    db: Database, world: World, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(db, world)
    monkeypatch.setattr(enforcement, "_POLICIES", {})
    monkeypatch.setattr(enforcement, "_POLICIES_MAX", 0)
    params = {"sid": "SID-2001", **PURPOSE}
    for _ in range(2):
        found = client.get("/api/v1/persons", params=params, headers=world.auth("ice"))
        assert found.status_code == 200 and found.json()["items"], found.text
    assert len(enforcement._POLICIES) == 1


def test_the_page_without_its_audit_is_the_page_the_service_returns(
    db: Database, world: World
) -> None:
    """`person_page` (what bench/search.py times as the enforced search) and the audited service
    build the same page, aliases included, from the same policy."""
    _seed(db, world)
    ice, context = world.principals["ice"], ReadContext(purpose="warrant-service")
    for query in (PersonQuery(name="alvarez"), PersonQuery(sid="SID-2001")):
        with db.session(external=True) as s:
            audited = service.search_persons(s, principal=ice, query=query, context=context)
        with db.session(external=True) as s:
            policy = policy_for(s, principal=ice, context=context, at=utcnow())
            plain = service.person_page(s, policy=policy, query=query)
        assert audited == plain
        assert [a.family_name for a in audited.items[0].aliases or []] == ["Alvares"]


def _body(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return {k: v for k, v in response.json().items() if k != "audit_entry"}


def test_pages_sent_ahead_under_the_last_policy_are_served_only_under_that_policy(
    db: Database, world: World, client: TestClient
) -> None:
    # On PostgreSQL a search's first pages go out with the decision, under the policy this
    # caller had last time; they must answer exactly as a search without them, and a policy
    # that changed in between (here: the floor) must drop them.
    _seed(db, world)
    ice = world.auth("ice")
    queries = [{"name": "alvarez"}, {"name": "alvares"}, {"sid": "SID-2001"}, {"name": "zz"}]

    def answers() -> list[Any]:
        return [
            _body(client.get("/api/v1/persons", params={**q, **PURPOSE}, headers=ice))
            for q in queries
        ]

    enforcement._LAST_POLICY.clear()
    first = answers()  # the first query had no guess; the others had one
    assert answers() == first
    assert [len(a["items"]) for a in first] == [1, 1, 1, 0]
    assert first[0]["items"][0]["sid"] == "SID-2001"
    with db.session() as s:
        forbidden = frozenset({"place_of_birth", "citizenship", "sid"})
        floor = SiteFloor(forbidden_person_fields=forbidden)
        set_floor(s, actor=world.principals["agreements"], floor=floor, reason="SIDs stay home")
    del queries[2]  # a search by SID is now refused
    stale = answers()  # sent ahead under the policy of before the floor change
    enforcement._LAST_POLICY.clear()
    fresh = answers()
    assert stale == fresh
    assert [a["items"][0].get("sid") for a in stale[:2]] == [None, None]


def test_a_name_page_sent_ahead_with_its_alias_section_answers_as_without(
    db: Database, world: World, client: TestClient
) -> None:
    # A first name page goes out with the alias section's first page in the same statement,
    # the alias page read only if the own-name page is not full. Whatever the page size, the
    # answer is the one a search without anything sent ahead gives: own-name matches first,
    # then alias-only matches, never a person twice, the "more" flag and total unchanged.
    _seed(db, world)
    with db.session() as s:
        brown = data.person(s, "Brown", "Bea", sid="SID-2002")
        alias = PersonAlias(person_id=brown.id, family_name="Alvarado", given_name="Bea")
        alias.name_key = name_key("Alvarado", "Bea")
        s.add(alias)
        data.arrest(s, agency_id=world.agencies[POLICE], people=[(brown, InvolvementRole.ARRESTEE)])
    ice = world.auth("ice")
    queries = [
        {"name": "alva"},
        {"name": "alva", "limit": 1},
        {"name": "alva", "limit": 1, "offset": 1},
        {"name": "alva", "limit": 2},
        {"name": "alva", "count": True},
        {"name": "alvarado"},
        {"name": "alvarez", "limit": 1},
    ]

    def answers() -> list[Any]:
        return [
            _body(client.get("/api/v1/persons", params={**q, **PURPOSE}, headers=ice))
            for q in queries
        ]

    enforcement._LAST_POLICY.clear()
    answers()  # the caller's policy is now known: the next searches send their pages ahead
    ahead = answers()
    each = []
    for q in queries:  # each search without a guess
        enforcement._LAST_POLICY.clear()
        each.append(_body(client.get("/api/v1/persons", params={**q, **PURPOSE}, headers=ice)))
    assert ahead == each
    assert [[p["sid"] for p in a["items"]] for a in ahead] == [
        ["SID-2001", "SID-2002"],
        ["SID-2001"],
        ["SID-2002"],
        ["SID-2001", "SID-2002"],
        ["SID-2001", "SID-2002"],
        ["SID-2002"],
        ["SID-2001"],
    ]
    assert [(a["has_more"], a["total"]) for a in ahead[:3]] == [(False, 2), (True, 2), (False, 2)]


def _round_trips(db: Database, unit: Callable[[], object]) -> int:
    """Turns of the conversation with PostgreSQL while ``unit`` runs on the test's connection
    (the client sends, then waits: statements sent together in a pipeline count once)."""
    assert isinstance(db.bind, Connection)
    pgconn = db.bind.connection.driver_connection.pgconn  # type: ignore[union-attr]
    with tempfile.TemporaryFile(mode="w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            unit()
        finally:
            pgconn.untrace()
        trace.seek(0)
        return turns(trace.read())


@pytest.mark.skipif(BACKEND != "postgresql", reason="round trips are PostgreSQL's")
def test_a_lookup_that_finds_nothing_takes_no_round_trip_more(db: Database, world: World) -> None:
    # An empty page asks whether the searched visibility set exists (if not, the search runs
    # again with probes). Sent ahead with an identifier's page, that question costs no round
    # trip of its own.
    _seed(db, world)
    ice, context = world.principals["ice"], ReadContext(purpose="warrant-service")

    def search(**criteria: Any) -> Callable[[], object]:
        def unit() -> object:
            with db.session(external=True) as s:
                return service.search_persons(
                    s, principal=ice, query=PersonQuery(**criteria), context=context
                )

        return unit

    search(sid="SID-2001")()  # the caller's policy is now known: pages are sent ahead
    assert _round_trips(db, search(sid="SID-9999")) == _round_trips(db, search(sid="SID-2001"))


def test_a_page_sent_ahead_into_a_missing_set_is_answered_with_probes(
    db: Database, world: World
) -> None:
    # The set a page was sent into is gone (a floor change not yet built, or dropped): the
    # empty page sent ahead is not the answer; the search runs again with probes.
    _seed(db, world)
    ice, context = world.principals["ice"], ReadContext(purpose="warrant-service")

    def sids(**criteria: Any) -> list[str | None]:
        with db.session(external=True) as s:
            page = service.search_persons(
                s, principal=ice, query=PersonQuery(**criteria), context=context
            )
        return [item.sid for item in page.items]

    assert sids(sid="SID-2001") == ["SID-2001"]
    with db.session() as s:
        assert drop_sets_except(s, [])
    assert sids(sid="SID-2001") == ["SID-2001"]
    assert sids(name="alvarez") == ["SID-2001"]
    assert sids(sid="SID-9999") == []


def _statements(db: Database, unit: Callable[[], object]) -> int:
    """Statements PostgreSQL is asked to run while ``unit`` runs on the test's connection
    (each an Execute of the extended protocol or a simple Query)."""
    assert isinstance(db.bind, Connection)
    pgconn = db.bind.connection.driver_connection.pgconn  # type: ignore[union-attr]
    with tempfile.TemporaryFile(mode="w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            unit()
        finally:
            pgconn.untrace()
        trace.seek(0)
        lines = [line.split("\t") for line in trace.read().splitlines()]
    return sum(
        1 for f in lines if f[0].strip() == "F" and f[2].split(" ")[0] in ("Execute", "Query")
    )


@pytest.mark.skipif(BACKEND != "postgresql", reason="statements in a pipeline are PostgreSQL's")
def test_an_identifier_page_sent_ahead_asks_whether_its_set_exists_in_the_same_statement(
    db: Database, world: World
) -> None:
    # Every pipelined statement costs the client and the server: the external identifier
    # search sends the internal one's statements plus the role switch of the test's joined
    # connection and its reset (two) and the decision's one: the rate claim carrying the
    # share lock and the governance generation read once the lock is held (the in-force
    # lookup is then answered from the process's copy, no statement of its own; main sent
    # the generation's read apart), no more: whether its set exists rides on the page.
    _seed(db, world)
    ice, context = world.principals["ice"], ReadContext(purpose="warrant-service")
    reader = world.principals["reader"]

    def search(principal: Any, context: ReadContext, sid: str) -> Callable[[], object]:
        def unit() -> object:
            with db.session(external=principal.is_external) as s:
                return service.search_persons(
                    s, principal=principal, query=PersonQuery(sid=sid), context=context
                )

        return unit

    # The page that finds Ana carries her aliases (_first_id_page), where the internal search
    # reads them with a statement of their own: one statement fewer for the external search.
    search(ice, context, "SID-2001")()  # the caller's policy is now known: pages sent ahead
    for sid, more in (("SID-2001", 2), ("SID-9999", 3)):
        external = _statements(db, search(ice, context, sid))
        internal = _statements(db, search(reader, ReadContext(), sid))
        assert external - internal == more, (sid, external, internal)


def test_aliases_carried_by_an_identifier_page_are_the_aliases_read_apart(
    db: Database, world: World
) -> None:
    # On PostgreSQL an external identifier page carries its persons' aliases (one statement
    # fewer); the page must be the one read with the alias statement: every alias, in order,
    # and none for a person without any.
    _seed(db, world)
    with db.session() as s:
        ana = s.scalars(select(PersonAlias.person_id)).one()
        for family, given in (("Alvarado", "Ann"), ("Alvear", "Ana Ma")):
            alias = PersonAlias(person_id=ana, family_name=family, given_name=given)
            alias.name_key = name_key(family, given)
            s.add(alias)
        bo = data.person(s, "Baker", "Bo", sid="SID-2002")
        data.arrest(s, agency_id=world.agencies[POLICE], people=[(bo, InvolvementRole.ARRESTEE)])
    ice, context = world.principals["ice"], ReadContext(purpose="warrant-service")
    for sid, expected in (
        ("SID-2001", [("Alvares", "Anita"), ("Alvarado", "Ann"), ("Alvear", "Ana Ma")]),
        ("SID-2002", []),
    ):
        for _ in range(2):  # the second is sent ahead with the decision
            query = PersonQuery(sid=sid)
            with db.session(external=True) as s:
                audited = service.search_persons(s, principal=ice, query=query, context=context)
            with db.session(external=True) as s:
                policy = policy_for(s, principal=ice, context=context, at=utcnow())
                plain = service.person_page(s, policy=policy, query=query)
            assert audited == plain
            (item,) = audited.items
            assert [(a.family_name, a.given_name) for a in item.aliases or []] == expected


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's statements (PostgreSQL's above)")
def test_the_floor_rides_on_the_in_force_lookup_on_sqlite(db: Database, world: World) -> None:
    # On SQLite the external decision's statements are the in-force lookup, which carries the
    # newest floor's hash (answered from the process's copy: the one statement reads the
    # governance generation, agreements.in_force), and the rate windows' claims, one plain
    # UPDATE a window (cheaper than one UPDATE ... FROM for both, access.rate): three
    # statements more than an internal search, with two windows; the floor is read by no
    # statement of its own.
    _seed(db, world)
    ice, context = world.principals["ice"], ReadContext(purpose="warrant-service")
    reader = world.principals["reader"]
    assert isinstance(db.bind, Connection)
    driver = db.bind.connection.driver_connection
    assert driver is not None
    run: list[str] = []

    def statements(principal: Any, context: ReadContext, sid: str) -> int:
        run.clear()
        driver.set_trace_callback(run.append)
        try:
            with db.session(external=principal.is_external) as s:
                service.search_persons(
                    s, principal=principal, query=PersonQuery(sid=sid), context=context
                )
        finally:
            driver.set_trace_callback(None)
        # Triggers' statements are traced too ("-- TRIGGER ..."): the same for both callers.
        return sum(1 for sql in run if not sql.startswith("--"))

    # The first external read grows the rate windows and parses the agreement: not counted.
    statements(ice, context, "SID-2001")
    for sid in ("SID-2001", "SID-9999"):
        external = statements(ice, context, sid)
        claims = [sql for sql in run if sql.startswith("UPDATE rate_slots")]
        assert len(claims) == 2, run  # the user's window and the agency's
        internal = statements(reader, ReadContext(), sid)
        assert external - internal == 3, (sid, external, internal, run)


def _name_world(db: Database, world: World) -> None:
    """Ana Alvarez with three aliases (ids not in name order), Brown found only by an alias,
    and Carl Alvarez with none."""
    _seed(db, world, per_user=300)
    with db.session() as s:
        ana = s.scalars(select(PersonAlias.person_id)).one()
        brown = data.person(s, "Brown", "Bea", sid="SID-2002")
        carl = data.person(s, "Alvarez", "Carl", sid="SID-2003")
        for person, family, given in (
            (ana, "Zamora", "Ana"),
            (ana, "Alvear", "Ana Ma"),
            (brown.id, "Alvarado", "Bea"),
        ):
            alias = PersonAlias(person_id=person, family_name=family, given_name=given)
            alias.name_key = name_key(family, given)
            s.add(alias)
        for person in (brown, carl):
            data.arrest(
                s, agency_id=world.agencies[POLICE], people=[(person, InvolvementRole.ARRESTEE)]
            )


def test_a_name_page_carrying_its_aliases_is_the_page_read_with_the_alias_statement(
    db: Database, world: World
) -> None:
    # On PostgreSQL an external name's first pages, sent ahead with the decision, carry their
    # persons' aliases (one statement fewer). The page must be the one the alias statement
    # builds (``person_page``, which never sends anything ahead): rows and their order, every
    # alias in order, none for a person without any, total and "more", in the own-name section
    # and in the alias section, full pages and short ones.
    _name_world(db, world)
    ice, context = world.principals["ice"], ReadContext(purpose="warrant-service")
    queries = [
        PersonQuery(name="alva"),
        PersonQuery(name="alva", limit=1),
        PersonQuery(name="alva", limit=2),
        PersonQuery(name="alva", limit=3),
        PersonQuery(name="alva", count=True),
        PersonQuery(name="alvarez", limit=1),
        PersonQuery(name="alvarado"),
        PersonQuery(name="zamora"),
        PersonQuery(name="alva", limit=1, offset=1),
        PersonQuery(name="qq"),
    ]
    shown = []
    for query in queries:
        for _ in range(2):  # the second is sent ahead with the decision
            with db.session(external=True) as s:
                audited = service.search_persons(s, principal=ice, query=query, context=context)
            with db.session(external=True) as s:
                policy = policy_for(s, principal=ice, context=context, at=utcnow())
                plain = service.person_page(s, policy=policy, query=query)
            assert audited == plain, query
        shown.append(
            (
                [
                    (i.given_name, [(a.family_name, a.given_name) for a in i.aliases or []])
                    for i in audited.items
                ],
                audited.total,
                audited.has_more,
            )
        )
    ana = ("Ana", [("Alvares", "Anita"), ("Zamora", "Ana"), ("Alvear", "Ana Ma")])
    carl, bea = ("Carl", []), ("Bea", [("Alvarado", "Bea")])
    assert shown == [
        ([ana, carl, bea], 3, False),
        ([ana], 2, True),
        ([ana, carl], 3, True),
        ([ana, carl, bea], 3, False),
        ([ana, carl, bea], 3, False),
        ([ana], 2, True),
        ([bea], 1, False),
        ([ana], 1, False),
        ([carl], 3, True),
        ([], 0, False),
    ]


@pytest.mark.skipif(BACKEND != "postgresql", reason="statements in a pipeline are PostgreSQL's")
def test_an_external_name_search_sent_ahead_sends_no_statement_for_its_plans_or_aliases(
    db: Database, world: World
) -> None:
    # A name page sent ahead runs on its generic plan, turned on by the decision's own
    # statement (no setting and reset of its own), and carries its aliases (no alias
    # statement): as many statements as a lookup by SID, whose page carries its aliases too,
    # but one: in this test's unit, joined to an outer transaction and so not committed with
    # its entry, the name search ends the setting after the entry (a unit committed with its
    # entry ends it with the transaction: bench/search.py counts 5 and 5).
    _name_world(db, world)
    ice, context = world.principals["ice"], ReadContext(purpose="warrant-service")

    def search(**criteria: Any) -> Callable[[], object]:
        def unit() -> object:
            with db.session(external=True) as s:
                return service.search_persons(
                    s, principal=ice, query=PersonQuery(**criteria), context=context
                )

        return unit

    search(name="alva")()  # the caller's policy is now known: pages are sent ahead
    by_sid = _statements(db, search(sid="SID-2001"))
    for criteria in ({"name": "alva"}, {"name": "alvarado"}, {"name": "alva", "limit": 1}):
        assert _statements(db, search(**criteria)) == by_sid + 1, criteria


@pytest.mark.skipif(BACKEND != "postgresql", reason="plan settings are PostgreSQL's")
def test_a_name_page_sent_ahead_runs_on_its_generic_plan(db: Database, world: World) -> None:
    # The setting travels in the decision's statement: the page sent ahead must still be
    # bound with it (planned again for its values at every call, it cost more than it ran).
    _name_world(db, world)
    ice, context = world.principals["ice"], ReadContext(purpose="warrant-service")
    for _ in range(12):  # past psycopg's threshold: the page becomes a prepared statement
        with db.session(external=True) as s:
            service.search_persons(
                s, principal=ice, query=PersonQuery(name="alva"), context=context
            )
    with db.session() as s:
        plans = s.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE 'WITH own_page AS%'"
            )
        ).all()
    assert len(plans) == 1
    generic, custom = plans[0]
    assert (generic > 0, custom) == (True, 0)


@pytest.mark.skipif(BACKEND != "postgresql", reason="plan settings are PostgreSQL's")
def test_probes_run_on_plans_for_their_values_after_a_name_page_sent_ahead(
    db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where the set a name page was sent into is gone, the search probes each candidate: those
    # statements are planned for their values, as they always were, not on the generic plans
    # the decision turned on for the page.
    from openpars.access import repository

    _name_world(db, world)
    ice, context = world.principals["ice"], ReadContext(purpose="warrant-service")
    seen: list[tuple[bool, str]] = []
    inner = repository._search_persons

    def spy(session: Any, *args: Any, in_set: bool, **kwargs: Any) -> Any:
        mode = session.execute(text("SHOW plan_cache_mode")).scalar_one()
        seen.append((in_set, mode))
        return inner(session, *args, in_set=in_set, **kwargs)

    monkeypatch.setattr(repository, "_search_persons", spy)

    def given_names() -> list[str | None]:
        with db.session(external=True) as s:
            page = service.search_persons(
                s, principal=ice, query=PersonQuery(name="alvarez"), context=context
            )
        return [item.given_name for item in page.items]

    assert given_names() == ["Ana", "Carl"]
    with db.session() as s:
        assert drop_sets_except(s, [])
    seen.clear()
    assert given_names() == ["Ana", "Carl"]  # sent ahead into the set dropped
    assert seen[-1] == (False, "auto")
