"""The oversight review queue in Chromium: a reviewer assigns, annotates and closes a case with
a finding; a form without a finding is shown again; a user without the role is refused."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import select

from openpars.db import utcnow
from openpars.identity.roles import Role
from openpars.oversight import review
from openpars.oversight.models import Case, CaseState, Flag
from tests.browser.conftest import LiveServer, expect_console_error
from tests.browser.helpers_hp4 import add_user, check_page
from tests.browser.test_login import audit_rows

Login = Callable[..., None]


def _open_case(server: LiveServer, subject: str) -> int:
    with server.db.session() as session:
        session.add(
            Flag(
                detector="volume", dedupe_key=f"browser:{subject}",
                rule="more than 200 reads a day",
                threshold=200.0, subject_user_id=server.world.users[subject], raised_at=utcnow(),
            )
        )  # fmt: skip
    with server.db.session() as session:
        review.group_flags(session)
    with server.db.session() as session:
        found = session.scalars(select(Case.id).order_by(Case.id.desc())).first()
    assert found is not None
    return found


def test_a_reviewer_closes_a_case_with_a_finding(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    add_user(live_server, "watcher", "City of Philadelphia", [Role.OVERSIGHT])
    add_user(live_server, "watcher2", "City of Philadelphia", [Role.OVERSIGHT])
    case_id = _open_case(live_server, "reader")
    expect_console_error(page, "status of 422")
    login(page, "watcher")
    page.get_by_role("link", name="Oversight").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Oversight review queue")
    check_page(page, "oversight-queue")
    page.get_by_role("link", name=f"Case {case_id}").click()
    expect(page.get_by_role("cell", name="more than 200 reads a day")).to_be_visible()
    check_page(page, "oversight-case")
    page.get_by_label("Reviewer's username").fill("watcher2")
    page.get_by_role("button", name="Assign the case").click()
    expect(page.get_by_role("status")).to_have_text("The case was assigned.")
    page.locator("#note_note").fill("Asked the user's supervisor for the reason.")
    page.get_by_role("button", name="Add the note").click()
    expect(page.get_by_role("status")).to_have_text("The note was added to the case.")
    page.get_by_role("button", name="Close the case").click()
    expect(page.locator("#close_finding-error")).to_have_text("Choose a finding.")
    check_page(page, "oversight-case-errors")
    page.locator("#close_finding").select_option("training")
    page.get_by_label("Last note").fill("Refresher training booked.")
    page.get_by_role("button", name="Close the case").click()
    expect(page.get_by_role("status")).to_have_text("The case was closed with its finding.")
    expect(page.locator("#case-state")).to_contain_text("closed: Training")
    expect(page.get_by_role("button", name="Close the case")).to_have_count(0)
    with live_server.db.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.state is CaseState.CLOSED
    actions = [a for a, _, _ in audit_rows(live_server, live_server.world.users["watcher"])]
    for action in ("oversight.case.assign", "oversight.case.note", "oversight.case.close"):
        assert action in actions


def test_a_user_without_the_oversight_role_is_refused(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    login(page, "admin")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Oversight")
    ).to_have_count(0)
    expect_console_error(page, "status of 403")
    response = page.goto("/oversight")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("oversight:read")
    assert audit_rows(live_server, live_server.world.users["admin"])[-1][1:] == (
        "refused",
        "permission_denied",
    )


def test_a_case_is_closed_with_the_keyboard_alone(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    add_user(live_server, "watcher", "City of Philadelphia", [Role.OVERSIGHT])
    case_id = _open_case(live_server, "intake")
    login(page, "watcher")
    page.goto(f"/oversight/cases/{case_id}")
    # From the finding: choose with the arrows, Tab to the note, Tab to the button, Enter.
    page.locator("#close_finding").focus()
    page.keyboard.press("ArrowDown")
    assert page.locator("#close_finding").input_value() == "no_issue"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "close_note"
    page.keyboard.type("The reads were for a court order.")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Close the case"
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("The case was closed with its finding.")
    expect(page.locator("#case-state")).to_contain_text("closed: No issue")
