"""The renewal report through the real API, console and services, as the readers and attackers try.

The scene of ``test_explain_api`` (ICE works a case, looks up a person never charged, and two
entries of a kind the read service refuses today are in the log), plus a real refused request
by ICE, and flags of two detectors (the canary detector's name and one the report has never
heard of: it reads flags generically), one of them reviewed and closed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from openpars.access import service as reads
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.audit import checkpoints, log, merkle
from openpars.audit.models import AuditCheckpoint, AuditEntry
from openpars.cli import app
from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.governance.models import ProposalReport
from openpars.identity.roles import Role
from openpars.oversight.explain import Dimension, Period, Reason, Rules, coverage
from openpars.oversight.facts import AccessFact, FactsWatermark
from openpars.oversight.flags import FlagDraft, record_flags
from openpars.oversight.models import Finding, Flag
from openpars.oversight.review import close_case, group_flags
from tests.factories import World, add_user, build_world, city_voter
from tests.oversight.harness import INVESTIGATION
from tests.oversight.test_explain_api import Scene, build_scene

runner = CliRunner()
REPORTS = "/api/v1/oversight/reports"
NEW_DETECTOR = "volume_burst_test"


@dataclass
class Setup:
    """The scene, the refused request's entry and the flags."""

    scene: Scene
    refused_entry: int
    flag_ids: list[int]

    def query(self, **extra: object) -> dict[str, object]:
        """Up to today (UTC): the refused request was made just now."""
        return self.scene.query(**{"to": utcnow().date().isoformat(), **extra})


def _flags(db: Database, world: World, scene: Scene) -> list[int]:
    drafts = [
        FlagDraft(
            detector=name, dedupe_key=f"test:{entry}", rule=f"{name}: rule in words",
            threshold=3.0, subject_user_id=world.users["ice-0"],
            subject_agency_id=scene.ice_agency, subject_agreement_id=scene.agreement,
            entry_ids=(entry,), raised_at=datetime.combine(scene.start, datetime.min.time(), UTC)
            + timedelta(days=4),
        )
        for name, entry in ((NEW_DETECTOR, scene.never_entry), ("canary", scene.outside_entry))
    ]  # fmt: skip
    with db.session() as s:
        ids = record_flags(s, drafts)
        group_flags(s)
        case_id = s.scalar(select(Flag.case_id).where(Flag.id == ids[0]))
        assert case_id is not None
        close_case(s, actor=world.principals["overseer"], case_id=case_id,
                   finding=Finding.TRAINING, note="told the user")  # fmt: skip
    return ids


@pytest.fixture
def setup(db: Database, world: World, client: TestClient) -> Setup:
    with db.session() as s:
        add_user(s, world, "overseer", "City of Philadelphia", [Role.OVERSIGHT])
        city_voter(s, world)
    scene = build_scene(db, world)
    # A real refused request: a purpose outside ICE's agreement, refused by the read service.
    refused = client.get(
        "/api/v1/persons", params={"sid": scene.case.sid, "purpose": "immigration-enforcement"},
        headers=world.auth("ice-0"),
    )  # fmt: skip
    assert refused.status_code in (403, 422), refused.text
    with db.session() as s:
        refused_entry = int(
            s.scalar(select(func.max(AuditEntry.id)).where(AuditEntry.kind == "refused")) or 0
        )
        log.integrate(s)
    return Setup(scene, refused_entry, _flags(db, world, scene))


def _json(client: TestClient, world: World, setup: Setup, who: str = "overseer") -> Any:
    response = client.get(REPORTS, params=setup.query(format="json"), headers=world.auth(who))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    digest = hashlib.sha256(response.content).hexdigest()
    assert response.headers["OpenPARS-Report-SHA256"] == digest
    return response.json()


def _drill(client: TestClient, world: World, path: str) -> list[int]:
    """Every entry behind a figure, two per page, from the path the report gives."""
    route, _, query = path.partition("?")
    ids: list[int] = []
    while True:
        params = {**dict(parse_qsl(query)), "offset": str(len(ids)), "limit": "2"}
        page = client.get(route, params=params, headers=world.auth("overseer"))
        assert page.status_code == 200, page.text
        body = page.json()
        ids += [i["entry_id"] for i in body["items"]]
        if len(ids) >= body["total"]:
            assert len(ids) == body["total"]
            return ids


def test_figures_and_the_entries_behind_them(
    client: TestClient, world: World, setup: Setup
) -> None:
    body = _json(client, world, setup)
    s = setup.scene
    figures = {f["key"]: f for f in body["figures"]}
    assert figures["queries"]["value"] == 4
    assert figures["persons_viewed"]["value"] == 2
    assert (figures["never_charged"]["value"], figures["never_charged"]["share"]) == (1, 0.5)
    assert (figures["explained"]["value"], figures["explained"]["share"]) == (1, 0.25)
    assert figures["reason:never_charged"]["value"] == 1
    assert figures["reason:purpose_outside_agreement"]["value"] == 1
    assert figures["reason:case_not_found"]["value"] == 1
    assert figures["refusals"]["value"] == 1
    assert figures["flags"]["value"] == 2
    # Every figure's drill-down lists exactly as many entries as the figure says.
    for figure in body["figures"]:
        ids = _drill(client, world, figure["entries_path"])
        assert len(ids) == figure["entries"], figure["key"]
    expected = {
        "queries": {s.explained_entry, s.never_entry, s.outside_entry, s.missing_case_entry},
        "never_charged": {s.never_entry},
        "rule:case_arrestee": {s.explained_entry},
        "reason:case_not_found": {s.missing_case_entry},
        "refusals": {setup.refused_entry},
        "flags": {s.never_entry, s.outside_entry},
    }
    for key, entries in expected.items():
        assert set(_drill(client, world, figures[key]["entries_path"])) == entries, key


def test_refusals_flags_and_findings_by_detector(
    client: TestClient, world: World, setup: Setup
) -> None:
    body = _json(client, world, setup)
    refusals = [f for f in body["figures"] if f["key"].startswith("refusal:")]
    assert len(refusals) == 1 and refusals[0]["value"] == 1 and refusals[0]["share"] == 1.0
    detectors = {d["detector"]: d for d in body["detectors"]}
    # A detector the report was never told about is listed like any other.
    assert detectors[NEW_DETECTOR]["flags"] == 1
    assert detectors[NEW_DETECTOR]["findings"] == {"training": 1}
    assert detectors[NEW_DETECTOR]["closed"] == 1
    assert detectors["canary"]["findings"] == {} and detectors["canary"]["closed"] == 0
    assert _drill(client, world, detectors[NEW_DETECTOR]["entries_path"]) == [
        setup.scene.never_entry
    ]
    listed = {f["id"]: f for f in body["flags"]}
    assert listed[setup.flag_ids[0]]["finding"] == "training"
    assert body["flags_total"] == 2


def test_weekly_trends_add_up(client: TestClient, world: World, setup: Setup) -> None:
    body = _json(client, world, setup)
    weekly = body["weekly"]
    assert sum(w["queries"] for w in weekly) == 4
    assert sum(w["pairs"] for w in weekly) == 4 and sum(w["explained"] for w in weekly) == 1
    assert {w["purpose"] for w in weekly} == {INVESTIGATION, "immigration-enforcement"}
    for row in weekly:
        assert date.fromisoformat(row["week"]).weekday() == 0
        assert len(_drill(client, world, row["entries_path"])) == row["queries"]


def test_drill_down_gives_inclusion_proofs_that_verify(
    client: TestClient, db: Database, world: World, setup: Setup, settings: Settings
) -> None:
    log.integrate_all(db)
    with db.session() as s:
        checkpoints.publish(s, settings=settings)
    body = _json(client, world, setup)
    page = client.get(
        next(f for f in body["figures"] if f["key"] == "queries")["entries_path"],
        headers=world.auth("overseer"),
    ).json()
    assert page["checkpoint_size"] is not None
    with db.session() as s:
        checkpoint = s.scalars(
            select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc())
        ).first()
        assert checkpoint is not None
        for item in page["items"]:
            proof = client.get(item["proof_path"]).json()  # public, like every proof
            entry = s.get(AuditEntry, item["entry_id"])
            assert entry is not None
            merkle.verify_inclusion(
                merkle.leaf_hash(entry.commitment), proof["index"], proof["size"],
                [base64.b64decode(p) for p in proof["proof"]], checkpoint.root,
            )  # fmt: skip


def test_html_and_pdf_carry_the_same_figures(
    client: TestClient, world: World, setup: Setup
) -> None:
    body = _json(client, world, setup)
    html = client.get(REPORTS, params=setup.query(format="html"), headers=world.auth("overseer"))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<svg" in html.text and "Unexplained share by reason" in html.text
    queries = next(f for f in body["figures"] if f["key"] == "queries")
    assert queries["entries_path"].replace("&", "&amp;") in html.text
    assert html.headers["OpenPARS-Report-SHA256"] in html.text
    pdf = client.get(REPORTS, params=setup.query(format="pdf"), headers=world.auth("overseer"))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    words = " ".join(text.split())
    assert "Renewal report" in words and "distinct persons viewed 2" in words
    assert "never_charged" in words and NEW_DETECTOR in words
    assert "What-if replay" not in words  # only with a replay result


def test_what_if_section_renders_only_with_a_replay_result(db: Database, setup: Setup) -> None:
    from openpars.oversight.report import build_report, check_period
    from openpars.oversight.report_render import render_html

    s = setup.scene
    with db.session() as session:
        agreement, period = check_period(session, s.agreement, s.start, utcnow().date())
        plain = build_report(session, agreement=agreement, period=period, rules=Rules())
        replayed = build_report(session, agreement=agreement, period=period, rules=Rules(),
                                what_if={"queries_replayed": 4, "refused": 1})  # fmt: skip
    assert 'id="what-if"' not in render_html(plain)
    html = render_html(replayed)
    assert 'id="what-if"' in html and "queries_replayed" in html


def test_report_agrees_with_coverage(db: Database, world: World, setup: Setup) -> None:
    s = setup.scene
    from openpars.oversight.report import build_report, check_period

    with db.session() as session:
        agreement, period = check_period(session, s.agreement, s.start, utcnow().date())
        report = build_report(session, agreement=agreement, period=period, rules=Rules())
        cover = coverage(session, actor=world.principals["overseer"], rules=Rules(),
                         period=Period(s.start, utcnow().date(), agreement_id=s.agreement),
                         by=Dimension.WEEK)  # fmt: skip
    for reason, n in cover.total.reasons.items():
        assert report.figure(f"reason:{reason}").value == n
    assert report.figure("explained").value == cover.total.explained


@pytest.mark.parametrize("user", ["ice", "ice-0", "admin", "reader", "charging"])
def test_outside_agency_and_others_never_read_it(
    client: TestClient, world: World, setup: Setup, user: str
) -> None:
    for path in (REPORTS, REPORTS + "/entries"):
        response = client.get(path, params=setup.query(figure="queries", format="json"),
                              headers=world.auth(user))  # fmt: skip
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "permission_denied"
        assert "figures" not in response.text
    assert client.get(REPORTS, params=setup.query()).status_code == 401


def test_a_stakeholder_voter_reads_it(client: TestClient, world: World, setup: Setup) -> None:
    body = _json(client, world, setup, who="city-voter")
    assert body["agreement"]["id"] == setup.scene.agreement


def test_every_request_is_audited_with_the_report_hash(
    client: TestClient, db: Database, world: World, setup: Setup
) -> None:
    response = client.get(REPORTS, params=setup.query(format="pdf"), headers=world.auth("overseer"))
    with db.session() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
        assert (entry.action, entry.user_id) == ("oversight.report", world.users["overseer"])
        content = s.execute(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "oversight.report")
        ).scalar_one()
        assert content == 1
    with db.session() as s:
        stored = s.get(AuditEntry, entry.id)
        assert stored is not None
        params = json.loads(stored.content)["params"]
    assert params["sha256"] == response.headers["OpenPARS-Report-SHA256"]
    assert params["format"] == "pdf" and params["agreement_id"] == setup.scene.agreement


def _state(db: Database) -> tuple[int, int | None, int, int, int]:
    with db.session() as s:
        return (
            int(s.scalar(select(func.count()).select_from(AccessFact)) or 0),
            s.scalar(select(FactsWatermark.size)),
            int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0),
            int(s.scalar(select(func.count()).select_from(Flag)) or 0),
            int(s.scalar(select(func.count()).select_from(ProposalReport)) or 0),
        )


@pytest.mark.parametrize(
    ("change", "status", "field", "code"),
    [
        ({"agreement": 999_999}, 404, "agreement", "not_found"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, 422, "from", "from_after_to"),
        # Far enough ahead that a run crossing midnight UTC cannot turn them into today.
        ({"from": "2999-01-01", "to": "2999-01-02"}, 422, "from", "period_in_future"),
        ({"to": "2999-01-01"}, 422, "to", "period_in_future"),
        ({"from": "2000-01-01", "to": "2000-01-31"}, 422, "to", "empty_period"),
        ({"figure": "nonsense"}, 422, "figure", "invalid_input"),
        ({"figure": "week:2026-13-01:1:x"}, 422, "figure", "invalid_input"),
    ],
)  # fmt: skip
def test_bad_input_names_the_argument_and_writes_only_the_audit_entry(
    client: TestClient, db: Database, world: World, setup: Setup, change: dict[str, object],
    status: int, field: str, code: str,
) -> None:  # fmt: skip
    paths = [REPORTS + "/entries"] if "figure" in change else [REPORTS, REPORTS + "/entries"]
    for path in paths:
        params = {**setup.query(figure="queries", format="json"), **change}
        before = _state(db)
        response = client.get(path, params=params, headers=world.auth("overseer"))
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert (error["field"], error["code"]) == (field, code)
        after = _state(db)
        # Nothing but the refusal's own audit entry (the facts are not even refreshed).
        assert after == (before[0], before[1], before[2] + 1, before[3], before[4])


def test_schema_errors_write_nothing(
    client: TestClient, db: Database, world: World, setup: Setup
) -> None:
    before = _state(db)
    for change in ({"format": "docx"}, {"from": "2026-13-01"}, {"agreement": 0}):
        response = client.get(REPORTS, params={**setup.query(), **change},
                              headers=world.auth("overseer"))  # fmt: skip
        assert response.status_code == 422
    assert _state(db) == before


# -- attached to renewal proposals --------------------------------------------------------------


def _renew(client: TestClient, world: World, agreement: int, action: str = "renew") -> Any:
    body: dict[str, Any] = {
        "agreement_id": agreement, "action": action, "summary": f"{action} ICE's agreement",
        "deadline": (utcnow() + timedelta(days=5)).isoformat(),
    }  # fmt: skip
    if action == "renew":
        body["new_expires_at"] = (utcnow() + timedelta(days=400)).isoformat()
    response = client.post("/api/v1/proposals", json=body, headers=world.auth("city-voter"))
    assert response.status_code == 201, response.text
    return response.json()


def test_a_renewal_proposal_carries_the_report_voters_see(
    client: TestClient, db: Database, world: World, setup: Setup
) -> None:
    proposal = _renew(client, world, setup.scene.agreement)
    ref = proposal["report"]
    assert ref["path"] == f"/api/v1/proposals/{proposal['id']}/report"
    # The term ends on the day the proposal opened, not on whatever day the test reaches here.
    assert ref["end"] == datetime.fromisoformat(proposal["opened_at"]).date().isoformat()
    shown = client.get(ref["path"], params={"format": "json"}, headers=world.auth("city-voter"))
    assert shown.status_code == 200, shown.text
    # What the voter reads hashes to what the proposal and its audit entry recorded.
    assert hashlib.sha256(shown.content).hexdigest() == ref["sha256"]
    assert shown.headers["OpenPARS-Report-SHA256"] == ref["sha256"]
    with db.session() as s:
        opened = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "proposal.open")
            .order_by(AuditEntry.id.desc()).limit(1)
        ).one()  # fmt: skip
        assert opened.content is not None
        assert json.loads(opened.content)["params"]["report_sha256"] == ref["sha256"]
    report = shown.json()
    assert report["agreement"]["id"] == setup.scene.agreement
    assert next(f for f in report["figures"] if f["key"] == "queries")["value"] == 4
    # The proposal view names it, for every governance reader.
    again = client.get(f"/api/v1/proposals/{proposal['id']}", headers=world.auth("city-voter"))
    assert again.json()["report"] == ref
    pdf = client.get(ref["path"], params={"format": "pdf"}, headers=world.auth("overseer"))
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert ref["sha256"] in "".join(text.split())


def test_the_attached_report_does_not_move_under_the_voters(
    client: TestClient, db: Database, world: World, setup: Setup
) -> None:
    proposal = _renew(client, world, setup.scene.agreement)
    path = proposal["report"]["path"]
    first = client.get(path, params={"format": "json"}, headers=world.auth("city-voter")).content
    # ICE keeps querying; a live report counts it, the attached one does not change.
    with db.session(external=True) as s:
        reads.search_persons(
            s, principal=world.principals["ice-0"], query=PersonQuery(sid=setup.scene.case.sid),
            context=ReadContext(purpose=INVESTIGATION, case_number=setup.scene.case.otn),
        )  # fmt: skip
    with db.session() as s:
        log.integrate(s)
    later = client.get(path, params={"format": "json"}, headers=world.auth("overseer")).content
    assert later == first


def test_only_renewals_carry_a_report_and_only_readers_read_it(
    client: TestClient, world: World, setup: Setup
) -> None:
    suspend = _renew(client, world, setup.scene.agreement, action="suspend")
    assert suspend["report"] is None
    missing = client.get(f"/api/v1/proposals/{suspend['id']}/report",
                         headers=world.auth("overseer"))  # fmt: skip
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "no_report")
    renewal = _renew(client, world, setup.scene.agreement)
    for user in ("ice", "ice-0", "admin", "reader"):
        refused = client.get(renewal["report"]["path"], headers=world.auth(user))
        assert refused.status_code == 403, (user, refused.text)
        assert "figures" not in refused.text


# -- the console ----------------------------------------------------------------------------------


def test_console_report_in_each_format(fresh_db: Database, tmp_path: Path) -> None:
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
    scene = build_scene(fresh_db, world)
    args = ["report", "oversight", "--agreement", str(scene.agreement), "--from",
            scene.start.isoformat(), "--to", scene.end.isoformat(), "--db", url]  # fmt: skip
    out = tmp_path / "r.json"
    result = runner.invoke(app, [*args, "--format", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest in result.output
    assert {f["key"]: f["value"] for f in json.loads(out.read_bytes())["figures"]}["queries"] == 4
    pdf = tmp_path / "r.pdf"
    assert runner.invoke(app, [*args, "--format", "pdf", "--out", str(pdf)]).exit_code == 0
    text = " ".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert "distinct persons viewed" in " ".join(text.split())
    html = runner.invoke(
        app, [*args, "--format", "html", "--link-host", "https://pars.example.org"]
    )
    assert html.exit_code == 0 and "<svg" in html.stdout
    assert 'href="https://pars.example.org/api/v1/oversight/reports/entries?' in html.stdout
    refused = runner.invoke(app, [*args, "--as", "ice"])
    assert refused.exit_code == 1 and "may not read oversight reports" in refused.output
    # A renewal opened at the console carries its report; 'proposal report' prints it.
    opened = runner.invoke(app, [
        "proposal", "open", "--agreement", str(scene.agreement), "--action", "renew",
        "--summary", "renew ICE", "--deadline", (utcnow() + timedelta(days=5)).isoformat(),
        "--new-expires-at", (utcnow() + timedelta(days=400)).isoformat(), "--db", url,
    ])  # fmt: skip
    assert opened.exit_code == 0, opened.output
    assert "oversight report of" in opened.output
    proposal_id = opened.output.split("opened proposal ")[1].split(":")[0]
    attached = tmp_path / "p.json"
    shown = runner.invoke(app, ["proposal", "report", proposal_id, "--format", "json",
                                "--out", str(attached), "--db", url])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    digest = hashlib.sha256(attached.read_bytes()).hexdigest()
    assert digest in shown.output and digest in " ".join(opened.output.split())
    bad = runner.invoke(app, [*args[:-6], "--from", "2026-03-02", "--to", "2026-03-01",
                              "--db", url])  # fmt: skip
    assert bad.exit_code == 1 and "(field: from)" in bad.output


# -- at harness scale -----------------------------------------------------------------------------


def test_the_report_of_the_harness_traffic_adds_up(db: Database, world: World) -> None:
    """Eight weeks of legitimate and injected traffic: the report's figures are the ground
    truth of what the harness did, and each misuse reason's drill-down holds its entries."""
    from collections import Counter

    from openpars.oversight.report import build_report, check_period, entries_of
    from tests.oversight.harness import ICE, build_traffic

    traffic = build_traffic(db, world, seed=5)
    agreement_id = traffic.agreements[ICE]
    with db.session() as s:
        log.integrate(s)
        made = set(
            s.scalars(
                select(AuditEntry.id).where(
                    AuditEntry.agreement_id == agreement_id,
                    AuditEntry.kind.in_(("search", "read")),
                    AuditEntry.outcome == "ok",
                )
            )
        )
    with db.session() as s:
        agreement, period = check_period(s, agreement_id, traffic.start.date(), utcnow().date())
        report = build_report(s, agreement=agreement, period=period, rules=Rules())

        def drill(figure: str) -> set[int]:
            page = entries_of(
                s, agreement=agreement, period=period, rules=Rules(), figure=figure,
                size=report.tree_size, offset=0, limit=10_000,
            )  # fmt: skip
            assert page.total == len(page.items)
            return {i.entry_id for i in page.items}

        assert report.figure("queries").value == len(made) > 100
        assert drill("queries") == made
        assert sum(w.queries for w in report.weekly) == len(made)
        assert len({w.week for w in report.weekly}) >= 8
        ice_misuse = {pair: code for pair, code in traffic.misuse.items() if pair[0] in made}
        for reason, n in Counter(ice_misuse.values()).items():
            # Every injected pair of the reason is counted (legitimate pairs may add a few).
            assert report.figure(f"reason:{reason}").value >= n, reason
            assert {e for (e, _p), c in ice_misuse.items() if c == reason} <= drill(
                f"reason:{reason}"
            )
        pairs = report.figure("pairs").value
        assert (
            sum(report.figure(f"reason:{r}").value for r in Reason)
            + report.figure("explained").value
            == pairs
        )


def test_a_sub_units_queries_and_refusals_count_for_the_agreement(
    client: TestClient, db: Database, world: World, setup: Setup
) -> None:
    """An agreement covers the grantee's units: their accounts' reads and refusals are its."""
    from openpars.identity import service as identity
    from openpars.identity.models import AgencyKind
    from openpars.identity.principal import SYSTEM
    from openpars.identity.schemas import AgencyCreate

    with db.session() as s:
        data = AgencyCreate(
            name="ICE field office", kind=AgencyKind.EXTERNAL, parent_id=setup.scene.ice_agency
        )
        unit = identity.create_agency(s, actor=SYSTEM, data=data)
        world.agencies["ICE field office"] = unit.id
        add_user(s, world, "ice-field", "ICE field office", [Role.EXTERNAL_QUERY])
    case = setup.scene.case
    worked = {"sid": case.sid, "purpose": INVESTIGATION, "case_number": case.otn}
    ok = client.get("/api/v1/persons", headers=world.auth("ice-field"), params=worked)
    assert ok.status_code == 200, ok.text
    outside = {"sid": case.sid, "purpose": "immigration-enforcement"}
    refused = client.get("/api/v1/persons", headers=world.auth("ice-field"), params=outside)
    assert refused.status_code in (403, 422), refused.text
    with db.session() as s:
        log.integrate(s)
    body = _json(client, world, setup)
    figures = {f["key"]: f for f in body["figures"]}
    assert figures["queries"]["value"] == 5 and figures["refusals"]["value"] == 2
    assert str(unit.id) in {w["agency"] for w in body["weekly"]}


def test_a_read_returning_nobody_and_a_shredded_read_stay_queries(
    client: TestClient, db: Database, world: World, setup: Setup
) -> None:
    """The queries figure counts every answered read, from the refresh's per-entry table: one
    that returned no person (it has no access fact) counts with its purpose, and one whose
    content a court order shredded still counts, without the purpose its content gave."""
    from openpars.audit.shred import shred
    from openpars.oversight.facts import AccessQuery
    from openpars.oversight.report import build_report, check_period
    from openpars.records.amendments import seal_arrest
    from openpars.records.schemas import SealCreate

    scene = setup.scene

    def weekly() -> tuple[int, dict[str, int]]:
        with db.session() as s:
            agreement, period = check_period(s, scene.agreement, scene.start, utcnow().date())
            report = build_report(s, agreement=agreement, period=period, rules=Rules())
        by_purpose: dict[str, int] = {}
        for w in report.weekly:
            by_purpose[w.purpose] = by_purpose.get(w.purpose, 0) + w.queries
        assert sum(by_purpose.values()) == report.figure("queries").value
        return report.figure("queries").value, by_purpose

    before, purposes = weekly()
    assert "(none)" not in purposes
    nobody = {"name": "Nobody Atall", "purpose": INVESTIGATION, "case_number": scene.case.otn}
    response = client.get("/api/v1/persons", headers=world.auth("ice-0"), params=nobody)
    assert response.status_code == 200 and response.json()["items"] == [], response.text
    with db.session() as s:
        log.integrate(s)
    after, more = weekly()
    assert after == before + 1 and more[INVESTIGATION] == purposes[INVESTIGATION] + 1
    with db.session() as s:
        seal_arrest(s, actor=world.principals["clerk"], arrest_id=scene.case.arrest_id,
                    data=SealCreate(action="expunge", order_reference="CP-51-MD-0001-2026",
                                    reason="court order"))  # fmt: skip
        shredded = shred(s, actor=world.principals["clerk"], order_reference="CP-51-MD-0001-2026",
                         arrest_id=scene.case.arrest_id)  # fmt: skip
        log.integrate(s)
    assert scene.explained_entry in shredded
    counted, gone = weekly()
    assert counted == after
    with db.session() as s:
        stored = s.get(AccessQuery, scene.explained_entry)
        assert stored is not None and stored.purpose is None
    assert gone["(none)"] >= 1
    assert gone["(none)"] + gone.get(INVESTIGATION, 0) == more[INVESTIGATION] + more.get(
        "(none)", 0
    )


def test_refusals_from_the_refresh_and_from_the_log_agree(
    client: TestClient, db: Database, world: World, setup: Setup
) -> None:
    """A report's refusals below the refresh's watermark come from its per-refusal table,
    those of leaves integrated after it from the log: the same rows and codes wherever the
    split lies (every leaf from the log, every leaf from the table, or a second refusal on
    either side), and the table holds each refusal with the code its content gives."""
    from openpars.oversight import report_sql
    from openpars.oversight.facts import AccessRefusal, refresh, watermark
    from openpars.oversight.report import _scope, check_period

    scene = setup.scene
    again = client.get(
        "/api/v1/persons", params={"sid": scene.case.sid, "purpose": "immigration-enforcement"},
        headers=world.auth("ice-0"),
    )  # fmt: skip
    assert again.status_code in (403, 422), again.text
    with db.session() as s:
        refresh(s)
        log.integrate(s)  # the second refusal integrated after the refresh
    with db.session() as s:
        agreement, period = check_period(s, scene.agreement, scene.start, utcnow().date())
        scope = _scope(s, agreement, period, Rules(), None)
        read = watermark(s)
        assert read < scope.size

        def rows(split: int) -> list[tuple[int, str]]:
            r = report_sql.refusals(scope, split)
            return sorted((int(e), str(c)) for e, c in s.execute(select(r.c.entry_id, r.c.code)))

        every = rows(0)
        assert len(every) == 2 and setup.refused_entry in {e for e, _c in every}
        assert rows(read) == every
        refresh(s)
        assert rows(watermark(s)) == every
        stored = {r.entry_id: r.code for r in s.scalars(select(AccessRefusal))}
        assert {e: c for e, c in every} == stored
