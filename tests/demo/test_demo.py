"""``openpars demo``: credentials that work against the real app, same seed, same data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from openpars.cli import app
from openpars.config import Settings
from openpars.db import Database, make_engine, utcnow
from openpars.demo.seed import MACHINE_ACCOUNTS, USERS
from openpars.identity import mfa_crypto as crypto
from openpars.records.models import Arrest, Charge, Involvement, Person
from openpars.web.app import create_app

ARRESTS = 15


def run_demo(runner: CliRunner, url: str, out: Path, *extra: str) -> Any:
    """Run the demo without serving; returns the click result."""
    return runner.invoke(
        app,
        ["demo", "--db", url, "--arrests", str(ARRESTS), "--no-serve",
         "--credentials-out", str(out), *extra],
    )  # fmt: skip


def data_digest(url: str) -> str:
    """SHA-256 over every person, arrest, involvement and charge (ids included)."""
    database = Database(make_engine(url))
    rows: list[tuple[object, ...]] = []
    try:
        with database.session() as session:
            for p in session.scalars(select(Person).order_by(Person.id)):
                rows.append((p.id, p.family_name, p.given_name, p.middle_name, p.birth_date,
                             p.sex, p.race, p.address, p.phone, p.place_of_birth, p.citizenship,
                             p.sid, p.fbi_number, p.version))  # fmt: skip
            for a in session.scalars(select(Arrest).order_by(Arrest.id)):
                rows.append((a.id, a.report_id, a.otn, a.incident_number, a.arrested_at,
                             a.arresting_officer, a.location, a.arrest_type, a.state,
                             a.docket_number, a.sealed_at, a.expunged_at, a.version))  # fmt: skip
            for i in session.scalars(select(Involvement).order_by(Involvement.id)):
                rows.append((i.arrest_id, i.person_id, i.role, i.juvenile))
            for c in session.scalars(select(Charge).order_by(Charge.id)):
                rows.append((c.arrest_id, c.stage, c.revision, c.sequence, c.statute, c.grade))
    finally:
        database.bind.engine.dispose()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_demo_credentials_authenticate(runner: CliRunner, empty_url: str, tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    result = run_demo(runner, empty_url, path)
    assert result.exit_code == 0, result.stderr
    assert f"created {ARRESTS} arrests" in result.stdout
    assert 'curl -H "Authorization: Bearer opt_' in result.stdout
    document = json.loads(path.read_text())
    assert document["base_url"] == "http://127.0.0.1:8000"
    assert [u["username"] for u in document["users"]] == [u[0] for u in USERS]

    application = create_app(Settings(database_url=empty_url))
    with TestClient(application) as client:
        for user in document["users"]:
            me = client.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {user['token']}"}
            )
            assert me.status_code == 200, user["username"]
            assert me.json()["username"] == user["username"]
            assert sorted(me.json()["roles"]) == sorted(user["roles"])
            # Every person's account logs on in a browser with its password; the machine
            # account has none.
            if user["username"] in MACHINE_ACCOUNTS:
                assert user["password"] is None
                continue
            logged = client.post(
                "/api/v1/sessions",
                json={"username": user["username"], "password": user["password"]},
            )
            assert logged.status_code == 201, (user["username"], logged.text)
            # Then the authenticator's code and the banner: the session becomes usable.
            assert logged.json()["stage"] == "one_time_code"
            session = {"Authorization": f"Bearer {logged.json()['token']}"}
            code = crypto.code_at(user["totp_secret"], utcnow())
            proved = client.post(
                "/api/v1/sessions/current/mfa", json={"code": code}, headers=session
            )
            assert proved.status_code == 200, proved.text
            banner = client.post("/api/v1/sessions/current/banner", headers=session)
            assert banner.json()["stage"] == "active"
            assert client.get("/api/v1/users/me", headers=session).status_code == 200
    assert "/login as 'charging' with the password" in result.stdout
    application.state.db.bind.dispose()


def test_same_seed_same_data(runner: CliRunner, tmp_path: Path) -> None:
    from tests.conftest import new_database_url

    digests = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        url, drop = new_database_url(tmp_path)
        try:
            result = run_demo(runner, url, tmp_path / f"{name}.json", "--seed", seed)
            assert result.exit_code == 0, result.stderr
            digests.append(data_digest(url))
        finally:
            drop()  # type: ignore[operator]
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


def test_rerun_is_idempotent_and_issues_new_tokens(
    runner: CliRunner, empty_url: str, tmp_path: Path
) -> None:
    first_path, second_path = tmp_path / "1.json", tmp_path / "2.json"
    assert run_demo(runner, empty_url, first_path).exit_code == 0
    before = data_digest(empty_url)
    again = run_demo(runner, empty_url, second_path)
    assert again.exit_code == 0, again.stderr
    assert "already holds the demo" in again.stdout
    assert data_digest(empty_url) == before
    first = {u["username"]: u["token"] for u in json.loads(first_path.read_text())["users"]}
    second = {u["username"]: u["token"] for u in json.loads(second_path.read_text())["users"]}
    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first)


def test_demo_refuses_a_database_holding_other_data(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    made = runner.invoke(app, ["agency", "create", "Some PD", "--kind", "police", "--db", db_url])
    assert made.exit_code == 0
    result = run_demo(runner, db_url, tmp_path / "c.json")
    assert result.exit_code == 1
    assert "already holds agencies that are not the demo's" in result.stderr
    assert not (tmp_path / "c.json").exists()
