"""Intake in Chromium, as the booking officer: an arrest with a victim, the statute list, person
matching (the officer chooses; never a silent merge), errors beside their fields with nothing
written; axe and screenshots of each page at laptop and tablet size."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from openpars.records.models import Arrest, Person
from tests.browser.conftest import (
    LiveServer,
    assert_accessible,
    expect_console_error,
    screenshot,
)

Login = Callable[..., None]


def counts(server: LiveServer) -> tuple[int, int]:
    with server.db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Arrest)) or 0,
            session.scalar(select(func.count()).select_from(Person)) or 0,
        )


def fill_arrest(page: Page, report_id: str) -> None:
    """The arrest's own fields, an arrestee, a victim and one charge from the statute list."""
    page.get_by_label("Booking report id").fill(report_id)
    page.get_by_label("Arresting agency ORI").fill("PAPEP0000")
    page.get_by_label("Arresting officer").fill("P/O Rivera #4411")
    page.get_by_label("Arrested at (Philadelphia time)").fill("2025-06-01T23:30")
    arrestee, victim = page.locator("#person-0"), page.locator("#person-1")
    arrestee.get_by_label("Family name").fill("Quintero")
    arrestee.get_by_label("Given name").fill("Abelardo")
    arrestee.get_by_label("Date of birth").fill("1990-04-02")
    expect(victim.get_by_label("Role")).to_have_value("victim")
    victim.get_by_label("Family name").fill("Lindqvist")
    victim.get_by_label("Given name").fill("Margit")
    statute = page.get_by_label("Statute")
    statute.fill("18 § 2701(a)(1)")
    statute.dispatch_event("change")
    # The statute list fills in the description and usual grade (static/app.js).
    expect(page.get_by_label("Description")).to_have_value("Simple assault")
    expect(page.locator("#charges\\.0\\.grade")).to_have_value("M2")


def test_enter_an_arrest_with_a_victim(page: Page, login: Login, live_server: LiveServer) -> None:
    login(page, "intake")
    page.get_by_role("link", name="Intake").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter an arrest")
    assert_accessible(page)
    screenshot(page, "intake-form")
    page.set_viewport_size({"width": 768, "height": 1024})
    assert_accessible(page)
    screenshot(page, "intake-form-tablet")
    page.set_viewport_size({"width": 1280, "height": 800})
    fill_arrest(page, "PPD-BROWSER-1")
    # Looking for people on file (htmx, the API's matching service): nobody yet.
    page.locator("#person-0").get_by_role("button", name="Find people on file").click()
    expect(page.locator("#candidates-0")).to_contain_text("No one on file resembles this person")
    page.get_by_role("button", name="Submit the arrest").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Arrest entered")
    expect(page.get_by_role("status")).to_contain_text("entered")
    assert_accessible(page)
    screenshot(page, "intake-created")
    with live_server.db.session() as session:
        arrest = session.scalars(select(Arrest).where(Arrest.report_id == "PPD-BROWSER-1")).one()
        people = {i.role.value: i.person.family_name for i in arrest.involvements}
    assert people == {"arrestee": "Quintero", "victim": "Lindqvist"}


def test_a_person_on_file_is_chosen_not_merged(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    login(page, "intake")
    page.goto("/intake")
    fill_arrest(page, "PPD-BROWSER-2")  # the same arrestee and victim as the first test
    expect_console_error(page, "status of 409")  # the form shown again, with the candidates
    with live_server.db.session() as session:
        known = session.scalars(select(Person.id).where(Person.family_name == "Quintero")).first()
    before = counts(live_server)
    page.get_by_role("button", name="Submit the arrest").click()
    # Refused: both may be on file; the candidates are shown, nothing written.
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.locator("#candidates-0")).to_contain_text("Quintero, Abelardo")
    assert counts(live_server) == before
    assert_accessible(page)
    screenshot(page, "intake-candidates")
    page.locator("#candidates-0").get_by_label("Quintero, Abelardo", exact=False).check()
    page.locator("#candidates-1").get_by_label("None of these: enter a new person").check()
    page.get_by_role("button", name="Submit the arrest").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Arrest entered")
    expect(page.get_by_text(f"linked to person {known}, as you chose")).to_be_visible()


def test_bad_fields_are_shown_beside_them_and_nothing_is_written(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    login(page, "intake")
    page.goto("/intake")
    fill_arrest(page, "PPD-BROWSER-3")
    expect_console_error(page, "status of 422")  # the form shown again, with its errors
    page.get_by_label("Arresting agency ORI").fill("not an ori")
    page.get_by_label("Statute").fill("assault")
    page.locator("#person-1").get_by_label("Given name").fill("")
    before = counts(live_server)
    page.get_by_role("button", name="Submit the arrest").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    ori = page.get_by_label("Arresting agency ORI")
    expect(ori).to_have_attribute("aria-invalid", "true")
    expect(ori).to_have_value("not an ori")  # what was typed is shown again
    expect(page.locator("[id='ori-error']")).to_be_visible()
    expect(page.locator("[id='charges.0.statute-error']")).to_be_visible()
    expect(page.locator("[id='involvements.1.person.given_name-error']")).to_be_visible()
    expect(page.locator("#person-0").get_by_label("Family name")).to_have_value("Quintero")
    assert counts(live_server) == before
    assert_accessible(page)
    screenshot(page, "intake-errors")
    page.set_viewport_size({"width": 768, "height": 1024})
    assert_accessible(page)


def test_find_people_on_file_by_keyboard(page: Page, login: Login) -> None:
    login(page, "intake")
    page.goto("/intake")
    person = page.locator("#person-0")
    person.get_by_label("Family name").fill("Quintero")
    person.get_by_label("Given name").fill("Abelardo")
    person.get_by_role("button", name="Find people on file").focus()
    page.keyboard.press("Enter")
    candidates = page.locator("#candidates-0")
    expect(candidates).to_contain_text("Quintero, Abelardo")
    # The choice is a radio group: Tab into it, Space picks, arrows move.
    candidates.get_by_role("radio").first.focus()
    page.keyboard.press("Space")
    expect(candidates.get_by_role("radio").first).to_be_checked()
    page.keyboard.press("ArrowDown")
    expect(candidates.get_by_label("None of these: enter a new person")).to_be_checked()
    assert_accessible(page)
