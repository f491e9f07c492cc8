"""Browser tests: the real app served by uvicorn on a free port, driven by Debian's Chromium.

Playwright drives ``/usr/bin/chromium`` (installed by ``make install`` with apt when missing);
``playwright install`` is never run. The database is a new one of the configured backend
(OPENPARS_TEST_BACKEND), its commits real, seeded with the standard test site whose users all
have the password ``PASSWORD``. Screenshots go to build/screenshots/ (docs/web.md).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from sqlalchemy import select, update

from openpars.config import Settings
from openpars.db import Base, Database, make_engine, utcnow
from openpars.identity import mfa, service
from openpars.identity import mfa_crypto as crypto
from openpars.identity.models import User
from openpars.identity.principal import SYSTEM
from openpars.web.app import create_app
from tests.conftest import new_database_url
from tests.factories import World, build_world

# Accounts left without an authenticator: they enrol one in the browser.
NOT_ENROLLED = frozenset({"fbi"})
CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse battery staple"


@dataclass
class LiveServer:
    """The served site: its URL, its database (for checks) and its users."""

    url: str
    db: Database
    world: World
    # Each account's TOTP secret (enrolled at the console), as its authenticator app holds it.
    totp: dict[str, str]
    # The key the MFA secrets are sealed with (accounts a test adds are enrolled with it).
    mfa_key: bytes

    def code(self, username: str) -> str:
        """The one-time code the user's authenticator shows now; the last code accepted is
        forgotten first, since the tests log the same account on within one 30-second step
        (a person would wait for the next code)."""
        with self.db.session() as session:
            session.execute(
                update(User).where(User.username == username).values(mfa_last_step=None)
            )
        return crypto.code_at(self.totp[username], utcnow())

    def enrol(self, username: str) -> None:
        """Enrol an authenticator for an account a test added (at the console, as the seed's)."""
        with self.db.session() as session:
            user_id = session.scalar(select(User.id).where(User.username == username))
            assert user_id is not None, f"no account {username!r}"
            started = mfa.console_start(
                session, actor=SYSTEM, user_id=user_id, key=self.mfa_key, issuer="openpars"
            )
            mfa.console_confirm(session, actor=SYSTEM, user_id=user_id, key=self.mfa_key, code=None)
        self.totp[username] = started.secret


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """openpars over a fresh database, serving in a thread until the module's tests end."""
    tmp = tmp_path_factory.mktemp("live")
    url, drop = new_database_url(tmp)
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    db = Database(engine)
    settings = Settings(
        database_url=url, log_key_path=tmp / "log.key", mfa_key_path=tmp / "mfa.key"
    )
    key = crypto.load_key(settings, may_create=True)
    totp: dict[str, str] = {}
    with db.session() as session:
        world = build_world(session)
        for username, user_id in world.users.items():
            service.set_password(
                session, actor=SYSTEM, user_id=user_id, new_password=PASSWORD, force_change=False
            )
            if username in NOT_ENROLLED:
                continue
            started = mfa.console_start(
                session, actor=SYSTEM, user_id=user_id, key=key, issuer="openpars"
            )
            mfa.console_confirm(session, actor=SYSTEM, user_id=user_id, key=key, code=None)
            totp[username] = started.secret
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, database=db), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live server did not start within 20 seconds")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", db, world, totp, key)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        engine.dispose()
        drop()  # type: ignore[operator]


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, for the browser tests only: its sync API keeps an asyncio loop
    running in the main thread while it lives, and tests elsewhere call asyncio.run."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium from Debian (never a browser downloaded by Playwright)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run 'make install' (it installs Debian's chromium)")
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
    )
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A new browser tab with no cookies, on the live server; its console errors fail the test."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    EXPECTED_CONSOLE_ERRORS[id(tab)] = []
    yield tab
    context.close()
    expected = EXPECTED_CONSOLE_ERRORS.pop(id(tab))
    unexpected = [e for e in errors if not any(fragment in e for fragment in expected)]
    assert not unexpected, f"the browser console reported errors: {unexpected}"


# Console errors a test provokes on purpose, by page: fragments of their text.
EXPECTED_CONSOLE_ERRORS: dict[int, list[str]] = {}


def expect_console_error(page: Page, fragment: str) -> None:
    """The test provokes a console error containing ``fragment`` (e.g. a CSP refusal)."""
    EXPECTED_CONSOLE_ERRORS[id(page)].append(fragment)


@pytest.fixture
def login(live_server: LiveServer) -> Callable[..., None]:
    """``login(page, username)``: log in through the forms (password, one-time code, banner);
    the home page is then shown."""

    def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
        page.goto("/login")
        page.locator("#username").fill(username)
        page.locator("#password").fill(password)
        if username not in live_server.totp and username not in NOT_ENROLLED:
            live_server.enrol(username)  # an account the test added
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(live_server.url + "/login/code")
        page.locator("#code").fill(live_server.code(username))
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(live_server.url + "/login/banner")
        page.get_by_role("button", name="I understand and agree").click()
        page.wait_for_url(live_server.url + "/")

    return log_in


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as build/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[Any]:
    """axe-core's violations of the page at the given impacts (axe from npm: make install).

    The script is evaluated through the DevTools protocol, which the page's CSP does not
    govern, so the page keeps its real policy while it is checked.
    """
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run 'make install' (npm ci installs axe-core)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate(
        "async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [v for v in result if v.get("impact") in impacts]


def assert_accessible(page: Page) -> None:
    """Fail with a readable list if axe finds serious or critical violations."""
    found = axe_violations(page)
    assert not found, json.dumps(
        [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in found
        ],
        indent=2,
    )
