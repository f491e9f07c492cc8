"""The outside agency's view and the governance pages, tried as an attacker would (hp3).

External reads go through the API's read services in the external role: what the agreement
hides is absent from the page, with no hint; refusals are shown beside the field and audited.
Votes are verified by the API's votes service: a forged signature, a vote for another
version, bad JSON or a missing CSRF token record nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from openpars.agreements import service as agreements
from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.demo.agreements import adopt_without_vote
from openpars.governance import signing
from openpars.governance.models import ProposalReport, Vote
from openpars.governance.quorum import Choice, ProposalAction
from openpars.identity import service
from openpars.identity.principal import SYSTEM
from openpars.records.models import Involvement
from openpars.web.app import create_app
from openpars.web.security import (
    CONTENT_SECURITY_POLICY,
    DOCS_POLICY,
    INLINE_STYLE_POLICY,
    SecurityHeaders,
)
from tests.access.agreements import activate
from tests.factories import World
from tests.governance.helpers import Gov, build_gov, document
from tests.records.factories import arrest_payload
from tests.records.helpers import submit
from tests.web.logon_steps import finish_logon_as
from tests.web.test_pages import PASSWORD, entries, log_in

DECLARATION = {
    "purpose": "criminal-investigation",
    "case_number": "HSI-2026-0042",
    "on_behalf_of": "SA Dana Whitfield",
}


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The app over TLS (the session cookie is Secure), not following redirects."""
    app = create_app(settings, database=db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def _password(db: Database, user_id: int) -> None:
    with db.session() as session:
        service.set_password(
            session, actor=SYSTEM, user_id=user_id, new_password=PASSWORD, force_change=False
        )


def _logged_in(web: TestClient, db: Database, user_id: int, username: str) -> None:
    _password(db, user_id)
    assert log_in(web, username).status_code == 303
    finish_logon_as(web, db, username)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _arrest(web: TestClient, world: World) -> dict[str, Any]:
    payload = arrest_payload()
    answer = submit(web, world, payload)
    assert answer.status_code == 201, answer.text
    return payload


def _text(page: str) -> str:
    """The page's text as a reader sees it: tags removed, entities read (O&#39;Brien is
    O'Brien), lower case."""
    return unescape(re.sub(r"<[^>]+>", " ", page)).lower()


# ---- the outside agency's view ------------------------------------------------------------


def _shows(page: str, name: str) -> bool:
    """Whether an HTML page shows ``name``: as written or as the templates escape it (a
    generated name may be O'Brien, on the page O&#39;Brien), so that a check that a name is
    absent cannot pass only because the page escaped it."""
    return name in page or str(escape(name)) in page


def test_external_search_shows_the_arrestee_and_nothing_of_the_victim(
    web: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        activate(session, world)
    payload = _arrest(web, world)
    arrestee, victim = (inv["person"] for inv in payload["involvements"][:2])
    _logged_in(web, db, world.users["ice"], "ice")
    found = web.get("/external", params={**DECLARATION, "kind": "persons", "sid": arrestee["sid"]})
    assert found.status_code == 200, found.text
    assert _shows(found.text, arrestee["family_name"])
    person_link = re.search(r'href="(/external/persons/\d+\?[^"]+)"', found.text)
    assert person_link
    person = web.get(person_link.group(1).replace("&amp;", "&"))
    assert person.status_code == 200, person.text
    arrest_link = re.search(r'href="(/external/arrests/\d+\?[^"]+)"', person.text)
    assert arrest_link
    arrest = web.get(arrest_link.group(1).replace("&amp;", "&"))
    assert arrest.status_code == 200, arrest.text
    assert payload["otn"] in arrest.text
    for shown in (found, person, arrest):
        text = _text(shown.text)
        assert victim["family_name"].lower() not in text
        assert victim["given_name"].lower() not in text
        assert "victim" not in text and "witness" not in text
        assert arrestee["place_of_birth"].lower() not in text
        assert "place of birth" not in text
        assert "narrative" not in text and "complainant" not in text
    # The scope in plain words names only what is shown.
    assert "You see arrested persons only." in found.text
    actions = [a for a, _, _ in entries(db)]
    assert "agreement.scope_read" in actions


def test_external_search_requires_purpose_and_on_behalf_of(
    web: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        activate(session, world)
    _logged_in(web, db, world.users["ice"], "ice")
    before = len(entries(db))
    answer = web.get("/external", params={"kind": "persons", "sid": "123-45-67-8"})
    assert answer.status_code == 422
    for field in ("purpose", "on_behalf_of"):
        assert f'id="{field}-error"' in answer.text
    assert 'value="123-45-67-8"' in answer.text  # what was typed is kept
    # No search ran: only the scope's own read is in the log.
    assert [a for a, _, _ in entries(db)[before:]] == ["agreement.scope_read"]


def test_the_case_reference_follows_the_purposes_rule_as_the_api_does(
    web: TestClient, db: Database, world: World
) -> None:
    """The agreement requires a case reference for criminal-investigation and not for
    warrant-service: the page asks for it exactly where the API does, and says so."""
    with db.session() as session:
        activate(session, world)
    arrestee = _arrest(web, world)["involvements"][0]["person"]
    _logged_in(web, db, world.users["ice"], "ice")
    form = web.get("/external")
    assert "criminal-investigation (case reference required)</option>" in form.text
    assert ">warrant-service</option>" in form.text
    assert "Required for criminal-investigation; optional for the other purposes." in form.text
    assert 'id="case_number" name="case_number" type="text" value="" aria-describedby' in (
        form.text
    )  # not marked required: the rule is the purpose's
    without = {k: v for k, v in DECLARATION.items() if k != "case_number"}
    # Required by the purpose: refused beside the field, by the enforcement point, audited.
    mark = len(entries(db))
    refused = web.get("/external", params={**without, "sid": arrestee["sid"]})
    assert refused.status_code == 422
    assert 'id="case_number-error"' in refused.text
    assert "requires a case reference" in refused.text
    assert not _shows(refused.text, arrestee["family_name"])
    assert ("GET /external", "refused", "invalid_input") in entries(db)[mark:]
    api = web.get(
        "/api/v1/persons",
        params={**without, "sid": arrestee["sid"]},
        headers=world.auth("ice"),
    )
    assert api.status_code == 422 and api.json()["error"]["field"] == "case_number"
    # Not required by the purpose: the search runs, and so does the API's.
    warrant = {**without, "purpose": "warrant-service"}
    found = web.get("/external", params={**warrant, "sid": arrestee["sid"]})
    assert found.status_code == 200, found.text
    assert _shows(found.text, arrestee["family_name"])
    link = re.search(r'href="(/external/persons/\d+\?[^"]+)"', found.text)
    assert link and "case_number" not in link.group(1)
    assert web.get(link.group(1).replace("&amp;", "&")).status_code == 200
    assert web.get(
        "/api/v1/persons", params={**warrant, "sid": arrestee["sid"]}, headers=world.auth("ice")
    ).is_success
    # The same holds on a record page opened with a hand-made link.
    person = (
        link.group(1).replace("&amp;", "&").replace("warrant-service", "criminal-investigation")
    )
    assert web.get(person).status_code == 422


def test_a_purpose_outside_the_agreement_is_refused_beside_it_and_audited(
    web: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        activate(session, world)
    _logged_in(web, db, world.users["ice"], "ice")
    answer = web.get(
        "/external",
        params={**DECLARATION, "purpose": "immigration-enforcement", "sid": "123-45-67-8"},
    )
    assert answer.status_code == 422
    assert 'id="purpose-error"' in answer.text
    assert "is not allowed by your agreement" in answer.text
    assert ("GET /external", "refused", "purpose_not_allowed") in entries(db)


def test_without_an_agreement_in_force_the_page_is_refused_and_audited(
    web: TestClient, db: Database, world: World
) -> None:
    _logged_in(web, db, world.users["fbi"], "fbi")
    answer = web.get("/external")
    assert answer.status_code == 403
    assert "no data-sharing agreement is in force" in answer.text.lower()
    assert entries(db)[-1] == ("GET /external", "refused", "no_agreement_in_force")


def test_another_agencys_record_reads_as_absent_and_is_audited(
    web: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        activate(session, world)
    payload = _arrest(web, world)
    with db.session() as session:
        victim_id = session.scalar(
            select(Involvement.person_id).where(Involvement.role == "victim").limit(1)
        )
    assert victim_id is not None
    _logged_in(web, db, world.users["ice"], "ice")
    query = "&".join(f"{k}={v}" for k, v in DECLARATION.items())
    answer = web.get(f"/external/persons/{victim_id}?{query}")
    assert answer.status_code == 404
    assert not _shows(answer.text, payload["involvements"][1]["person"]["family_name"])
    assert entries(db)[-1][1:] == ("refused", "not_found")


def test_internal_users_cannot_open_the_agency_view_nor_outsiders_the_agreements(
    web: TestClient, db: Database, world: World
) -> None:
    _logged_in(web, db, world.users["charging"], "charging")
    assert web.get("/external").status_code == 403
    assert entries(db)[-1] == ("GET /external", "refused", "permission_denied")
    web.cookies.clear()
    _logged_in(web, db, world.users["ice"], "ice")
    assert web.get("/agreements").status_code == 403
    assert web.get("/proposals/1").status_code == 403


# ---- agreements and votes --------------------------------------------------------------------


def _gov_logged_in(web: TestClient, db: Database, world: World, who: str) -> Gov:
    gov = build_gov(db, world)
    _logged_in(web, db, gov.voters[who].user_id or 0, gov.voters[who].username)
    return gov


def _votes(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Vote)) or 0


def _vote_form(web: TestClient, proposal_id: int) -> str:
    shown = web.get(f"/proposals/{proposal_id}")
    assert shown.status_code == 200, shown.text
    assert 'id="sign-form"' in shown.text
    return _csrf(shown.text)


def test_agreement_list_and_page_with_a_diff_between_versions(
    web: TestClient, db: Database, world: World
) -> None:
    gov = _gov_logged_in(web, db, world, "da")
    with db.session() as session:
        changed = document(world, start=gov.t0, end=gov.t0 + timedelta(days=200))
        scope = dict(changed.scope.model_dump(mode="json"))
        scope["person_fields"] = {"family_name": "visible", "sid": "show_last_4"}
        agreements.update_agreement(
            session,
            actor=SYSTEM,
            agreement_id=gov.agreement_id,
            data=document(world, start=gov.t0, end=gov.t0 + timedelta(days=200), scope=scope),
            reason="add the SID, last 4 only",
        )
    listed = web.get("/agreements")
    assert listed.status_code == 200
    assert "ICE data-use agreement" in listed.text and "draft" in listed.text
    shown = web.get(f"/agreements/{gov.agreement_id}")
    assert shown.status_code == 200
    assert "added:</span> Person field state identification number (SID): only its last 4" in (
        shown.text
    )
    assert "removed:</span> In force from" in shown.text
    assert "add the SID, last 4 only" in shown.text


def test_an_uploaded_vote_signed_offline_is_verified_and_recorded(
    web: TestClient, db: Database, world: World
) -> None:
    gov = _gov_logged_in(web, db, world, "da")
    proposal_id = gov.propose()
    token = _vote_form(web, proposal_id)
    signed = gov.ballot(proposal_id, "da", Choice.YES, gov.at(seconds=1))
    answer = web.post(
        f"/proposals/{proposal_id}/vote",
        data={"csrf_token": token},
        files={
            "signed_vote_file": ("vote.json", signed.model_dump_json().encode(), "application/json")
        },
    )
    assert answer.status_code == 303, answer.text
    assert _votes(db) == 1
    assert ("vote.cast", "ok", None) in entries(db)


@pytest.mark.parametrize("attack", ["forged", "other_version", "not_json", "other_proposal"])
def test_bad_votes_are_refused_beside_the_field_and_record_nothing(
    web: TestClient, db: Database, world: World, attack: str
) -> None:
    gov = _gov_logged_in(web, db, world, "da")
    proposal_id = gov.propose()
    token = _vote_form(web, proposal_id)
    signed = gov.ballot(proposal_id, "da", Choice.YES, gov.at(seconds=1))
    text = signed.model_dump_json()
    if attack == "forged":
        doc = json.loads(text)
        doc["choice"] = "no"  # the signature covers "yes"
        text = json.dumps(doc)
    elif attack == "other_version":
        stale = gov.ballot(proposal_id, "da", Choice.YES, gov.at(seconds=1), version_hash="ab" * 32)
        text = stale.model_dump_json()
    elif attack == "not_json":
        text = "{not json"
    else:
        doc = json.loads(text)
        doc["proposal_id"] = proposal_id + 1
        text = json.dumps(doc)
    answer = web.post(
        f"/proposals/{proposal_id}/vote", data={"csrf_token": token, "signed_vote": text}
    )
    assert answer.status_code == 422, answer.text
    assert 'id="signed_vote-error"' in answer.text
    assert _votes(db) == 0
    expected = {"forged": "signature_invalid", "other_version": "version_mismatch"}
    if attack in expected:
        refusal = (f"POST /proposals/{proposal_id}/vote", "refused", expected[attack])
        assert refusal in entries(db)


def test_a_vote_without_the_csrf_token_is_refused_and_audited(
    web: TestClient, db: Database, world: World
) -> None:
    gov = _gov_logged_in(web, db, world, "da")
    proposal_id = gov.propose()
    signed = gov.ballot(proposal_id, "da", Choice.YES, gov.at(seconds=1))
    answer = web.post(
        f"/proposals/{proposal_id}/vote", data={"signed_vote": signed.model_dump_json()}
    )
    assert answer.status_code == 403
    assert _votes(db) == 0
    assert entries(db)[-1] == (f"POST /proposals/{proposal_id}/vote", "refused", "csrf_failed")


def test_a_non_voter_sees_no_vote_form_and_cannot_vote(
    web: TestClient, db: Database, world: World
) -> None:
    gov = build_gov(db, world)
    proposal_id = gov.propose()
    admin = gov.admins["court"]
    _logged_in(web, db, admin.user_id or 0, admin.username)
    shown = web.get(f"/proposals/{proposal_id}")
    assert shown.status_code == 200
    assert 'id="sign-form"' not in shown.text
    answer = web.post(
        f"/proposals/{proposal_id}/vote",
        data={"csrf_token": _csrf(shown.text), "signed_vote": "{}"},
    )
    assert answer.status_code == 403
    assert _votes(db) == 0
    assert signing.VOTE_FORMAT  # the format the page signs is the service's


def test_a_vote_on_a_version_changed_since_the_page_was_shown_is_refused_with_the_reason(
    web: TestClient, db: Database, world: World
) -> None:
    gov = _gov_logged_in(web, db, world, "da")
    proposal_id = gov.propose()
    token = _vote_form(web, proposal_id)
    signed = gov.ballot(proposal_id, "da", Choice.YES, gov.at(seconds=1))
    # Meanwhile the agreement gets a new version: the proposal it was signed for is void.
    with db.session() as session:
        agreements.update_agreement(
            session,
            actor=SYSTEM,
            agreement_id=gov.agreement_id,
            data=document(world, start=gov.t0, end=gov.t0 + timedelta(days=100)),
            reason="shorter term",
        )
    answer = web.post(
        f"/proposals/{proposal_id}/vote",
        data={"csrf_token": token, "signed_vote": signed.model_dump_json()},
    )
    assert answer.status_code == 422
    assert "The vote was refused" in answer.text
    assert _votes(db) == 0
    refusals = [e for e in entries(db) if e[0] == f"POST /proposals/{proposal_id}/vote"]
    assert refusals[-1][1:] == ("refused", "voting_closed")
    assert "changed to version 2 while the proposal was open" in answer.text


# ---- the renewal report page ---------------------------------------------------------------


def _renewal(gov: Gov, world: World) -> int:
    """A renewal proposal (with its attached report) on an FBI agreement in force."""
    start = utcnow().replace(microsecond=0) - timedelta(days=1)
    fbi = world.agencies["Federal Bureau of Investigation"]
    terms = document(world, start=start, end=start + timedelta(days=365), name="FBI renewal",
                     grantee_agency_id=fbi)  # fmt: skip
    with gov.session() as session:
        agreement_id = adopt_without_vote(session, terms, at=start, decided_by="test")
    return replace(gov, agreement_id=agreement_id).propose(
        ProposalAction.RENEW, now=utcnow(), new_expires_at=start + timedelta(days=730)
    )


def test_the_proposal_links_the_renewal_report_page_and_its_downloads(
    web: TestClient, db: Database, world: World
) -> None:
    gov = _gov_logged_in(web, db, world, "da")
    proposal_id = _renewal(gov, world)
    shown = web.get(f"/proposals/{proposal_id}")
    assert f'href="/proposals/{proposal_id}/report"' in shown.text
    api = f"/api/v1/proposals/{proposal_id}/report"
    assert f'href="{api}?format=pdf"' in shown.text
    assert f'href="{api}?format=json"' in shown.text
    reads_before = [e for e in entries(db) if e[0] == "proposal.report"]
    page = web.get(f"/proposals/{proposal_id}/report")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Renewal report: FBI renewal</h1>" in page.text
    # The report's own styles and charts: inline style, still no inline script.
    policy = page.headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "script-src 'self';" in policy
    assert "<script" not in page.text
    # What the page shows is the attached report: its hash is the proposal's.
    with db.session() as session:
        stored = session.get(ProposalReport, proposal_id)
        assert stored is not None
    assert page.headers["OpenPARS-Report-SHA256"] == stored.sha256
    assert stored.sha256 in page.text
    assert f'href="/proposals/{proposal_id}"' in page.text
    assert f'href="{api}?format=pdf" download=' in page.text
    # One audited read, as through the API.
    reads_after = [e for e in entries(db) if e[0] == "proposal.report"]
    assert len(reads_after) == len(reads_before) + 1
    assert reads_after[-1] == ("proposal.report", "ok", None)
    # The download the page names works with the page's own cookie.
    downloaded = web.get(f"{api}?format=json")
    assert downloaded.status_code == 200
    assert hashlib.sha256(downloaded.content).hexdigest() == stored.sha256


def test_the_report_page_is_refused_to_non_readers_and_audited(
    web: TestClient, db: Database, world: World
) -> None:
    gov = build_gov(db, world)
    proposal_id = _renewal(gov, world)
    # A stakeholder's administrator governs nothing and reads no oversight report.
    admin = gov.admins["da"]
    _logged_in(web, db, admin.user_id or 0, admin.username)
    refused = web.get(f"/proposals/{proposal_id}/report")
    assert refused.status_code == 403
    assert "Renewal report" not in refused.text
    assert "Content-Security-Policy" in refused.headers
    assert "unsafe-inline" not in refused.headers["content-security-policy"]
    assert entries(db)[-1][1:] == ("refused", "permission_denied")


def test_a_proposal_without_a_report_has_no_report_page(
    web: TestClient, db: Database, world: World
) -> None:
    gov = _gov_logged_in(web, db, world, "da")
    proposal_id = gov.propose()
    assert "report-link" not in web.get(f"/proposals/{proposal_id}").text
    missing = web.get(f"/proposals/{proposal_id}/report")
    assert missing.status_code == 404
    assert "only renewal proposals carry one" in missing.text


def test_a_response_cannot_choose_a_weaker_policy_than_inline_style() -> None:
    """The security middleware keeps a response's own policy only if it is the inline-style
    one; any other (here one allowing inline script) is replaced by the site's."""

    def own(request: Request) -> PlainTextResponse:
        policy = {"style": INLINE_STYLE_POLICY, "script": DOCS_POLICY}[request.path_params["which"]]
        return PlainTextResponse("x", headers={"Content-Security-Policy": policy})

    app = Starlette(routes=[Route("/own/{which}", own)])
    client = TestClient(SecurityHeaders(app))
    assert client.get("/own/style").headers["content-security-policy"] == INLINE_STYLE_POLICY
    assert client.get("/own/script").headers["content-security-policy"] == (CONTENT_SECURITY_POLICY)
