"""Issue 14, bad input: "a forged or missing CSRF token, an expired session, a page of another
agency's record: refused cleanly and audited", and "a stale form refused with the reason".

Tried on every form of every area, found from the page routers themselves (a new form is
covered without touching this file), and on the court steps' own refusals shown beside their
fields. Each refusal must leave its entry through the one audit path (web/refusals.py); the
tests read the entries back and fail if one is missing.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import update

from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.identity.logon import SESSION_PREFIX
from openpars.identity.models import LogonSession
from openpars.identity.roles import Role
from openpars.web.app import create_app
from openpars.web.context import edge_of
from openpars.web.pages import AREAS
from openpars.web.pages.core import PageEdge, csrf_token_for
from tests.factories import World, city_voter
from tests.records.factories import arrest_payload
from tests.records.helpers import (
    add_user,
    arraignment,
    bail,
    charging,
    custody,
    row_counts,
    step,
    submit,
)
from tests.web.logon_steps import finish_logon_as
from tests.web.test_pages import count_entries, entries, give_password, log_in

# Users who hold each page's permission; the first that may open a form posts to it.
USERS = (
    "reader", "intake", "charging", "pretrial", "court", "admin", "auditor", "watcher",
    "city-voter",
)  # fmt: skip


def form_routes() -> list[APIRoute]:
    """Every page route that takes a form (POST) behind a logon session."""
    return [
        r
        for area in AREAS
        for r in area.routes
        if isinstance(r, APIRoute) and "POST" in r.methods and isinstance(edge_of(r), PageEdge)
    ]


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = create_app(settings, database=db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def everyone(db: Database, world: World) -> World:
    """The standard users, with an auditor, an oversight reviewer and a stakeholder voter."""
    add_user(db, world, "auditor", "City of Philadelphia", [Role.AUDITOR])
    add_user(db, world, "watcher", "City of Philadelphia", [Role.OVERSIGHT])
    with db.session() as session:
        city_voter(session, world)
    return world


def holder(world: World, edge: PageEdge) -> str:
    for name in USERS:
        principal = world.principals.get(name)
        if principal is not None and (
            not edge.any_of or any(principal.can(p) for p in edge.any_of)
        ):
            return name
    raise AssertionError(f"no test user holds any of {sorted(edge.any_of)}")


def signed_in(web: TestClient, db: Database, world: World, username: str) -> str:
    give_password(db, world, username)
    assert log_in(web, username).status_code == 303
    finish_logon_as(web, db, username)
    match = re.search(r'name="csrf-token" content="([^"]+)"', web.get("/").text)
    assert match
    return match.group(1)


def url_of(route: APIRoute) -> str:
    return re.sub(r"\{[^}]+\}", "1", route.path)


@pytest.mark.parametrize("route", form_routes(), ids=lambda r: r.path)
def test_every_form_refuses_a_missing_or_forged_token_and_audits_it(
    route: APIRoute, web: TestClient, db: Database, everyone: World
) -> None:
    edge = edge_of(route)
    assert isinstance(edge, PageEdge)
    username = holder(everyone, edge)
    real = signed_in(web, db, everyone, username)
    # A genuine token of another logon session (its secret's HMAC), not this session's.
    elsewhere = csrf_token_for(SESSION_PREFIX + secrets.token_urlsafe(32))
    assert elsewhere != real
    path = url_of(route)
    before = row_counts(db)
    for sent in ({}, {"csrf_token": ""}, {"csrf_token": "0" * 64}, {"csrf_token": elsewhere}):
        answer = web.post(path, data=sent | {"note": "x", "outcome": "approved"})
        assert answer.status_code == 403, (path, sent, answer.status_code)
        assert "security token" in answer.text
        assert entries(db)[-1] == (f"POST {path}", "refused", "csrf_failed"), (path, sent)
    assert row_counts(db) == before


@pytest.mark.parametrize("route", form_routes(), ids=lambda r: r.path)
def test_every_form_sent_from_an_idle_session_goes_to_login_audited(
    route: APIRoute, web: TestClient, db: Database, everyone: World
) -> None:
    edge = edge_of(route)
    assert isinstance(edge, PageEdge)
    username = holder(everyone, edge)
    token = signed_in(web, db, everyone, username)
    with db.session() as session:
        session.execute(
            update(LogonSession)
            .where(LogonSession.user_id == everyone.users[username])
            .values(last_seen_at=utcnow() - timedelta(minutes=31))
        )
    path = url_of(route)
    before = row_counts(db)
    answer = web.post(path, data={"csrf_token": token})
    assert answer.status_code == 303
    assert "reason=session_idle" in answer.headers["location"]
    assert entries(db)[-1] == (f"POST {path}", "refused", "session_idle")
    assert row_counts(db) == before


def test_the_login_form_without_its_token_is_refused_and_audited(
    web: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    web.get("/login")
    for sent in ({}, {"csrf_token": "0" * 43}):
        answer = web.post("/login", data={"username": "reader", "password": "x"} | sent)
        assert answer.status_code == 403
        assert entries(db)[-1] == ("POST /login", "refused", "csrf_failed")


# --- the court steps' own refusals --------------------------------------------------------------


def charged(web_api: TestClient, world: World) -> int:
    arrest_id: int = submit(web_api, world, arrest_payload()).json()["arrest_id"]
    assert step(web_api, world, arrest_id, "charging-decision", charging(), "charging").is_success
    return arrest_id


def form_of(web: TestClient, path: str) -> dict[str, str]:
    page = web.get(path).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    version = re.search(r'name="version" value="([^"]*)"', page)
    assert token and version
    return {"csrf_token": token.group(1), "version": version.group(1)}


BAIL_FORM = {"bail_type": "ror"}
ARRAIGN_FORM = {
    k: v
    for k, v in (
        arraignment(docket="MC-51-CR-0000202-2026") | {"arraigned_at": "2026-03-20T10:00"}
    ).items()
    if v is not None
}
CUSTODY_FORM = {"outcome": "released", "at": "2026-03-20T18:30"}


def _ready(client: TestClient, world: World, stage: str) -> int:
    """An arrest at the stage the step's form is for."""
    arrest_id = charged(client, world)
    if stage == "custody":
        assert step(client, world, arrest_id, "arraignment", arraignment(), "court").is_success
    return arrest_id


STEPS: list[tuple[str, str, dict[str, Any]]] = [
    ("pretrial", "bail-recommendation", BAIL_FORM),
    ("court", "arraignment", ARRAIGN_FORM),
    ("court", "custody", CUSTODY_FORM),
]


@pytest.mark.parametrize(("user", "path", "form"), STEPS, ids=[s[1] for s in STEPS])
def test_a_stale_court_form_is_refused_with_the_reason_and_audited(
    user: str, path: str, form: dict[str, Any], client: TestClient, web: TestClient,
    db: Database, world: World,
) -> None:  # fmt: skip
    arrest_id = _ready(client, world, path)
    signed_in(web, db, world, user)
    shown = form_of(web, f"/arrests/{arrest_id}/{path}")
    # Meanwhile the arrest changes: pretrial's recommendation, or (once arraigned) a colleague
    # records the release first.
    meanwhile = (
        ("custody", custody(), "court")
        if path == "custody"
        else ("bail-recommendation", bail(), "pretrial")
    )
    assert step(client, world, arrest_id, *meanwhile).is_success
    before = row_counts(db)
    stale = web.post(f"/arrests/{arrest_id}/{path}", data=shown | form)
    assert stale.status_code == 409
    assert "changed since this form was shown" in stale.text
    assert row_counts(db) == before
    refusals = [e for e in entries(db) if e[1] == "refused"]
    assert refusals[-1] == (f"POST /arrests/{arrest_id}/{path}", "refused", "version_mismatch")


def test_a_court_rule_refused_beside_its_field_is_audited_and_a_typo_is_not(
    client: TestClient, web: TestClient, db: Database, world: World
) -> None:
    arrest_id = charged(client, world)
    signed_in(web, db, world, "court")
    shown = form_of(web, f"/arrests/{arrest_id}/arraignment")
    # The schema's own field errors: a typing mistake, refused before any service, unaudited
    # (as the API's 422 for a body that does not validate); the page shown again is a read.
    mark = count_entries(db)
    typo = web.post(
        f"/arrests/{arrest_id}/arraignment", data=shown | ARRAIGN_FORM | {"bail_amount": "lots"}
    )
    assert typo.status_code == 422
    assert [e[1] for e in entries(db)[mark:]] == ["ok"]
    # The service's rule (an arraignment before the arrest): audited, shown beside its field.
    early = web.post(
        f"/arrests/{arrest_id}/arraignment",
        data=shown | ARRAIGN_FORM | {"arraigned_at": "2001-01-01T09:00"},
    )
    assert early.status_code == 422
    assert 'id="arraigned_at-error"' in early.text
    assert (f"POST /arrests/{arrest_id}/arraignment", "refused", "invalid_input") in entries(db)[
        mark:
    ]
    # A form stripped of its version (no page sends one): refused and audited.
    mark = count_entries(db)
    stripped = web.post(
        f"/arrests/{arrest_id}/arraignment",
        data={"csrf_token": shown["csrf_token"]} | ARRAIGN_FORM,
    )
    assert stripped.status_code == 422
    assert "version it was shown with" in stripped.text
    assert entries(db)[mark] == (
        f"POST /arrests/{arrest_id}/arraignment",
        "refused",
        "invalid_input",
    )
