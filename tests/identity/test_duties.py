"""Separation of duties (CJIS AC-5): who administers accounts or watches the audit log never
changes agreements nor votes. Checked on the roles table, at role assignment and at the act,
the way an administrator trying to get round it would go about it."""

from __future__ import annotations

from itertools import combinations_with_replacement

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from openpars.db import Database
from openpars.errors import Forbidden
from openpars.identity import mfa
from openpars.identity import service as identity
from openpars.identity.models import UserRole
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import (
    ADMINISTRATION,
    EXCLUSIVE_ROLES,
    GOVERNANCE,
    ROLE_PERMISSIONS,
    Role,
    exclusive_pair,
    permissions_for,
)
from openpars.identity.schemas import UserCreate
from tests.factories import World, city_voter


def test_no_role_and_no_allowed_pair_both_administers_and_governs() -> None:
    for first, second in combinations_with_replacement(list(Role), 2):
        roles = frozenset({first, second})
        if exclusive_pair(roles) is not None:
            continue
        granted = permissions_for(roles)
        assert not (granted & ADMINISTRATION and granted & GOVERNANCE), roles


def test_an_exclusion_holds_whichever_way_round_the_roles_are_asked() -> None:
    for role, others in EXCLUSIVE_ROLES.items():
        for other in others:
            assert exclusive_pair(frozenset({other, role})) is not None, (role, other)


def test_the_site_administrator_holds_no_agreement_or_vote_permission() -> None:
    assert not ROLE_PERMISSIONS[Role.ADMIN] & GOVERNANCE
    assert not ROLE_PERMISSIONS[Role.AGREEMENT_ADMIN] & ADMINISTRATION


def new_user(username: str, agency: int, roles: list[str]) -> dict[str, object]:
    return {"username": username, "display_name": username, "agency_id": agency, "roles": roles}


def test_an_administrator_cannot_give_itself_or_a_puppet_a_say_on_agreements(
    client: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        city_voter(session, world)
    city = world.agencies["City of Philadelphia"]
    police = world.agencies["Philadelphia Police Department"]
    admin = world.auth("admin")
    both = client.post(
        "/api/v1/users", json=new_user("me2", police, ["admin", "voter"]), headers=admin
    )
    assert (both.status_code, both.json()["error"]["code"]) == (422, "roles_exclusive")
    # A second account for itself, with a vote or with the agreements: refused.
    voter = client.post("/api/v1/users", json=new_user("me3", city, ["voter"]), headers=admin)
    assert voter.json()["error"]["code"] == "voting_rights_by_own_stakeholder"
    for agency in (city, police):
        puppet = client.post(
            "/api/v1/users", json=new_user("me4", agency, ["agreement_admin"]), headers=admin
        )
        assert (puppet.status_code, puppet.json()["error"]["code"]) == (
            403,
            "agreement_admin_by_console",
        )
    # Nor does a stakeholder's administrator appoint one.
    with_city = client.post(
        "/api/v1/users",
        json=new_user("me5", city, ["agreement_admin"]),
        headers=world.auth("city-admin"),
    )
    assert with_city.json()["error"]["code"] == "agreement_admin_by_console"


def test_the_administrator_cannot_change_agreements_nor_take_over_who_does(
    client: TestClient, db: Database, world: World
) -> None:
    admin = world.auth("admin")
    draft = client.post("/api/v1/agreements", json={}, headers=admin)
    assert (draft.status_code, draft.json()["error"]["code"]) == (403, "permission_denied")
    target = world.users["agreements"]
    reset = client.put(
        f"/api/v1/users/{target}/password",
        json={"new_password": "violet-tugboat-marmalade-42"},
        headers=admin,
    )
    assert reset.status_code == 403
    assert reset.json()["error"]["code"] in (
        "agreement_admin_by_console",
        "other_stakeholder_account",
    )
    token = client.post(f"/api/v1/users/{target}/tokens", json={"name": "x"}, headers=admin)
    assert token.status_code == 403
    with db.session() as session, pytest.raises(Forbidden):
        mfa.reset(session, actor=world.principals["admin"], user_id=target)


def test_the_agreements_administrator_administers_no_account(
    client: TestClient, world: World
) -> None:
    police = world.agencies["Philadelphia Police Department"]
    made = client.post(
        "/api/v1/users",
        json=new_user("officer9", police, ["reader"]),
        headers=world.auth("agreements"),
    )
    assert (made.status_code, made.json()["error"]["code"]) == (403, "permission_denied")


def test_the_console_appoints_an_agreements_administrator(db: Database, world: World) -> None:
    with db.session() as session:
        user = identity.create_user(
            session,
            actor=SYSTEM,
            data=UserCreate(
                username="treaty",
                display_name="Treaty Officer",
                agency_id=world.agencies["Philadelphia Police Department"],
                roles=[Role.AGREEMENT_ADMIN],
            ),
        )
        assert user.roles == {Role.AGREEMENT_ADMIN}


def grant_by_hand(session: Session, user_id: int, role: Role) -> None:
    """What an intruder with database access would do: add a role row directly."""
    session.add(UserRole(user_id=user_id, role=role))
    session.flush()


def test_an_account_given_two_exclusive_roles_by_hand_can_do_nothing(
    client: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        voter = city_voter(session, world)
        grant_by_hand(session, world.users[voter], Role.AUDITOR)
    me = client.get("/api/v1/users/me", headers=world.auth(voter))
    assert (me.status_code, me.json()["error"]["code"]) == (403, "roles_exclusive")
    ballot = client.post("/api/v1/proposals/1/votes", json={}, headers=world.auth(voter))
    assert ballot.json()["error"]["code"] == "roles_exclusive"
    with db.session() as session:
        grant_by_hand(session, world.users["admin"], Role.AGREEMENT_ADMIN)
    draft = client.post("/api/v1/agreements", json={}, headers=world.auth("admin"))
    assert (draft.status_code, draft.json()["error"]["code"]) == (403, "roles_exclusive")
