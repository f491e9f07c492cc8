"""The logon's step pages as an attacker would try them: skipping a step, forging the form,
replaying a code, and a privileged page act without a recent proof (docs/web.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from sqlalchemy import update

from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.identity import mfa_crypto as crypto
from openpars.identity.models import LogonSession
from openpars.web.app import create_app
from openpars.web.context import Ctx
from openpars.web.pages.core import area_router, page
from tests.factories import World
from tests.identity.logons import forget_last_code
from tests.web.logon_steps import csrf_of, finish_logon
from tests.web.test_pages import entries, give_password, log_in

PAGE_ROUTE = area_router()


@PAGE_ROUTE.post("/privileged-act", response_class=HTMLResponse, dependencies=[page()])
def privileged_act(ctx: Ctx) -> HTMLResponse:
    """A page act the services treat as privileged (as a vote or a user change is)."""
    with ctx.unit() as (_, principal):
        principal.require_fresh()
    return HTMLResponse("done")


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = create_app(settings, database=db)
    app.include_router(PAGE_ROUTE)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def test_the_steps_cannot_be_skipped_or_forged(web: TestClient, db: Database, world: World) -> None:
    give_password(db, world, "reader")
    assert log_in(web, "reader").status_code == 303
    # Every other page sends the half-logged-on browser back to its next step.
    assert web.get("/").headers["location"] == "/login/next?next=/"
    assert web.get("/login/code").headers["location"] == "/login/enrol"
    intro = web.get("/login/enrol")
    token = csrf_of(intro)
    early = web.post("/login/banner", data={"csrf_token": token})
    assert early.status_code == 409
    assert ("POST /login/banner", "refused", "logon_step_out_of_order") in entries(db)
    forged = web.post("/login/enrol", data={"csrf_token": "0" * 64})
    assert forged.status_code == 403
    assert ("POST /login/enrol", "refused", "csrf_failed") in entries(db)
    missing = web.post("/login/enrol/confirm", data={"code": "123456"})
    assert missing.status_code == 403
    finish_logon(web)
    assert web.get("/").status_code == 200


def test_a_wrong_code_is_shown_beside_the_field_and_counted(
    web: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "court")
    log_in(web, "court")
    totp = finish_logon(web)
    web.cookies.clear()
    log_in(web, "court")
    form = web.get("/login/code")
    bad = web.post("/login/code", data={"csrf_token": csrf_of(form), "code": "12345"})
    assert bad.status_code == 422
    assert 'id="code-error"' in bad.text
    wrong = web.post("/login/code", data={"csrf_token": csrf_of(form), "code": "000000"})
    if wrong.status_code == 401:  # "000000" may be the right code, one time in a million
        assert "not right" in wrong.text and 'aria-invalid="true"' in wrong.text
        assert ("logon.failed", "refused", "code_wrong") in entries(db)
    # The code that opened the first logon cannot open this one (same 30-second step).
    replay = web.post(
        "/login/code", data={"csrf_token": csrf_of(form), "code": crypto.code_at(totp, utcnow())}
    )
    assert replay.status_code == 401


def test_a_privileged_page_act_asks_for_the_password_and_code_again(
    web: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "admin")
    log_in(web, "admin")
    totp = finish_logon(web)
    home = web.get("/")
    assert web.post("/privileged-act", data={"csrf_token": csrf_of(home)}).text == "done"
    with db.session() as session:
        session.execute(update(LogonSession).values(proved_at=utcnow() - timedelta(minutes=6)))
    stale = web.post("/privileged-act", data={"csrf_token": csrf_of(home)})
    assert stale.status_code == 303
    assert stale.headers["location"] == "/reauthenticate"
    assert ("POST /privileged-act", "refused", "reauthentication_required") in entries(db)
    form = web.get("/reauthenticate", params={"next": "/"})
    wrong = web.post(
        "/reauthenticate",
        data={"csrf_token": csrf_of(form), "password": "not the password!", "code": "123456"},
    )
    assert wrong.status_code == 401
    assert "not right" in wrong.text
    forget_last_code(db, world, "admin")
    good = web.post(
        "/reauthenticate",
        data={
            "csrf_token": csrf_of(form),
            "password": "correct horse battery staple",
            "code": crypto.code_at(totp, utcnow()),
            "next": "/",
        },
    )
    assert good.status_code == 303, good.text
    assert web.post("/privileged-act", data={"csrf_token": csrf_of(home)}).text == "done"
