"""Accounts in the pages, as an attacker would try them: one's own sessions (listed, one ended,
all others ended; another's refused), an administrator changing an account's roles (granting
itself, a pair that breaks the separation of duties, a stale form, no CSRF token, no
permission, no re-authentication), resetting an account's MFA, the sessions of an account
paginated, and /admin deciding its list in a fixed number of queries (docs/web.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update

from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.identity import logon
from openpars.identity.models import LogonSession, User
from openpars.identity.roles import Role
from openpars.web.app import create_app
from tests.factories import World, add_user, city_voter
from tests.identity.logons import forget_last_code
from tests.web.logon_steps import finish_logon_as
from tests.web.test_pages import count_entries, entries, give_password, log_in


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The app over TLS (the session cookie is Secure), not following redirects."""
    app = create_app(settings, database=db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def browser(web: TestClient) -> TestClient:
    """A second browser on the same app."""
    return TestClient(web.app, base_url="https://testserver", follow_redirects=False)


def sign_in(client: TestClient, db: Database, world: World, username: str) -> str:
    """Log ``username`` in on this browser; the CSRF token of its pages."""
    with db.session() as session:
        user = session.get(User, world.users[username])
        assert user is not None
        known = user.password_hash is not None
    if not known:
        # Only once: the console's reset ends the account's sessions already open.
        give_password(db, world, username)
    forget_last_code(db, world, username)
    assert log_in(client, username).status_code == 303
    finish_logon_as(client, db, username)
    match = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").text)
    assert match
    return match.group(1)


def police_admin(db: Database, world: World) -> int:
    """A site administrator in a non-stakeholder agency (it administers its own account)."""
    with db.session() as session:
        add_user(session, world, "padmin", "Philadelphia Police Department", [Role.ADMIN])
    return world.users["padmin"]


def roles_of(db: Database, user_id: int) -> frozenset[Role]:
    with db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        return user.roles


def session_ids(db: Database, user_id: int) -> list[int]:
    with db.session() as session:
        return list(
            session.scalars(
                select(LogonSession.id)
                .where(LogonSession.user_id == user_id)
                .order_by(LogonSession.id)
            )
        )


def ended_reason(db: Database, session_id: int) -> str | None:
    with db.session() as session:
        found = session.get(LogonSession, session_id)
        assert found is not None
        return found.end_reason


# --- one's own sessions -----------------------------------------------------------------


def test_a_user_lists_its_sessions_ends_one_then_all_others(
    web: TestClient, db: Database, world: World
) -> None:
    laptop, tablet = browser(web), browser(web)
    sign_in(laptop, db, world, "reader")
    sign_in(tablet, db, world, "reader")
    # A third logon stopped at its one-time code (someone who has the password?).
    assert log_in(browser(web), "reader").status_code == 303
    token = sign_in(web, db, world, "reader")
    first, second, pending, current = session_ids(db, world.users["reader"])
    home = web.get("/")
    assert 'href="/account/sessions"' in home.text
    listed = web.get("/account/sessions")
    assert listed.status_code == 200
    text = listed.text
    assert "4 sessions in all" in text
    assert f"{current} <strong>(this one)</strong>" in text
    assert "one time code" in text  # the pending logon's step
    assert "testclient" in text  # where it came from
    assert entries(db)[-1][0] == "session.list"
    # End the laptop's session: the laptop is logged out at its next request.
    ended = web.post(f"/account/sessions/{first}/end", data={"csrf_token": token})
    assert (ended.status_code, ended.headers["location"]) == (303, "/account/sessions?done=ended")
    assert ended_reason(db, first) == "ended_by_owner"
    assert entries(db)[-1][:2] == ("session.end", "ok")
    assert laptop.get("/").status_code == 303
    # End all the others: the tablet and the pending logon; this one stays.
    others = web.post("/account/sessions/end-others", data={"csrf_token": token})
    assert others.status_code == 303
    assert entries(db)[-1][:2] == ("session.end_others", "ok")
    assert ended_reason(db, second) == ended_reason(db, pending) == "ended_by_owner"
    assert ended_reason(db, current) is None
    assert tablet.get("/").status_code == 303
    assert web.get("/").status_code == 200
    assert "Every other session of yours was ended" in web.get(others.headers["location"]).text
    # Ending this one is logging off.
    off = web.post(f"/account/sessions/{current}/end", data={"csrf_token": token})
    assert off.status_code == 303
    assert off.headers["location"].startswith("/login")
    assert web.get("/").status_code == 303


def test_anothers_session_is_refused_even_to_an_administrator(
    web: TestClient, db: Database, world: World
) -> None:
    victim = browser(web)
    sign_in(victim, db, world, "pretrial")
    (victim_session,) = session_ids(db, world.users["pretrial"])
    # The site administrator administers pretrial's account, yet not from its own page.
    token = sign_in(web, db, world, "admin")
    listed = web.get("/account/sessions").text
    assert f"/account/sessions/{victim_session}/end" not in listed
    before = count_entries(db)
    answer = web.post(f"/account/sessions/{victim_session}/end", data={"csrf_token": token})
    assert answer.status_code == 404
    assert "<main" in answer.text
    assert ended_reason(db, victim_session) is None
    assert victim.get("/").status_code == 200
    assert count_entries(db) == before + 1
    assert entries(db)[-1][1:] == ("refused", "not_found")


@pytest.mark.parametrize("token", [None, "forged"])
def test_ending_sessions_without_the_form_token_is_refused(
    web: TestClient, db: Database, world: World, token: str | None
) -> None:
    other = browser(web)
    sign_in(other, db, world, "reader")
    sign_in(web, db, world, "reader")
    data = {} if token is None else {"csrf_token": token}
    first = session_ids(db, world.users["reader"])[0]
    for path in ("/account/sessions/end-others", f"/account/sessions/{first}/end"):
        answer = web.post(path, data=data)
        assert answer.status_code == 403
        assert entries(db)[-1][1:] == ("refused", "csrf_failed")
    assert other.get("/").status_code == 200  # nothing ended


# --- roles ------------------------------------------------------------------------------


def roles_form(token: str, roles: list[str], expected: list[str]) -> dict[str, Any]:
    return {"csrf_token": token, "roles": roles, "expected_roles": expected}


def test_an_administrator_changes_roles_and_the_holder_is_logged_out(
    web: TestClient, db: Database, world: World
) -> None:
    holder = browser(web)
    sign_in(holder, db, world, "intake")
    police_admin(db, world)
    token = sign_in(web, db, world, "padmin")
    intake = world.users["intake"]
    page = web.get(f"/admin/users/{intake}")
    assert page.status_code == 200
    assert 'name="expected_roles" value="intake"' in page.text
    assert 'id="role-intake" name="roles" value="intake" checked' in page.text
    answer = web.post(
        f"/admin/users/{intake}/roles", data=roles_form(token, ["intake", "reader"], ["intake"])
    )
    assert answer.status_code == 303, answer.text
    assert "The roles were changed" in web.get(answer.headers["location"]).text
    assert roles_of(db, intake) == {Role.INTAKE, Role.READER}
    assert holder.get("/").status_code == 303  # logged out, to log on under the new roles
    assert "user.roles" in [action for action, _, _ in entries(db)]


def test_an_administrator_cannot_grant_itself_from_its_own_page(
    web: TestClient, db: Database, world: World
) -> None:
    padmin = police_admin(db, world)
    token = sign_in(web, db, world, "padmin")
    own = web.get(f"/admin/users/{padmin}")
    assert own.status_code == 200
    assert "Nobody changes their own roles" in own.text
    assert f'action="/admin/users/{padmin}/roles"' not in own.text
    answer = web.post(
        f"/admin/users/{padmin}/roles",
        data=roles_form(token, ["admin", "sealed_access"], ["admin"]),
    )
    assert answer.status_code == 403
    assert "nobody changes their own roles" in answer.text
    assert roles_of(db, padmin) == {Role.ADMIN}
    assert entries(db)[-1][1:] == ("refused", "own_roles")
    # Nor a vote for a puppet: voting rights are the stakeholder's own administrator's.
    vote = web.post(
        f"/admin/users/{world.users['intake']}/roles",
        data=roles_form(token, ["intake", "voter"], ["intake"]),
    )
    assert vote.status_code == 403
    assert entries(db)[-1][1:] == ("refused", "voting_rights_by_own_stakeholder")
    assert roles_of(db, world.users["intake"]) == {Role.INTAKE}


def test_a_role_set_breaking_separation_of_duties_is_shown_beside_the_roles(
    web: TestClient, db: Database, world: World
) -> None:
    police_admin(db, world)
    token = sign_in(web, db, world, "padmin")
    intake = world.users["intake"]
    answer = web.post(
        f"/admin/users/{intake}/roles", data=roles_form(token, ["admin", "auditor"], ["intake"])
    )
    assert answer.status_code == 422
    assert 'id="roles-error"' in answer.text
    assert "exclude each other" in answer.text
    # What was ticked is shown again, not the roles held.
    assert 'id="role-auditor" name="roles" value="auditor" checked' in answer.text
    assert 'id="role-intake" name="roles" value="intake" checked' not in answer.text
    none = web.post(f"/admin/users/{intake}/roles", data=roles_form(token, [], ["intake"]))
    assert none.status_code == 422
    assert 'id="roles-error"' in none.text
    assert roles_of(db, intake) == {Role.INTAKE}


def test_a_stale_roles_form_is_refused_with_the_reason(
    web: TestClient, db: Database, world: World
) -> None:
    police_admin(db, world)
    token = sign_in(web, db, world, "padmin")
    reader = world.users["reader"]
    first = web.post(
        f"/admin/users/{reader}/roles", data=roles_form(token, ["reader", "intake"], ["reader"])
    )
    assert first.status_code == 303
    # A second tab still showing the roles as they were before.
    stale = web.post(
        f"/admin/users/{reader}/roles",
        data=roles_form(token, ["reader", "sealed_access"], ["reader"]),
    )
    assert stale.status_code == 409
    assert "changed since the form was shown" in stale.text
    # The page shows the roles as they are now, to decide again.
    assert 'name="expected_roles" value="intake"' in stale.text
    assert roles_of(db, reader) == {Role.READER, Role.INTAKE}
    # A hand-made form without the roles it was shown with counts as stale.
    bare = web.post(f"/admin/users/{reader}/roles", data={"csrf_token": token, "roles": ["reader"]})
    assert bare.status_code == 409
    assert roles_of(db, reader) == {Role.READER, Role.INTAKE}


@pytest.mark.parametrize("token", [None, "forged"])
def test_a_roles_form_without_its_token_is_refused(
    web: TestClient, db: Database, world: World, token: str | None
) -> None:
    police_admin(db, world)
    sign_in(web, db, world, "padmin")
    form: dict[str, Any] = {"roles": ["intake", "reader"], "expected_roles": ["intake"]}
    if token is not None:
        form["csrf_token"] = token
    answer = web.post(f"/admin/users/{world.users['intake']}/roles", data=form)
    assert answer.status_code == 403
    assert entries(db)[-1][1:] == ("refused", "csrf_failed")
    assert roles_of(db, world.users["intake"]) == {Role.INTAKE}


def test_a_non_administrator_posting_the_roles_form_is_refused(
    web: TestClient, db: Database, world: World
) -> None:
    token = sign_in(web, db, world, "intake")
    for user in ("intake", "reader"):  # itself, and another
        answer = web.post(
            f"/admin/users/{world.users[user]}/roles",
            data=roles_form(token, ["intake", "sealed_access"], ["intake"]),
        )
        assert answer.status_code == 403
        assert entries(db)[-1][1:] == ("refused", "permission_denied")
    assert roles_of(db, world.users["intake"]) == {Role.INTAKE}


def test_a_roles_change_needs_a_recent_reauthentication(
    web: TestClient, db: Database, world: World
) -> None:
    police_admin(db, world)
    token = sign_in(web, db, world, "padmin")
    with db.session() as session:
        session.execute(
            update(LogonSession)
            .where(LogonSession.user_id == world.users["padmin"])
            .values(proved_at=utcnow() - logon.IDLE_LIMIT)
        )
    answer = web.post(
        f"/admin/users/{world.users['intake']}/roles",
        data=roles_form(token, ["intake", "reader"], ["intake"]),
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/reauthenticate")
    assert roles_of(db, world.users["intake"]) == {Role.INTAKE}


# --- MFA reset ----------------------------------------------------------------------------


def test_an_administrator_resets_an_accounts_mfa(
    web: TestClient, db: Database, world: World
) -> None:
    holder = browser(web)
    sign_in(holder, db, world, "pretrial")  # enrols an authenticator
    token = sign_in(web, db, world, "admin")
    pretrial = world.users["pretrial"]
    page = web.get(f"/admin/users/{pretrial}").text
    assert "enrolled since" in page
    answer = web.post(f"/admin/users/{pretrial}/mfa/reset", data={"csrf_token": token})
    assert answer.status_code == 303, answer.text
    assert entries(db)[-1][:2] == ("mfa.reset", "ok")
    assert "enrols an authenticator at the next logon" in web.get(answer.headers["location"]).text
    with db.session() as session:
        user = session.get(User, pretrial)
        assert user is not None
        assert (user.mfa_secret, user.mfa_enrolled_at) == (None, None)
    assert holder.get("/").status_code == 303  # its sessions ended
    again = web.post(f"/admin/users/{pretrial}/mfa/reset", data={"csrf_token": token})
    assert again.status_code == 409
    assert "nothing to reset" in again.text


def test_the_site_admin_cannot_reset_a_voters_mfa(
    web: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        voter = city_voter(session, world)
    voting = browser(web)
    sign_in(voting, db, world, voter)
    token = sign_in(web, db, world, "admin")
    answer = web.post(f"/admin/users/{world.users[voter]}/mfa/reset", data={"csrf_token": token})
    assert answer.status_code == 403
    assert entries(db)[-1][1:] == ("refused", "voting_rights_by_own_stakeholder")
    assert voting.get("/").status_code == 200


# --- the administrator's lists ------------------------------------------------------------


def test_an_accounts_sessions_are_paginated(web: TestClient, db: Database, world: World) -> None:
    pretrial = world.users["pretrial"]
    moment = utcnow()
    with db.session() as session:
        for n in range(25):
            session.add(
                LogonSession(
                    user_id=pretrial, secret_hash=logon.hash_secret(f"ops_test{n}"),
                    created_at=moment, last_seen_at=moment,
                    expires_at=moment + logon.ABSOLUTE_LIMIT, source_ip=f"10.0.0.{n}",
                )
            )  # fmt: skip
    sign_in(web, db, world, "admin")
    first = web.get(f"/admin/users/{pretrial}").text
    assert "25 sessions in all" in first
    assert first.count('aria-label="End session') == 20
    assert f'href="/admin/users/{pretrial}?sessions_offset=20"' in first
    second = web.get(f"/admin/users/{pretrial}?sessions_offset=20").text
    assert second.count('aria-label="End session') == 5
    assert "10.0.0.0<" in second  # the oldest
    assert "Newer sessions" in second
    assert web.get(f"/admin/users/{pretrial}?sessions_offset=-1").status_code == 422


def statements_of(web: TestClient, db: Database, path: str) -> int:
    """How many SQL statements answering ``path`` runs."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(db.bind, "before_cursor_execute", count)
    try:
        assert web.get(path).status_code == 200
    finally:
        event.remove(db.bind, "before_cursor_execute", count)
    return len(seen)


def test_the_users_list_runs_the_same_queries_for_3_or_30_more_accounts(
    web: TestClient, db: Database, world: World
) -> None:
    sign_in(web, db, world, "admin")
    with db.session() as session:
        # Sub-units (the authority walks up to the top agency) and stakeholders' accounts
        # (which the site administrator does not administer, so they are left out).
        from openpars.identity import service
        from openpars.identity.principal import SYSTEM
        from openpars.identity.roles import AgencyKind
        from openpars.identity.schemas import AgencyCreate

        unit = service.create_agency(
            session, actor=SYSTEM,
            data=AgencyCreate(name="East Division", kind=AgencyKind.POLICE,
                              parent_id=world.agencies["Philadelphia Police Department"]),
        )  # fmt: skip
        world.agencies["East Division"] = unit.id
        for n in range(3):
            add_user(session, world, f"east{n}", "East Division", [Role.INTAKE])
    small = statements_of(web, db, "/admin")
    with db.session() as session:
        for n in range(3, 33):
            agency = "East Division" if n % 2 else "First Judicial District"
            add_user(session, world, f"east{n}", agency, [Role.INTAKE, Role.READER])
    large = statements_of(web, db, "/admin")
    assert large == small
    page = web.get("/admin").text
    assert "east31" in page
    assert "east4<" not in page  # a court account: the courts administer their own
