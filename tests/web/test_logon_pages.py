"""The logon's step pages as an attacker would try them: skipping a step, forging the form,
replaying a code, and a privileged page act without a recent proof (docs/web.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from openpars.audit.events import AuditKind
from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.identity import mfa_crypto as crypto
from openpars.identity import passwords, service
from openpars.identity.models import LogonSession, User
from openpars.identity.principal import SYSTEM
from openpars.web.app import create_app
from openpars.web.context import Ctx
from openpars.web.pages.core import area_router, page
from tests.factories import World
from tests.identity.logons import forget_last_code
from tests.web.logon_steps import csrf_of, finish_logon
from tests.web.test_pages import PASSWORD, entries, give_password, log_in, login_form

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
    # A code of the step that opened the first logon, or of the step before it, cannot open
    # this one (a step at or before the last one used is refused). The step 30 seconds ago is
    # one of the two whether or not a step boundary passed since the first logon: the current
    # step's code, which the test sent before, is accepted once a boundary passes (a flake).
    replay = web.post(
        "/login/code",
        data={
            "csrf_token": csrf_of(form),
            "code": crypto.code_at(totp, utcnow() - timedelta(seconds=30)),
        },
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


@pytest.mark.parametrize(
    ("new_password", "code"),
    [("", "password_change_required"), ("short", "password_too_short"),
     (PASSWORD, "password_reused")],
)  # fmt: skip
def test_a_refused_replacement_of_a_reset_password_is_audited_and_changes_nothing(
    web: TestClient, db: Database, world: World, new_password: str, code: str
) -> None:
    """An administrator reset the password; the login page refuses the replacement (missing,
    against the policy, the same again) beside the field, audited as the API audits it, and
    writes nothing else: no session, the password still to be changed, no failure counted.
    The password was right, so the entry is a failed logon naming the account and the rule."""
    with db.session() as session:
        service.set_password(
            session, actor=SYSTEM, user_id=world.users["charging"], new_password=PASSWORD,
            force_change=True,
        )  # fmt: skip
    token = login_form(web)
    answer = web.post(
        "/login",
        data={"username": "charging", "password": PASSWORD, "new_password": new_password,
              "csrf_token": token},
    )  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert 'id="new_password-error"' in answer.text or "new_password" in answer.text
    assert entries(db)[-1] == ("logon.failed", "refused", code)
    with db.session() as session:
        failed = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
        assert (failed.kind, failed.user_id) == (AuditKind.LOGIN_FAILED, world.users["charging"])
    with db.session() as session:
        user = session.get(User, world.users["charging"])
        assert user is not None
        assert (user.must_change_password, user.failed_logons) == (True, 0)
        assert passwords.verify_password(user.password_hash or "", PASSWORD)
        assert session.scalar(select(func.count()).select_from(LogonSession)) == 0


def test_the_api_audits_the_same_refusal_as_the_login_page(
    web: TestClient, db: Database, world: World
) -> None:
    """The page's entry is the API's (POST /api/v1/sessions, a public route whose refusals are
    otherwise not audited): same kind, account and code for the same refusal."""
    with db.session() as session:
        service.set_password(
            session, actor=SYSTEM, user_id=world.users["charging"], new_password=PASSWORD,
            force_change=True,
        )  # fmt: skip
    api = web.post(
        "/api/v1/sessions",
        json={"username": "charging", "password": PASSWORD, "new_password": "short"},
    )
    assert api.status_code == 422, api.text
    token = login_form(web)
    web.post(
        "/login",
        data={"username": "charging", "password": PASSWORD, "new_password": "short",
              "csrf_token": token},
    )  # fmt: skip
    with db.session() as session:
        rows = session.execute(
            select(AuditEntry.kind, AuditEntry.user_id).order_by(AuditEntry.id.desc()).limit(3)
        ).all()
    assert [tuple(r) for r in rows[:2]] == [(AuditKind.LOGIN_FAILED, world.users["charging"])] * 2
    assert entries(db)[-2:] == [("logon.failed", "refused", "password_too_short")] * 2
    assert len(rows) == 2  # nothing else: the API's refusal is not audited twice
