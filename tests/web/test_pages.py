"""The web pages' foundation, as an attacker would try it: logon, lockout, idle lock, CSRF,
open redirects, security headers, error pages (docs/web.md). The browser tests in
tests/browser drive the same flows in Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from sqlalchemy import func, select, update

from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.identity import logon, service
from openpars.identity.models import LogonSession, User
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import Permission
from openpars.text import Line
from openpars.web.app import create_app
from openpars.web.context import Ctx, edge_of
from openpars.web.pages import AREAS
from openpars.web.pages.core import (
    LOGIN_CSRF_COOKIE,
    STATIC_DIR,
    TEMPLATES_DIR,
    PageEdge,
    area_router,
    csrf_token_for,
    page,
    parse_form,
)
from openpars.web.security import CONTENT_SECURITY_POLICY
from tests.factories import World
from tests.web.logon_steps import finish_logon

PASSWORD = "correct horse battery staple"


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The app over TLS (the session cookie is Secure), not following redirects."""
    app = create_app(settings, database=db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def give_password(db: Database, world: World, username: str) -> None:
    with db.session() as session:
        service.set_password(
            session,
            actor=SYSTEM,
            user_id=world.users[username],
            new_password=PASSWORD,
            force_change=False,
        )


def login_form(web: TestClient) -> str:
    """GET /login; the pre-session CSRF token of its form."""
    page = web.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    assert web.cookies.get(LOGIN_CSRF_COOKIE) == match.group(1)
    return match.group(1)


def log_in(web: TestClient, username: str, password: str = PASSWORD, next_path: str = "/"):  # type: ignore[no-untyped-def]
    token = login_form(web)
    return web.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_path},
    )


def entries(db: Database) -> list[tuple[str, str, str | None]]:
    """(action, outcome, error code) of every audit entry, oldest first."""
    with db.session() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.outcome, AuditEntry.content).order_by(
                AuditEntry.id
            )
        ).all()
        return [(a, str(o), json.loads(bytes(c))["error_code"]) for a, o, c in rows]


def count_entries(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def test_log_in_with_a_password_then_see_home_and_log_out(
    web: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "charging")
    answer = log_in(web, "charging")
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/login/next"
    cookie = answer.headers["set-cookie"].lower()
    for attribute in ("httponly", "secure", "samesite=strict"):
        assert attribute in cookie
    # The password alone opens nothing: the one-time code (here: enrolling), then the banner.
    step = web.get("/login/next")
    assert step.status_code == 303
    assert step.headers["location"] == "/login/enrol"
    assert web.get("/").headers["location"] == "/login/next?next=/"
    finish_logon(web)
    home = web.get("/")
    assert home.status_code == 200
    assert "District Attorney&#39;s Office" in home.text
    assert "Approve, decline or modify charges" in home.text
    assert "Manage user accounts" not in home.text  # by permission
    assert ("logon", "ok", None) in entries(db)
    token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert token
    out = web.post("/logout", data={"csrf_token": token.group(1)})
    assert out.status_code == 303
    assert out.headers["location"] == "/login?reason=logged_out"
    assert ("session.end", "ok", None) in entries(db)
    with db.session() as session:
        assert session.scalars(select(LogonSession.end_reason)).one() == "logoff"
    # The old cookie, replayed, no longer opens a page.
    web.cookies.set(logon.COOKIE_NAME, answer.cookies[logon.COOKIE_NAME])
    replay = web.get("/")
    assert replay.status_code == 303
    assert "reason=session_ended" in replay.headers["location"]


def test_no_session_goes_to_login_with_the_reason_and_is_audited(
    web: TestClient, db: Database
) -> None:
    answer = web.get("/?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/%3Fx%3D1&reason=token_missing"
    assert entries(db)[-1] == ("GET /", "refused", "token_missing")
    page = web.get(answer.headers["location"])
    assert "Log in to continue." in page.text
    assert 'name="next" value="/?x=1"' in page.text


def test_an_api_token_does_not_open_a_page(web: TestClient, world: World) -> None:
    answer = web.get("/", headers=world.auth("charging"))
    assert answer.status_code == 303
    assert "reason=token_missing" in answer.headers["location"]


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        " //evil.example",
    ],
)
def test_next_never_leaves_the_site(
    web: TestClient, db: Database, world: World, target: str
) -> None:
    give_password(db, world, "reader")
    answer = log_in(web, "reader", next_path=target)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login/next"
    # Neither the step pages nor the end of the logon carry the outside target along.
    assert web.get("/login/next", params={"next": target}).headers["location"] == "/login/enrol"
    finish_logon(web)


def test_five_wrong_passwords_lock_the_account(web: TestClient, db: Database, world: World) -> None:
    give_password(db, world, "court")
    for _ in range(logon.MAX_FAILED_LOGONS):
        answer = log_in(web, "court", "not the password at all")
        assert answer.status_code == 401
        assert "an administrator must release it" in answer.text
        assert logon.COOKIE_NAME not in answer.cookies
    # Locked: even the right password is refused, with the same words.
    answer = log_in(web, "court")
    assert answer.status_code == 401
    with db.session() as session:
        assert session.get(User, world.users["court"]).locked_at is not None  # type: ignore[union-attr]
    actions = [a for a, _, _ in entries(db)]
    assert actions.count("logon.failed") == 6
    assert actions.count("account.lock") == 1


def test_an_idle_session_goes_to_login_saying_so(
    web: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "pretrial")
    assert log_in(web, "pretrial").status_code == 303
    finish_logon(web)
    assert web.get("/").status_code == 200
    with db.session() as session:
        session.execute(
            update(LogonSession).values(
                last_seen_at=utcnow() - logon.IDLE_LIMIT - timedelta(seconds=1)
            )
        )
    answer = web.get("/")
    assert answer.status_code == 303
    assert "reason=session_idle" in answer.headers["location"]
    assert entries(db)[-1] == ("GET /", "refused", "session_idle")
    assert "locked after 30 minutes" in web.get(answer.headers["location"]).text


@pytest.mark.parametrize("token", [None, "", "forged", "0" * 64])
def test_a_logout_without_the_session_token_is_refused_and_audited(
    web: TestClient, db: Database, world: World, token: str | None
) -> None:
    give_password(db, world, "reader")
    assert log_in(web, "reader").status_code == 303
    before = count_entries(db)
    answer = web.post("/logout", data={} if token is None else {"csrf_token": token})
    assert answer.status_code == 403
    assert "security token" in answer.text
    assert "<main" in answer.text  # a page, not the API's JSON
    with db.session() as session:
        assert session.scalars(select(LogonSession.ended_at)).one() is None  # nothing written
    assert count_entries(db) == before + 1
    assert entries(db)[-1] == ("POST /logout", "refused", "csrf_failed")


def test_another_sessions_token_is_refused(web: TestClient, db: Database, world: World) -> None:
    give_password(db, world, "reader")
    assert log_in(web, "reader").status_code == 303
    other = csrf_token_for(logon.SESSION_PREFIX + "someone-elses-secret")
    assert web.post("/logout", data={"csrf_token": other}).status_code == 403


@pytest.mark.parametrize("token", [None, "forged"])
def test_a_login_without_its_form_token_is_refused_and_audited(
    web: TestClient, db: Database, world: World, token: str | None
) -> None:
    give_password(db, world, "reader")
    login_form(web)
    data = {"username": "reader", "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    answer = web.post("/login", data=data)
    assert answer.status_code == 403
    assert logon.COOKIE_NAME not in answer.cookies
    with db.session() as session:
        assert session.scalars(select(LogonSession)).all() == []
    assert entries(db)[-1] == ("POST /login", "refused", "csrf_failed")


def test_security_headers_on_pages_api_and_errors(web: TestClient, world: World) -> None:
    for response in (
        web.get("/login"),
        web.get("/api/v1/users/me", headers=world.auth("reader")),
        web.get("/api/v1/nowhere"),
        web.get("/static/app.css"),
    ):
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert "camera=()" in headers["permissions-policy"]
        assert headers["strict-transport-security"].startswith("max-age=")
        if "/static/" not in str(response.url):
            assert headers["cache-control"] == "no-store"


def test_no_hsts_over_plain_http(settings: Settings, db: Database) -> None:
    with TestClient(create_app(settings, database=db)) as client:
        response = client.get("/login")
    assert "strict-transport-security" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"


def test_static_files_are_cached(web: TestClient) -> None:
    for name in ("app.css", "app.js", "htmx.min.js"):
        response = web.get(f"/static/{name}")
        assert response.status_code == 200
        assert "max-age=86400" in response.headers["cache-control"]


def test_error_pages_for_browsers_json_for_the_api(web: TestClient) -> None:
    page = web.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "There is no page at /no/such/page" in page.text
    api = web.get("/api/v1/no/such", headers={"Accept": "text/html"})
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"
    assert web.get("/no/such/page").json()["error"]["code"] == "not_found"


def test_every_page_route_has_the_page_edge() -> None:
    """Every page but the login form itself authenticates and checks CSRF at its edge."""
    open_to_all = {("/login", "GET"), ("/login", "POST")}
    for route in [r for area in AREAS for r in area.routes]:
        assert isinstance(route, APIRoute)
        assert "pages" in route.tags
        for method in route.methods:
            if (route.path, method) in open_to_all:
                continue
            assert isinstance(edge_of(route), PageEdge), (route.path, method)


def test_the_vendored_htmx_is_the_pinned_npm_package() -> None:
    """static/htmx.min.js is a copy of the htmx.org package that package-lock.json pins."""
    root = Path(__file__).resolve().parents[2]
    installed = root / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
    if not installed.exists():
        pytest.fail("node_modules/htmx.org is missing: run 'make install' (npm ci)")
    assert (STATIC_DIR / "htmx.min.js").read_bytes() == installed.read_bytes()
    assert (STATIC_DIR / "htmx.LICENSE").exists()


def test_no_template_has_inline_script_or_style() -> None:
    """The CSP forbids them; a page that used one would break silently in the browser."""
    for template in TEMPLATES_DIR.glob("**/*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert "<style" not in text, template.name
        assert not re.search(r"\sstyle=", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name


def test_a_page_the_user_may_not_use_and_an_unexpected_error_are_pages(
    settings: Settings, db: Database, world: World
) -> None:
    """A permission refusal is audited and shown in the layout; a crash leaks nothing."""
    app = create_app(settings, database=db)
    extra = area_router()

    @extra.get("/admin-only", dependencies=[page(Permission.USER_MANAGE)])
    def admin_only() -> str:
        return "secret"

    @extra.get("/crash", dependencies=[page()])
    def crash() -> str:
        raise RuntimeError("internal detail: table users, column password_hash")

    app.include_router(extra)
    give_password(db, world, "reader")
    with TestClient(
        app, base_url="https://testserver", follow_redirects=False, raise_server_exceptions=False
    ) as web:
        assert log_in(web, "reader").status_code == 303
        finish_logon(web)
        refused = web.get("/admin-only")
        assert refused.status_code == 403
        assert "lacks the permission" in refused.text
        assert "Reader (reader)" in refused.text  # in the layout, header and all
        assert entries(db)[-1] == ("GET /admin-only", "refused", "permission_denied")
        crashed = web.get("/crash")
        assert crashed.status_code == 500
        assert "Something went wrong" in crashed.text
        assert "password_hash" not in crashed.text
        assert "Traceback" not in crashed.text
        assert re.search(r"<code>[0-9a-f]{12}</code>", crashed.text)


def test_only_the_offline_api_docs_may_run_their_inline_start_up_script(web: TestClient) -> None:
    docs = web.get("/docs")
    assert docs.status_code == 200
    assert "'unsafe-inline'" in docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    for path in ("/login", "/docs-not", "/api/v1/docs", "/openapi.json"):
        policy = web.get(path, headers={"Accept": "text/html"}).headers["content-security-policy"]
        assert policy == CONTENT_SECURITY_POLICY, path


@pytest.mark.parametrize("field", ["username", "password", "next"])
def test_control_characters_in_the_login_form_are_refused_not_stored(
    web: TestClient, db: Database, world: World, field: str
) -> None:
    """A NUL would end the string in PostgreSQL; the form refuses it naming the field."""
    give_password(db, world, "reader")
    token = login_form(web)
    data = {"username": "reader", "password": PASSWORD, "csrf_token": token, "next": "/"}
    data[field] += "\x00"
    answer = web.post("/login", data=data)
    assert answer.status_code == 422
    assert field in answer.text
    assert logon.COOKIE_NAME not in answer.cookies
    with db.session() as session:
        assert session.scalars(select(LogonSession)).all() == []


class _Note(BaseModel):
    title: Line = Field(min_length=3)
    count: int = Field(default=1, ge=1)
    tags: list[Line] = []


def test_parse_form_gives_each_error_by_field(
    settings: Settings, db: Database, world: World
) -> None:
    """A page author's form: the model's rules, text types and defaults; errors by field."""
    app = create_app(settings, database=db)
    extra = area_router()
    seen: list[object] = []

    @extra.post("/note", dependencies=[page()])
    def note(ctx: Ctx) -> dict[str, object]:
        parsed, errors = parse_form(ctx.request, _Note, lists=("tags",))
        seen.append(parsed)
        return errors  # type: ignore[return-value]

    app.include_router(extra)
    give_password(db, world, "reader")
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as web:
        assert log_in(web, "reader").status_code == 303
        finish_logon(web)
        home = web.get("/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
        assert token
        csrf = token.group(1)
        bad = web.post("/note", data={"csrf_token": csrf, "title": "ab", "count": "0"})
        assert set(bad.json()) == {"title", "count"}
        assert bad.json()["title"].startswith("String should have at least 3 characters")
        assert seen[-1] is None
        nul = web.post("/note", data={"csrf_token": csrf, "title": "abc\x00"})
        assert "control character" in nul.json()["title"]
        good = web.post("/note", data={"csrf_token": csrf, "title": "abcd", "tags": "x"})
        assert good.json() == {}
        assert seen[-1] == _Note(title="abcd", count=1, tags=["x"])
        # The CSRF check still runs first.
        assert web.post("/note", data={"title": "abcd"}).status_code == 403
