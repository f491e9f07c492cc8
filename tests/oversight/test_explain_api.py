"""Explanations and coverage through the real API, the console and the service, as attackers try.

A small scenario: ICE works one of its cases (explained), looks up a person awaiting the DA
(never charged), and two entries of a kind the read service no longer lets through are put in
the log directly (a purpose outside the agreement, a case that does not exist).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from openpars.access import service as reads
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.audit import log
from openpars.audit.events import AuditKind, event_by
from openpars.audit.models import SHREDDED_INDEX, AuditEntry
from openpars.audit.service import append
from openpars.audit.shred import shred
from openpars.cli import app
from openpars.config import Settings
from openpars.db import Database
from openpars.identity.roles import Role
from openpars.oversight import detectors, maintained
from openpars.oversight.explain import Dimension, Period, Rules, coverage, explain, rules_from
from openpars.oversight.facts import AccessFact, FactsWatermark, refresh, shredded_indexed
from openpars.records.amendments import seal_arrest
from openpars.records.schemas import SealCreate
from tests.factories import World, add_user, build_world
from tests.oversight.harness import ICE, INVESTIGATION, Case, _Builder

runner = CliRunner()


@dataclass
class Scene:
    """The scenario's ids and period."""

    agreement: int
    ice_agency: int
    start: date
    end: date
    case: Case
    pending: Case
    explained_entry: int
    never_entry: int
    outside_entry: int
    missing_case_entry: int

    def query(self, **extra: object) -> dict[str, object]:
        """The query string of a request about the scene's agreement and period."""
        return {
            "agreement": self.agreement,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            **extra,
        }


def _last(db: Database, user_id: int | None) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.max(AuditEntry.id)).where(AuditEntry.user_id == user_id)))


def build_scene(db: Database, world: World) -> Scene:
    """Cases through the real services, then ICE's reads, then the log integrated."""
    b = _Builder(db, world, seed=7)
    b.users()
    agreements = b.agreements()
    case, pending = b._case(False, "filed"), b._case(True, "pending")
    ice = world.principals["ice-0"]
    at = b.start + timedelta(days=3)
    context = ReadContext(purpose=INVESTIGATION, case_number=case.otn)
    with db.session(external=True) as s:
        reads.get_arrest(s, principal=ice, arrest_id=case.arrest_id, context=context, now=at)
    explained = _last(db, ice.user_id)
    with db.session(external=True) as s:
        reads.search_persons(
            s,
            principal=ice,
            query=PersonQuery(sid=pending.sid),
            context=ReadContext(purpose=INVESTIGATION),
            now=at + timedelta(hours=1),
        )
    never = _last(db, ice.user_id)
    forged = []
    outside = {"purpose": "immigration-enforcement"}
    missing = {"purpose": INVESTIGATION, "case_number": "N9999999-9"}
    for minutes, params in ((120, outside), (180, missing)):
        with db.session() as s:
            event = event_by(
                ice, kind=AuditKind.SEARCH, action="person.search", person_ids=[case.person_id],
                params={"query": {"sid": case.sid}, **params}, agreement_id=agreements[ICE],
                agreement_version=1,
            )  # fmt: skip
            forged.append(append(s, event, at=at + timedelta(minutes=minutes)).id)
    with db.session() as s:
        log.integrate(s)
    return Scene(
        agreements[ICE], world.agencies[ICE], b.start.date(), b.end.date(), case, pending,
        explained, never, forged[0], forged[1],
    )  # fmt: skip


@pytest.fixture
def scene(db: Database, world: World) -> Scene:
    """The scenario on the test's database; an oversight user 'overseer' with a token."""
    with db.session() as s:
        add_user(s, world, "overseer", "City of Philadelphia", [Role.OVERSIGHT])
    return build_scene(db, world)


def test_each_pair_gets_its_rule_or_reason(client: TestClient, world: World, scene: Scene) -> None:
    response = client.get("/api/v1/oversight/explanations", params=scene.query(),
                          headers=world.auth("overseer"))  # fmt: skip
    assert response.status_code == 200, response.text
    codes = {(i["entry_id"], i["person_id"]): i["code"] for i in response.json()["items"]}
    assert codes == {
        (scene.explained_entry, scene.case.person_id): "case_arrestee",
        (scene.never_entry, scene.pending.person_id): "never_charged",
        (scene.outside_entry, scene.case.person_id): "purpose_outside_agreement",
        (scene.missing_case_entry, scene.case.person_id): "case_not_found",
    }
    only = client.get("/api/v1/oversight/explanations", headers=world.auth("overseer"),
                      params=scene.query(unexplained_only="true", limit=2, offset=1))  # fmt: skip
    body = only.json()
    assert body["total"] == 3 and len(body["items"]) == 2
    assert all(not i["explained"] for i in body["items"])


def test_coverage_in_all_and_by_each_dimension(
    client: TestClient, world: World, scene: Scene
) -> None:
    for by in Dimension:
        response = client.get("/api/v1/oversight/coverage", headers=world.auth("overseer"),
                              params=scene.query(by=by.value))  # fmt: skip
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["total"]["pairs"] == 4 and report["total"]["explained"] == 1
        assert report["total"]["share"] == 0.25 and report["total"]["never_charged"] == 1
        assert sum(row["pairs"] for row in report["rows"]) == 4
    params = {k: v for k, v in scene.query(agency=scene.ice_agency).items() if k != "agreement"}
    by_agency = client.get(
        "/api/v1/oversight/coverage", headers=world.auth("overseer"), params=params
    )
    assert by_agency.json()["total"]["reasons"]["case_not_found"] == 1


@pytest.mark.parametrize("user", ["ice", "ice-0", "admin", "reader", "charging"])
def test_no_one_else_sees_anything(
    client: TestClient, world: World, scene: Scene, user: str
) -> None:
    for path in ("explanations", "coverage"):
        response = client.get(f"/api/v1/oversight/{path}", params=scene.query(),
                              headers=world.auth(user))  # fmt: skip
        assert response.status_code == 403, response.text
        body = response.json()
        assert set(body) == {"error"}
        error = body["error"]
        assert error["code"] == "permission_denied"
        # Nothing but the refusal and the id of its own audit entry.
        assert set(error) <= {"code", "message", "field", "details", "audit_entry"}
        assert str(scene.case.person_id) not in str(error["details"])
        assert str(scene.case.person_id) not in error["message"]
    assert client.get("/api/v1/oversight/coverage", params=scene.query()).status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": "2000-01-01"}, "to"),
        ({"from": "2999-01-01", "to": "2999-01-02"}, "from"),
        ({"agency": 1}, "agreement"),
        ({"agreement": None}, "agreement"),
        # Schema errors: refused before the request's unit opens, so nothing is written.
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"agreement": 0}, "agreement"),
    ],
)
def test_bad_input_names_the_argument_and_writes_only_the_audit_entry(
    client: TestClient, db: Database, world: World, scene: Scene, change: dict[str, object],
    field: str,
) -> None:  # fmt: skip
    params = {k: v for k, v in {**scene.query(), **change}.items() if v is not None}
    for path in ("explanations", "coverage"):
        before = _state(db)
        response = client.get(f"/api/v1/oversight/{path}", params=params,
                              headers=world.auth("overseer"))  # fmt: skip
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
        facts, watermark, entries = _state(db)
        assert (facts, watermark) == before[:2]
        # A refused request is audited (domain errors); a schema error writes nothing at all.
        assert entries == before[2] + (0 if change in SCHEMA_ERRORS else 1)


SCHEMA_ERRORS = [{"from": "2026-13-01"}, {"to": "yesterday"}, {"agreement": 0}]


@pytest.mark.parametrize(
    ("change", "field", "noun"),
    [
        ({"agreement": 999_999}, "agreement", "agreement"),
        ({"agreement": None, "agency": 999_999}, "agency", "agency"),
    ],
)
def test_an_unknown_agreement_or_agency_is_404_like_any_unknown_id(
    client: TestClient, db: Database, world: World, scene: Scene, change: dict[str, object],
    field: str, noun: str,
) -> None:  # fmt: skip
    params = {k: v for k, v in {**scene.query(), **change}.items() if v is not None}
    elsewhere = client.get("/api/v1/agreements/999999", headers=world.auth("agreements"))
    assert elsewhere.status_code == 404, elsewhere.text
    for path in ("explanations", "coverage"):
        before = _state(db)
        response = client.get(f"/api/v1/oversight/{path}", params=params,
                              headers=world.auth("overseer"))  # fmt: skip
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        # The same envelope as a missing id anywhere else: code, message shape, the field.
        assert error["code"] == elsewhere.json()["error"]["code"] == "not_found"
        assert error["message"] == f"{noun} 999999 does not exist"
        assert elsewhere.json()["error"]["message"] == "agreement 999999 does not exist"
        assert error["field"] == field
        facts, watermark, entries = _state(db)
        # Refused before the facts are refreshed; the refusal itself is audited, once.
        assert (facts, watermark) == before[:2]
        assert entries == before[2] + 1


def _state(db: Database) -> tuple[int, int | None, int]:
    with db.session() as s:
        return (
            int(s.scalar(select(func.count()).select_from(AccessFact)) or 0),
            s.scalar(select(FactsWatermark.size)),
            int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0),
        )


@pytest.mark.parametrize(
    ("start", "end"), [("0001-01-01", "9999-12-31"), ("0001-01-01", "0001-01-01")]
)
def test_the_ends_of_the_calendar(
    client: TestClient, world: World, scene: Scene, start: str, end: str
) -> None:
    params = {**scene.query(), "from": start, "to": end}
    for path in ("explanations", "coverage"):
        response = client.get(
            f"/api/v1/oversight/{path}", params=params, headers=world.auth("overseer")
        )
        assert response.status_code == 200, response.text


def test_every_request_is_audited_with_what_it_showed(
    client: TestClient, db: Database, world: World, scene: Scene
) -> None:
    client.get("/api/v1/oversight/explanations", params=scene.query(),
               headers=world.auth("overseer"))  # fmt: skip
    with db.session() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
        assert (entry.action, entry.kind, entry.user_id) == (
            "oversight.explanations", AuditKind.AUDIT_READ, world.users["overseer"],
        )  # fmt: skip
        # An oversight read is not an external access: it never becomes a fact itself.
        log.integrate(s)
        refresh(s)
        assert s.scalar(select(func.count()).where(AccessFact.entry_id == entry.id)) == 0


def test_refresh_is_incremental(db: Database, scene: Scene) -> None:
    with db.session() as s:
        first = refresh(s)
        again = refresh(s)
    assert first.facts == 4 and first.end > first.start
    assert (again.start, again.end, again.facts) == (first.end, first.end, 0)


def test_shredded_entries_are_never_resurrected(db: Database, world: World, scene: Scene) -> None:
    overseer = world.principals["overseer"]
    period = Period(start=scene.start, end=scene.end, agreement_id=scene.agreement)
    with db.session() as s:
        refresh(s)  # facts of the case's entries exist before the order
        seal_arrest(s, actor=world.principals["clerk"], arrest_id=scene.case.arrest_id,
                    data=SealCreate(action="expunge", order_reference="CP-51-MD-0001-2026",
                                    reason="court order"))  # fmt: skip
        shredded = shred(s, actor=world.principals["clerk"], order_reference="CP-51-MD-0001-2026",
                         arrest_id=scene.case.arrest_id)  # fmt: skip
    assert scene.explained_entry in shredded
    with db.session() as s:
        # Not yet integrated: the readers' join on contents already hides them.
        shown = explain(s, actor=overseer, period=period, rules=Rules())
        assert scene.explained_entry not in {i.entry_id for i in shown.items}
        log.integrate(s)
        refresh(s)
        left = s.scalars(select(AccessFact.entry_id)).all()
        assert scene.explained_entry not in left and scene.never_entry in left


@pytest.mark.parametrize("indexed", [True, False], ids=["shredded-index", "probe-per-row"])
def test_shredded_entries_hidden_with_and_without_the_shredded_index(
    db: Database, world: World, scene: Scene, indexed: bool
) -> None:
    """The readers' "not shredded" test, against the shredded entries' index (PostgreSQL) or,
    on a store without it (SQLite, or a PostgreSQL store created before it), probing each
    entry: a shredded entry not integrated yet is hidden either way, the others kept."""
    postgresql = db.dialect == "postgresql"
    if indexed and not postgresql:
        pytest.skip("the shredded entries' index is PostgreSQL's")
    period = Period(start=scene.start, end=scene.end, agreement_id=scene.agreement)
    with db.session() as s:
        refresh(s)
        seal_arrest(s, actor=world.principals["clerk"], arrest_id=scene.case.arrest_id,
                    data=SealCreate(action="expunge", order_reference="CP-51-MD-0001-2026",
                                    reason="court order"))  # fmt: skip
        shred(s, actor=world.principals["clerk"], order_reference="CP-51-MD-0001-2026",
              arrest_id=scene.case.arrest_id)  # fmt: skip
    with db.session() as s:
        if postgresql and not indexed:  # undone with the test's outer transaction
            s.execute(text(f"DROP INDEX {SHREDDED_INDEX}"))
        assert shredded_indexed(s) is indexed
        # The facts still hold the shredded entry's (the shredding is not integrated yet).
        assert scene.explained_entry in set(s.scalars(select(AccessFact.entry_id)))
        shown = {i.entry_id for i in explain(s, actor=world.principals["overseer"],
                                             period=period, rules=Rules()).items}  # fmt: skip
        assert scene.explained_entry not in shown and scene.never_entry in shown
        # The detectors' test of a fact ``f`` (an outside agency's, its entry not shredded).
        kept = set(
            s.scalars(
                text(f"SELECT f.entry_id FROM oversight_access_facts f WHERE {detectors._kept(s)}")
            )
        )
        assert scene.explained_entry not in kept and scene.never_entry in kept


def test_console_explain_and_coverage(fresh_db: Database) -> None:
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
    scene = build_scene(fresh_db, world)
    args = ["--agreement", str(scene.agreement), "--from", scene.start.isoformat(),
            "--to", scene.end.isoformat(), "--db", url]  # fmt: skip
    result = runner.invoke(app, ["oversight", "explain", *args, "--format", "json",
                                 "--unexplained-only"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {i["code"] for i in json.loads(result.stdout)["items"]} == {
        "never_charged", "purpose_outside_agreement", "case_not_found",
    }  # fmt: skip
    table = runner.invoke(app, ["oversight", "coverage", *args, "--by", "week"])
    assert table.exit_code == 0, table.output
    assert "25.0%" in table.output and "case_not_found" in table.output
    refused = runner.invoke(app, ["oversight", "explain", *args, "--as", "ice"])
    assert refused.exit_code == 1 and "oversight:read" in refused.output
    bad = runner.invoke(app, ["oversight", "coverage", *args[:-4], "--to", "2000-01-01",
                              "--db", url])  # fmt: skip
    assert bad.exit_code == 1 and "(field: to)" in bad.output
    assert runner.invoke(app, ["oversight", "refresh", "--db", url]).exit_code == 0
    kept = runner.invoke(app, ["oversight", "keep-explanations", "--db", url])
    assert kept.exit_code == 0 and "explanations kept under rules" in kept.output, kept.output
    with fresh_db.session() as s:
        assert maintained.current(s, rules_from(Settings(database_url=url)))
        facts = s.scalar(select(func.count()).select_from(AccessFact))
        assert (
            facts
            and s.scalar(select(func.count()).select_from(maintained.EXPLAINED_PAIRS)) == facts
        )
    assert (
        runner.invoke(app, ["oversight", "keep-explanations", "--stop", "--db", url]).exit_code == 0
    )
    with fresh_db.session() as s:
        assert maintained.kept_rules(s) is None
        assert s.scalar(select(func.count()).select_from(maintained.EXPLAINED_PAIRS)) == 0


def test_coverage_service_without_grouping(db: Database, world: World, scene: Scene) -> None:
    with db.session() as s:
        period = Period(start=scene.start, end=scene.end, agency_id=scene.ice_agency)
        report = coverage(s, actor=world.principals["overseer"], rules=Rules(), period=period)
    assert report.rows == [] and report.total.pairs == 4
