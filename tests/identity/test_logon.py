"""Logon sessions, lockout and logoff, as the attacker would try them (CJIS AC-7, AC-11, IA-11)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.audit.models import AuditEntry
from openpars.db import Database, utcnow
from openpars.errors import NotAuthenticated
from openpars.identity import logon
from openpars.identity.models import LogonSession, User
from tests.factories import World
from tests.identity.logons import PASSWORD, enrol, full_logon, give_password, post

NEW = "violet-tugboat-marmalade-42"


def log_on(client: TestClient, username: str, password: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/sessions", json={"username": username, "password": password, **extra}
    )


def actions(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all())


def audit_text(db: Database) -> str:
    with db.session() as session:
        rows = session.scalars(select(AuditEntry.content)).all()
        return "\n".join(bytes(row).decode() for row in rows)


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{logon.COOKIE_NAME}={token}"}


def test_logon_sets_a_strict_cookie_usable_as_bearer_too(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    response = log_on(client, "reader", PASSWORD)
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    assert token.startswith(logon.SESSION_PREFIX)
    set_cookie = response.headers["set-cookie"].lower()
    for attribute in ("httponly", "secure", "samesite=strict", "max-age=43200", "path=/"):
        assert attribute in set_cookie
    # The password alone opens nothing: the logon needs its code (here: enrolment) and banner.
    assert response.json()["stage"] == "mfa_enrolment"
    pending = client.get("/api/v1/users/me", headers=cookie(token))
    assert pending.status_code == 401
    assert pending.json()["error"]["code"] == "logon_incomplete"
    enrol(client, token)
    assert post(client, "/sessions/current/banner", token).json()["stage"] == "active"
    for headers in ({"Authorization": f"Bearer {token}"}, cookie(token)):
        me = client.get("/api/v1/users/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "reader"
    with db.session() as session:
        row = session.scalars(select(LogonSession)).one()
        assert row.secret_hash == logon.hash_secret(token)
        assert token not in row.secret_hash
    assert "logon" in actions(db)
    assert PASSWORD not in audit_text(db)
    assert token not in audit_text(db)


def test_unknown_user_and_wrong_password_answer_the_same(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    wrong = log_on(client, "reader", "not the password at all")
    unknown = log_on(client, "nobody-here", "not the password at all")
    no_password = log_on(client, "court", "not the password at all")
    assert wrong.status_code == unknown.status_code == no_password.status_code == 401
    bodies = [r.json()["error"] for r in (wrong, unknown, no_password)]
    for body in bodies:
        body.pop("audit_entry", None)
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["code"] == "logon_failed"
    assert actions(db).count("logon.failed") == 3


def test_brute_force_locks_and_the_right_password_then_fails(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    for attempt in range(logon.MAX_FAILED_LOGONS):
        assert log_on(client, "reader", f"guess number {attempt}!").status_code == 401
    assert "account.lock" in actions(db)
    locked = log_on(client, "reader", PASSWORD)
    assert locked.status_code == 401
    assert locked.json()["error"]["code"] == "logon_failed"
    # The attacker cannot unlock; an administrator can.
    reader_id = world.users["reader"]
    refused = client.post(f"/api/v1/users/{reader_id}/unlock", headers=world.auth("court"))
    assert refused.status_code == 403
    unlocked = client.post(f"/api/v1/users/{reader_id}/unlock", headers=world.auth("admin"))
    assert unlocked.status_code == 200, unlocked.text
    assert "account.unlock" in actions(db)
    assert log_on(client, "reader", PASSWORD).status_code == 201


def test_a_lock_kills_open_sessions(client: TestClient, db: Database, world: World) -> None:
    give_password(db, world, "reader")
    token = full_logon(client, db, world, "reader").token
    assert client.get("/api/v1/users/me", headers=cookie(token)).status_code == 200
    for attempt in range(logon.MAX_FAILED_LOGONS):
        log_on(client, "reader", f"guess number {attempt}!")
    response = client.get("/api/v1/users/me", headers=cookie(token))
    assert response.status_code == 401


def test_failures_spread_beyond_the_window_do_not_lock(db: Database, world: World) -> None:
    give_password(db, world, "reader")
    start = utcnow() - timedelta(hours=1)
    with db.session() as session:
        for i in range(logon.MAX_FAILED_LOGONS - 1):
            logon.logon(
                session,
                username="reader",
                password="wrong wrong wrong",
                source_ip=None,
                user_agent=None,
                now=start + timedelta(minutes=i),
            )
        late = logon.logon(
            session,
            username="reader",
            password="wrong wrong wrong",
            source_ip=None,
            user_agent=None,
            now=start + timedelta(minutes=16),
        )
        assert not late.locked_now
        user = session.get(User, world.users["reader"])
        assert user is not None
        assert user.locked_at is None
        assert user.failed_logons == 1


def test_a_stolen_cookie_is_dead_after_logoff(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    token = log_on(client, "reader", PASSWORD).json()["token"]
    ended = client.delete("/api/v1/sessions/current", headers=cookie(token))
    assert ended.status_code == 200, ended.text
    assert ended.json()["end_reason"] == "logoff"
    assert "session.end" in actions(db)
    for headers in (cookie(token), {"Authorization": f"Bearer {token}"}):
        response = client.get("/api/v1/users/me", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "session_ended"


def test_idle_and_absolute_limits(db: Database, world: World) -> None:
    give_password(db, world, "reader")
    with db.session() as session:
        opened = logon.logon(
            session, username="reader", password=PASSWORD, source_ip=None, user_agent=None
        )
        secret = opened.secret
        # The code and banner steps done (tests/identity/test_mfa.py covers them).
        assert opened.logon_session is not None
        opened.logon_session.mfa_at = opened.logon_session.banner_at = utcnow()
    assert secret is not None
    now = utcnow()
    with db.session() as session:
        logon.authenticate_session(session, secret, now=now + timedelta(minutes=29))
    with db.session() as session, pytest.raises(NotAuthenticated) as idle:
        logon.authenticate_session(session, secret, now=now + timedelta(minutes=29 + 31))
    assert idle.value.code == "session_idle"
    # Kept busy every 20 minutes, the session still ends after 12 hours.
    moment = now + timedelta(minutes=29)
    while moment + timedelta(minutes=20) < now + timedelta(hours=11, minutes=50):
        moment += timedelta(minutes=20)
        with db.session() as session:
            logon.authenticate_session(session, secret, now=moment)
    with db.session() as session, pytest.raises(NotAuthenticated) as absolute:
        logon.authenticate_session(session, secret, now=now + timedelta(hours=12, minutes=5))
    assert absolute.value.code == "session_expired"


def test_a_reset_password_must_be_replaced_at_logon(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader", force=True)
    refused = log_on(client, "reader", PASSWORD)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "password_change_required"
    weak = log_on(client, "reader", PASSWORD, new_password="qwerty123456")
    assert weak.json()["error"]["code"] == "password_compromised"
    changed = log_on(client, "reader", PASSWORD, new_password=NEW)
    assert changed.status_code == 201, changed.text
    assert log_on(client, "reader", PASSWORD).status_code == 401
    assert log_on(client, "reader", NEW).status_code == 201


def test_sessions_listed_and_ended_by_user_or_administrator_only(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    token = full_logon(client, db, world, "reader").token
    reader_id = world.users["reader"]
    own = client.get(f"/api/v1/users/{reader_id}/sessions", headers=cookie(token))
    assert own.status_code == 200
    assert own.json()["total"] == 1
    session_id = own.json()["items"][0]["id"]
    # Another agency's non-administrator sees nothing and cannot end it.
    outsider = client.get(f"/api/v1/users/{reader_id}/sessions", headers=world.auth("court"))
    assert outsider.status_code == 403
    assert (
        client.delete(f"/api/v1/sessions/{session_id}", headers=world.auth("court")).status_code
        == 404
    )
    assert client.get("/api/v1/users/me", headers=cookie(token)).status_code == 200
    ended = client.delete(f"/api/v1/sessions/{session_id}", headers=world.auth("admin"))
    assert ended.status_code == 200, ended.text
    assert ended.json()["end_reason"] == "ended_by_admin"
    assert client.get("/api/v1/users/me", headers=cookie(token)).status_code == 401


def test_logoff_with_an_api_token_is_refused_plainly(client: TestClient, world: World) -> None:
    response = client.delete("/api/v1/sessions/current", headers=world.auth("reader"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_a_session"
    assert client.get("/api/v1/users/me", headers=world.auth("reader")).status_code == 200


def test_an_administrators_reset_ends_the_users_sessions(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    token = log_on(client, "reader", PASSWORD).json()["token"]
    reset = client.put(
        f"/api/v1/users/{world.users['reader']}/password",
        json={"new_password": NEW},
        headers=world.auth("admin"),
    )
    assert reset.status_code == 200, reset.text
    response = client.get("/api/v1/users/me", headers=cookie(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_ended"
