"""Changing an existing account's roles (identity.service.set_user_roles), tried the way an
administrator getting round the separation of duties would: granting itself, granting a role
that breaks a pair, reaching a stakeholder's voters or a console-appointed account, a change
decided on stale roles, a session that has not re-authenticated. And the old roles stop working
at once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.audit.models import AuditEntry
from openpars.db import Database, utcnow
from openpars.errors import Conflict, DomainError, Forbidden, InvalidInput, NotAuthenticated
from openpars.identity import service as identity
from openpars.identity.models import LogonSession, User
from openpars.identity.principal import SYSTEM, Principal, Via
from openpars.identity.roles import Role
from tests.factories import World, add_user, city_voter
from tests.identity.logons import bearer, full_logon, give_password


def roles_of(db: Database, user_id: int) -> frozenset[Role]:
    with db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        return user.roles


def last_entry(db: Database) -> tuple[str, str, dict[str, Any]]:
    """The newest audit entry's action, outcome and params."""
    with db.session() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert entry is not None
        content = session.get(AuditEntry, entry.id)
        assert content is not None
        return entry.action, entry.outcome.value, json.loads(bytes(content.content))["params"]


def police_admin(session: Session, world: World) -> Principal:
    """A site administrator in a non-stakeholder agency, so the account is one it administers
    itself (the world's ``admin`` sits in the city, a stakeholder it does not administer)."""
    if "padmin" not in world.users:
        add_user(session, world, "padmin", "Philadelphia Police Department", [Role.ADMIN])
    return world.principals["padmin"]


def change(
    db: Database,
    actor: Principal | str,
    world: World,
    username: str,
    roles: set[Role],
    expected: set[Role] | None = None,
) -> identity.RolesChanged:
    with db.session() as session:
        who = world.principals[actor] if isinstance(actor, str) else actor
        return identity.set_user_roles(
            session,
            actor=who,
            user_id=world.users[username],
            roles=frozenset(roles),
            expected=None if expected is None else frozenset(expected),
        )


def refused(
    db: Database, world: World, actor: Principal | str, username: str, roles: set[Role]
) -> DomainError:
    """The refusal of a change; the account's roles are checked unchanged."""
    before = roles_of(db, world.users[username])
    with pytest.raises(DomainError) as caught:
        change(db, actor, world, username, roles)
    assert roles_of(db, world.users[username]) == before
    return caught.value


def test_an_administrator_cannot_change_its_own_roles(db: Database, world: World) -> None:
    with db.session() as session:
        padmin = police_admin(session, world)
        city_voter(session, world)
    error = refused(db, world, padmin, "padmin", {Role.ADMIN, Role.SEALED_ACCESS})
    assert isinstance(error, Forbidden)
    assert (error.code, error.field) == ("own_roles", "roles")
    # Nor taking one off (a stakeholder's administrator, over its own stakeholder's accounts).
    error = refused(db, world, "city-admin", "city-admin", {Role.STAKEHOLDER_ADMIN, Role.READER})
    assert error.code == "own_roles"


def test_a_role_set_that_breaks_separation_of_duties_is_refused(db: Database, world: World) -> None:
    with db.session() as session:
        padmin = police_admin(session, world)
    # The intake officer made an auditor and administrator at once, or an administrator who
    # also reviews (oversight) how accounts use their access: pairs that exclude each other.
    for roles in ({Role.ADMIN, Role.AUDITOR}, {Role.ADMIN, Role.OVERSIGHT}):
        error = refused(db, world, padmin, "intake", roles)
        assert isinstance(error, InvalidInput)
        assert (error.code, error.field) == ("roles_exclusive", "roles")
    # A vote, and the agreements: never from the site administrator.
    assert refused(db, world, padmin, "intake", {Role.VOTER}).code == (
        "voting_rights_by_own_stakeholder"
    )
    assert refused(db, world, padmin, "intake", {Role.AGREEMENT_ADMIN}).code == (
        "agreement_admin_by_console"
    )
    # An external agency's user reads only under an agreement.
    error = refused(db, world, padmin, "ice", {Role.EXTERNAL_QUERY, Role.READER})
    assert (error.code, error.field) == ("invalid_input", "roles")


def test_a_site_administrator_cannot_reach_a_stakeholders_or_a_console_account(
    db: Database, world: World
) -> None:
    with db.session() as session:
        padmin = police_admin(session, world)
        city_voter(session, world)
    # Taking a vote away is changing voting rights too: the stakeholder's own administrator's.
    assert refused(db, world, padmin, "city-voter", {Role.READER}).code == (
        "voting_rights_by_own_stakeholder"
    )
    # The courts administer their own accounts.
    assert refused(db, world, padmin, "court", {Role.COURT, Role.READER}).code == (
        "other_stakeholder_account"
    )
    # The agreement administrator stays appointed (and unappointed) at the console only.
    agreements = refused(db, world, "admin", "agreements", {Role.READER})
    assert agreements.code == "agreement_admin_by_console"
    # A stakeholder's administrator cannot make anyone a site administrator.
    assert refused(db, world, "city-admin", "city-voter", {Role.ADMIN}).code in {
        "roles_exclusive",
        "site_role_by_site_admin",
    }
    with db.session() as session:
        add_user(session, world, "clerk2", "City of Philadelphia", [Role.READER], by="city-admin")
    assert refused(db, world, "city-admin", "clerk2", {Role.ADMIN}).code == (
        "site_role_by_site_admin"
    )


def test_the_right_administrator_changes_roles_audited_with_before_and_after(
    db: Database, world: World
) -> None:
    with db.session() as session:
        city_voter(session, world)
        add_user(session, world, "clerk2", "City of Philadelphia", [Role.READER], by="city-admin")
    changed = change(db, "city-admin", world, "clerk2", {Role.READER, Role.VOTER}, {Role.READER})
    assert (changed.before, changed.after) == (
        frozenset({Role.READER}),
        frozenset({Role.READER, Role.VOTER}),
    )
    assert roles_of(db, world.users["clerk2"]) == {Role.READER, Role.VOTER}
    action, outcome, params = last_entry(db)
    assert (action, outcome) == ("user.roles", "ok")
    assert params == {
        "user_id": world.users["clerk2"],
        "before": ["reader"],
        "after": ["reader", "voter"],
        "sessions_ended": 0,
    }
    # The console appoints (and changes) the agreement administrator's roles.
    change(db, SYSTEM, world, "agreements", {Role.AGREEMENT_ADMIN, Role.READER})
    assert roles_of(db, world.users["agreements"]) == {Role.AGREEMENT_ADMIN, Role.READER}


def test_the_console_grants_no_vote_by_a_role_change(db: Database, world: World) -> None:
    error = refused(db, world, SYSTEM, "reader", {Role.READER, Role.VOTER})
    assert error.code == "voting_rights_by_own_stakeholder"
    # Nor a second stakeholder administrator once the city has one.
    with db.session() as session:
        city_voter(session, world)
        add_user(session, world, "clerk2", "City of Philadelphia", [Role.READER], by="city-admin")
    assert refused(db, world, SYSTEM, "clerk2", {Role.STAKEHOLDER_ADMIN}).code == (
        "stakeholder_admin_exists"
    )


def test_a_change_decided_on_stale_roles_or_changing_nothing_is_refused(
    db: Database, world: World
) -> None:
    with db.session() as session:
        padmin = police_admin(session, world)
    change(db, padmin, world, "intake", {Role.INTAKE, Role.READER}, {Role.INTAKE})
    # A second administrator's form still shows the roles as they were.
    with pytest.raises(Conflict) as stale:
        change(db, padmin, world, "intake", {Role.INTAKE, Role.SEALED_ACCESS}, {Role.INTAKE})
    assert (stale.value.code, stale.value.field) == ("roles_changed_meanwhile", "roles")
    assert "intake, reader" in stale.value.message
    assert roles_of(db, world.users["intake"]) == {Role.INTAKE, Role.READER}
    with pytest.raises(InvalidInput) as same:
        change(db, padmin, world, "intake", {Role.INTAKE, Role.READER})
    assert same.value.code == "roles_unchanged"


def test_a_session_that_has_not_reauthenticated_changes_nothing(db: Database, world: World) -> None:
    with db.session() as session:
        padmin = police_admin(session, world)
    stale = padmin.authenticated(via=Via.SESSION, fresh_until=utcnow())
    error = refused(db, world, stale, "intake", {Role.INTAKE, Role.READER})
    assert isinstance(error, NotAuthenticated)
    assert error.code == "reauthentication_required"


def test_a_user_without_user_manage_cannot_change_roles(db: Database, world: World) -> None:
    error = refused(db, world, "intake", "reader", {Role.READER, Role.INTAKE})
    assert (error.code, error.status) == ("permission_denied", 403)


def test_the_old_roles_stop_working_at_once_sessions_and_tokens(
    client: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        padmin = police_admin(session, world)
    give_password(db, world, "intake")
    logged_on = full_logon(client, db, world, "intake")
    me = client.get("/api/v1/users/me", headers=logged_on.auth)
    assert me.status_code == 200
    # The edge checks the permission before the body: an empty arrest is 422 while the token
    # may submit arrests, and 403 once it may not.
    arrests = client.post("/api/v1/arrests", json={}, headers=world.auth("intake"))
    assert arrests.status_code == 422, arrests.text
    changed = change(db, padmin, world, "intake", {Role.PRETRIAL})
    assert changed.sessions_ended == 1
    with db.session() as session:
        ended = session.scalars(
            select(LogonSession).where(LogonSession.user_id == world.users["intake"])
        ).one()
        assert ended.end_reason == "roles_changed"
    assert client.get("/api/v1/users/me", headers=logged_on.auth).status_code == 401
    # The API token acts under the roles read at each use: submitting arrests is gone.
    refused_read = client.post("/api/v1/arrests", json={}, headers=world.auth("intake"))
    assert refused_read.status_code == 403
    assert refused_read.json()["error"]["code"] == "permission_denied"


def put_roles(client: TestClient, auth: dict[str, str], user_id: int, body: Any) -> Any:
    return client.put(f"/api/v1/users/{user_id}/roles", json=body, headers=auth)


def test_the_api_changes_roles_and_refuses_as_the_service_does(
    client: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        police_admin(session, world)
    auth = world.auth("padmin")
    reader = world.users["reader"]
    done = put_roles(
        client, auth, reader, {"roles": ["reader", "sealed_access"], "expected_roles": ["reader"]}
    )
    assert done.status_code == 200, done.text
    assert done.json()["before"] == ["reader"]
    assert done.json()["after"] == ["reader", "sealed_access"]
    assert done.json()["user"]["roles"] == ["reader", "sealed_access"]
    stale = put_roles(client, auth, reader, {"roles": ["reader"], "expected_roles": ["reader"]})
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "roles_changed_meanwhile")
    own = put_roles(client, auth, world.users["padmin"], {"roles": ["admin", "reader"]})
    assert (own.status_code, own.json()["error"]["code"]) == (403, "own_roles")
    empty = put_roles(client, auth, reader, {"roles": []})
    assert empty.status_code == 422
    nobody = put_roles(client, world.auth("reader"), reader, {"roles": ["reader", "intake"]})
    assert nobody.status_code == 403
    assert roles_of(db, reader) == {Role.READER, Role.SEALED_ACCESS}
    # The bearer of a logon session that ended (the roles change) is refused at once.
    give_password(db, world, "pretrial")
    session_auth = bearer(full_logon(client, db, world, "pretrial").token)
    put_roles(client, auth, world.users["pretrial"], {"roles": ["pretrial", "reader"]})
    assert client.get("/api/v1/users/me", headers=session_auth).status_code == 401


def test_ending_ones_other_sessions_through_the_api(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    first = full_logon(client, db, world, "reader")
    second = full_logon(client, db, world, "reader", totp=first.totp)
    third = full_logon(client, db, world, "reader", totp=first.totp)
    # Someone else's open session is not touched.
    give_password(db, world, "court")
    court = full_logon(client, db, world, "court")
    ended = client.delete("/api/v1/sessions/others", headers=third.auth)
    assert ended.status_code == 200, ended.text
    assert ended.json()["ended"] == 2
    action, _, params = last_entry(db)
    assert (action, params) == ("session.end_others", {"sessions_ended": 2})
    for gone in (first, second):
        assert client.get("/api/v1/users/me", headers=gone.auth).status_code == 401
    assert client.get("/api/v1/users/me", headers=third.auth).status_code == 200
    assert client.get("/api/v1/users/me", headers=court.auth).status_code == 200
    # An API token has no session to keep: refused, nothing ended.
    token = client.delete("/api/v1/sessions/others", headers=world.auth("reader"))
    assert (token.status_code, token.json()["error"]["code"]) == (409, "not_a_session")
    assert client.get("/api/v1/users/me", headers=third.auth).status_code == 200


def test_the_users_list_decides_authority_as_the_service_does(db: Database, world: World) -> None:
    """AuthorityScope (one read for the /admin list) against require_account_authority (per
    account), for every account and administrator of a site with sub-units and stakeholders."""
    from openpars.identity import duties
    from openpars.identity.roles import AgencyKind
    from openpars.identity.schemas import AgencyCreate

    with db.session() as session:
        police_admin(session, world)
        city_voter(session, world)
        unit = identity.create_agency(
            session, actor=SYSTEM,
            data=AgencyCreate(name="Court Annex", kind=AgencyKind.COURT,
                              parent_id=world.agencies["First Judicial District"]),
        )  # fmt: skip
        world.agencies["Court Annex"] = unit.id
        add_user(session, world, "court-admin", "First Judicial District", [Role.STAKEHOLDER_ADMIN])
        add_user(session, world, "annex", "Court Annex", [Role.COURT], by="court-admin")
    decided = 0
    with db.session() as session:
        users = session.scalars(select(User).order_by(User.id)).all()
        for actor in ("admin", "padmin", "city-admin", "court-admin", "reader"):
            principal = world.principals[actor]
            scope = duties.AuthorityScope.read(session, principal)
            for user in users:
                try:
                    duties.require_account_authority(session, principal, user.agency, user.roles)
                    allowed = True
                except Forbidden:
                    allowed = False
                assert scope.may_administer(user) is allowed, (actor, user.username)
                decided += allowed
    # Not a vacuous agreement: some accounts are administered, some not.
    assert 0 < decided < 5 * len(users)
