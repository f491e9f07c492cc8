"""What-if replay: real external reads replayed under a proposed version, as attackers try.

ICE reads three arrests through the real read service: Jan Kowalczyk's (M1, with a victim
Anna Kowalczyk), Piotr Kowalczyk's (F2) and Ewa Kowalczyk's (a summary offence, outside the
agreement's grades). Each test replays those reads under a proposed version and checks what
the proposal would change, and that nothing but the request's audit entry is written.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openpars.access import service as reads
from openpars.access.external import compile_grant
from openpars.access.replay import recorded_read, replay
from openpars.access.schemas import ArrestQuery, PersonQuery, ReadContext
from openpars.agreements import service as agreements
from openpars.agreements.floor import get_floor
from openpars.agreements.grants import Grant
from openpars.agreements.models import Agreement
from openpars.agreements.schemas import AgreementDocument
from openpars.agreements.scope import Scope
from openpars.audit.models import AuditEntry
from openpars.cli import app
from openpars.db import Database, utcnow
from openpars.errors import Forbidden, InvalidInput
from openpars.governance.quorum import ProposalAction
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import Role
from openpars.oversight.whatif import of_document, what_if
from openpars.records.models import Involvement
from tests.access.agreements import activate, default_scope
from tests.factories import World, add_user, build_world
from tests.governance.helpers import Gov, register
from tests.oversight.canary_site import arrest

runner = CliRunner()
WHAT_IF = "/api/v1/oversight/what-if"
WARRANT = ReadContext(purpose="warrant-service")
INVESTIGATION_ONLY = [{"purpose": "criminal-investigation", "case_reference_required": True}]
ACTIONS = ("person.search", "person.get", "arrest.search", "arrest.get")


@dataclass
class Site:
    """The agreement, the arrests and the reads made."""

    agreement_id: int
    document: dict[str, Any]
    jan: int
    anna: int
    piotr: int
    ewa: int
    arrest_jan: int
    reads: int


def _arrest(n: int, given: str, grade: str, sid: str, victim: bool = False) -> dict[str, Any]:
    body = arrest(n, "Kowalczyk", given, sid=sid)
    body["charges"][0]["grade"] = grade
    if victim:
        other = copy.deepcopy(body["involvements"][0])
        other["role"] = "victim"
        other["person"].update(given_name="Anna", sid=None, fbi_number=None)
        body["involvements"].append(other)
    return body


def build(client: TestClient, db: Database, world: World) -> Site:
    """The agreement in force, the oversight reviewer, three arrests and ICE's reads."""
    with db.session() as s:
        agreement = activate(s, world)
        add_user(s, world, "overseer", "City of Philadelphia", [Role.OVERSIGHT])
        version = agreements.current_version(s, agreement=agreement)
        document = copy.deepcopy(version.content)
    made = []
    for n, (given, grade, victim) in enumerate(
        (("Jan", "M1", True), ("Piotr", "F2", False), ("Ewa", "S", False)), start=1
    ):
        response = client.post(
            "/api/v1/arrests",
            json=_arrest(n, given, grade, f"WIF-{n:04d}", victim),
            headers=world.auth("intake"),
        )
        assert response.status_code == 201, response.text
        made.append(response.json())
    ice = world.principals["ice"]
    # One external unit per read, as requests run them (on PostgreSQL a search's entry commits
    # its unit).
    with db.session(external=True) as s:
        by_name = reads.search_persons(
            s, principal=ice, query=PersonQuery(name="Kowalczyk"), context=WARRANT
        )
    assert {p.given_name for p in by_name.items} == {"Jan", "Piotr"}
    case = ReadContext(purpose="criminal-investigation", case_number="N9000001-1")
    with db.session(external=True) as s:
        reads.search_persons(s, principal=ice, query=PersonQuery(sid="WIF-0001"), context=case)
    with db.session(external=True) as s:
        reads.get_arrest(s, principal=ice, arrest_id=made[0]["arrest_id"], context=WARRANT)
    return Site(
        agreement_id=agreement.id,
        document=document,
        jan=made[0]["person_ids"][0],
        anna=made[0]["person_ids"][1],
        piotr=made[1]["person_ids"][0],
        ewa=made[2]["person_ids"][0],
        arrest_jan=made[0]["arrest_id"],
        reads=3,
    )


@pytest.fixture
def site(client: TestClient, db: Database, world: World) -> Site:
    return build(client, db, world)


def proposed(site: Site, **scope: Any) -> dict[str, Any]:
    """The agreement's document with scope clauses replaced."""
    document = copy.deepcopy(site.document)
    document["scope"] = default_scope(**scope)
    return document


def _entries(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def _run(client: TestClient, world: World, site: Site, document: dict[str, Any]) -> Any:
    body = {"agreement_id": site.agreement_id, "version": document, "months": 1}
    response = client.post(WHAT_IF, json=body, headers=world.auth("overseer"))
    assert response.status_code == 200, response.text
    return response.json()


def test_same_version_changes_nothing(client: TestClient, world: World, site: Site) -> None:
    report = _run(client, world, site, proposed(site))
    totals = report["totals"]
    assert totals["queries"] == totals["replayed"] == site.reads
    assert totals["by_change"] == {"same": 3}
    name_search = report["items"][0]
    assert name_search["action"] == "person.search"
    # Jan and Piotr, exactly as the read returned them.
    assert name_search["recorded_persons"] == name_search["current"]["persons"] == 2


def test_narrowing_shows_fewer_fields_and_persons(
    client: TestClient, world: World, site: Site
) -> None:
    fields = dict(default_scope()["person_fields"])
    del fields["phone"]
    narrow = proposed(site, person_fields=fields, grades=["F1", "F2", "F3"])
    report = _run(client, world, site, narrow)
    totals = report["totals"]
    by_entry = {i["action"] + (i["purpose"] or ""): i for i in report["items"]}
    name_search = by_entry["person.searchwarrant-service"]
    assert name_search["change"] == "fewer"
    assert (name_search["current"]["persons"], name_search["proposed"]["persons"]) == (2, 1)
    assert name_search["persons_fewer"] == 1 and name_search["fields_fewer"] == ["person.phone"]
    # Jan's own arrest (M1) leaves the scope: the fetch by id is now a 404.
    fetch = by_entry["arrest.getwarrant-service"]
    assert fetch["change"] == "newly_refused" and fetch["proposed"]["code"] == "not_found"
    assert totals["distinct_persons_fewer"] == 1 and totals["persons_more"] == 0
    assert totals["fields_fewer"]["person.phone"] == 3


def test_widening_shows_more_fields_and_persons(
    client: TestClient, world: World, site: Site
) -> None:
    fields = {**default_scope()["person_fields"], "sex": "visible", "phone": "visible"}
    wide = proposed(site, person_fields=fields, grades=["F1", "F2", "F3", "M1", "M2", "M3", "S"])
    wide["terms"] = "Arrestees only.\nRenewed yearly."  # a multi-line clause is accepted
    report = _run(client, world, site, wide)
    name_search = report["items"][0]
    assert name_search["change"] == "more"
    # Ewa's summary offence comes in; Anna, a victim, never does (the site floor).
    assert (name_search["current"]["persons"], name_search["proposed"]["persons"]) == (2, 3)
    assert name_search["fields_more"] == ["person.sex"]
    assert name_search["fields_masked_otherwise"] == [
        {"field": "person.phone", "current": "redact", "proposed": "visible"}
    ]
    assert report["totals"]["distinct_persons_more"] == 1
    assert report["totals"]["fields_more"] == {"person.sex": 3}


def test_removed_purpose_shows_refusals(client: TestClient, world: World, site: Site) -> None:
    only = proposed(site, purposes=INVESTIGATION_ONLY)
    report = _run(client, world, site, only)
    totals = report["totals"]
    assert totals["newly_refused"] == 2
    assert totals["newly_refused_by_code"] == {"purpose_not_allowed": 2}
    refused = [i for i in report["items"] if i["change"] == "newly_refused"]
    assert {i["purpose"] for i in refused} == {"warrant-service"}
    assert all(i["proposed"]["field"] == "purpose" for i in refused)
    assert all(i["persons_fewer"] == i["current"]["persons"] > 0 for i in refused)
    kept = [i for i in report["items"] if i["purpose"] == "criminal-investigation"]
    assert [i["change"] for i in kept] == ["same"]


def test_victims_never_appear_even_under_a_scope_past_the_floor(
    db: Database, site: Site, client: TestClient, world: World
) -> None:
    # Through the service: a version naming victims and witnesses crosses the floor and is
    # refused, naming the clause; nothing is written.
    wide = proposed(site, roles=["arrestee", "victim", "witness", "other"])
    before = _entries(db)
    with db.session() as s, pytest.raises(InvalidInput) as refused:
        what_if(
            s,
            actor=world.principals["overseer"],
            proposed=of_document(s, site.agreement_id, wide, actor=world.principals["overseer"]),
            months=1,
        )
    assert refused.value.field == "scope.roles" and refused.value.code == "floor_crossed"
    assert _entries(db) == before
    # Over the API: 422 naming the clause, and only the refusal's own audit entry.
    body = {"agreement_id": site.agreement_id, "version": wide, "months": 1}
    response = client.post(WHAT_IF, json=body, headers=world.auth("overseer"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "scope.roles" and "victims" in error["message"]
    assert _entries(db) == before + 1
    # Even a policy compiled from such a scope without the check (the enforcement point's
    # own compilation) drops the floor's roles: the victim is never in a replayed answer.
    with db.session() as s:
        scope = Scope.model_validate(wide["scope"])
        grant = Grant(site.agreement_id, 99, "x" * 64, scope, utcnow(), utcnow(), b"k" * 32)
        policy = compile_grant(grant, get_floor(s))
        assert s.scalar(select(Involvement.role).where(Involvement.person_id == site.anna))
        for entry_id, content in _read_contents(s, site.agreement_id):
            read = recorded_read(json.loads(content))
            purposes = {"warrant-service": False, "criminal-investigation": True}
            shown = replay(s, policy=policy, purposes=purposes, read=read)
            assert site.anna not in shown.person_ids, entry_id
            assert not shown.refused


def _read_contents(s: Session, agreement_id: int) -> list[tuple[int, bytes]]:
    rows = s.execute(
        select(AuditEntry.id, AuditEntry.content)
        .where(AuditEntry.agreement_id == agreement_id, AuditEntry.action.in_(ACTIONS))
        .order_by(AuditEntry.id)
    ).all()
    return [(i, c) for i, c in rows]


def test_replay_writes_one_audit_entry_and_no_simulated_reads(
    db: Database, client: TestClient, world: World, site: Site
) -> None:
    before = _entries(db)
    with db.session() as s:
        reads_before = s.scalar(
            select(func.count()).where(AuditEntry.agreement_id == site.agreement_id)
        )
    _run(client, world, site, proposed(site))
    assert _entries(db) == before + 1
    with db.session() as s:
        last = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
        assert last.action == "oversight.what_if" and last.user_id == world.users["overseer"]
        assert (
            s.scalar(select(func.count()).where(AuditEntry.agreement_id == site.agreement_id))
            == reads_before
        )


def test_an_agency_and_the_administrator_cannot_call_it(
    db: Database, client: TestClient, world: World, site: Site
) -> None:
    body = {"agreement_id": site.agreement_id, "version": proposed(site), "months": 1}
    for who in ("ice", "fbi", "admin", "reader"):
        response = client.post(WHAT_IF, json=body, headers=world.auth(who))
        assert response.status_code == 403, (who, response.text)
    with db.session() as s, pytest.raises(Forbidden):
        of_document(s, site.agreement_id, proposed(site), actor=world.principals["ice"])


def test_bad_input(db: Database, client: TestClient, world: World, site: Site) -> None:
    overseer = world.auth("overseer")
    body = {"agreement_id": site.agreement_id, "version": proposed(site), "months": 0}
    response = client.post(WHAT_IF, json=body, headers=overseer)
    assert response.status_code == 422 and "months" in response.text
    body["months"] = 25
    assert client.post(WHAT_IF, json=body, headers=overseer).status_code == 422
    body.update(months=1, agreement_id=999_999)
    unknown = client.post(WHAT_IF, json=body, headers=overseer)
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "agreement_id"
    missing = client.get("/api/v1/proposals/999999/what-if", headers=overseer)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "proposal_id"
    again = client.post("/api/v1/proposals/999999/what-if", json={"months": 1}, headers=overseer)
    assert again.status_code == 404 and again.json()["error"]["field"] == "proposal_id"
    months = client.post("/api/v1/proposals/1/what-if", json={"months": 30}, headers=overseer)
    assert months.status_code == 422 and "months" in months.text
    # A window holding more reads than the site replays at once: refused, naming months.
    before = _entries(db)
    overseer_p = world.principals["overseer"]
    with db.session() as s:
        target = of_document(s, site.agreement_id, proposed(site), actor=overseer_p)
        with pytest.raises(InvalidInput) as many:
            what_if(s, actor=overseer_p, proposed=target, months=1, max_queries=2)
    assert many.value.field == "months" and many.value.code == "too_many_queries"
    assert _entries(db) == before
    # Another agency's document against this agreement's queries.
    other = proposed(site)
    other["grantee_agency_id"] = world.agencies["Federal Bureau of Investigation"]
    body.update(agreement_id=site.agreement_id, version=other)
    wrong = client.post(WHAT_IF, json=body, headers=overseer)
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "grantee_agency_id"


def last_params(db: Database, action: str) -> dict[str, Any]:
    """The parameters of the newest audit entry with this action."""
    with db.session() as s:
        content = s.scalars(
            select(AuditEntry.content)
            .where(AuditEntry.action == action)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        ).one()
    params: dict[str, Any] = json.loads(bytes(content))["params"]
    return params


def narrowed_proposal(db: Database, world: World, site: Site) -> tuple[Gov, int]:
    """The owners' board, and an amendment narrowing the purposes to investigation only (two of
    ICE's three reads would be refused): the board and the open proposal's id."""
    gov = Gov(world=world, db=db, t0=utcnow(), agreement_id=site.agreement_id)
    with db.session() as s:
        for who in ("da", "court", "city"):
            register(s, gov, who)
        only = AgreementDocument.model_validate(proposed(site, purposes=INVESTIGATION_ONLY))
        agreements.update_agreement(
            s, actor=SYSTEM, agreement_id=site.agreement_id, data=only, reason="narrow purposes"
        )
    return gov, gov.propose(ProposalAction.AMEND)


def test_a_proposal_shows_its_replay_to_voters(
    db: Database, client: TestClient, world: World, site: Site
) -> None:
    gov, proposal_id = narrowed_proposal(db, world, site)
    shown = client.get(f"/api/v1/proposals/{proposal_id}", headers=gov.auth("da"))
    assert shown.status_code == 200, shown.text
    link = shown.json()["what_if"]
    assert link == f"/api/v1/proposals/{proposal_id}/what-if"
    # Kept with the proposal when it opened, over the last 6 months; replayed again over 2.
    kept = client.get(link, headers=gov.auth("da"))
    assert kept.status_code == 200 and kept.json()["months"] == 6, kept.text
    # A voter may not replace the replay the other voters see; the oversight role replays again.
    refused = client.post(link, json={"months": 2}, headers=gov.auth("da"))
    assert refused.status_code == 403, refused.text
    again = client.post(link, json={"months": 2}, headers=world.auth("overseer"))
    assert again.status_code == 200, again.text
    report = client.get(link, headers=gov.auth("da"))
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["proposal_id"] == proposal_id and body["proposed_version"] == 2
    assert body["totals"]["newly_refused"] == 2 and body["months"] == 2
    assert client.get(link, headers=world.auth("ice")).status_code == 403
    # A voter replays the stored version only, never a document of their own making.
    mine = {"agreement_id": site.agreement_id, "version": proposed(site), "months": 1}
    assert client.post(WHAT_IF, json=mine, headers=gov.auth("da")).status_code == 403
    with db.session() as s, pytest.raises(Forbidden):
        of_document(s, site.agreement_id, proposed(site), actor=gov.voters["da"])
    # Pagination: one query per page, totals over all.
    page = client.get(link, params={"limit": 1, "offset": 1}, headers=gov.auth("da")).json()
    assert len(page["items"]) == 1 and page["items"][0]["entry_id"] == body["items"][1]["entry_id"]
    assert page["totals"] == body["totals"]
    with db.session() as s:
        assert s.get(Agreement, site.agreement_id) is not None
    # The renewal report carries the same replay's totals when asked for the proposal's.
    today = utcnow().date().isoformat()
    params = {"agreement": site.agreement_id, "from": today, "to": today,
              "what_if_proposal": proposal_id, "what_if_months": 2}  # fmt: skip
    shown_in_report = client.get(
        "/api/v1/oversight/reports", params={**params, "format": "json"}, headers=gov.auth("da")
    )
    assert shown_in_report.status_code == 200, shown_in_report.text
    section = shown_in_report.json()["what_if"]
    assert section["proposal"] == proposal_id and section["proposed_version"] == 2
    assert section["newly_refused"] == body["totals"]["newly_refused"] == 2
    assert section["details"] == link
    html = client.get("/api/v1/oversight/reports", params=params, headers=gov.auth("da"))
    assert html.status_code == 200 and 'id="what-if"' in html.text
    # An unknown agreement, or a proposal on another one: refused naming the argument, and
    # nothing written but the refusal.
    other = client.get(
        "/api/v1/oversight/reports",
        params={**params, "agreement": site.agreement_id + 1000, "format": "json"},
        headers=gov.auth("da"),
    )
    assert other.status_code == 404 and other.json()["error"]["field"] == "agreement"
    second = proposed(site)
    second.update(
        name="The FBI agreement",
        grantee_agency_id=world.agencies["Federal Bureau of Investigation"],
    )
    with db.session() as s:
        other_id = agreements.create_agreement(
            s, actor=SYSTEM, data=AgreementDocument.model_validate(second)
        ).id
    before = _entries(db)
    wrong = client.get(
        "/api/v1/oversight/reports",
        params={**params, "agreement": other_id, "format": "json"},
        headers=gov.auth("da"),
    )
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["error"]["field"] == "what_if_proposal"
    assert _entries(db) == before + 1


def test_console_what_if(fresh_db: Database, tmp_path: Path, settings: Any) -> None:
    from openpars.web.app import create_app

    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
    with TestClient(create_app(settings, database=fresh_db)) as client:
        site = build(client, fresh_db, world)
    file = tmp_path / "version.json"
    only = proposed(site, purposes=INVESTIGATION_ONLY)
    file.write_text(json.dumps(only), encoding="utf-8")
    args = [
        "oversight",
        "what-if",
        "--agreement",
        str(site.agreement_id),
        "--version-file",
        str(file),
        "--months",
        "1",
        "--db",
        url,
    ]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["newly_refused"] == 2
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "newly refused 2" in table.output
    refused = runner.invoke(app, [*args, "--as", "ice"])
    assert refused.exit_code == 1 and "oversight:read" in refused.output
    bad = runner.invoke(app, [*args[:-4], "--months", "40", "--db", url])
    assert bad.exit_code == 1 and "(field: months)" in bad.output
    floor = tmp_path / "floor.json"
    floor.write_text(json.dumps(proposed(site, roles=["arrestee", "witness"])), encoding="utf-8")
    crossing = runner.invoke(
        app,
        [
            "oversight",
            "what-if",
            "--agreement",
            str(site.agreement_id),
            "--version-file",
            str(floor),
            "--db",
            url,
        ],
    )
    assert crossing.exit_code == 1 and "(field: scope.roles)" in crossing.output


def test_arrest_search_replayed_with_its_fields(
    db: Database, client: TestClient, world: World, site: Site
) -> None:
    with db.session(external=True) as s:
        found = reads.search_arrests(
            s, principal=world.principals["ice"], query=ArrestQuery(otn="N9000002-2"),
            context=WARRANT,
        )  # fmt: skip
        assert found.total == 1
    fields = {k: v for k, v in default_scope()["arrest_fields"].items() if k != "state"}
    report = _run(client, world, site, proposed(site, arrest_fields=fields))
    item = next(i for i in report["items"] if i["action"] == "arrest.search")
    assert (item["current"]["arrests"], item["proposed"]["arrests"]) == (1, 1)
    assert item["fields_fewer"] == ["arrest.state"] and item["change"] == "fewer"
    # Without the OTN shown whole, the criterion itself is refused, as a live search would be.
    fields = {**default_scope()["arrest_fields"], "otn": "redact"}
    report = _run(client, world, site, proposed(site, arrest_fields=fields))
    item = next(i for i in report["items"] if i["action"] == "arrest.search")
    assert item["change"] == "newly_refused"
    assert (item["proposed"]["code"], item["proposed"]["field"]) == ("criterion_not_allowed", "otn")


def test_a_person_fetch_replayed_and_refused_when_the_person_leaves_the_scope(
    db: Database, client: TestClient, world: World, site: Site
) -> None:
    with db.session(external=True) as s:
        got = reads.get_person(
            s, principal=world.principals["ice"], person_id=site.jan, context=WARRANT
        )
        assert got.person.id == site.jan
    same = _run(client, world, site, proposed(site))
    fetch = next(i for i in same["items"] if i["action"] == "person.get")
    assert fetch["change"] == "same"
    assert fetch["recorded_persons"] == fetch["current"]["persons"] == 1
    # Jan's only arrest is M1: with felonies alone in scope the fetch by id becomes a 404.
    narrow = _run(client, world, site, proposed(site, grades=["F1", "F2", "F3"]))
    fetch = next(i for i in narrow["items"] if i["action"] == "person.get")
    assert fetch["change"] == "newly_refused"
    assert (fetch["proposed"]["code"], fetch["proposed"]["field"]) == ("not_found", "person_id")
