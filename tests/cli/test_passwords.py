"""``openpars user password``: checked, hashed, audited; never echoed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from openpars.cli import app
from openpars.db import Database, make_engine
from openpars.identity import passwords
from openpars.identity.models import User
from tests.cli.conftest import audit_count, last_entry
from tests.cli.test_accounts import setup_site

GOOD = "correct horse battery staple"


def stored_hash(url: str, username: str) -> tuple[str | None, bool]:
    database = Database(make_engine(url))
    try:
        with database.session() as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            return user.password_hash, user.must_change_password
    finally:
        database.bind.engine.dispose()


def test_password_from_stdin_is_hashed_and_audited(runner: CliRunner, db_url: str) -> None:
    setup_site(runner, db_url)
    before = audit_count(db_url)
    result = runner.invoke(
        app, ["user", "password", "booking", "--stdin", "--db", db_url], input=GOOD + "\n"
    )
    assert result.exit_code == 0, result.stderr
    assert "must be changed at the next logon" in result.stdout
    assert GOOD not in result.stdout + result.stderr
    hashed, must_change = stored_hash(db_url, "booking")
    assert hashed is not None
    assert passwords.verify_password(hashed, GOOD)
    assert must_change
    assert audit_count(db_url) == before + 1
    kind, action, _, params = last_entry(db_url)
    assert (kind, action) == ("account", "user.password.reset")
    assert GOOD not in str(params)


def test_bootstrap_without_forced_change(runner: CliRunner, db_url: str) -> None:
    setup_site(runner, db_url)
    result = runner.invoke(
        app,
        ["user", "password", "booking", "--stdin", "--no-force-change", "--db", db_url],
        input=GOOD + "\n",
    )
    assert result.exit_code == 0, result.stderr
    assert stored_hash(db_url, "booking")[1] is False


def test_a_weak_password_is_refused_naming_the_field(runner: CliRunner, db_url: str) -> None:
    setup_site(runner, db_url)
    result = runner.invoke(
        app, ["user", "password", "booking", "--stdin", "--db", db_url], input="qwerty123456\n"
    )
    assert result.exit_code == 1
    assert "common and breached passwords" in result.stderr
    assert "(field: new_password)" in result.stderr
    assert "qwerty123456" not in result.stderr
    assert stored_hash(db_url, "booking")[0] is None
    _, action, code, _ = last_entry(db_url)
    assert code == "password_compromised"
    assert action == "cli identity.cli.user_password"


def test_without_a_terminal_the_prompt_is_refused(runner: CliRunner, db_url: str) -> None:
    setup_site(runner, db_url)
    result = runner.invoke(app, ["user", "password", "booking", "--db", db_url], input="")
    assert result.exit_code == 1
    assert "--stdin" in result.stderr
    assert stored_hash(db_url, "booking")[0] is None


def test_unlock_and_sessions_at_the_console(
    runner: CliRunner, db_url: str, api: TestClient
) -> None:
    setup_site(runner, db_url)
    runner.invoke(
        app,
        ["user", "password", "booking", "--stdin", "--no-force-change", "--db", db_url],
        input=GOOD + "\n",
    )
    opened = api.post("/api/v1/sessions", json={"username": "booking", "password": GOOD})
    assert opened.status_code == 201, opened.text
    token = opened.json()["token"]
    listed = runner.invoke(app, ["session", "list", "booking", "--db", db_url])
    assert listed.exit_code == 0, listed.stderr
    assert str(opened.json()["id"]) in listed.stdout
    assert token not in listed.stdout
    ended = runner.invoke(app, ["session", "end", str(opened.json()["id"]), "--db", db_url])
    assert ended.exit_code == 0, ended.stderr
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/users/me", headers=bearer).status_code == 401

    for attempt in range(5):
        api.post("/api/v1/sessions", json={"username": "booking", "password": f"bad {attempt}!"})
    assert (
        api.post("/api/v1/sessions", json={"username": "booking", "password": GOOD}).status_code
        == 401
    )
    unlocked = runner.invoke(app, ["user", "unlock", "booking", "--db", db_url])
    assert unlocked.exit_code == 0, unlocked.stderr
    assert last_entry(db_url)[1] == "account.unlock"
    assert (
        api.post("/api/v1/sessions", json={"username": "booking", "password": GOOD}).status_code
        == 201
    )
    again = runner.invoke(app, ["user", "unlock", "booking", "--db", db_url])
    assert again.exit_code == 1
    assert "is not locked" in again.stderr
