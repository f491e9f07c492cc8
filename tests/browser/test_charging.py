"""The DA's charging queue in Chromium: oldest first, updating live, approving an arrest's
charges drops it from the queue, errors beside their fields with nothing written; axe and
screenshots of each page at laptop and tablet size."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import func, select, update

from openpars.db import utcnow
from openpars.identity.models import LogonSession
from openpars.records import service
from openpars.records.models import Arrest, ChargingDecision
from openpars.records.schemas import ArrestCreate
from tests.browser.conftest import (
    LiveServer,
    assert_accessible,
    expect_console_error,
    screenshot,
)
from tests.records.factories import arrest_payload

Login = Callable[..., None]


def enter(server: LiveServer, arrested_at: str) -> int:
    """An arrest entered by the police (through the intake service)."""
    with server.db.session() as session:
        created = service.submit_arrest(
            session,
            actor=server.world.principals["intake"],
            data=ArrestCreate.model_validate(arrest_payload(arrested_at=arrested_at)),
        )
        return created.arrest_id


def decisions(server: LiveServer) -> int:
    with server.db.session() as session:
        return session.scalar(select(func.count()).select_from(ChargingDecision)) or 0


def queue_ids(page: Page) -> list[str]:
    return [link.get_attribute("href") or "" for link in page.locator("#queue-rows a").all()]


def test_approve_the_charges_oldest_first(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    newer = enter(live_server, "2025-04-02T10:00:00+00:00")
    older = enter(live_server, "2025-04-01T10:00:00+00:00")
    login(page, "charging")
    page.get_by_role("link", name="Charging").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Charging queue")
    ids = queue_ids(page)
    assert ids.index(f"/charging/{older}") < ids.index(f"/charging/{newer}")
    assert_accessible(page)
    screenshot(page, "charging-queue")
    page.get_by_role("link", name=f"Arrest {older}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Charging decision: arrest {older}")
    expect(page.get_by_role("cell", name="Simple assault").first).to_be_visible()
    assert_accessible(page)
    screenshot(page, "charging-decision")
    page.set_viewport_size({"width": 768, "height": 1024})
    assert_accessible(page)
    screenshot(page, "charging-decision-tablet")
    page.get_by_label("Approve the recommended charges as they are").check()
    page.get_by_role("button", name="Record the decision").click()
    expect(page.get_by_role("status")).to_contain_text(f"Arrest {older}: the decision (approved)")
    assert f"/charging/{older}" not in queue_ids(page)
    assert f"/charging/{newer}" in queue_ids(page)
    with live_server.db.session() as session:
        assert session.get(Arrest, older).state.value == "charged"  # type: ignore[union-attr]


def test_the_queue_updates_live(page: Page, login: Login, live_server: LiveServer) -> None:
    login(page, "charging")
    page.goto("/charging")
    page.set_viewport_size({"width": 768, "height": 1024})
    assert_accessible(page)
    arrived = enter(live_server, "2025-03-01T10:00:00+00:00")  # the oldest of all
    link = page.locator("#queue-rows a").first
    # htmx reloads the rows every 10 seconds, without reloading the page.
    expect(link).to_have_attribute("href", f"/charging/{arrived}", timeout=20_000)
    screenshot(page, "charging-queue-tablet")


def test_bad_fields_beside_them_and_nothing_written(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    arrest_id = enter(live_server, "2025-04-03T10:00:00+00:00")
    login(page, "charging")
    page.goto(f"/charging/{arrest_id}")
    before = decisions(live_server)
    expect_console_error(page, "status of 422")  # the form shown again, with its errors
    page.get_by_label("Decline to charge (give the reason)").check()
    page.get_by_role("button", name="Record the decision").click()
    expect(page.locator(".error-summary")).to_be_focused()
    reason = page.get_by_role("textbox", name="Reason")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#reason-error")).to_contain_text("needs a reason")
    expect(page.get_by_label("Decline to charge (give the reason)")).to_be_checked()
    assert decisions(live_server) == before
    assert_accessible(page)
    screenshot(page, "charging-errors")
    page.get_by_label("Approve modified charges (edit them below)").check()
    page.locator("[id='charges.0.statute']").fill("no such statute")
    page.get_by_role("button", name="Record the decision").click()
    expect(page.locator("[id='charges.0.statute-error']")).to_be_visible()
    expect(page.locator("[id='charges.0.statute']")).to_have_value("no such statute")
    assert decisions(live_server) == before


def test_the_live_queue_keeps_no_session_awake_and_locks_when_idle(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    login(page, "charging")
    page.goto("/charging")
    user_id = live_server.world.users["charging"]

    def last_seen() -> datetime:
        with live_server.db.session() as session:
            return session.scalars(
                select(LogonSession.last_seen_at)
                .where(LogonSession.user_id == user_id, LogonSession.ended_at.is_(None))
                .order_by(LogonSession.id.desc())
            ).first()  # type: ignore[return-value]

    seen = last_seen()
    # A poll of the rows (htmx, every 10 s) is not the user's activity.
    with page.expect_response(lambda r: "/charging/rows?seen=" in r.url, timeout=20_000):
        pass
    assert last_seen() == seen
    # Idle for 31 minutes: the next poll finds the session locked and the page goes to the
    # login page, saying why, and will come back to the queue.
    with live_server.db.session() as session:
        session.execute(
            update(LogonSession)
            .where(LogonSession.user_id == user_id, LogonSession.ended_at.is_(None))
            .values(last_seen_at=utcnow() - timedelta(minutes=31))
        )
    page.wait_for_url("**/login?**", timeout=25_000)
    assert "reason=session_idle" in page.url and "next=%2Fcharging" in page.url
    expect(page.get_by_role("status")).to_contain_text("30 minutes")


def test_decline_by_keyboard_alone(page: Page, login: Login, live_server: LiveServer) -> None:
    arrest_id = enter(live_server, "2025-04-04T10:00:00+00:00")
    login(page, "charging")
    page.goto(f"/charging/{arrest_id}")
    page.get_by_label("Approve the recommended charges as they are").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Decline to charge (give the reason)")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("textbox", name="Reason")).to_be_focused()
    page.keyboard.type("The complainant withdrew; no independent evidence.")
    page.get_by_role("button", name="Record the decision").focus()
    page.keyboard.press("Enter")
    recorded = f"Arrest {arrest_id}: the decision (declined)"
    expect(page.get_by_role("status")).to_contain_text(recorded)
    with live_server.db.session() as session:
        assert session.get(Arrest, arrest_id).state.value == "declined"  # type: ignore[union-attr]
