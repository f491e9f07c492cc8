"""The audit pages in Chromium: the latest checkpoint and its signatures, an entry's inclusion
proof checked in the browser, a user's own receipt, the export; another's entry is refused."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import select

from openpars.audit.models import AuditEntry
from openpars.identity.roles import Role
from tests.browser.conftest import LiveServer, expect_console_error
from tests.browser.helpers_hp4 import add_user, check_page
from tests.browser.test_login import audit_rows

Login = Callable[..., None]


def _wait_for_a_checkpoint(page: Page) -> None:
    deadline = time.monotonic() + 20
    while page.locator("#checkpoint-size").count() == 0:
        assert time.monotonic() < deadline, "no checkpoint was published within 20 seconds"
        time.sleep(0.5)
        page.reload()


def _last_logon(server: LiveServer, username: str) -> int:
    with server.db.session() as session:
        found = session.scalars(
            select(AuditEntry.id)
            .where(AuditEntry.action == "logon", AuditEntry.user_id == server.world.users[username])
            .order_by(AuditEntry.id.desc())
        ).first()
    assert found is not None
    return found


def _proof_page(page: Page, entry_id: int) -> None:
    """Ask for the entry's proof until the checkpoint covering it is signed (a second or so)."""
    deadline = time.monotonic() + 20
    while True:
        page.goto("/audit")
        page.locator("#entry_id").fill(str(entry_id))
        page.get_by_role("button", name="Show its proof").click()
        if page.locator("#leaf-index").count():
            return
        assert time.monotonic() < deadline, page.content()
        time.sleep(0.5)


def test_an_auditor_sees_the_checkpoint_and_an_entrys_proof(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    add_user(live_server, "auditor", "Defender Association", [Role.AUDITOR])
    expect_console_error(page, "status of 409")  # a proof asked for before its checkpoint
    login(page, "auditor")
    page.get_by_role("link", name="Audit").click()
    _wait_for_a_checkpoint(page)
    expect(page.get_by_role("heading", name="Latest checkpoint")).to_be_visible()
    expect(page.locator(".signatures")).to_contain_text("the log's own signature")
    expect(page.locator("#checkpoint-root")).to_have_text(
        page.locator("#checkpoint-root").inner_text()
    )
    assert len(page.locator("#checkpoint-root").inner_text()) == 64
    check_page(page, "audit")
    page.get_by_role("link", name="Browse the entries").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit entries")
    check_page(page, "audit-entries")
    page.get_by_role("link", name="Proof of entry 1", exact=True).click()
    expect(page.locator("#leaf-index")).to_have_text("0")
    expect(page.locator("#proof-check")).to_contain_text("Checked in your browser")
    check_page(page, "audit-proof")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the receipt").click()
    assert download.value.suggested_filename == "openpars-receipt-1.json"
    page.goto("/audit")
    with page.expect_download() as export:
        page.get_by_role("button", name="Download the export").click()
    assert export.value.suggested_filename.startswith("openpars-audit-0-")
    actions = [a for a, _, _ in audit_rows(live_server, live_server.world.users["auditor"])]
    for action in ("audit.entries.list", "audit.receipt", "audit.export"):
        assert action in actions


def test_a_user_proves_its_own_entry_but_not_anothers(
    page: Page, login: Login, live_server: LiveServer
) -> None:
    expect_console_error(page, "status of 4")
    login(page, "intake")
    own = _last_logon(live_server, "intake")
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("link", name=f"Proof of your entry {own}")).to_be_visible()
    others = _last_logon(live_server, "auditor")
    expect(page.get_by_role("link", name=f"Proof of your entry {others}")).to_have_count(0)
    _proof_page(page, own)
    expect(page.locator("#proof-check")).to_contain_text("Checked in your browser")
    path_rows = page.locator("table tbody tr").count()
    assert path_rows >= 1
    page.goto("/audit")
    expect(page.get_by_role("heading", name="Export for offline verification")).to_have_count(0)
    response = page.goto(f"/audit/proof?entry_id={others}")
    assert response is not None
    assert response.status == 404  # another's entry is answered like a missing one
    assert audit_rows(live_server, live_server.world.users["intake"])[-1][1:] == (
        "refused",
        "not_found",
    )
    response = page.goto("/audit/export")
    assert response is not None
    assert response.status == 403
