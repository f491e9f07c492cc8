"""Pretrial, court, search and record pages in Chromium: recommend bail, arraign, release;
search and open the person and arrest pages; a sealed record absent to a reader; an outside
agency refused a record page. axe-core on every page, at laptop and tablet size."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import select

from openpars.audit.models import AuditEntry
from openpars.records import service
from openpars.records.schemas import ArrestAmend, ArrestCreate, ChargingDecisionCreate, SealCreate
from tests.browser.conftest import LiveServer, assert_accessible, expect_console_error, screenshot
from tests.records.factories import arrest_payload

Login = Callable[..., None]


def new_arrest(server: LiveServer, *, charge: bool = True) -> tuple[int, dict[str, Any]]:
    """An arrest entered by the police (and charged by the DA), through the services."""
    payload = arrest_payload()
    principals = server.world.principals
    with server.db.session() as session:
        created = service.submit_arrest(
            session, actor=principals["intake"], data=ArrestCreate.model_validate(payload)
        )
        if charge:
            service.decide_charges(
                session,
                actor=principals["charging"],
                arrest_id=created.arrest_id,
                data=ChargingDecisionCreate.model_validate({"outcome": "approved"}),
            )
    return created.arrest_id, payload


def refusals(server: LiveServer, path: str) -> list[str | None]:
    """The error codes of the refusals audited for a GET of ``path``."""
    with server.db.session() as session:
        rows = session.execute(
            select(AuditEntry.content).where(AuditEntry.action == f"GET {path}")
        ).all()
    return [json.loads(bytes(c))["error_code"] for (c,) in rows]


def accessible_at_both_sizes(page: Page, name: str) -> None:
    """axe at laptop and tablet size; a screenshot at tablet size as ``<name>-tablet``."""
    assert_accessible(page)
    page.set_viewport_size({"width": 768, "height": 1024})
    assert_accessible(page)
    screenshot(page, f"{name}-tablet")
    page.set_viewport_size({"width": 1280, "height": 800})


def test_recommend_bail_then_arraign_then_release(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    arrest_id, _ = new_arrest(live_server)
    login(page, "pretrial")
    page.get_by_role("link", name="Docket").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Arraignment docket")
    screenshot(page, "docket")
    accessible_at_both_sizes(page, "docket")
    page.get_by_role("link", name=f"Recommend bail: arrest {arrest_id}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Recommend bail")
    page.get_by_label("Bail type").select_option("monetary")
    page.get_by_label("Amount in dollars").fill("5000.00")
    page.get_by_label("Conditions").fill("Stay away from the complainant")
    screenshot(page, "bail-recommendation")
    accessible_at_both_sizes(page, "bail-recommendation")
    page.get_by_role("button", name="Record the recommendation").click()
    expect(page.get_by_role("status")).to_have_text("The bail recommendation was recorded.")
    page.get_by_role("button", name="Log out").click()

    login(page, "court")
    page.goto("/docket")
    page.get_by_role("link", name=f"Arraign: bail and docket number: arrest {arrest_id}").click()
    expect(page.locator("#recommendation")).to_contain_text("monetary $5000.00")
    # Bad fields first: each error beside its field, the summary focused, nothing written.
    expect_console_error(page, "status of 422")
    page.get_by_label("Arraigned at").fill("2026-03-20T10:00")
    page.get_by_label("Docket number").fill("CP-51-CR-1-2026")
    page.get_by_role("button", name="Record the arraignment").click()
    expect(page.locator("#magistrate-error")).to_be_visible()
    expect(page.locator("#docket_number-error")).to_be_visible()
    expect(page.locator("#bail_type-error")).to_be_visible()
    expect(page.get_by_label("Docket number")).to_have_value("CP-51-CR-1-2026")
    expect(page.locator(".error-summary")).to_be_focused()
    screenshot(page, "arraignment-errors")
    accessible_at_both_sizes(page, "arraignment-errors")
    page.get_by_label("Magistrate").fill("Magistrate F. Rigmaiden-DeLeon")
    page.get_by_label("Bail type").select_option("monetary")
    page.get_by_label("Bail amount in dollars").fill("25000.00")
    page.get_by_label("Preliminary hearing date").fill("2026-04-02")
    page.get_by_label("Docket number").fill(f"MC-51-CR-{arrest_id:07d}-2026")
    page.get_by_role("button", name="Record the arraignment").click()
    expect(page.get_by_role("status")).to_have_text("The arraignment was recorded.")
    expect(page.locator("main")).to_contain_text(f"MC-51-CR-{arrest_id:07d}-2026")
    expect(page.locator("main")).to_contain_text("arraigned before Magistrate F. Rigmaiden-DeLeon")

    page.get_by_role("link", name="Release or commitment").click()
    page.get_by_label("Outcome").select_option("committed")
    page.get_by_label("When").fill("2026-03-20T13:30")
    page.get_by_label("Facility").fill("Curran-Fromhold Correctional Facility")
    screenshot(page, "custody")
    accessible_at_both_sizes(page, "custody")
    page.get_by_role("button", name="Record it").click()
    expect(page.get_by_role("status")).to_have_text("The release or commitment was recorded.")
    timeline = page.get_by_role("table", name="Timeline of versions")
    for change in ("charging", "bail_recommendation", "arraignment", "custody"):
        expect(timeline).to_contain_text(change)
    screenshot(page, "arrest-after-custody")


def test_search_and_open_the_person_and_the_arrest(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    arrest_id, payload = new_arrest(live_server)
    arrestee = payload["involvements"][0]["person"]
    with live_server.db.session() as session:
        service.amend_arrest(
            session,
            actor=live_server.world.principals["intake"],
            arrest_id=arrest_id,
            data=ArrestAmend(reason="badge number mistyped", arresting_officer="P/O Ruiz #4412"),
        )
    login(page, "reader")
    page.get_by_role("link", name="Search").click()
    page.get_by_label("Name").fill(arrestee["family_name"])
    page.get_by_role("button", name="Search").click()
    expect(page.locator("main [role=status]")).to_contain_text("Showing 1 to")
    screenshot(page, "search-persons")
    accessible_at_both_sizes(page, "search-persons")
    page.get_by_role(
        "link", name=f"{arrestee['family_name']}, {arrestee['given_name']}"
    ).first.click()
    expect(page.get_by_role("heading", level=2, name="Involvements")).to_be_visible()
    screenshot(page, "person")
    accessible_at_both_sizes(page, "person")

    page.goto("/search?kind=arrests")
    page.get_by_label("OTN").fill(payload["otn"])
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=f"Arrest {arrest_id}").click()
    timeline = page.get_by_role("table", name="Timeline of versions")
    expect(timeline).to_contain_text("badge number mistyped")
    expect(timeline).to_contain_text("arresting_officer")
    screenshot(page, "arrest")
    accessible_at_both_sizes(page, "arrest")


def test_a_sealed_record_is_absent_for_a_reader(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    arrest_id, payload = new_arrest(live_server, charge=False)
    with live_server.db.session() as session:
        service.seal_arrest(
            session,
            actor=live_server.world.principals["clerk"],
            arrest_id=arrest_id,
            data=SealCreate(action="seal", order_reference="CP-51-MD-0002-2026", reason="order"),
        )
    login(page, "reader")
    page.goto("/search?kind=arrests")
    page.get_by_label("OTN").fill(payload["otn"])
    page.get_by_role("button", name="Search").click()
    expect(page.locator("main [role=status]")).to_have_text("Nothing found.")
    expect_console_error(page, "status of 404")
    page.goto(f"/arrests/{arrest_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("not found", ignore_case=True)
    expect(page.locator("main")).not_to_contain_text(payload["otn"])
    screenshot(page, "arrest-sealed-absent")
    assert_accessible(page)
    assert refusals(live_server, f"/arrests/{arrest_id}") == ["not_found"]


def test_an_outside_agency_is_refused_a_record_page_and_audited(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    arrest_id, payload = new_arrest(live_server)
    login(page, "ice")
    # The internal search and docket links ("Agency search" is the outside agency's own page).
    expect(page.get_by_role("link", name="Search", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Docket", exact=True)).to_have_count(0)
    expect_console_error(page, "status of 403")
    page.goto(f"/arrests/{arrest_id}")
    expect(page.locator("main")).not_to_contain_text(payload["otn"])
    screenshot(page, "arrest-refused")
    assert_accessible(page)
    assert refusals(live_server, f"/arrests/{arrest_id}") == ["permission_denied"]


def tab_to(page: Page, selector: str, most: int = 60) -> None:
    """Press Tab until ``selector`` has the focus (fails if it never gets it)."""
    for _ in range(most):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus by Tab")


def test_a_bail_recommendation_by_keyboard_alone(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    arrest_id, _ = new_arrest(live_server)
    login(page, "pretrial")
    page.goto("/docket")
    tab_to(page, f'a[href="/arrests/{arrest_id}/bail-recommendation"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Recommend bail")
    tab_to(page, "#bail_type")
    page.keyboard.type("Released")
    expect(page.locator("#bail_type")).to_have_value("ror")
    tab_to(page, "#conditions")
    page.keyboard.type("Report weekly by telephone")
    tab_to(page, "button.primary")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("The bail recommendation was recorded.")
    expect(page.locator("main")).to_contain_text("bail recommended, ror, Report weekly")


def test_the_docket_refreshes_in_place_when_asked(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    login(page, "court")
    page.goto("/docket")
    page.evaluate("() => { window.notReloaded = true; }")
    arrest_id, _ = new_arrest(live_server)
    link = page.get_by_role("link", name=f"Arraign: bail and docket number: arrest {arrest_id}")
    expect(link).to_have_count(0)
    page.get_by_role("link", name="Refresh the docket").click()
    expect(link).to_have_count(1)
    assert page.evaluate("() => window.notReloaded === true")  # swapped in by htmx
    assert_accessible(page)
