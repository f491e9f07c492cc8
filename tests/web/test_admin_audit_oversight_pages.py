"""The audit, administration and oversight pages as an attacker would try them: a user without
the permission, another stakeholder's account, bad fields, a stale form, a forged CSRF token;
each refusal a page, nothing written, and audited (docs/web.md). Chromium drives the same pages
in tests/browser/test_admin_audit_oversight.py."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.identity import service
from openpars.identity.models import LogonSession, User
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import Role
from openpars.identity.schemas import UserCreate
from openpars.oversight.models import Case, CaseState, Flag
from openpars.web.app import create_app
from openpars.web.pages import admin as admin_pages
from tests.factories import World, city_voter
from tests.web.logon_steps import finish_logon_as
from tests.web.test_pages import PASSWORD, count_entries, entries, give_password, log_in


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The app over TLS (the session cookie is Secure), not following redirects."""
    app = create_app(settings, database=db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def add_user(db: Database, world: World, username: str, agency: str, roles: list[Role]) -> int:
    with db.session() as session:
        user = service.create_user(
            session,
            actor=SYSTEM,
            data=UserCreate(
                username=username,
                display_name=username.title(),
                agency_id=world.agencies[agency],
                roles=roles,
            ),
        )
        world.users[username] = user.id
    give_password(db, world, username)
    return world.users[username]


def signed_in(web: TestClient, db: Database, world: World, username: str) -> str:
    """Log ``username`` in; the CSRF token of its pages."""
    if username not in world.users:
        raise KeyError(username)
    give_password(db, world, username)
    assert log_in(web, username).status_code == 303
    finish_logon_as(web, db, username)
    home = web.get("/")
    assert home.status_code == 200
    match = re.search(r'name="csrf-token" content="([^"]+)"', home.text)
    assert match
    return match.group(1)


def lock(db: Database, user_id: int) -> None:
    with db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        user.locked_at = utcnow()
        user.failed_logons = 5


def open_case(db: Database, subject_user_id: int) -> int:
    """A flag about the user, grouped into an open case by the review queue."""
    with db.session() as session:
        session.add(
            Flag(
                detector="volume", dedupe_key=f"test:{subject_user_id}", rule="over 200 reads",
                threshold=200.0, subject_user_id=subject_user_id, raised_at=utcnow(),
            )
        )  # fmt: skip
    from openpars.oversight import review

    with db.session() as session:
        review.group_flags(session)
    with db.session() as session:
        return session.scalars(select(Case.id).order_by(Case.id.desc())).first() or 0


# --- administration ---------------------------------------------------------------------


def test_a_user_without_user_manage_sees_no_link_and_is_refused_audited(
    web: TestClient, db: Database, world: World
) -> None:
    signed_in(web, db, world, "reader")
    home = web.get("/").text
    assert 'href="/admin"' not in home
    assert 'href="/oversight"' not in home
    before = count_entries(db)
    for path in ("/admin", f"/admin/users/{world.users['court']}", "/admin/agencies",
                 "/oversight", "/audit/entries", "/audit/export"):  # fmt: skip
        answer = web.get(path)
        assert answer.status_code == 403, path
        assert "<main" in answer.text
    assert count_entries(db) == before + 6
    assert entries(db)[-1][1:] == ("refused", "permission_denied")


def test_an_admin_unlocks_a_locked_user_and_ends_its_session(
    web: TestClient, db: Database, world: World
) -> None:
    pretrial = world.users["pretrial"]
    give_password(db, world, "pretrial")
    other = TestClient(web.app, base_url="https://testserver", follow_redirects=False)
    assert log_in(other, "pretrial").status_code == 303
    lock(db, pretrial)
    token = signed_in(web, db, world, "admin")
    assert 'href="/admin"' in web.get("/").text
    page = web.get(f"/admin/users/{pretrial}")
    assert "locked" in page.text
    answer = web.post(f"/admin/users/{pretrial}/unlock", data={"csrf_token": token})
    assert answer.status_code == 303
    assert "unlocked" in web.get(answer.headers["location"]).text
    with db.session() as session:
        user = session.get(User, pretrial)
        assert user is not None
        assert user.locked_at is None
        assert user.failed_logons == 0
        opened = session.scalars(select(LogonSession).where(LogonSession.user_id == pretrial)).one()
        opened_id = opened.id
    # Unlocking again (a stale form: the account was released since the page was shown).
    again = web.post(f"/admin/users/{pretrial}/unlock", data={"csrf_token": token})
    assert again.status_code == 409
    assert "is not locked" in again.text
    # Shown beside the form, and audited as the API's refusal is.
    assert (f"POST /admin/users/{pretrial}/unlock", "refused", "not_locked") in entries(db)
    ended = web.post(f"/admin/sessions/{opened_id}/end", data={"csrf_token": token})
    assert ended.status_code == 303
    with db.session() as session:
        found = session.get(LogonSession, opened_id)
        assert found is not None
        assert found.end_reason == "ended_by_admin"
    assert other.get("/").status_code == 303  # pretrial's browser is logged out
    actions = [a for a, _, _ in entries(db)]
    assert "account.unlock" in actions
    assert "session.end" in actions


@pytest.mark.parametrize("token", [None, "forged"])
def test_an_unlock_without_its_form_token_is_refused_and_audited(
    web: TestClient, db: Database, world: World, token: str | None
) -> None:
    lock(db, world.users["pretrial"])
    signed_in(web, db, world, "admin")
    answer = web.post(
        f"/admin/users/{world.users['pretrial']}/unlock",
        data={} if token is None else {"csrf_token": token},
    )
    assert answer.status_code == 403
    with db.session() as session:
        user = session.get(User, world.users["pretrial"])
        assert user is not None
        assert user.locked_at is not None  # nothing written
    assert entries(db)[-1][1:] == ("refused", "csrf_failed")


def test_the_site_admin_cannot_touch_a_stakeholders_accounts(
    web: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        voter = city_voter(session, world)
    token = signed_in(web, db, world, "admin")
    # The courts are a stakeholder of the board: their own administrator runs their accounts.
    target = world.users["court"]
    voting = web.post(f"/admin/users/{world.users[voter]}/unlock", data={"csrf_token": token})
    assert voting.status_code == 403
    assert entries(db)[-1][1:] == ("refused", "voting_rights_by_own_stakeholder")
    for answer in (
        web.get(f"/admin/users/{target}"),
        web.post(f"/admin/users/{target}/password",
                 data={"csrf_token": token, "new_password": "a brand new passphrase 42"}),
    ):  # fmt: skip
        assert answer.status_code == 403
        assert "stakeholder administrator" in answer.text
    assert entries(db)[-1][1:] == ("refused", "other_stakeholder_account")


def test_a_user_form_with_bad_fields_is_shown_again_and_nothing_written(
    web: TestClient, db: Database, world: World
) -> None:
    token = signed_in(web, db, world, "admin")
    with db.session() as session:
        users_before = len(session.scalars(select(User.id)).all())
    answer = web.post(
        "/admin/users",
        data={"csrf_token": token, "username": "Bad Name!", "display_name": "Someone",
              "agency_id": str(world.agencies["Defender Association"])},
    )  # fmt: skip
    assert answer.status_code == 422
    assert 'id="username-error"' in answer.text
    assert 'id="roles-error"' in answer.text
    assert 'value="Someone"' in answer.text  # what was typed is kept
    # Roles that exclude each other: refused by the service, beside the roles.
    answer = web.post(
        "/admin/users",
        data={"csrf_token": token, "username": "mixed", "display_name": "Mixed",
              "agency_id": str(world.agencies["City of Philadelphia"]),
              "roles": ["admin", "auditor"]},
    )  # fmt: skip
    assert answer.status_code == 422
    assert "exclude each other" in answer.text
    assert 'id="role-auditor" name="roles" value="auditor" checked' in answer.text
    with db.session() as session:
        assert len(session.scalars(select(User.id)).all()) == users_before


def test_an_admin_creates_a_user_resets_its_password_and_sets_its_profile(
    web: TestClient, db: Database, world: World
) -> None:
    token = signed_in(web, db, world, "admin")
    answer = web.post(
        "/admin/users",
        data={"csrf_token": token, "username": "new.reader", "display_name": "New Reader",
              "agency_id": str(world.agencies["Defender Association"]), "roles": "reader"},
    )  # fmt: skip
    assert answer.status_code == 303
    with db.session() as session:
        user = session.scalars(select(User).where(User.username == "new.reader")).one()
        user_id = user.id
        assert user.roles == frozenset({Role.READER})
    short = web.post(
        f"/admin/users/{user_id}/password", data={"csrf_token": token, "new_password": "short"}
    )
    assert short.status_code == 422
    assert 'id="new_password-error"' in short.text
    done = web.post(
        f"/admin/users/{user_id}/password",
        data={"csrf_token": token, "new_password": "a brand new passphrase 42"},
    )
    assert done.status_code == 303
    profile = web.post(
        f"/admin/users/{user_id}/profile",
        data={"csrf_token": token, "family_name": "Doe", "address": "1 Main St"},
    )
    assert profile.status_code == 303
    with db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        assert user.must_change_password
        assert (user.family_name, user.address) == ("Doe", "1 Main St")
    nul = web.post(
        f"/admin/users/{user_id}/profile",
        data={"csrf_token": token, "family_name": "Do\x00e"},
    )
    assert nul.status_code == 422
    assert 'id="family_name-error"' in nul.text
    with db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        assert user.family_name == "Doe"
    actions = [a for a, _, _ in entries(db)]
    for action in ("user.create", "user.password.reset", "user.profile"):
        assert action in actions


def test_agencies_and_witnesses_pages(web: TestClient, db: Database, world: World) -> None:
    token = signed_in(web, db, world, "admin")
    assert "Defender Association" in web.get("/admin/agencies").text
    bad = web.post("/admin/agencies", data={"csrf_token": token, "name": "X Unit", "ori": "bad"})
    assert bad.status_code == 422
    assert 'id="kind-error"' in bad.text
    assert 'id="ori-error"' in bad.text
    taken = web.post(
        "/admin/agencies",
        data={"csrf_token": token, "name": "Defender Association", "kind": "defender"},
    )
    assert taken.status_code == 422
    assert "already exists" in taken.text
    made = web.post(
        "/admin/agencies", data={"csrf_token": token, "name": "Records Unit", "kind": "police"}
    )
    assert made.status_code == 303
    assert "Records Unit" in web.get("/admin/agencies").text
    assert "signed votes" in web.get("/admin/witnesses").text


def logon_entry(db: Database, user_id: int) -> int:
    """The id of the user's newest logon entry."""
    with db.session() as session:
        found = session.scalars(
            select(AuditEntry.id)
            .where(AuditEntry.action == "logon", AuditEntry.user_id == user_id)
            .order_by(AuditEntry.id.desc())
        ).first()
    assert found is not None
    return found


# --- audit ------------------------------------------------------------------------------


def test_a_user_sees_the_proof_of_its_own_entry_and_not_anothers(
    web: TestClient, db: Database, world: World
) -> None:
    from openpars.audit import checkpoints, log

    signed_in(web, db, world, "reader")
    own = logon_entry(db, world.users["reader"])
    signed_other = TestClient(web.app, base_url="https://testserver", follow_redirects=False)
    give_password(db, world, "court")
    assert log_in(signed_other, "court").status_code == 303
    court_logon = logon_entry(db, world.users["court"])
    log.integrate_all(db)
    with db.session() as session:
        checkpoints.publish(session, settings=web.app.state.settings)
    overview = web.get("/audit")
    assert overview.status_code == 200
    assert "Latest checkpoint" in overview.text
    assert f'href="/audit/proof?entry_id={own}"' in overview.text
    assert f'href="/audit/proof?entry_id={court_logon}"' not in overview.text
    assert entries(db)[-1][0] == "audit.own_entries"
    page = web.get(f"/audit/proof?entry_id={own}")
    assert page.status_code == 200, page.text
    assert 'id="leaf-index"' in page.text
    refused = web.get(f"/audit/proof?entry_id={court_logon}")
    assert refused.status_code == 404  # another's entry answers as a missing one
    assert entries(db)[-1][1:] == ("refused", "not_found")
    download = web.get(f"/audit/receipts/{own}")
    assert download.status_code == 200
    assert download.json()["format"] == "openpars-receipt/v1"
    assert "attachment" in download.headers["content-disposition"]


# --- oversight --------------------------------------------------------------------------


def test_a_reviewer_closes_a_case_and_a_stale_close_is_refused(
    web: TestClient, db: Database, world: World
) -> None:
    add_user(db, world, "watcher", "City of Philadelphia", [Role.OVERSIGHT])
    case_id = open_case(db, world.users["reader"])
    token = signed_in(web, db, world, "watcher")
    assert 'href="/oversight"' in web.get("/").text
    assert f"/oversight/cases/{case_id}" in web.get("/oversight").text
    before = count_entries(db)
    bad = web.post(f"/oversight/cases/{case_id}/close", data={"csrf_token": token})
    assert bad.status_code == 422
    assert 'id="close_finding-error"' in bad.text
    # A field the schema refused (a typing mistake) is not audited, as the API's 422 is not.
    assert count_entries(db) == before + 1  # the case page shown again is a read, audited
    assert entries(db)[-1][1] == "ok"
    wrong = web.post(
        f"/oversight/cases/{case_id}/assign", data={"csrf_token": token, "assignee": "reader"}
    )
    assert wrong.status_code == 422
    assert "oversight role" in wrong.text
    # The service's refusal is.
    assert (f"POST /oversight/cases/{case_id}/assign", "refused", "invalid_input") in entries(db)
    done = web.post(
        f"/oversight/cases/{case_id}/close",
        data={"csrf_token": token, "finding": "training", "note": "talked to them"},
    )
    assert done.status_code == 303
    with db.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.state is CaseState.CLOSED
    stale = web.post(
        f"/oversight/cases/{case_id}/close",
        data={"csrf_token": token, "finding": "sanction", "note": "again"},
    )
    assert stale.status_code == 409
    assert "is closed" in stale.text
    assert (f"POST /oversight/cases/{case_id}/close", "refused", "case_closed") in entries(db)[-3:]
    with db.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.finding is not None
        assert case.finding.value == "training"
    assert "oversight.case.close" in [a for a, _, _ in entries(db)]


def test_a_reviewer_cannot_act_on_a_case_about_itself(
    web: TestClient, db: Database, world: World
) -> None:
    watcher = add_user(db, world, "watcher", "City of Philadelphia", [Role.OVERSIGHT])
    case_id = open_case(db, watcher)
    token = signed_in(web, db, world, "watcher")
    assert "another reviewer must act" in web.get(f"/oversight/cases/{case_id}").text
    answer = web.post(
        f"/oversight/cases/{case_id}/close", data={"csrf_token": token, "finding": "no_issue"}
    )
    assert answer.status_code == 403
    assert entries(db)[-1][1:] == ("refused", "own_case")


__all__ = ["PASSWORD"]


def test_the_export_form_refuses_a_bad_number_beside_its_field(
    web: TestClient, db: Database, world: World
) -> None:
    add_user(db, world, "auditor", "Defender Association", [Role.AUDITOR])
    signed_in(web, db, world, "auditor")
    for bad in ("-1", "ten", "9" * 20):
        answer = web.get(f"/audit/export?start=0&end={bad}")
        assert answer.status_code == 422
        assert "End: enter a whole number" in answer.text
    assert entries(db)[-1][1:] == ("refused", "invalid_input")


def test_the_user_list_shows_only_the_accounts_one_administers(
    web: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        city_voter(session, world)
    give_password(db, world, "city-admin")
    signed_in(web, db, world, "city-admin")
    listed = web.get("/admin").text
    assert "/admin/users/{}".format(world.users["city-voter"]) in listed
    assert '/admin/users/{}"'.format(world.users["intake"]) not in listed
    web.cookies.clear()
    signed_in(web, db, world, "admin")
    listed = web.get("/admin").text
    assert '/admin/users/{}"'.format(world.users["intake"]) in listed
    assert '/admin/users/{}"'.format(world.users["city-voter"]) not in listed
    assert '/admin/users/{}"'.format(world.users["court"]) not in listed


def test_a_forged_token_or_a_user_without_the_role_cannot_close_a_case(
    web: TestClient, db: Database, world: World
) -> None:
    add_user(db, world, "watcher", "City of Philadelphia", [Role.OVERSIGHT])
    case_id = open_case(db, world.users["intake"])
    signed_in(web, db, world, "watcher")
    forged = web.post(
        f"/oversight/cases/{case_id}/close", data={"csrf_token": "forged", "finding": "sanction"}
    )
    assert forged.status_code == 403
    assert entries(db)[-1][1:] == ("refused", "csrf_failed")
    web.cookies.clear()
    token = signed_in(web, db, world, "reader")
    refused = web.post(
        f"/oversight/cases/{case_id}/close", data={"csrf_token": token, "finding": "sanction"}
    )
    assert refused.status_code == 403
    assert entries(db)[-1][1:] == ("refused", "permission_denied")
    with db.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.state is CaseState.OPEN  # nothing written


def test_the_user_list_pages_back_and_forth_by_its_page_size(
    web: TestClient, db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both links step by the page's size (admin.PAGE_SIZE), never a number of the template's."""
    monkeypatch.setattr(admin_pages, "PAGE_SIZE", 3)
    give_password(db, world, "admin")
    signed_in(web, db, world, "admin")
    listed = web.get("/admin", params={"offset": 5}).text
    assert 'href="/admin?offset=2">Previous users' in listed
    assert 'href="/admin?offset=8">More users' in listed
    first = web.get("/admin", params={"offset": 2}).text
    assert 'href="/admin?offset=0">Previous users' in first
    assert "Previous users" not in web.get("/admin").text
