"""Multi-factor logon and the banner, as an attacker would try to get around them (CJIS IA-2,
AC-7, AC-8): a password alone opens nothing, codes are single-use and guessing them locks."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.errors import Conflict
from openpars.identity import logon, mfa
from openpars.identity import mfa_crypto as crypto
from openpars.identity.models import LogonSession, RecoveryCode, User
from tests.factories import World, build_world, city_voter
from tests.identity.logons import (
    PASSWORD,
    bearer,
    current_code,
    enrol,
    forget_last_code,
    full_logon,
    give_password,
    post,
)


def actions(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all())


def audit_text(db: Database) -> str:
    with db.session() as session:
        rows = session.scalars(select(AuditEntry.content)).all()
        return "\n".join(bytes(row).decode() for row in rows)


def open_password_step(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/sessions", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def error_code(response) -> str:  # type: ignore[no-untyped-def]
    return str(response.json()["error"]["code"])


def test_enrolment_gives_a_qr_code_and_stores_the_secret_encrypted(
    client: TestClient, db: Database, world: World, settings: Settings
) -> None:
    give_password(db, world, "reader")
    token = open_password_step(client, "reader")["token"]
    started = post(client, "/sessions/current/mfa/enrolment", token)
    assert started.status_code == 201, started.text
    body = started.json()
    secret = body["secret"]
    assert len(base64.b32decode(secret)) == 20
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert "issuer=openpars" in body["otpauth_uri"]
    assert body["qr_svg"].startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert "</svg>" in body["qr_svg"] and "<script" not in body["qr_svg"]
    # Not enrolled until confirmed: the pending secret is not the account's secret.
    with db.session() as session:
        user = session.get(User, world.users["reader"])
        assert user is not None
        assert user.mfa_secret is None and user.mfa_pending_secret is not None
        assert secret not in user.mfa_pending_secret
    wrong = post(client, "/sessions/current/mfa/enrolment/confirm", token, {"code": "000000"})
    if current_code(secret) != "000000":
        assert wrong.status_code == 401
        assert error_code(wrong) == "code_wrong"
    done = post(
        client, "/sessions/current/mfa/enrolment/confirm", token, {"code": current_code(secret)}
    )
    assert done.status_code == 200, done.text
    codes = done.json()["recovery_codes"]
    assert len(codes) == 10 == len(set(codes))
    assert done.json()["stage"] == "banner"
    with db.session() as session:
        user = session.get(User, world.users["reader"])
        assert user is not None and user.mfa_secret is not None
        assert secret not in user.mfa_secret
        key = crypto.load_key(settings, may_create=False)
        assert crypto.decrypt(key, user.id, user.mfa_secret) == secret
        stored = session.scalars(select(RecoveryCode.code_hash)).all()
        assert len(stored) == 10
        assert not set(codes) & set(stored)
    # Neither the secret nor a recovery code is ever written to the audit log.
    text = audit_text(db)
    assert secret not in text
    assert not any(code in text for code in codes)
    assert {"mfa.enrol.start", "mfa.enrol"} <= set(actions(db))


def test_a_secret_moved_to_another_account_does_not_decrypt(
    db: Database, world: World, settings: Settings
) -> None:
    key = crypto.load_key(settings, may_create=True)
    stored = crypto.encrypt(key, world.users["reader"], crypto.new_secret())
    with pytest.raises(Conflict) as moved:
        crypto.decrypt(key, world.users["court"], stored)
    assert moved.value.code == "mfa_secret_unreadable"
    with pytest.raises(Conflict):
        crypto.decrypt(bytes(32), world.users["reader"], stored)


def test_a_pending_session_can_do_nothing_but_finish_the_logon(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "admin")
    token = open_password_step(client, "admin")["token"]
    me = client.get("/api/v1/users/me", headers=bearer(token))
    assert (me.status_code, error_code(me)) == (401, "logon_incomplete")
    assert me.json()["error"]["details"]["stage"] == "mfa_enrolment"
    # Minting an API token would skip the second factor for good: refused too.
    minted = post(client, f"/users/{world.users['admin']}/tokens", token, {"name": "sneaky"})
    assert (minted.status_code, error_code(minted)) == (401, "logon_incomplete")
    created = post(
        client,
        "/users",
        token,
        {"username": "mole", "display_name": "Mole", "agency_id": 1, "roles": ["reader"]},
    )
    assert error_code(created) == "logon_incomplete"
    # The banner cannot be acknowledged before the code.
    early = post(client, "/sessions/current/banner", token)
    assert (early.status_code, error_code(early)) == (409, "logon_step_out_of_order")
    enrol(client, token)
    me = client.get("/api/v1/users/me", headers=bearer(token))
    assert me.json()["error"]["details"]["stage"] == "banner"
    assert post(client, "/sessions/current/banner", token).status_code == 200
    assert client.get("/api/v1/users/me", headers=bearer(token)).status_code == 200
    ack = [a for a in actions(db) if a == "logon.banner"]
    assert len(ack) == 1
    assert logon.banner_digest(Settings().banner_text) in audit_text(db)


def test_an_unfinished_logon_expires_after_ten_minutes(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    token = open_password_step(client, "reader")["token"]
    with db.session() as session:
        session.execute(
            update(LogonSession).values(
                created_at=utcnow() - logon.PENDING_LIMIT - timedelta(seconds=1)
            )
        )
    late = post(client, "/sessions/current/mfa/enrolment", token)
    assert (late.status_code, error_code(late)) == (401, "session_expired")


def test_an_enrolled_account_needs_its_code_and_a_code_works_once(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    first = full_logon(client, db, world, "reader")
    token = open_password_step(client, "reader")["token"]
    assert client.get("/api/v1/users/me", headers=bearer(token)).json()["error"]["details"] == {
        "stage": "one_time_code"
    }
    # An enrolled account cannot enrol a new authenticator from a half-done logon.
    swap = post(client, "/sessions/current/mfa/enrolment", token)
    assert (swap.status_code, error_code(swap)) == (409, "logon_step_out_of_order")
    forget_last_code(db, world, "reader")
    code = current_code(first.totp)
    assert post(client, "/sessions/current/mfa", token, {"code": code}).status_code == 200
    # The same code again, in another logon within its window: refused and counted.
    other = open_password_step(client, "reader")["token"]
    replay = post(client, "/sessions/current/mfa", other, {"code": code})
    assert (replay.status_code, error_code(replay)) == (401, "code_wrong")
    assert "code_reused" in audit_text(db)
    with db.session() as session:
        user = session.get(User, world.users["reader"])
        assert user is not None and user.failed_logons == 1


def test_clock_drift_of_one_step_is_allowed_but_not_two(
    db: Database, world: World, settings: Settings
) -> None:
    secret = crypto.new_secret()
    now = utcnow()
    step = 30
    for offset, accepted in ((-2, False), (-1, True), (0, True), (1, True), (2, False)):
        code = crypto.code_at(secret, now + timedelta(seconds=offset * step))
        found = crypto.matching_step(secret, code, at=now)
        # Two steps may share a code by chance (one in a million); only check the clear cases.
        if found is not None and not accepted:
            assert crypto.code_at(secret, now + timedelta(seconds=offset * step)) in {
                crypto.code_at(secret, now + timedelta(seconds=o * step)) for o in (-1, 0, 1)
            }
        else:
            assert (found is not None) == accepted


def test_guessing_codes_locks_the_account(client: TestClient, db: Database, world: World) -> None:
    give_password(db, world, "reader")
    logged = full_logon(client, db, world, "reader")
    right = current_code(logged.totp)
    token = open_password_step(client, "reader")["token"]
    guesses = [f"{n:06d}" for n in range(200) if f"{n:06d}" != right][: logon.MAX_FAILED_LOGONS]
    for guess in guesses:
        answer = post(client, "/sessions/current/mfa", token, {"code": guess})
        assert answer.status_code == 401
    assert "account.lock" in actions(db)
    # Locked: the right code no longer helps, and the first session is dead too.
    forget_last_code(db, world, "reader")
    after = post(client, "/sessions/current/mfa", token, {"code": right})
    assert (after.status_code, error_code(after)) == (401, "account_disabled")
    assert client.get("/api/v1/users/me", headers=logged.auth).status_code == 401
    reasons = audit_text(db).count('"wrong_code"')
    assert reasons >= logon.MAX_FAILED_LOGONS


def test_recovery_codes_are_single_use_and_forgiving_of_typing(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    logged = full_logon(client, db, world, "reader")
    code = logged.recovery_codes[0]
    token = open_password_step(client, "reader")["token"]
    typed = code.upper().replace("-", " ")
    used = post(client, "/sessions/current/mfa", token, {"recovery_code": typed})
    assert used.status_code == 200, used.text
    assert used.json()["recovery_codes_left"] == 9
    again = open_password_step(client, "reader")["token"]
    reused = post(client, "/sessions/current/mfa", again, {"recovery_code": code})
    assert (reused.status_code, error_code(reused)) == (401, "code_wrong")
    both = post(
        client,
        "/sessions/current/mfa",
        again,
        {"recovery_code": logged.recovery_codes[1], "code": "123456"},
    )
    assert (both.status_code, error_code(both)) == (422, "one_code_required")
    assert "mfa.recovery_code.use" in actions(db)
    assert "wrong_recovery_code" in audit_text(db)


def test_another_accounts_recovery_code_does_not_open_this_one(
    client: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    give_password(db, world, "court")
    reader = full_logon(client, db, world, "reader")
    full_logon(client, db, world, "court")
    token = open_password_step(client, "court")["token"]
    stolen = post(
        client, "/sessions/current/mfa", token, {"recovery_code": reader.recovery_codes[0]}
    )
    assert (stolen.status_code, error_code(stolen)) == (401, "code_wrong")


def test_mfa_reset_follows_the_separation_of_duties(
    client: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        voter = city_voter(session, world)
    give_password(db, world, voter)
    full_logon(client, db, world, voter)
    token = open_password_step(client, voter)["token"]
    voter_id = world.users[voter]
    # The site administrator may not reset a stakeholder voter's second factor.
    refused = client.delete(f"/api/v1/users/{voter_id}/mfa", headers=world.auth("admin"))
    assert refused.status_code == 403
    assert error_code(refused) == "voting_rights_by_own_stakeholder"
    # Nor may another user, nor the voter through a half-done logon.
    assert (
        client.delete(f"/api/v1/users/{voter_id}/mfa", headers=world.auth("court")).status_code
        == 403
    )
    assert client.delete(f"/api/v1/users/{voter_id}/mfa", headers=bearer(token)).status_code == 401
    reset = client.delete(f"/api/v1/users/{voter_id}/mfa", headers=world.auth("city-admin"))
    assert reset.status_code == 200, reset.text
    assert reset.json()["mfa_enrolled"] is False
    assert "mfa.reset" in actions(db)
    # Its sessions ended; the next logon enrols again.
    gone = post(client, "/sessions/current/mfa", token, {"code": "123456"})
    assert error_code(gone) == "session_ended"
    assert open_password_step(client, voter)["stage"] == "mfa_enrolment"
    twice = client.delete(f"/api/v1/users/{voter_id}/mfa", headers=world.auth("city-admin"))
    assert error_code(twice) == "mfa_not_enrolled"


def test_a_lost_mfa_key_is_an_error_not_a_new_key(
    client: TestClient, db: Database, world: World, settings: Settings
) -> None:
    give_password(db, world, "reader")
    full_logon(client, db, world, "reader")
    crypto.key_path(settings).unlink()
    token = open_password_step(client, "reader")["token"]
    answer = post(client, "/sessions/current/mfa", token, {"code": "123456"})
    assert (answer.status_code, error_code(answer)) == (409, "mfa_key_missing")
    assert not crypto.key_path(settings).exists()
    crypto.key_path(settings).write_text(base64.b64encode(bytes(16)).decode())
    short = post(client, "/sessions/current/mfa", token, {"code": "123456"})
    assert error_code(short) == "mfa_key_invalid"


def test_a_token_has_no_logon_steps(client: TestClient, world: World) -> None:
    answer = client.get("/api/v1/sessions/current", headers=world.auth("reader"))
    assert (answer.status_code, error_code(answer)) == (409, "not_a_session")


def test_the_banner_text_is_a_setting(
    db: Database, world: World, settings: Settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from openpars.web.app import create_app

    custom = Settings(
        database_url=settings.database_url,
        banner_text="Authorised use only: this county system is monitored and audited.",
    )
    give_password(db, world, "reader")
    with TestClient(create_app(custom, database=db)) as client:
        opened = client.post("/api/v1/sessions", json={"username": "reader", "password": PASSWORD})
        assert opened.json()["banner"] == custom.banner_text
    with pytest.raises(ValueError):
        Settings(banner_text="too short")


def test_two_logons_racing_with_the_same_code_let_one_in(
    fresh_db: Database, settings: Settings
) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    give_password(fresh_db, world, "reader")
    key = crypto.load_key(settings, may_create=True)
    secret = crypto.new_secret()
    with fresh_db.session() as session:
        user = session.get(User, world.users["reader"])
        assert user is not None
        user.mfa_secret = crypto.encrypt(key, user.id, secret)
        user.mfa_enrolled_at = utcnow()
    opened = []
    for _ in range(2):
        with fresh_db.session() as session:
            outcome = logon.logon(
                session, username="reader", password=PASSWORD, source_ip=None, user_agent=None
            )
            assert outcome.logon_session is not None
            opened.append(outcome.logon_session.id)
    code = crypto.code_at(secret, utcnow())
    barrier = threading.Barrier(2)
    results: list[str] = []

    def prove(session_id: int) -> None:
        barrier.wait()
        with fresh_db.session() as session:
            found = session.get(LogonSession, session_id)
            assert found is not None
            refusal = mfa.verify_logon(
                session, logon_session=found, key=key, code=code, recovery_code=None,
                source_ip=None,
            )  # fmt: skip
            results.append("in" if refusal is None else "refused")

    threads = [threading.Thread(target=prove, args=(sid,)) for sid in opened]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["in", "refused"]
