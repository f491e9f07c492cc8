"""Re-authentication before privileged acts (CJIS IA-11), tried the way a thief with a live
session, or with a stolen API token, would try it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.agreements import floor, killswitch, lifecycle
from openpars.agreements import service as agreements
from openpars.audit import shred
from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.errors import DomainError, Forbidden, NotAuthenticated
from openpars.governance import votes
from openpars.identity import logon, mfa
from openpars.identity import service as identity
from openpars.identity.models import User
from openpars.identity.principal import Principal, Via
from openpars.identity.schemas import AgencyCreate, UserCreate
from openpars.web.app import create_app
from tests.factories import World, city_voter
from tests.identity.logons import (
    PASSWORD,
    age_proof,
    current_code,
    forget_last_code,
    full_logon,
    give_password,
    post,
)


def error_code(response) -> str:  # type: ignore[no-untyped-def]
    return str(response.json()["error"]["code"])


def test_a_privileged_act_needs_a_recent_proof_and_reauthentication_gives_it(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "admin")
    admin = full_logon(client, db, world, "admin")
    admin_id = world.users["admin"]
    # Just logged on: password and code are fresh, the act goes through.
    fresh = post(client, f"/users/{admin_id}/tokens", admin.token, {"name": "fresh"})
    assert fresh.status_code == 201, fresh.text
    # Six minutes later (the default window is 5), the same session is refused...
    age_proof(db, admin.token, 6)
    stale = post(client, f"/users/{admin_id}/tokens", admin.token, {"name": "stale"})
    assert (stale.status_code, error_code(stale)) == (401, "reauthentication_required")
    new_user = {
        "username": "mole",
        "display_name": "Mole",
        "agency_id": world.agencies["Defender Association"],
        "roles": ["reader"],
    }
    assert error_code(post(client, "/users", admin.token, new_user)) == "reauthentication_required"
    # ...while reading still works: only privileged acts ask again.
    assert client.get("/api/v1/users/me", headers=admin.auth).status_code == 200
    state = client.get("/api/v1/sessions/current", headers=admin.auth).json()
    assert state["stage"] == "active"
    # A wrong password (or code) at re-authentication counts toward the lockout.
    forget_last_code(db, world, "admin")
    code = current_code(admin.totp)
    wrong = post(
        client,
        "/sessions/current/reauthenticate",
        admin.token,
        {"password": "not my password!", "code": code},
    )
    assert (wrong.status_code, error_code(wrong)) == (401, "code_wrong")
    with db.session() as session:
        user = session.get(User, admin_id)
        assert user is not None and user.failed_logons == 1
    again = post(
        client,
        "/sessions/current/reauthenticate",
        admin.token,
        {"password": PASSWORD, "code": code},
    )
    assert again.status_code == 200, again.text
    assert again.json()["privileged_until"] is not None
    assert post(client, "/users", admin.token, new_user).status_code == 201
    with db.session() as session:
        acts = session.scalars(select(AuditEntry.action)).all()
        assert "session.reauthenticate" in acts


def test_a_stale_voter_session_cannot_vote(client: TestClient, db: Database, world: World) -> None:
    with db.session() as session:
        voter = city_voter(session, world)
    give_password(db, world, voter)
    logged = full_logon(client, db, world, voter)
    age_proof(db, logged.token, 30)
    ballot = {
        "proposal_id": 1,
        "agreement_id": 1,
        "version_hash": "sha256:" + "0" * 64,
        "action": "adopt",
        "effective_at": None,
        "new_expires_at": None,
        "stakeholder_id": world.agencies["City of Philadelphia"],
        "key_fingerprint": "x",
        "choice": "yes",
        "rationale": "I agree",
        "at": utcnow().isoformat(),
        "signature": "AAAA",
    }
    answer = post(client, "/proposals/1/votes", logged.token, ballot)
    assert answer.status_code == 401, answer.text
    assert error_code(answer) == "reauthentication_required"


def stale(principal: Principal) -> Principal:
    """The principal of a session whose last proof is older than the window."""
    return principal.authenticated(via=Via.SESSION, fresh_until=utcnow() - timedelta(seconds=1))


PRIVILEGED: list[tuple[str, str, Callable[[Session, Principal, World], Any]]] = [
    (
        "agreement create",
        "agreements",
        lambda s, p, w: agreements.create_agreement(s, actor=p, data=None),  # type: ignore[arg-type]
    ),
    (
        "agreement change",
        "agreements",
        lambda s, p, w: agreements.update_agreement(
            s,
            actor=p,
            agreement_id=1,
            data=None,  # type: ignore[arg-type]
            reason="x",
        ),
    ),
    (
        "agreement propose",
        "agreements",
        lambda s, p, w: lifecycle.propose(s, actor=p, agreement_id=1),
    ),
    (
        "suspension",
        "agreements",
        lambda s, p, w: killswitch.suspend(
            s,
            actor=p,
            agreement_id=1,
            target=None,  # type: ignore[arg-type]
            reason="x",
        ),
    ),
    (
        "floor",
        "agreements",
        lambda s, p, w: floor.set_floor(s, actor=p, floor=None, reason="x"),  # type: ignore[arg-type]
    ),
    ("shred", "clerk", lambda s, p, w: shred.shred(s, actor=p, order_reference="x", arrest_id=1)),
    ("vote", "city-voter", lambda s, p, w: votes.submit_vote(s, actor=p, data=None)),  # type: ignore[arg-type]
    (
        "agency",
        "admin",
        lambda s, p, w: identity.create_agency(
            s, actor=p, data=AgencyCreate(name="Shadow Unit", kind="police")
        ),
    ),
    (
        "user create",
        "admin",
        lambda s, p, w: identity.create_user(
            s,
            actor=p,
            data=UserCreate(
                username="mole",
                display_name="Mole",
                agency_id=w.agencies["Defender Association"],
                roles=["reader"],
            ),
        ),
    ),
    (
        "user disable",
        "admin",
        lambda s, p, w: identity.set_user_active(
            s, actor=p, user_id=w.users["reader"], active=False
        ),
    ),
    (
        "password reset",
        "admin",
        lambda s, p, w: identity.set_password(
            s, actor=p, user_id=w.users["reader"], new_password="violet-tugboat-marmalade-42"
        ),
    ),
    (
        "token",
        "reader",
        lambda s, p, w: identity.issue_token(
            s, actor=p, user_id=w.users["reader"], name="x", lifetime=timedelta(days=1)
        ),
    ),
    ("mfa reset", "admin", lambda s, p, w: mfa.reset(s, actor=p, user_id=w.users["reader"])),
]


@pytest.mark.parametrize(("act", "who", "call"), PRIVILEGED, ids=[p[0] for p in PRIVILEGED])
def test_every_privileged_service_refuses_a_stale_session(
    db: Database,
    world: World,
    act: str,
    who: str,
    call: Callable[[Session, Principal, World], Any],
) -> None:
    with db.session() as session:
        city_voter(session, world)
        actor = world.principals[who]
        with pytest.raises(NotAuthenticated) as refused:
            call(session, stale(actor), world)
        assert refused.value.code == "reauthentication_required"
        # The same act with a fresh proof gets past the check (it may fail later on its data).
        fresh = actor.authenticated(via=Via.SESSION, fresh_until=utcnow() + timedelta(minutes=5))
        try:
            call(session, fresh, world)
        except NotAuthenticated as exc:
            pytest.fail(f"{act}: a fresh session was refused: {exc.code}")
        except (DomainError, AttributeError, TypeError):
            pass


def test_unlock_needs_a_fresh_session(db: Database, world: World) -> None:
    with db.session() as session:
        user = session.get(User, world.users["reader"])
        assert user is not None
        user.locked_at = utcnow()
        with pytest.raises(NotAuthenticated):
            logon.unlock(session, actor=stale(world.principals["admin"]), user_id=user.id)


def test_a_site_may_refuse_privileged_acts_by_api_token(
    db: Database, world: World, settings: Settings
) -> None:
    strict = Settings(database_url=settings.database_url, token_privileged_acts=False)
    with TestClient(create_app(strict, database=db)) as client:
        new_user = {
            "username": "mole",
            "display_name": "Mole",
            "agency_id": world.agencies["Defender Association"],
            "roles": ["reader"],
        }
        refused = client.post("/api/v1/users", json=new_user, headers=world.auth("admin"))
        assert (refused.status_code, error_code(refused)) == (403, "interactive_session_required")
        # Reads by token are untouched.
        assert client.get("/api/v1/users/me", headers=world.auth("admin")).status_code == 200
        # An interactive, fresh session of the same administrator may.
        give_password(db, world, "admin")
        admin = full_logon(client, db, world, "admin")
        assert post(client, "/users", admin.token, new_user).status_code == 201
    with pytest.raises(Forbidden):
        world.principals["admin"].authenticated(
            via=Via.TOKEN, tokens_privileged=False
        ).require_fresh()
