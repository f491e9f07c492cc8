"""``openpars agency|user|token``: the same services as the API, one audit entry per command."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openpars.cli import app
from tests.cli.conftest import audit_count, last_entry


def run(runner: CliRunner, url: str, *args: str) -> tuple[int, str, str]:
    """Invoke a command against ``url``; returns exit code, stdout and stderr."""
    result = runner.invoke(app, [*args, "--db", url])
    return result.exit_code, result.stdout, result.stderr


def setup_site(runner: CliRunner, url: str) -> None:
    """A police agency and an intake user."""
    assert run(runner, url, "agency", "create", "Philadelphia Police Department",
               "--kind", "police", "--ori", "PAPEP0000")[0] == 0  # fmt: skip
    code, out, err = run(runner, url, "user", "create", "booking", "--agency", "PAPEP0000",
                         "--role", "intake", "--role", "reader")  # fmt: skip
    assert code == 0, err
    assert "booking" in out


def test_agency_create_and_list(runner: CliRunner, db_url: str) -> None:
    before = audit_count(db_url)
    setup_site(runner, db_url)
    code, out, _ = run(runner, db_url, "agency", "list")
    assert code == 0
    assert "Philadelphia Police Department" in out
    assert "PAPEP0000" in out
    # agency create, user create, agency list: one entry each.
    assert audit_count(db_url) == before + 3


def test_duplicate_agency_is_refused_with_the_field(runner: CliRunner, db_url: str) -> None:
    setup_site(runner, db_url)
    before = audit_count(db_url)
    code, out, err = run(runner, db_url, "agency", "create", "Another PD", "--kind", "police",
                         "--ori", "PAPEP0000")  # fmt: skip
    assert code == 1
    assert err.startswith("error: ORI PAPEP0000 is already registered")
    assert "(field: ori)" in err
    assert out == ""
    # Nothing was written but the refusal's own entry, as the API records refusals.
    assert audit_count(db_url) == before + 1
    kind, action, code, params = last_entry(db_url)
    assert (kind, action, code) == ("refused", "cli identity.cli.agency_create", "conflict")
    assert params == {
        "via": "cli",
        "command": "identity.cli.agency_create",
        "field": "ori",
        "status": 409,
    }


def test_malformed_ori_is_a_usage_error(runner: CliRunner, db_url: str) -> None:
    code, _, err = run(runner, db_url, "agency", "create", "X PD", "--kind", "police",
                       "--ori", "nope")  # fmt: skip
    assert code == 2
    assert "(field: ori)" in err


def test_unknown_agency_for_a_user(runner: CliRunner, db_url: str) -> None:
    code, _, err = run(runner, db_url, "user", "create", "x", "--agency", "Nowhere",
                       "--role", "reader")  # fmt: skip
    assert code == 1
    assert "no agency has the id, ORI or name 'Nowhere'" in err
    assert "(field: agency)" in err


def test_external_user_roles_follow_the_service_rule(runner: CliRunner, db_url: str) -> None:
    assert run(runner, db_url, "agency", "create", "ICE", "--kind", "external",
               "--ori", "PAICE0100")[0] == 0  # fmt: skip
    code, _, err = run(runner, db_url, "user", "create", "ice", "--agency", "ICE",
                       "--role", "reader")  # fmt: skip
    assert code == 1
    assert "(field: roles)" in err


def test_token_issue_authenticates_and_revoke_stops_it(
    runner: CliRunner, db_url: str, api: TestClient
) -> None:
    setup_site(runner, db_url)
    code, secret, err = run(runner, db_url, "token", "issue", "booking", "--days", "2")
    assert code == 0, err
    secret = secret.strip()
    auth = {"Authorization": f"Bearer {secret}"}
    me = api.get("/api/v1/users/me", headers=auth)
    assert me.status_code == 200
    assert me.json()["username"] == "booking"
    assert sorted(me.json()["roles"]) == ["intake", "reader"]

    code, out, _ = run(runner, db_url, "token", "list", "booking")
    assert code == 0
    assert secret not in out  # the secret is shown once, never listed
    token_id = out.split("│")[1].strip() if "│" in out else ""
    assert token_id.isdigit()
    assert run(runner, db_url, "token", "revoke", token_id)[0] == 0
    refused = api.get("/api/v1/users/me", headers=auth)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "token_revoked"


def test_disable_and_enable_a_user(runner: CliRunner, db_url: str, api: TestClient) -> None:
    setup_site(runner, db_url)
    secret = run(runner, db_url, "token", "issue", "booking")[1].strip()
    auth = {"Authorization": f"Bearer {secret}"}
    assert run(runner, db_url, "user", "disable", "booking")[0] == 0
    assert api.get("/api/v1/users/me", headers=auth).json()["error"]["code"] == "account_disabled"
    code, out, _ = run(runner, db_url, "user", "list", "--agency", "PAPEP0000")
    assert code == 0
    assert "booking" in out
    assert "no" in out.split("booking", 1)[1]
    assert run(runner, db_url, "user", "enable", "booking")[0] == 0
    assert api.get("/api/v1/users/me", headers=auth).status_code == 200


def test_unknown_user_and_token(runner: CliRunner, db_url: str) -> None:
    code, _, err = run(runner, db_url, "user", "disable", "ghost")
    assert (code, "(field: username)" in err) == (1, True)
    code, _, err = run(runner, db_url, "token", "revoke", "999")
    assert (code, "(field: token_id)" in err) == (1, True)


def test_db_option_overrides_the_environment(
    runner: CliRunner, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("OPENPARS_DATABASE_URL", "sqlite:////nonexistent/dir/openpars.db")
    setup_site(runner, db_url)  # passes --db; the environment's URL would fail to open
    monkeypatch.setenv("OPENPARS_DATABASE_URL", db_url)
    result = runner.invoke(app, ["agency", "list"])
    assert result.exit_code == 0
    assert "PAPEP0000" in result.stdout


def test_an_unusable_database_is_one_clear_line(runner: CliRunner, empty_url: str) -> None:
    code, out, err = run(runner, empty_url, "agency", "list")  # no schema yet
    assert code == 1
    assert err.startswith("error: the database could not be used (")
    assert "openpars db upgrade" in err
    assert err.rstrip().endswith("(field: db)")
    assert "Traceback" not in err + out


def test_user_roles_replaces_them_audited_and_refuses_a_vote_or_a_bad_pair(
    runner: CliRunner, db_url: str, api: TestClient
) -> None:
    setup_site(runner, db_url)
    code, out, err = run(runner, db_url, "token", "issue", "booking")
    assert code == 0, err
    token = {"Authorization": f"Bearer {out.strip()}"}
    assert api.post("/api/v1/arrests", json={}, headers=token).status_code == 422
    code, out, err = run(runner, db_url, "user", "roles", "booking", "--role", "pretrial")
    assert code == 0, err
    assert "booking: roles intake, reader -> pretrial; 0 open session(s) ended" in out
    kind, action, error, params = last_entry(db_url)
    assert (kind, action, error) == ("account", "user.roles", None)
    assert (params["before"], params["after"]) == (["intake", "reader"], ["pretrial"])
    # The token no longer submits arrests: the permission is checked before the body.
    assert api.post("/api/v1/arrests", json={}, headers=token).status_code == 403
    before = audit_count(db_url)
    code, _, err = run(runner, db_url, "user", "roles", "booking", "--role", "voter")
    assert code == 1
    assert "the console does not grant votes" in err
    code, _, err = run(runner, db_url, "user", "roles", "booking",
                       "--role", "admin", "--role", "auditor")  # fmt: skip
    assert code == 1
    assert "exclude each other" in err
    assert "(field: roles)" in err
    # Only the refusals' own entries were written.
    assert audit_count(db_url) == before + 2
    code, _, err = run(runner, db_url, "user", "roles", "booking", "--role", "nobody")
    assert code == 2
