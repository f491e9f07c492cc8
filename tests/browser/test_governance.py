"""Agreements and signed votes in Chromium: two stakeholders sign in the browser with WebCrypto
Ed25519 (one picks the key file, one pastes the key) and the agreement comes into force (hp3).

The private keys are written to files the test hands to the browser, as a voter would pick
them; the tests check that no request carried them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Page, Request, expect
from sqlalchemy import func, select

from openpars.access import service as reads
from openpars.access.schemas import ArrestQuery, ReadContext
from openpars.agreements import service as agreements
from openpars.agreements.models import Agreement, AgreementStatus
from openpars.agreements.schemas import AgreementDocument
from openpars.db import utcnow
from openpars.demo.agreements import adopt_without_vote
from openpars.governance.models import Vote
from openpars.governance.quorum import ProposalAction
from openpars.identity import service
from openpars.identity.principal import SYSTEM
from tests.browser.conftest import (
    PASSWORD,
    LiveServer,
    assert_accessible,
    expect_console_error,
    screenshot,
)
from tests.browser.helpers_hp4 import check_page
from tests.governance.helpers import Gov, build_gov, document

Login = Callable[..., None]


@pytest.fixture(scope="module")
def gov(live_server: LiveServer) -> Gov:
    """The default board (DA, courts, city), each with a voter and a key; a draft agreement."""
    built = build_gov(live_server.db, live_server.world)
    with live_server.db.session() as session:
        for who in ("da", "court", "city"):
            for holder in (built.voters[who], built.admins[who]):
                service.set_password(
                    session,
                    actor=SYSTEM,
                    user_id=holder.user_id or 0,
                    new_password=PASSWORD,
                    force_change=False,
                )
    return built


def _pem(gov: Gov, who: str) -> bytes:
    return gov.keys[who].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _watch(page: Page, secrets: list[bytes]) -> list[str]:
    """Requests whose body would carry a private key (there must be none)."""
    leaks: list[str] = []

    def check(request: Request) -> None:
        body = request.post_data_buffer or b""
        for secret in secrets:
            inner = b"".join(secret.splitlines()[1:-1])
            if inner[:40] in body.replace(b"\n", b"") or inner[:40] in body:
                leaks.append(request.url)

    page.on("request", check)
    return leaks


def _vote(page: Page, proposal_id: int, rationale: str) -> None:
    page.goto(f"/proposals/{proposal_id}")
    page.locator("#choice").select_option("yes")
    page.locator("#rationale").fill(rationale)


def test_two_stakeholders_sign_in_the_browser_and_the_agreement_comes_into_force(
    page: Page, live_server: LiveServer, login: Login, gov: Gov, tmp_path: Path
) -> None:
    proposal_id = gov.propose()
    leaks = _watch(page, [_pem(gov, "da"), _pem(gov, "court")])
    # The DA's voter picks the key file.
    key_file = tmp_path / "da-board.key"
    key_file.write_bytes(_pem(gov, "da"))
    login(page, gov.voters["da"].username)
    page.get_by_role("link", name="Agreements").click()
    expect(page.get_by_role("cell", name="draft")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "agreements-list")
    page.get_by_role("link", name="ICE data-use agreement").click()
    expect(page.get_by_role("heading", name="Proposals")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "agreement-page")
    _vote(page, proposal_id, "Arrestees only; the DA agrees.")
    assert_accessible(page)
    screenshot(page, "proposal-vote")
    page.set_viewport_size({"width": 768, "height": 1024})
    assert_accessible(page)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.locator("#key_file").set_input_files(str(key_file))
    page.get_by_role("button", name="Sign and submit vote").click()
    expect(page.get_by_role("status")).to_contain_text("verified and recorded")
    expect(page.locator("#proposal-status")).to_have_text("open")
    # The court's voter pastes the key.
    page.get_by_role("button", name="Log out").click()
    login(page, gov.voters["court"].username)
    _vote(page, proposal_id, "The courts agree.")
    page.locator("#key_text").fill(_pem(gov, "court").decode())
    page.get_by_role("button", name="Sign and submit vote").click()
    expect(page.get_by_role("status")).to_contain_text("verified and recorded")
    expect(page.locator("#proposal-status")).to_have_text("applied")
    screenshot(page, "proposal-applied")
    with live_server.db.session() as session:
        agreement = session.get(Agreement, gov.agreement_id)
        assert agreement is not None and agreement.status is AgreementStatus.ACTIVE
        assert session.scalar(select(func.count()).select_from(Vote)) == 2
    page.goto("/agreements")
    expect(page.get_by_role("cell", name="active")).to_be_visible()
    assert leaks == []


def test_a_wrong_key_is_refused_in_the_browser_and_nothing_is_recorded(
    page: Page, live_server: LiveServer, login: Login, gov: Gov
) -> None:
    proposal_id = gov.propose()
    login(page, gov.voters["city"].username)
    _vote(page, proposal_id, "Signed with another stakeholder's key.")
    page.locator("#key_text").fill(_pem(gov, "da").decode())
    expect_refusal = page.locator("#signed_vote-error")
    expect_console_error(page, "status of 422")
    page.get_by_role("button", name="Sign and submit vote").click()
    expect(expect_refusal).to_contain_text("is not a registered key of stakeholder")
    assert_accessible(page)
    # A key that is not a key never leaves the browser: the page says why.
    page.goto(f"/proposals/{proposal_id}")
    page.locator("#rationale").fill("a rationale")
    page.locator("#key_text").fill("not a key")
    page.get_by_role("button", name="Sign and submit vote").click()
    expect(page.locator("#sign-error")).to_contain_text("The vote was not signed")
    with live_server.db.session() as session:
        votes = session.scalar(
            select(func.count()).select_from(Vote).where(Vote.proposal_id == proposal_id)
        )
    assert votes == 0


def test_a_voter_reads_the_what_if_replay_of_a_proposal(
    page: Page, login: Login, live_server: LiveServer, gov: Gov
) -> None:
    """The FBI's agreement in force, one of its analyst's reads, an amendment that drops the
    purpose it was made for: the voter follows the proposal's link to the replay (axe at
    laptop and tablet size)."""
    world, db = live_server.world, live_server.db
    start = utcnow().replace(microsecond=0) - timedelta(days=1)
    fbi = world.agencies["Federal Bureau of Investigation"]
    terms = document(world, start=start, end=start + timedelta(days=365),
                     name="FBI data-use agreement", grantee_agency_id=fbi)  # fmt: skip
    with db.session() as session:
        agreement_id = adopt_without_vote(session, terms, at=start, decided_by="test")
    with db.session(external=True) as session:
        reads.search_arrests(
            session, principal=world.principals["fbi"], query=ArrestQuery(otn="N0000001-1"),
            context=ReadContext(purpose="criminal-investigation"),
        )  # fmt: skip
    narrowed = terms.model_dump(mode="json")
    narrowed["scope"]["purposes"] = [{"purpose": "fugitive-apprehension"}]
    with db.session() as session:
        agreements.update_agreement(
            session, actor=SYSTEM, agreement_id=agreement_id,
            data=AgreementDocument.model_validate(narrowed), reason="warrants only",
        )  # fmt: skip
    # Opened after the read: the replay kept with the proposal, computed as it opens, holds it.
    amend = replace(gov, agreement_id=agreement_id).propose(ProposalAction.AMEND, now=utcnow())
    login(page, gov.voters["da"].username)
    page.goto(f"/proposals/{amend}")
    page.get_by_role("link", name="What-if replay").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"What-if replay of proposal {amend}")
    expect(page.locator("#total-newly-refused")).to_contain_text("1 (purpose_not_allowed: 1)")
    expect(page.get_by_role("cell", name="would be refused")).to_be_visible()
    check_page(page, "what-if")
    # A voter reads the replay kept with the proposal; only the oversight role replays again.
    expect(page.get_by_role("button", name="Replay again")).to_have_count(0)
    # The same agreement up for renewal: the proposal links its oversight report's own page.
    renew = replace(gov, agreement_id=agreement_id).propose(
        ProposalAction.RENEW, now=utcnow(), new_expires_at=start + timedelta(days=730)
    )
    page.goto(f"/proposals/{renew}")
    page.get_by_role("link", name="Oversight report of the current term").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Renewal report: FBI data-use agreement"
    )
    # Styled (its own <style> applies under the page's policy) and no console error.
    assert (
        page.evaluate("() => getComputedStyle(document.querySelector('table')).borderCollapse")
        == "collapse"
    )
    expect(page.get_by_role("link", name="Download the PDF")).to_have_attribute(
        "href", f"/api/v1/proposals/{renew}/report?format=pdf"
    )
    check_page(page, "renewal-report")
