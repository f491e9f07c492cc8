"""Passwords: Argon2id at rest, the length and compromised-list rules, change and reset."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database
from openpars.errors import InvalidInput
from openpars.identity import passwords, service
from openpars.identity.models import User
from openpars.identity.principal import SYSTEM
from tests.factories import World, city_voter

GOOD = "correct horse battery staple"
OTHER = "violet-tugboat-marmalade-42"


def stored(db: Database, user_id: int) -> User:
    with db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        session.expunge(user)
        return user


def audit_text(db: Database) -> str:
    """Every audit entry's content, joined: what an auditor (or a thief of the log) can read."""
    with db.session() as session:
        rows = session.scalars(select(AuditEntry.content)).all()
        return "\n".join(bytes(row).decode() for row in rows)


def last_action(db: Database) -> str:
    with db.session() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert entry is not None
        return entry.action


# ---- the rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short-pw-1", "password_too_short"),  # 10 characters
        ("x" * 257, "password_too_long"),
        (" leading space ok?", "password_whitespace"),
        ("abababababababab", "password_repetitive"),
        ("qwerty123456", "password_compromised"),
        ("Q1W2E3R4T5Y6", "password_compromised"),  # the list is compared in lower case
        ("my-name-is-Reader-2026", "password_contains_username"),
    ],
)
def test_policy_refuses_with_the_field_and_the_rule(password: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        passwords.check_policy(password, username="reader", min_length=12)
    assert caught.value.code == code
    assert caught.value.field == "new_password"


def test_policy_accepts_a_long_uncommon_passphrase() -> None:
    passwords.check_policy(GOOD, username="reader", min_length=12)


def test_the_shipped_list_is_real_and_loaded_offline() -> None:
    listed = passwords.compromised_passwords()
    assert len(listed) > 19_000
    assert {"123456", "password", "qwerty", "1qaz2wsx3edc"} <= listed


def test_minimum_length_setting_never_goes_below_cjis() -> None:
    assert Settings(password_min_length=8).password_min_length == 8
    with pytest.raises(ValueError, match="password_min_length"):
        Settings(password_min_length=7)


def test_hash_is_argon2id_salted_and_verifies() -> None:
    first, second = passwords.hash_password(GOOD), passwords.hash_password(GOOD)
    assert first.startswith("$argon2id$")
    assert first != second  # a random salt each time
    assert GOOD not in first
    assert passwords.verify_password(first, GOOD)
    assert not passwords.verify_password(first, GOOD.upper())
    assert not passwords.verify_password("not a hash", GOOD)
    assert not passwords.needs_rehash(first)


# ---- change and reset through the API ------------------------------------------------------


def test_admin_reset_forces_a_change_and_is_audited_without_the_password(
    client: TestClient, db: Database, world: World
) -> None:
    reader = world.users["reader"]
    response = client.put(
        f"/api/v1/users/{reader}/password",
        json={"new_password": GOOD},
        headers=world.auth("admin"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["must_change_password"] is True
    assert GOOD not in response.text
    user = stored(db, reader)
    assert user.password_hash is not None
    assert passwords.verify_password(user.password_hash, GOOD)
    assert user.must_change_password
    assert last_action(db) == "user.password.reset"
    assert GOOD not in audit_text(db)


def test_own_change_needs_the_current_password(
    client: TestClient, db: Database, world: World
) -> None:
    reader = world.users["reader"]
    url = f"/api/v1/users/{reader}/password"
    client.put(url, json={"new_password": GOOD}, headers=world.auth("admin"))

    missing = client.put(url, json={"new_password": OTHER}, headers=world.auth("reader"))
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "current_password"

    wrong = client.put(
        url,
        json={"new_password": OTHER, "current_password": "not my password at all"},
        headers=world.auth("reader"),
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "current_password_wrong"
    user = stored(db, reader)
    assert user.password_hash is not None
    assert passwords.verify_password(user.password_hash, GOOD)

    same = client.put(
        url, json={"new_password": GOOD, "current_password": GOOD}, headers=world.auth("reader")
    )
    assert same.json()["error"]["code"] == "password_reused"

    changed = client.put(
        url, json={"new_password": OTHER, "current_password": GOOD}, headers=world.auth("reader")
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["must_change_password"] is False
    user = stored(db, reader)
    assert user.password_hash is not None
    assert passwords.verify_password(user.password_hash, OTHER)
    assert not passwords.verify_password(user.password_hash, GOOD)
    assert last_action(db) == "user.password.change"
    assert OTHER not in audit_text(db)
    assert GOOD not in audit_text(db)


def test_a_compromised_password_is_refused_and_nothing_written(
    client: TestClient, db: Database, world: World
) -> None:
    response = client.put(
        f"/api/v1/users/{world.users['reader']}/password",
        json={"new_password": "1q2w3e4r5t6y"},
        headers=world.auth("admin"),
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "password_compromised"
    assert response.json()["error"]["field"] == "new_password"
    assert stored(db, world.users["reader"]).password_hash is None


def test_attacker_without_user_manage_cannot_reset_anyone(
    client: TestClient, db: Database, world: World
) -> None:
    for victim in ("admin", "court"):
        response = client.put(
            f"/api/v1/users/{world.users[victim]}/password",
            json={"new_password": GOOD},
            headers=world.auth("reader"),
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
        assert stored(db, world.users[victim]).password_hash is None


def test_site_admin_cannot_take_over_a_stakeholders_voter(
    client: TestClient, db: Database, world: World
) -> None:
    # Separation of duties: resetting a voter's password would let the site administrator vote
    # in the stakeholder's name; only the stakeholder's own administrator may.
    with db.session() as session:
        voter = city_voter(session, world)
    response = client.put(
        f"/api/v1/users/{world.users[voter]}/password",
        json={"new_password": GOOD},
        headers=world.auth("admin"),
    )
    assert response.status_code == 403
    assert stored(db, world.users[voter]).password_hash is None
    allowed = client.put(
        f"/api/v1/users/{world.users[voter]}/password",
        json={"new_password": GOOD},
        headers=world.auth("city-admin"),
    )
    assert allowed.status_code == 200, allowed.text


def test_password_body_is_checked_after_the_caller(client: TestClient, world: World) -> None:
    response = client.put(
        f"/api/v1/users/{world.users['reader']}/password", json={"new_password": GOOD}
    )
    assert response.status_code == 401


def test_console_bootstrap_may_skip_the_forced_change(db: Database, world: World) -> None:
    with db.session() as session:
        user = service.set_password(
            session,
            actor=SYSTEM,
            user_id=world.users["court"],
            new_password=GOOD,
            force_change=False,
        )
        assert not user.must_change_password
