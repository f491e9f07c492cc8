"""The outside agency's view in Chromium: ICE searches under its agreement and sees the arrestee,
but nothing of the victim: not a name, not a place of birth, not a heading or a count (hp3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from playwright.sync_api import Page, expect

from tests.access.agreements import activate
from tests.browser.conftest import LiveServer, assert_accessible, expect_console_error, screenshot
from tests.records.factories import arrest_payload

Login = Callable[..., None]


def _arrest(server: LiveServer) -> dict[str, Any]:
    """An arrest with an arrestee, a victim and a witness, entered through the real API."""
    payload = arrest_payload()
    answer = httpx2.post(
        f"{server.url}/api/v1/arrests",
        json=payload,
        headers={"Authorization": f"Bearer {server.world.tokens['intake']}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return payload


@pytest.fixture(scope="module")
def agreement(live_server: LiveServer) -> None:
    """ICE's agreement in force (arrestees only), once for the module's server."""
    with live_server.db.session() as session:
        activate(session, live_server.world)


def _declare(page: Page) -> None:
    page.locator("#purpose").select_option("criminal-investigation")
    page.locator("#case_number").fill("HSI-2026-0042")
    page.locator("#on_behalf_of").fill("SA Dana Whitfield")


def _nothing_of_the_victim(page: Page, victim: dict[str, Any], arrestee: dict[str, Any]) -> None:
    """Neither the visible text nor the DOM (attributes, hidden nodes) holds a trace."""
    for source in (page.inner_text("body").lower(), page.content().lower()):
        assert victim["family_name"].lower() not in source
        assert victim["given_name"].lower() not in source
        assert victim["address"].lower() not in source
        assert arrestee["place_of_birth"].lower() not in source
        for word in ("victim", "witness", "complainant", "place of birth", "place_of_birth"):
            assert word not in source, word


def test_external_user_sees_the_arrestee_but_nothing_of_the_victim(
    page: Page, live_server: LiveServer, login: Login, agreement: None
) -> None:
    payload = _arrest(live_server)
    arrestee, victim = (inv["person"] for inv in payload["involvements"][:2])
    login(page, "ice")
    page.get_by_role("link", name="Agency search").click()
    expect(page.get_by_role("heading", name="What your agreement lets you see")).to_be_visible()
    expect(page.get_by_text("You see arrested persons only.")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "external-search")
    # A search without the declaration is refused beside each field, nothing searched.
    expect_console_error(page, "status of 422")
    page.locator("#sid").fill(arrestee["sid"])
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#purpose-error")).to_be_visible()
    expect(page.locator("#on_behalf_of-error")).to_be_visible()
    expect(page.locator("#sid")).to_have_value(arrestee["sid"])
    assert_accessible(page)
    # A purpose whose rule requires a case reference, without one: refused beside the field.
    _declare(page)
    page.locator("#case_number").fill("")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#case_number-error")).to_contain_text("requires a case reference")
    assert_accessible(page)
    _declare(page)
    page.get_by_role("button", name="Search").click()
    person_link = page.get_by_role("link", name=arrestee["family_name"])
    expect(person_link).to_be_visible()
    _nothing_of_the_victim(page, victim, arrestee)
    person_link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(arrestee["family_name"])
    _nothing_of_the_victim(page, victim, arrestee)
    assert_accessible(page)
    screenshot(page, "external-person")
    page.get_by_role("link", name="Arrest").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(payload["otn"])
    expect(page.get_by_role("heading", name="Charges")).to_be_visible()
    _nothing_of_the_victim(page, victim, arrestee)
    assert_accessible(page)
    screenshot(page, "external-arrest")
    page.set_viewport_size({"width": 768, "height": 1024})
    assert_accessible(page)
    screenshot(page, "external-arrest-tablet")
    # The victim's own record reads as absent, like a record that does not exist.
    page.go_back()
    page.go_back()
    page.locator("#name").fill(victim["family_name"])
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("Nothing matches.")).to_be_visible()
    # Only the name the user typed is on the page: no result, count or section about it.
    results = page.locator("section[aria-labelledby='results-heading']")
    assert victim["family_name"].lower() not in results.inner_html().lower()
    assert "victim" not in page.content().lower()


def test_the_search_form_works_by_keyboard_alone(
    page: Page, live_server: LiveServer, login: Login, agreement: None
) -> None:
    payload = _arrest(live_server)
    login(page, "ice")
    page.goto("/external")
    page.locator("#purpose").focus()
    page.keyboard.press("ArrowDown")  # the first purpose
    page.keyboard.press("Tab")
    page.keyboard.type("HSI-2026-0043")
    page.keyboard.press("Tab")
    page.keyboard.type("SA Dana Whitfield")
    page.locator("#kind").focus()
    page.keyboard.press("ArrowDown")  # arrests
    page.locator("#otn").focus()
    page.keyboard.type(payload["otn"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name=f"Arrest {payload['otn']}")).to_be_visible()
