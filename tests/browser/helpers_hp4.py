"""Set-up shared by the audit, administration and oversight browser tests."""

from __future__ import annotations

from playwright.sync_api import Page

from openpars.identity import service
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import Role
from openpars.identity.schemas import UserCreate
from tests.browser.conftest import PASSWORD, LiveServer, assert_accessible, screenshot


def add_user(server: LiveServer, username: str, agency: str, roles: list[Role]) -> int:
    """An account made by the console, with the test password; its id."""
    if username in server.world.users:
        return server.world.users[username]
    with server.db.session() as session:
        user = service.create_user(
            session,
            actor=SYSTEM,
            data=UserCreate(
                username=username,
                display_name=username.title(),
                agency_id=server.world.agencies[agency],
                roles=roles,
            ),
        )
        service.set_password(
            session, actor=SYSTEM, user_id=user.id, new_password=PASSWORD, force_change=False
        )
        server.world.users[username] = user.id
    return server.world.users[username]


def check_page(page: Page, name: str) -> None:
    """Screenshot and axe at laptop size, then at tablet size."""
    screenshot(page, name)
    assert_accessible(page)
    page.set_viewport_size({"width": 768, "height": 1024})
    screenshot(page, name + "-tablet")
    assert_accessible(page)
    page.set_viewport_size({"width": 1280, "height": 800})
