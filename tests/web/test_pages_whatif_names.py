"""The what-if replay as a page, and names instead of ids on the governance and oversight pages.

The page calls the service of ``GET /api/v1/proposals/{id}/what-if`` and leaves its one audit
entry (``via`` web); it is refused to outsiders and the administrator, refuses a bad window
beside its field, audited. Names come from one statement per page, however many rows it shows.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.governance.models import Proposal
from openpars.governance.quorum import ProposalAction
from openpars.governance.schemas import ProposalCreate
from openpars.governance.service import open_proposal
from openpars.identity.models import User
from openpars.identity.roles import Role
from openpars.oversight import review
from openpars.web.app import create_app
from tests.factories import World
from tests.governance.helpers import Gov, register
from tests.oversight.test_whatif import (
    Site,
    build,
    last_params,
    narrowed_proposal,
)
from tests.web.test_admin_audit_oversight_pages import add_user, open_case, signed_in
from tests.web.test_pages import entries

# A proposal's columns copied into one opened without a replay (all but id and summary).
PROPOSAL_COPIED = (
    "agreement_id", "agreement_version", "content_hash", "action", "deadline", "board_config_id",
    "status", "opened_at", "opened_by", "opened_by_user_id",
)  # fmt: skip


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The app over TLS (the session cookie is Secure), not following redirects."""
    app = create_app(settings, database=db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def site(client: TestClient, db: Database, world: World) -> Site:
    return build(client, db, world)


def _voter_in(web: TestClient, db: Database, world: World, gov: Gov, who: str = "da") -> str:
    world.users[gov.voters[who].username] = gov.voters[who].user_id or 0
    return signed_in(web, db, world, gov.voters[who].username)


def _display(db: Database, user_id: int) -> str:
    with db.session() as s:
        user = s.get(User, user_id)
        assert user is not None
        return f"{user.display_name} ({user.username})"


def _cells(page: str) -> list[str]:
    body = page.split('class="whatif"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


def test_the_what_if_page_is_the_apis_replay_in_words_with_the_same_audit_entry(
    web: TestClient, db: Database, world: World, site: Site
) -> None:
    gov, proposal_id = narrowed_proposal(db, world, site)
    api = web.get(f"/api/v1/proposals/{proposal_id}/what-if", headers=gov.auth("da"))
    assert api.status_code == 200, api.text
    expected = api.json()
    api_params = last_params(db, "oversight.what_if")
    _voter_in(web, db, world, gov)
    shown = web.get(f"/proposals/{proposal_id}")
    assert shown.status_code == 200
    # The proposal links to the page, not to the API's JSON.
    assert f'href="/proposals/{proposal_id}/what-if" id="what-if-link"' in shown.text
    before = len(entries(db))
    page = web.get(f"/proposals/{proposal_id}/what-if")
    assert page.status_code == 200, page.text
    # The replay kept when the proposal opened, said so: when, by whom, over which window.
    voter = gov.voters["da"].username
    assert f"by {voter},\n  over the queries of the 6 months from" in page.text
    # One entry, the API's, saying it came from the page; no simulated read is audited.
    assert [a for a, _, _ in entries(db)[before:]] == ["oversight.what_if"]
    page_params = last_params(db, "oversight.what_if")
    assert page_params.pop("via") == "web" and api_params.pop("via") == "api"
    for moment in ("since", "until"):
        page_params.pop(moment), api_params.pop(moment)
    assert page_params == {**api_params, "limit": 50}
    totals = expected["totals"]
    assert f'id="total-queries">{totals["queries"]}<' in page.text
    assert f'id="total-newly-refused">{totals["newly_refused"]} (purpose_not_allowed: 2)' in (
        page.text
    )
    rows = _cells(page.text)
    assert len(rows) == len(expected["items"]) == site.reads
    refused = [r for r in rows if "would be refused" in r]
    assert len(refused) == totals["newly_refused"] == 2
    # Who made each query, by name; never "user N".
    ice = _display(db, world.users["ice"])
    assert all(ice in r for r in rows)
    assert not re.search(r">user \d+<", page.text)
    assert "Immigration and Customs Enforcement" in rows[0]


def test_the_what_if_page_refuses_outsiders_and_bad_windows_audited(
    web: TestClient, db: Database, world: World, site: Site, settings: Settings
) -> None:
    gov, proposal_id = narrowed_proposal(db, world, site)
    path = f"/proposals/{proposal_id}/what-if"
    # Neither an outside agency's account nor the site administrator (no oversight, no vote).
    for who in ("ice", "admin"):
        token = signed_in(web, db, world, who)
        refused = web.get(path)
        assert refused.status_code == 403, (who, refused.text)
        assert entries(db)[-1][1:] == ("refused", "permission_denied")
        # Nor may they replay again.
        refused = web.post(path, data={"csrf_token": token, "months": "2"})
        assert refused.status_code == 403, (who, refused.text)
        assert entries(db)[-1][1:] == ("refused", "permission_denied")
        web.cookies.clear()
    # A voter reads the kept replay but may not replace it, and the page offers no form.
    token = _voter_in(web, db, world, gov)
    assert "Replay again" not in web.get(path).text
    refused = web.post(path, data={"csrf_token": token, "months": "2"})
    assert refused.status_code == 403, refused.text
    assert entries(db)[-1][1:] == ("refused", "permission_denied")
    web.cookies.clear()
    token = signed_in(web, db, world, "overseer")
    for months in ("25", "0", "two"):
        bad = web.post(path, data={"csrf_token": token, "months": months})
        assert bad.status_code == 422 and 'id="months-error"' in bad.text, months
        assert 'id="total-queries">' in bad.text
    missing = web.get("/proposals/999999/what-if")
    assert missing.status_code == 404
    # Each refused the months beside the field, the replay kept still shown; nothing replayed.
    assert "oversight.what_if_recompute" not in [a for a, _, _ in entries(db)]
    # Replay again over 2 months: kept, and shown from now on.
    again = web.post(path, data={"csrf_token": token, "months": "2"})
    assert again.status_code == 303 and again.headers["location"] == path
    assert "oversight.what_if_recompute" in [a for a, _, _ in entries(db)]
    assert "of the 2 months from" in web.get(path).text
    # A window holding more reads than the site replays at once: refused beside the months
    # field, audited, nothing kept (the 2 months' replay still shown).
    small = settings.model_copy(update={"oversight_whatif_max_queries": 1})
    app = create_app(small, database=db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as other:
        other.cookies.update(web.cookies)
        too_many = other.post(path, data={"csrf_token": token, "months": "3"})
    assert too_many.status_code == 422, too_many.text
    assert 'id="months-error"' in too_many.text and "ask for fewer months" in too_many.text
    assert entries(db)[-2:] == [
        (f"POST {path}", "refused", "too_many_queries"),
        ("oversight.what_if", "ok", None),  # the page shows the replay kept, beside the error
    ]
    assert "of the 2 months from" in web.get(path).text


def test_a_proposal_whose_replay_failed_or_is_missing_says_so_and_offers_it_again(
    web: TestClient, db: Database, world: World, site: Site
) -> None:
    gov = Gov(world=world, db=db, t0=utcnow(), agreement_id=site.agreement_id)
    with db.session() as s:
        for who in ("da", "court", "city"):
            register(s, gov, who)
        # Opened on a site that replays at most one query: the proposal opens, the replay
        # is kept as failed, with the refusal's words.
        proposal = open_proposal(
            s, actor=gov.voters["da"], whatif_max_queries=1,
            data=ProposalCreate(
                agreement_id=site.agreement_id, action=ProposalAction.AMEND, summary="amend",
                deadline=gov.t0 + timedelta(days=14),
            ),
        )  # fmt: skip
        failed_id = proposal.id
        # A proposal kept from before replays were kept with proposals: none at all.
        bare = Proposal(
            **{c: getattr(proposal, c) for c in PROPOSAL_COPIED}, summary="no replay kept"
        )
        s.add(bare)
        s.flush()
        bare_id = bare.id
    opened = last_params(db, "proposal.open")
    assert opened["replay_status"] == "failed" and "replay_sha256" not in opened
    token = signed_in(web, db, world, "overseer")
    for proposal_id, words in (
        (failed_id, "failed: the last 6 months hold more than 1 external reads"),
        (bare_id, "has no what-if replay kept with it"),
    ):
        path = f"/proposals/{proposal_id}/what-if"
        shown = web.get(path)
        assert shown.status_code == 200, shown.text
        assert 'id="no-replay"' in shown.text and words in shown.text
        assert 'id="total-queries"' not in shown.text
        assert f'action="{path}"' in shown.text and "Replay again" in shown.text
        api = web.get(f"/api/v1{path}", headers=gov.auth("da"))
        code = "replay_failed" if proposal_id == failed_id else "no_replay"
        assert api.json()["error"]["code"] == code and api.json()["error"]["field"] == (
            "proposal_id"
        )
        assert api.status_code == (409 if proposal_id == failed_id else 404)
        # Replay again: the page shows it.
        assert web.post(path, data={"csrf_token": token, "months": "1"}).status_code == 303
        again = web.get(path)
        assert f'id="total-queries">{site.reads}<' in again.text and "no-replay" not in again.text


def test_a_voter_reads_the_board_and_tally_by_name(
    web: TestClient, db: Database, world: World, site: Site
) -> None:
    gov, proposal_id = narrowed_proposal(db, world, site)
    _voter_in(web, db, world, gov)
    shown = web.get(f"/proposals/{proposal_id}")
    assert shown.status_code == 200
    board = re.search(r"<dt>Board</dt><dd>(.*?)</dd>", shown.text)
    assert board is not None
    assert html.unescape(board.group(1)).split("; ") == sorted(
        (n for n in world.agencies if world.agencies[n] in gov.agencies.values()),
        key=lambda n: world.agencies[n],
    )
    listed = web.get("/agreements")
    assert "Immigration and Customs Enforcement" in listed.text
    assert not re.search(r">agency \d+<", listed.text)
    terms = web.get(f"/agreements/{site.agreement_id}")
    assert "Grantee: Immigration and Customs Enforcement." in terms.text


def _statements(db: Database, web: TestClient, path: str) -> int:
    """How many SQL statements one page request runs."""
    count = 0

    def counted(*_: Any) -> None:
        nonlocal count
        count += 1

    event.listen(db.bind, "before_cursor_execute", counted)
    try:
        assert web.get(path).status_code == 200
    finally:
        event.remove(db.bind, "before_cursor_execute", counted)
    return count


def test_oversight_pages_name_people_with_one_statement_whatever_the_rows(
    web: TestClient, db: Database, world: World
) -> None:
    add_user(db, world, "watcher", "City of Philadelphia", [Role.OVERSIGHT])
    add_user(db, world, "second", "City of Philadelphia", [Role.OVERSIGHT])
    case_id = open_case(db, world.users["reader"])
    token = signed_in(web, db, world, "watcher")
    assigned = web.post(
        f"/oversight/cases/{case_id}/assign", data={"csrf_token": token, "assignee": "second"}
    )
    assert assigned.status_code == 303
    reader, second, watcher = (
        _display(db, world.users[u]) for u in ("reader", "second", "watcher")
    )
    shown = web.get(f"/oversight/cases/{case_id}")
    assert f'id="case-about">{reader}</dd>' in shown.text
    assert f'id="case-assignee">{second}</dd>' in shown.text
    assert f"by {watcher} to {second}" in shown.text
    assert not re.search(r"\buser \d+\b", shown.text)
    queue = web.get("/oversight")
    assert reader in queue.text and not re.search(r"\buser \d+\b", queue.text)
    one = _statements(db, web, "/oversight")
    # Five more cases about five more accounts: the page runs as many statements as before.
    for who in ("intake", "charging", "pretrial", "court", "admin"):
        open_case(db, world.users[who])
    with db.session() as s:
        review.group_flags(s)
    many = web.get("/oversight")
    for who in ("intake", "charging", "pretrial", "court", "admin"):
        assert _display(db, world.users[who]) in many.text
    assert _statements(db, web, "/oversight") == one
