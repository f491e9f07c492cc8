"""Logging on in Chromium with the second factor: the one-time code, enrolling an
authenticator (QR code, recovery codes), the system-use banner; each step page checked by axe."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    PASSWORD,
    LiveServer,
    assert_accessible,
    expect_console_error,
    screenshot,
)
from tests.browser.test_login import audit_rows


def password_step(page: Page, username: str) -> None:
    page.goto("/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_log_in_with_a_password_and_a_one_time_code(page: Page, live_server: LiveServer) -> None:
    password_step(page, "court")
    page.wait_for_url(live_server.url + "/login/code")
    # The password alone opens nothing: any page leads back to the code.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/code"))
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    screenshot(page, "login-code")
    assert_accessible(page)
    # A wrong code: said beside the field, nothing opened, counted toward the lockout.
    expect_console_error(page, "status of 401")  # the refused code's page answers 401
    right = live_server.code("court")
    page.locator("#code").fill("000000" if right != "000000" else "111111")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#code-error")).to_contain_text("not right")
    expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)
    page.locator("#code").fill(right)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(live_server.url + "/login/banner")
    expect(page.locator("#banner-text")).to_contain_text("criminal justice information system")
    screenshot(page, "login-banner")
    assert_accessible(page)
    page.get_by_role("button", name="I understand and agree").click()
    page.wait_for_url(live_server.url + "/")
    expect(page.get_by_text("Arraign: set bail and the docket number.")).to_be_visible()
    rows = audit_rows(live_server, live_server.world.users["court"])
    actions = [a for a, _, _ in rows]
    for step in ("logon", "logon.failed", "logon.mfa", "logon.banner"):
        assert step in actions, (step, actions)
    assert actions.index("logon.mfa") < actions.index("logon.banner")


def test_enrol_an_authenticator_at_the_first_logon(page: Page, live_server: LiveServer) -> None:
    password_step(page, "fbi")
    page.wait_for_url(live_server.url + "/login/enrol")
    assert_accessible(page)
    page.get_by_role("button", name="Show my QR code").click()
    qr = page.locator("figure.qr svg")
    expect(qr).to_be_visible()
    expect(qr.locator("title")).to_have_text("MFA enrolment QR code")
    screenshot(page, "login-enrol")
    assert_accessible(page)
    secret = page.locator("#mfa-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    live_server.totp["fbi"] = secret
    page.locator("#code").fill(live_server.code("fbi"))
    page.get_by_role("button", name="Confirm").click()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    screenshot(page, "login-recovery-codes")
    assert_accessible(page)
    first_code = codes.first.inner_text()
    page.get_by_role("link", name="I have saved them, continue").click()
    page.wait_for_url(live_server.url + "/login/banner")
    page.get_by_role("button", name="I understand and agree").click()
    page.wait_for_url(live_server.url + "/")
    page.get_by_role("button", name="Log out").click()
    # Enrolled now: the next logon asks for the code; a recovery code works once instead.
    password_step(page, "fbi")
    page.wait_for_url(live_server.url + "/login/code")
    page.get_by_text("Lost your phone? Use a recovery code").click()
    page.locator("#recovery_code").fill(first_code.upper())
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(live_server.url + "/login/banner")
    actions = [a for a, _, _ in audit_rows(live_server, live_server.world.users["fbi"])]
    assert {"mfa.enrol.start", "mfa.enrol", "mfa.recovery_code.use"} <= set(actions)
