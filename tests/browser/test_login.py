"""Logging in and out in Chromium: password, lockout, idle lock, CSRF, headers, accessibility."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import func, select, update

from openpars.audit.models import AuditEntry
from openpars.db import utcnow
from openpars.identity import logon
from openpars.identity.models import LogonSession, User
from openpars.web.security import CONTENT_SECURITY_POLICY
from tests.browser.conftest import (
    LiveServer,
    assert_accessible,
    expect_console_error,
    screenshot,
)

Login = Callable[..., None]


def audit_rows(server: LiveServer, user_id: int | None = None) -> list[tuple[str, str, str | None]]:
    """(action, outcome, error code) of the audit entries, oldest first (one user's if given)."""
    with server.db.session() as session:
        query = select(AuditEntry.action, AuditEntry.outcome, AuditEntry.content).order_by(
            AuditEntry.id
        )
        if user_id is not None:
            query = query.where(AuditEntry.user_id == user_id)
        rows = session.execute(query).all()
    return [(a, str(o), json.loads(bytes(c))["error_code"]) for a, o, c in rows]


def test_log_in_with_a_password_and_out(page: Page, login: Login, live_server: LiveServer) -> None:
    page.goto("/")
    expect(page).to_have_url(live_server.url + "/login?reason=token_missing")
    expect(page.get_by_role("status")).to_have_text("Log in to continue.")
    screenshot(page, "login")
    login(page, "charging")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Charging")
    expect(page.locator("header")).to_contain_text("District Attorney's Office")
    expect(page.get_by_text("Approve, decline or modify charges")).to_be_visible()
    screenshot(page, "home")
    cookie = next(c for c in page.context.cookies() if c["name"] == logon.COOKIE_NAME)
    assert cookie["httpOnly"]
    assert cookie["secure"]
    assert cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You have logged out.")
    page.goto("/")
    expect(page).to_have_url(live_server.url + "/login?reason=token_missing")
    actions = [a for a, _, _ in audit_rows(live_server, live_server.world.users["charging"])]
    assert "logon" in actions
    assert "session.end" in actions


def test_five_wrong_passwords_lock_the_account(page: Page, live_server: LiveServer) -> None:
    user_id = live_server.world.users["court"]
    expect_console_error(page, "status of 401")
    for attempt in range(logon.MAX_FAILED_LOGONS + 1):
        page.goto("/login")
        page.locator("#username").fill("court")
        # The sixth attempt has the right password: the account is locked by then.
        last = attempt == logon.MAX_FAILED_LOGONS
        page.locator("#password").fill(
            "correct horse battery staple" if last else f"wrong guess {attempt}"
        )
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_contain_text("an administrator must release it")
    screenshot(page, "login-refused")
    with live_server.db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        assert user.locked_at is not None
    rows = audit_rows(live_server, user_id)
    assert [a for a, _, _ in rows].count("logon.failed") == logon.MAX_FAILED_LOGONS + 1
    assert ("account.lock", "ok", None) in rows


def test_an_idle_session_is_locked(page: Page, login: Login, live_server: LiveServer) -> None:
    login(page, "pretrial")
    user_id = live_server.world.users["pretrial"]
    with live_server.db.session() as session:
        session.execute(
            update(LogonSession)
            .where(LogonSession.user_id == user_id)
            .values(last_seen_at=utcnow() - logon.IDLE_LIMIT - timedelta(minutes=1))
        )
    page.reload()
    expect(page).to_have_url(live_server.url + "/login?reason=session_idle")
    expect(page.get_by_role("status")).to_contain_text("locked after 30 minutes")
    # The refusal names no user: the session did not authenticate anyone.
    assert audit_rows(live_server)[-1] == ("GET /", "refused", "session_idle")


def _ended_sessions(server: LiveServer, user_id: int) -> int:
    with server.db.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(LogonSession)
                .where(LogonSession.user_id == user_id, LogonSession.ended_at.is_not(None))
            )
            or 0
        )


def test_a_forged_or_missing_csrf_token_is_refused(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    login(page, "reader")
    user_id = live_server.world.users["reader"]
    expect_console_error(page, "status of 403")
    for tamper in (
        "document.querySelector('form.logout input[name=csrf_token]').value = 'forged'",
        "document.querySelector('form.logout input[name=csrf_token]').remove()",
    ):
        page.goto("/")
        page.evaluate(tamper)
        with page.expect_response(lambda r: r.url.endswith("/logout")) as answer:
            page.get_by_role("button", name="Log out").click()
        assert answer.value.status == 403
        expect(page.get_by_role("alert")).to_contain_text("security token")
        assert _ended_sessions(live_server, user_id) == 0  # nothing written
        assert audit_rows(live_server, user_id)[-1] == ("POST /logout", "refused", "csrf_failed")
    screenshot(page, "csrf-refused")
    # The untouched form still works: the session was not harmed by the refusals.
    page.goto("/")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You have logged out.")
    assert _ended_sessions(live_server, user_id) == 1


def test_security_headers(page: Page, login: Login) -> None:
    response = page.goto("/login")
    assert response is not None
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in headers  # plain HTTP
    # The policy holds in the browser: an injected inline script does not run.
    expect_console_error(page, "Content Security Policy")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true'; document.body.appendChild(s); }"
    )
    assert page.evaluate("() => window.injected === undefined")


def test_login_and_home_pass_axe(page: Page, login: Login) -> None:
    page.goto("/login")
    assert_accessible(page)
    login(page, "admin")
    assert_accessible(page)
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet
    screenshot(page, "home-tablet")
    assert_accessible(page)


def test_log_in_with_the_keyboard_alone(page: Page, live_server: LiveServer) -> None:
    page.goto("/login")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")  # past the header, into the page's content
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "username"
    page.keyboard.type("clerk")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "password"
    page.keyboard.type("correct horse battery staple")
    page.keyboard.press("Enter")
    # The one-time code and the banner, by keyboard too.
    page.wait_for_url(live_server.url + "/login/code")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "code"
    page.keyboard.type(live_server.code("clerk"))
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/login/banner")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "I understand and agree"
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/")
    expect(page.get_by_text("Read sealed records.")).to_be_visible()


def test_an_empty_form_shows_each_error_beside_its_field(page: Page) -> None:
    expect_console_error(page, "status of 422")
    page.goto("/login")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#username-error")).to_have_text("Enter your username.")
    expect(page.locator("#password-error")).to_have_text("Enter your password.")
    assert page.locator("#username").get_attribute("aria-invalid") == "true"
    assert "username-error" in (page.locator("#username").get_attribute("aria-describedby") or "")
    # The summary takes the focus, so a screen reader reads the errors first.
    assert page.evaluate("() => document.activeElement.className") == "error-summary"
    screenshot(page, "login-errors")
    assert_accessible(page)


def test_the_error_page_passes_axe(page: Page, login: Login) -> None:
    expect_console_error(page, "status of 404")
    login(page, "reader")
    response = page.goto("/no/such/page")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    screenshot(page, "not-found")
    assert_accessible(page)
