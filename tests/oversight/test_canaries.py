"""Canary records as an outside agency, an internal reader and a reviewer would meet them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from openpars.audit import log
from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.models import AuditEntry
from openpars.audit.service import append, append_many
from openpars.db import Database
from openpars.identity import service as identity
from openpars.identity.principal import SYSTEM
from openpars.oversight.flags import run_detectors
from openpars.oversight.models import CANARY_DETECTOR, Canary, FlagEntry
from tests.factories import World
from tests.oversight.canary_site import OVERSIGHT, PURPOSE, arrest, build, flags


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys, list lengths, which values are null, and types."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def test_an_external_search_that_reaches_a_canary_raises_a_flag_at_once(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)
    assert flags(db) == []
    found = client.get(
        "/api/v1/persons", params={"sid": site.canary_sid, **PURPOSE}, headers=world.auth("ice")
    )
    assert found.status_code == 200, found.text
    assert [p["id"] for p in found.json()["items"]] == [site.canary_person]
    # The request's own transaction committed the flag with the entry: nothing ran since.
    (flag,) = flags(db)
    assert flag.detector == CANARY_DETECTOR
    assert flag.subject_user_id == world.users["ice"]
    assert flag.subject_agency_id == world.agencies["Immigration and Customs Enforcement"]
    assert flag.subject_agreement_id == site.agreement_id
    assert flag.threshold == 1.0 and "canary" in flag.rule
    with db.session() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
        fired = list(s.scalars(select(FlagEntry.entry_id).where(FlagEntry.flag_id == flag.id)))
    assert entry.action == "person.search" and entry.user_id == world.users["ice"]
    assert fired == [entry.id]
    assert flag.raised_at == entry.at


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/arrests", lambda s: {"otn": "N9000001-1"}),
        ("/api/v1/persons/{person}", lambda s: {}),
        ("/api/v1/arrests/{arrest}", lambda s: {}),
        ("/api/v1/persons", lambda s: {"name": "zbrozek"}),
    ],
)
def test_every_external_read_of_a_canary_is_flagged(
    client: TestClient, db: Database, world: World, path: str, params: Any
) -> None:
    site = build(client, db, world)
    url = path.format(person=site.canary_person, arrest=site.canary_arrest)
    answer = client.get(url, params={**params(site), **PURPOSE}, headers=world.auth("ice"))
    assert answer.status_code == 200, answer.text
    assert len(flags(db)) == 1


def test_a_read_that_misses_the_canary_raises_nothing(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)
    twin = client.get(
        "/api/v1/persons", params={"sid": site.twin_sid, **PURPOSE}, headers=world.auth("ice")
    )
    assert twin.status_code == 200 and twin.json()["total"] == 1
    assert flags(db) == []


def _read(site: Any, world: World, *, external: bool, outcome: Outcome = Outcome.OK) -> AuditEvent:
    """An entry of a read that returned the canary, as any caller of the audit path builds it."""
    return AuditEvent(
        kind=AuditKind.SEARCH,
        action="person.search",
        outcome=outcome,
        user_id=world.users["ice" if external else "reader"],
        agency_id=world.agencies["Immigration and Customs Enforcement"] if external else None,
        person_ids=[site.canary_person],
        arrest_ids=[site.canary_arrest],
        agreement_id=site.agreement_id if external else None,
        agreement_version=1 if external else None,
    )


def test_an_append_that_bypasses_the_read_service_still_raises_the_flag(
    client: TestClient, db: Database, world: World
) -> None:
    # The guarantee is in the database, not in access.service: a caller that appends an
    # external read of the canary by hand (one entry, or in a group commit with others) and
    # forgets the flag still gets one, committed with the entry or not at all.
    site = build(client, db, world)
    with db.session() as s:
        single = append(s, _read(site, world, external=True)).id
    assert [f.dedupe_key for f in flags(db)] == [f"entry:{single}"]
    with db.session() as s:
        ids = [a.id for a in append_many(s, [
            _read(site, world, external=False),
            _read(site, world, external=True),
            _read(site, world, external=True, outcome=Outcome.REFUSED),
        ])]  # fmt: skip
    assert [f.dedupe_key for f in flags(db)] == [f"entry:{single}", f"entry:{ids[1]}"]
    # Rolled back with its entry: no flag about an access that never happened.
    with db.session() as s:
        append(s, _read(site, world, external=True))
        s.rollback()
    assert len(flags(db)) == 2


def test_the_canary_is_found_among_many_subjects_by_person_or_by_arrest_alone(
    client: TestClient, db: Database, world: World
) -> None:
    # The trigger finds the canary among the persons and arrests the entry names, as a person
    # only or as an arrest only, wherever it sits in a long list; entries that named it before
    # do not make a later clean entry look like a hit, nor hide a later hit.
    site = build(client, db, world)
    others = list(range(10_000_001, 10_000_040))

    def entry(persons: list[int], arrests: list[int]) -> int:
        event = _read(site, world, external=True)
        event = dataclasses.replace(event, person_ids=persons, arrest_ids=arrests)
        with db.session() as s:
            return append(s, event).id

    by_person = entry([*others, site.canary_person], [])
    by_arrest = entry(others[:3], [*others[3:], site.canary_arrest])
    clean = entry(others, others)
    again = entry([site.canary_person, *others], [])
    keys = [f.dedupe_key for f in flags(db)]
    assert keys == [f"entry:{i}" for i in (by_person, by_arrest, again)]
    assert f"entry:{clean}" not in keys


def test_an_external_entry_written_without_its_content_is_refused(
    client: TestClient, db: Database, world: World
) -> None:
    # PostgreSQL tests the canaries against the ids on the entry's own row; a write path that
    # left the content out (so no other check could read what the entry says) is refused.
    site = build(client, db, world)
    if db.dialect != "postgresql":
        pytest.skip("SQLite's trigger reads the row's ids in its WHEN; no function to refuse")
    event = _read(site, world, external=True)
    with pytest.raises(DBAPIError, match="without its content"), db.session() as s:
        s.connection().exec_driver_sql(
            "INSERT INTO audit_entries (at, kind, action, outcome, user_id, agency_id, "
            "agreement_id, commitment, person_ids, arrest_ids) VALUES (now(), 'search', "
            "'person.search', 'ok', %(u)s, %(a)s, %(g)s, %(c)s, ARRAY[]::bigint[], "
            "ARRAY[]::bigint[])",
            {"u": event.user_id, "a": event.agency_id, "g": event.agreement_id, "c": b"x" * 32},
        )
    assert flags(db) == []


def test_internal_and_refused_entries_naming_a_canary_raise_nothing(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)  # planting wrote an internal entry naming the canary
    with db.session() as s:
        append(s, _read(site, world, external=False))
        append(s, _read(site, world, external=True, outcome=Outcome.REFUSED))
    assert flags(db) == []


def _drop_canary_trigger(db: Database) -> None:
    """What the schema's owner can do: drop the trigger that flags a canary read at once."""
    with db.session() as s:
        if s.get_bind().dialect.name == "sqlite":
            s.connection().exec_driver_sql("DROP TRIGGER audit_entries_canary")
        else:
            s.connection().exec_driver_sql("DROP TRIGGER audit_entries_canary ON audit_entries")


def test_an_operator_who_drops_the_trigger_is_caught_by_the_detector(
    client: TestClient, db: Database, world: World
) -> None:
    # Dropping the trigger is possible for the schema's owner; it is not silent: the canary
    # detector reads the log itself and raises the same flag the trigger would have.
    site = build(client, db, world)
    _drop_canary_trigger(db)
    found = client.get(
        "/api/v1/persons", params={"sid": site.canary_sid, **PURPOSE}, headers=world.auth("ice")
    )
    assert found.status_code == 200 and flags(db) == []
    with db.session() as s:
        entry = s.scalars(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)).one()
        assert len(run_detectors(s)) == 1
    assert [f.dedupe_key for f in flags(db)] == [f"entry:{entry}"]


def test_canary_reads_count_before_and_after_integration(
    client: TestClient, db: Database, world: World
) -> None:
    # The detector and the reviewers' count find entries by subject (audit.repository.
    # entries_naming): a read the integrator has not reached yet counts as much as an old one.
    site = build(client, db, world)
    _drop_canary_trigger(db)
    ice, overseer = world.auth("ice"), world.auth("overseer")

    def canary_read(path: str) -> int:
        assert client.get(path, params=PURPOSE, headers=ice).status_code == 200
        with db.session() as s:
            return s.scalars(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)).one()

    by_person = canary_read(f"/api/v1/persons/{site.canary_person}")
    log.integrate_all(db)
    by_arrest = canary_read(f"/api/v1/arrests/{site.canary_arrest}")
    with db.session() as s:
        assert repo.has_pending(s)
        assert len(run_detectors(s)) == 2
    assert sorted(f.dedupe_key for f in flags(db)) == [f"entry:{by_person}", f"entry:{by_arrest}"]
    listed = client.get(f"{OVERSIGHT}/canaries", headers=overseer)
    assert listed.json()["items"][0]["flags"] == 2
    log.integrate_all(db)
    again = client.get(f"{OVERSIGHT}/canaries", headers=overseer)
    assert again.json()["items"][0]["flags"] == 2
    with db.session() as s:
        assert run_detectors(s) == []


def test_the_external_answer_for_a_canary_is_shaped_like_a_real_one(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)
    ice = world.auth("ice")
    pairs = [
        ("/api/v1/persons", {"sid": site.canary_sid}, {"sid": site.twin_sid}),
        (f"/api/v1/persons/{site.canary_person}", {}, None),
        (f"/api/v1/arrests/{site.canary_arrest}", {}, None),
        ("/api/v1/arrests", {"otn": "N9000001-1"}, {"otn": "N9000002-2"}),
    ]
    twins = {
        f"/api/v1/persons/{site.canary_person}": f"/api/v1/persons/{site.twin_person}",
        f"/api/v1/arrests/{site.canary_arrest}": f"/api/v1/arrests/{site.twin_arrest}",
    }
    for path, canary_params, twin_params in pairs:
        canary = client.get(path, params={**canary_params, **PURPOSE}, headers=ice)
        twin_path = twins.get(path, path)
        twin = client.get(twin_path, params={**(twin_params or {}), **PURPOSE}, headers=ice)
        assert canary.status_code == twin.status_code == 200
        assert _shape(canary.json()) == _shape(twin.json()), path
        assert sorted(canary.headers) == sorted(twin.headers)
        # Same agreement, same clauses: the decision says nothing about canaries.
        assert canary.json()["decision"] == twin.json()["decision"]
    # And the name search lists both alike, in name order.
    both = client.get("/api/v1/persons", params={"name": "zbrozek", **PURPOSE}, headers=ice)
    items = both.json()["items"]
    assert [p["given_name"] for p in items] == ["Halina", "Marek"]
    assert _shape(items[0]) == _shape(items[1])


INTERNAL_PERSON_QUERIES = [
    {"name": "zbrozek"},
    {"name": "zbrozek halina"},
    {"sid": "CAN-0001"},
    {"fbi_number": "0000001CD1"},
    {"birth_date": "1981-02-11"},
    {"birth_year": 1981},
]
INTERNAL_ARREST_QUERIES = [
    {"otn": "N9000001-1"},
    {"incident_number": "202517000001"},
    {"arrested_from": "2025-06-11T00:00:00Z", "arrested_to": "2025-06-12T00:00:00Z"},
    {"statute": "18 § 3921(a)"},
    {"state": "entered"},
]


@pytest.mark.parametrize("reader", ["reader", "charging", "clerk", "admin", "intake"])
def test_internal_readers_cannot_find_a_canary_by_any_criterion(
    client: TestClient, db: Database, world: World, reader: str
) -> None:
    site = build(client, db, world)
    auth = world.auth(reader)
    for query in INTERNAL_PERSON_QUERIES:
        page = client.get("/api/v1/persons", params={**query, "count": True}, headers=auth)
        assert page.status_code == 200, (query, page.text)
        ids = [p["id"] for p in page.json()["items"]]
        assert site.canary_person not in ids, query
        assert page.json()["total"] == len(ids), query
    for query in INTERNAL_ARREST_QUERIES:
        page = client.get("/api/v1/arrests", params={**query, "count": True}, headers=auth)
        assert page.status_code == 200, (query, page.text)
        ids = [a["id"] for a in page.json()["items"]]
        assert site.canary_arrest not in ids, query
        assert page.json()["total"] == len(ids), query
    # The twin, entered the same way, is found: the searches above could have found a canary.
    twin = client.get("/api/v1/persons", params={"sid": site.twin_sid}, headers=auth)
    assert [p["id"] for p in twin.json()["items"]] == [site.twin_person]
    missing = [
        f"/api/v1/persons/{site.canary_person}",
        f"/api/v1/arrests/{site.canary_arrest}",
        f"/api/v1/persons/{site.canary_person}/history",
        f"/api/v1/arrests/{site.canary_arrest}/history",
    ]
    unused = [
        f"/api/v1/persons/{site.canary_person + 1000}",
        f"/api/v1/arrests/{site.canary_arrest + 1000}",
        f"/api/v1/persons/{site.canary_person + 1000}/history",
        f"/api/v1/arrests/{site.canary_arrest + 1000}/history",
    ]
    for hidden, absent in zip(missing, unused, strict=True):
        a = client.get(hidden, headers=auth)
        b = client.get(absent, headers=auth)
        assert a.status_code == b.status_code == 404, (hidden, a.text)
        assert a.json()["error"]["code"] == b.json()["error"]["code"]
    # No internal read ever flags anything: canaries are hidden, not tripped.
    assert flags(db) == []


def test_intake_never_links_a_new_arrest_to_a_canary(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)
    body = arrest(3, "Zbrozek", "Halina", sid=site.canary_sid)
    made = client.post("/api/v1/arrests", json=body, headers=world.auth("intake"))
    assert made.status_code == 201, made.text
    assert made.json()["person_ids"] != [site.canary_person]


def test_reviewers_see_canaries_and_no_one_else_does(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)
    listed = client.get(f"{OVERSIGHT}/canaries", headers=world.auth("overseer"))
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item["person_id"] == site.canary_person and item["flags"] == 0
    client.get(f"/api/v1/persons/{site.canary_person}", params=PURPOSE, headers=world.auth("ice"))
    again = client.get(f"{OVERSIGHT}/canaries", headers=world.auth("overseer"))
    assert again.json()["items"][0]["flags"] == 1
    for who in ("reader", "admin", "clerk", "ice", "fbi"):
        refused = client.get(f"{OVERSIGHT}/canaries", headers=world.auth(who))
        assert refused.status_code == 403, who
        assert refused.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["arrest"]["involvements"].append(
            {"role": "victim", "person": {"family_name": "Roe", "given_name": "Jan"}}
        ), "arrest.involvements"),
        (lambda b: b["arrest"]["involvements"][0].update(
            {"person": None, "person_id": 1}
        ), "arrest.involvements.0.person_id"),
        (lambda b: b["arrest"]["involvements"][0]["person"].update(
            {"birth_date": "2012-01-01"}
        ), "arrest.involvements.0.person.birth_date"),
        (lambda b: b["arrest"]["involvements"][0]["person"].pop("birth_date"),
         "arrest.involvements.0.person.birth_date"),
        (lambda b: b["arrest"].update({"ori": "DCICE0000"}), "arrest.ori"),
        (lambda b: b.update({"label": ""}), "label"),
    ],
)  # fmt: skip
def test_a_bad_canary_is_refused_naming_the_field(
    client: TestClient, db: Database, world: World, change: Any, field: str
) -> None:
    build(client, db, world)
    body = {"label": "second", "arrest": arrest(4, "Quist", "Orla", sid="CAN-0004")}
    change(body)
    refused = client.post(f"{OVERSIGHT}/canaries", json=body, headers=world.auth("overseer"))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field


def test_only_a_reviewer_plants_a_canary(client: TestClient, db: Database, world: World) -> None:
    build(client, db, world)
    body = {"label": "x", "arrest": arrest(5, "Quist", "Orla", sid="CAN-0005")}
    for who in ("intake", "admin", "ice"):
        refused = client.post(f"{OVERSIGHT}/canaries", json=body, headers=world.auth(who))
        assert refused.status_code == 403, who
    again = {"label": "x", "arrest": arrest(1, "Zbrozek", "Halina", sid="CAN-0001")}
    replay = client.post(f"{OVERSIGHT}/canaries", json=again, headers=world.auth("overseer"))
    assert replay.status_code == 409 and replay.json()["error"]["field"] == "arrest.report_id"


@pytest.mark.parametrize(
    ("step", "body", "who"),
    [
        ("charging-decision", {"outcome": "approved"}, "charging"),
        (
            "seal",
            {"action": "seal", "reason": "court order", "order_reference": "CP-51-MD-1"},
            "clerk",
        ),
    ],
)
def test_workflow_steps_on_a_canary_answer_like_an_unused_id(
    client: TestClient, db: Database, world: World, step: str, body: dict[str, str], who: str
) -> None:
    site = build(client, db, world)
    auth = world.auth(who)
    hidden = client.post(f"/api/v1/arrests/{site.canary_arrest}/{step}", json=body, headers=auth)
    unused = client.post(
        f"/api/v1/arrests/{site.canary_arrest + 1000}/{step}", json=body, headers=auth
    )
    assert hidden.status_code == unused.status_code, hidden.text
    assert hidden.json()["error"]["code"] == unused.json()["error"]["code"]
    # The twin takes the same step: the refusal comes from the canary, not the request.
    twin = client.post(f"/api/v1/arrests/{site.twin_arrest}/{step}", json=body, headers=auth)
    assert twin.status_code in (200, 201), twin.text


def test_a_canary_never_takes_over_a_real_person(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)
    # The twin's SID: intake would link the arrest to the real twin by exact identifier.
    body = {"label": "copy", "arrest": arrest(6, "Zbrozek", "Marek", sid=site.twin_sid)}
    refused = client.post(f"{OVERSIGHT}/canaries", json=body, headers=world.auth("overseer"))
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["field"] == "arrest.involvements.0.person.sid"
    twin = client.get(
        "/api/v1/persons", params={"sid": site.twin_sid}, headers=world.auth("reader")
    )
    assert [p["id"] for p in twin.json()["items"]] == [site.twin_person]


def _oversight_entries(db: Database, after: int) -> list[tuple[str, str, int | None]]:
    with db.session() as s:
        rows = s.execute(
            select(AuditEntry.action, AuditEntry.outcome, AuditEntry.user_id)
            .where(AuditEntry.id > after, AuditEntry.action.like("%canar%"))
            .order_by(AuditEntry.id)
        ).all()
    return [(a, str(o), u) for a, o, u in rows]


def _last_entry(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0)


def test_a_canary_one_reviewer_plants_stays_pending_until_another_confirms_it(
    client: TestClient, db: Database, world: World
) -> None:
    build(client, db, world)
    start = _last_entry(db)
    body = {"label": "second wire", "arrest": arrest(8, "Quist", "Orla", sid="CAN-0008")}
    planted = client.post(f"{OVERSIGHT}/canaries", json=body, headers=world.auth("overseer"))
    assert planted.status_code == 201, planted.text
    canary = planted.json()
    assert canary["pending"] is True and canary["person_id"] is canary["arrest_id"] is None
    assert canary["arrest"]["report_id"] == body["arrest"]["report_id"]
    confirm = f"{OVERSIGHT}/canaries/{canary['id']}/confirm"

    def ice_finds() -> list[int]:
        found = client.get(
            "/api/v1/persons", params={"sid": "CAN-0008", **PURPOSE}, headers=world.auth("ice")
        )
        assert found.status_code == 200, found.text
        return [p["id"] for p in found.json()["items"]]

    # Pending: no record exists, by any criterion an outside agency could use.
    assert ice_finds() == []
    by_name = client.get(
        "/api/v1/persons", params={"name": "quist", **PURPOSE}, headers=world.auth("ice")
    )
    assert by_name.json()["items"] == []
    # The planter cannot confirm alone, not with a second session (a fresh token) either.
    with db.session() as s:
        _, second = identity.issue_token(
            s, actor=SYSTEM, user_id=world.users["overseer"], name="second session",
            lifetime=timedelta(hours=1),
        )  # fmt: skip
    for headers in (world.auth("overseer"), {"Authorization": f"Bearer {second}"}):
        refused = client.post(confirm, headers=headers)
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "second_reviewer_required" and error["field"] == "canary_id"
    # No one without the reviewer permission confirms either: the administrator, an agency.
    for who in ("admin", "ice", "intake"):
        refused = client.post(confirm, headers=world.auth(who))
        assert refused.status_code == 403, who
        assert refused.json()["error"]["code"] == "permission_denied"
    assert ice_finds() == []
    with db.session() as s:
        row = s.get(Canary, canary["id"])
        assert row is not None and row.confirmed_at is None and row.arrest_id is None
    # A second, different reviewer confirms: the record exists for outside agencies now.
    confirmed = client.post(confirm, headers=world.auth("overseer2"))
    assert confirmed.status_code == 200, confirmed.text
    done = confirmed.json()
    assert done["pending"] is False and done["confirmed_by_id"] == world.users["overseer2"]
    assert ice_finds() == [done["person_id"]]
    again = client.post(confirm, headers=world.auth("overseer2"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_confirmed"
    # Both acts audited, and each refusal exactly once, by who tried.
    u = world.users
    refusal = f"POST {confirm}"
    assert _oversight_entries(db, start) == [
        ("oversight.canary.plant", "ok", u["overseer"]),
        (refusal, "refused", u["overseer"]),
        (refusal, "refused", u["overseer"]),
        (refusal, "refused", u["admin"]),
        (refusal, "refused", u["ice"]),
        (refusal, "refused", u["intake"]),
        ("oversight.canary.confirm", "ok", u["overseer2"]),
        (refusal, "refused", u["overseer2"]),
    ]


def test_confirming_an_unknown_canary_is_404(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)
    missing = client.post(
        f"{OVERSIGHT}/canaries/{site.canary_id + 1000}/confirm", headers=world.auth("overseer2")
    )
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "canary_id"


def test_a_pending_canary_whose_keys_were_taken_meanwhile_is_refused_on_confirming(
    client: TestClient, db: Database, world: World
) -> None:
    build(client, db, world)
    body = {"label": "late", "arrest": arrest(9, "Quist", "Orla", sid="CAN-0009")}
    planted = client.post(f"{OVERSIGHT}/canaries", json=body, headers=world.auth("overseer"))
    assert planted.status_code == 201, planted.text
    # Intake enters a real arrest with the same report id before the confirmation.
    real = client.post("/api/v1/arrests", json=body["arrest"], headers=world.auth("intake"))
    assert real.status_code == 201, real.text
    refused = client.post(
        f"{OVERSIGHT}/canaries/{planted.json()['id']}/confirm", headers=world.auth("overseer2")
    )
    assert refused.status_code == 409 and refused.json()["error"]["field"] == "arrest.report_id"
