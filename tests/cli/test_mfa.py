"""``openpars user mfa`` and ``openpars session end-all``: the console's side of MFA."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openpars.cli import app
from openpars.db import utcnow
from openpars.identity import mfa_crypto as crypto
from tests.cli.conftest import last_entry
from tests.cli.test_accounts import setup_site

GOOD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def mfa_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the MFA key in the test's directory, whatever the database."""
    path = tmp_path / "mfa.key"
    monkeypatch.setenv("OPENPARS_MFA_KEY_PATH", str(path))
    return path


def with_password(runner: CliRunner, db_url: str) -> None:
    setup_site(runner, db_url)
    done = runner.invoke(
        app,
        ["user", "password", "booking", "--stdin", "--no-force-change", "--db", db_url],
        input=GOOD + "\n",
    )
    assert done.exit_code == 0, done.stderr


def enrol(runner: CliRunner, db_url: str, *extra: str) -> tuple[str, list[str]]:
    result = runner.invoke(
        app, ["user", "mfa", "enrol", "booking", "--no-confirm", *extra, "--db", db_url]
    )
    assert result.exit_code == 0, result.stderr
    secret = re.search(r"secret for booking: ([A-Z2-7]+)", result.stdout)
    assert secret is not None
    codes = re.findall(r"^\s+([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})$", result.stdout, re.M)
    assert len(codes) == 10
    return secret.group(1), codes


def test_console_enrolment_then_a_logon_with_the_code(
    runner: CliRunner, db_url: str, api: TestClient, tmp_path: Path, mfa_key: Path
) -> None:
    with_password(runner, db_url)
    svg = tmp_path / "qr.svg"
    secret, codes = enrol(runner, db_url, "--qr-svg", str(svg))
    assert svg.read_text().startswith("<svg")
    assert mfa_key.exists() and oct(mfa_key.stat().st_mode & 0o777) == "0o600"
    kind, action, _, params = last_entry(db_url)
    assert (kind, action) == ("account", "mfa.enrol")
    assert secret not in str(params)
    assert not any(code in str(params) for code in codes)
    opened = api.post("/api/v1/sessions", json={"username": "booking", "password": GOOD})
    assert opened.json()["stage"] == "one_time_code"
    bearer = {"Authorization": f"Bearer {opened.json()['token']}"}
    code = crypto.code_at(secret, utcnow())
    proved = api.post("/api/v1/sessions/current/mfa", json={"code": code}, headers=bearer)
    assert proved.status_code == 200, proved.text
    assert proved.json()["stage"] == "banner"
    status = runner.invoke(app, ["user", "mfa", "status", "booking", "--db", db_url])
    assert "10 recovery codes left" in status.stdout


def test_confirming_needs_a_terminal(runner: CliRunner, db_url: str) -> None:
    with_password(runner, db_url)
    result = runner.invoke(app, ["user", "mfa", "enrol", "booking", "--db", db_url], input="")
    assert result.exit_code == 1
    assert "--no-confirm" in result.stderr


def test_reset_and_ending_every_session(runner: CliRunner, db_url: str, api: TestClient) -> None:
    with_password(runner, db_url)
    enrol(runner, db_url)
    opened = api.post("/api/v1/sessions", json={"username": "booking", "password": GOOD})
    bearer = {"Authorization": f"Bearer {opened.json()['token']}"}
    reset = runner.invoke(app, ["user", "mfa", "reset", "booking", "--db", db_url])
    assert reset.exit_code == 0, reset.stderr
    assert last_entry(db_url)[1] == "mfa.reset"
    gone = api.get("/api/v1/sessions/current", headers=bearer)
    assert gone.json()["error"]["code"] == "session_ended"
    again = api.post("/api/v1/sessions", json={"username": "booking", "password": GOOD})
    assert again.json()["stage"] == "mfa_enrolment"
    twice = runner.invoke(app, ["user", "mfa", "reset", "booking", "--db", db_url])
    assert twice.exit_code == 1
    assert "no MFA enrolled" in twice.stderr
    ended = runner.invoke(app, ["session", "end-all", "booking", "--db", db_url])
    assert ended.exit_code == 0, ended.stderr
    assert "1 open session(s) of booking ended" in ended.stdout
    pending = {"Authorization": f"Bearer {again.json()['token']}"}
    assert api.get("/api/v1/sessions/current", headers=pending).status_code == 401
