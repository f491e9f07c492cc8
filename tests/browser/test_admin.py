"""Administration in Chromium: unlock a locked user, end its session, create a user with bad
fields, agencies and witnesses; a user without the permission sees no link and is refused."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from openpars.db import utcnow
from openpars.identity.models import LogonSession, User
from tests.browser.conftest import LiveServer, expect_console_error
from tests.browser.helpers_hp4 import check_page
from tests.browser.test_login import audit_rows

Login = Callable[..., None]


def test_an_administrator_unlocks_a_locked_user_and_ends_its_session(
    page: Page, browser: Browser, login: Login, live_server: LiveServer
) -> None:
    user_id = live_server.world.users["pretrial"]
    theirs = browser.new_context(base_url=live_server.url)
    their_page = theirs.new_page()
    login(their_page, "pretrial")
    with live_server.db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        user.locked_at = utcnow()
        user.failed_logons = 5
        opened = session.scalars(select(LogonSession.id).where(LogonSession.user_id == user_id))
        session_id = opened.one()
    login(page, "admin")
    page.get_by_role("link", name="Administration").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    check_page(page, "admin-users")
    page.get_by_role("link", name="pretrial", exact=True).click()
    expect(page.locator(".facts")).to_contain_text("locked since")
    check_page(page, "admin-user-locked")
    page.get_by_role("button", name="Unlock pretrial").click()
    expect(page.get_by_role("status")).to_contain_text("The account was unlocked")
    expect(page.get_by_role("button", name="Unlock pretrial")).to_have_count(0)
    page.get_by_role("button", name=f"End session {session_id}").click()
    expect(page.get_by_role("status")).to_contain_text("The session was ended")
    expect(page.get_by_role("cell", name="ended (ended_by_admin)")).to_be_visible()
    check_page(page, "admin-user")
    with live_server.db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        assert user.locked_at is None
        ended = session.get(LogonSession, session_id)
        assert ended is not None
        assert ended.ended_at is not None
    their_page.reload()
    expect(their_page).to_have_url(live_server.url + "/login?reason=session_ended")
    theirs.close()
    actions = [a for a, _, _ in audit_rows(live_server, live_server.world.users["admin"])]
    assert "account.unlock" in actions
    assert "session.end" in actions


def test_a_new_user_form_shows_errors_beside_fields_then_creates(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    expect_console_error(page, "status of 422")
    login(page, "admin")
    page.goto("/admin/users/new")
    check_page(page, "admin-user-new")
    page.locator("#username").fill("Bad Name")
    page.locator("#display_name").fill("A New Reader")
    page.get_by_role("button", name="Create the user").click()
    expect(page.locator("#username-error")).to_be_visible()
    expect(page.locator("#agency_id-error")).to_be_visible()
    expect(page.locator("#roles-error")).to_be_visible()
    expect(page.locator("#display_name")).to_have_value("A New Reader")
    check_page(page, "admin-user-new-errors")
    page.locator("#username").fill("new.reader")
    page.locator("#agency_id").select_option(label="Defender Association")
    page.get_by_label("reader", exact=True).check()
    page.get_by_role("button", name="Create the user").click()
    expect(page.get_by_role("status")).to_contain_text("The account was created")
    expect(page.get_by_role("heading", level=1)).to_have_text("A New Reader (new.reader)")


def test_agencies_and_witnesses(page: Page, login: Login) -> None:
    login(page, "admin")
    page.goto("/admin")
    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Agencies"
    ).click()
    expect(page.get_by_role("cell", name="Defender Association")).to_be_visible()
    check_page(page, "admin-agencies")
    page.locator("#name").fill("Records Unit")
    page.locator("#kind").select_option("police")
    page.get_by_role("button", name="Register the agency").click()
    expect(page.get_by_role("status")).to_contain_text("The agency was registered")
    expect(page.get_by_role("cell", name="Records Unit")).to_be_visible()
    page.goto("/admin/witnesses")
    expect(page.get_by_role("heading", level=1)).to_have_text("Witnesses")
    check_page(page, "admin-witnesses")


def test_a_user_without_the_permission_sees_no_link_and_is_refused(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    login(page, "reader")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Administration")).to_have_count(0)
    expect(nav.get_by_role("link", name="Oversight")).to_have_count(0)
    expect_console_error(page, "status of 403")
    response = page.goto(f"/admin/users/{live_server.world.users['intake']}")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("user:manage")
    check_page(page, "admin-refused")
    reader = live_server.world.users["reader"]
    assert audit_rows(live_server, reader)[-1][1:] == ("refused", "permission_denied")


def test_an_administrator_changes_roles_then_sees_its_own_sessions(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    intake = live_server.world.users["intake"]
    login(page, "admin")
    page.goto(f"/admin/users/{intake}")
    roles = page.get_by_role("group", name="The roles intake holds after the change")
    expect(roles.get_by_label("intake", exact=True)).to_be_checked()
    roles.get_by_label("reader", exact=True).check()
    page.get_by_role("button", name="Change the roles").click()
    expect(page.get_by_role("status")).to_contain_text("The roles were changed")
    expect(page.locator(".facts")).to_contain_text("intake, reader")
    with live_server.db.session() as session:
        user = session.get(User, intake)
        assert user is not None
        assert sorted(user.roles) == ["intake", "reader"]
    page.get_by_role("link", name="Your sessions").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your sessions")
    expect(page.get_by_text("(this one)")).to_be_visible()
    check_page(page, "account-sessions")
    actions = [a for a, _, _ in audit_rows(live_server, live_server.world.users["admin"])]
    assert "user.roles" in actions
