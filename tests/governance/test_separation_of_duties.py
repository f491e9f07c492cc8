"""Issue 11, attack 1: no single administrator builds a quorum; each stakeholder runs its own."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from openpars.audit.events import Outcome
from openpars.audit.models import AuditEntry
from openpars.cli import app
from openpars.db import Database
from openpars.governance import signing
from openpars.governance.models import AppendOnlyError, KeyNotice, StakeholderKey
from openpars.identity.models import User
from tests.factories import build_world
from tests.governance.helpers import Gov, build_gov

API = "/api/v1"
runner = CliRunner()


def raw_key() -> str:
    """A fresh Ed25519 public key, base64."""
    return base64.b64encode(signing.public_raw(Ed25519PrivateKey.generate())).decode()


def refusals(gov: Gov, username: str) -> list[tuple[str, str | None]]:
    """The refused requests audited for one account: (action, error code)."""
    with gov.session() as session:
        user_id = session.scalar(select(User.id).where(User.username == username))
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.id).where(
                AuditEntry.outcome == Outcome.REFUSED, AuditEntry.user_id == user_id
            )
        ).all()
    return [(action, None) for action, _ in rows]


def counts(gov: Gov) -> tuple[int, int]:
    """Users and keys on the site."""
    with gov.session() as session:
        users = session.scalar(select(func.count()).select_from(User)) or 0
        keys = session.scalar(select(func.count()).select_from(StakeholderKey)) or 0
    return users, keys


def error(response: Any) -> dict[str, Any]:
    """The error envelope of a response."""
    body: dict[str, Any] = response.json()["error"]
    return body


def test_site_admin_cannot_assemble_a_quorum_through_the_api(client: TestClient, gov: Gov) -> None:
    admin = gov.world.auth("admin")
    before = counts(gov)
    # Step 1: voters in the DA's and the courts' agencies.
    for who in ("da", "court"):
        made = client.post(
            f"{API}/users",
            json={
                "username": f"{who}-puppet",
                "display_name": "puppet",
                "agency_id": gov.agencies[who],
                "roles": ["voter"],
            },
            headers=admin,
        )
        assert made.status_code == 403, made.text
        assert error(made)["code"] == "voting_rights_by_own_stakeholder"
        assert error(made)["field"] == "roles"
        # Nor a plain account in a stakeholder's agency: each administers its own users.
        plain = client.post(
            f"{API}/users",
            json={
                "username": f"{who}-plain",
                "display_name": "plain",
                "agency_id": gov.agencies[who],
                "roles": ["reader"],
            },
            headers=admin,
        )
        assert plain.status_code == 403, plain.text
        assert error(plain)["code"] == "other_stakeholder_account"
        # Step 2: a token for the stakeholder's existing voter (speaking in its name).
        token = client.post(
            f"{API}/users/{gov.voters[who].user_id}/tokens", json={"name": "x"}, headers=admin
        )
        assert token.status_code == 403, token.text
        assert error(token)["code"] == "voting_rights_by_own_stakeholder"
        # Step 3: a key for the stakeholder.
        key = client.post(
            f"{API}/keys",
            json={"public_key": raw_key(), "label": "mine", "agency_id": gov.agencies[who]},
            headers=admin,
        )
        assert key.status_code == 403, key.text
        assert "key:manage" in error(key)["message"]
    assert counts(gov) == before
    assert len(refusals(gov, "admin")) == 8


def test_voters_cannot_register_keys_nor_grant_votes(client: TestClient, gov: Gov) -> None:
    key = client.post(
        f"{API}/keys", json={"public_key": raw_key(), "label": "k"}, headers=gov.auth("da")
    )
    assert key.status_code == 403
    assert len(refusals(gov, "da-voter")) == 1


def test_a_stakeholder_admin_manages_only_its_own(client: TestClient, gov: Gov) -> None:
    court = gov.admin_auth("court")
    before = counts(gov)
    user = client.post(
        f"{API}/users",
        json={
            "username": "da-puppet",
            "display_name": "puppet",
            "agency_id": gov.agencies["da"],
            "roles": ["voter"],
        },
        headers=court,
    )
    assert user.status_code == 403
    assert error(user)["code"] == "voting_rights_by_own_stakeholder"
    police = client.post(
        f"{API}/users",
        json={
            "username": "cop",
            "display_name": "cop",
            "agency_id": gov.world.agencies["Philadelphia Police Department"],
            "roles": ["reader"],
        },
        headers=court,
    )
    assert police.status_code == 403
    assert error(police)["code"] == "other_stakeholder_account"
    # Nor may it mint a site administrator inside its own agency.
    root = client.post(
        f"{API}/users",
        json={
            "username": "court-root",
            "display_name": "root",
            "agency_id": gov.agencies["court"],
            "roles": ["admin"],
        },
        headers=court,
    )
    assert root.status_code == 403
    assert error(root)["code"] == "site_role_by_site_admin"
    token = client.post(
        f"{API}/users/{gov.voters['da'].user_id}/tokens", json={"name": "x"}, headers=court
    )
    assert token.status_code == 403
    key = client.post(
        f"{API}/keys",
        json={"public_key": raw_key(), "label": "k", "agency_id": gov.agencies["da"]},
        headers=court,
    )
    assert key.status_code == 403
    assert error(key)["code"] == "key_by_own_stakeholder"
    with gov.session() as session:
        da_key = session.scalars(
            select(StakeholderKey).where(StakeholderKey.agency_id == gov.agencies["da"])
        ).first()
        assert da_key is not None
        da_key_id = da_key.id
    revoke = client.post(f"{API}/keys/{da_key_id}/revoke", json={"reason": "x"}, headers=court)
    assert revoke.status_code == 403
    assert error(revoke)["code"] == "key_by_own_stakeholder"
    assert counts(gov) == before
    assert len(refusals(gov, "court-stakeholder-admin")) == 6


def test_exclusive_roles_are_refused(client: TestClient, gov: Gov) -> None:
    both = client.post(
        f"{API}/users",
        json={
            "username": "da-both",
            "display_name": "both",
            "agency_id": gov.agencies["da"],
            "roles": ["voter", "stakeholder_admin"],
        },
        headers=gov.admin_auth("da"),
    )
    assert both.status_code == 422
    assert error(both)["code"] == "roles_exclusive"
    assert error(both)["field"] == "roles"
    site = client.post(
        f"{API}/users",
        json={
            "username": "root2",
            "display_name": "root",
            "agency_id": gov.world.agencies["Defender Association"],
            "roles": ["admin", "auditor"],
        },
        headers=gov.world.auth("admin"),
    )
    assert site.status_code == 422
    assert error(site)["code"] == "roles_exclusive"


def test_each_stakeholder_admin_runs_its_own(client: TestClient, gov: Gov) -> None:
    da = gov.admin_auth("da")
    made = client.post(
        f"{API}/users",
        json={
            "username": "da-deputy",
            "display_name": "deputy",
            "agency_id": gov.agencies["da"],
            "roles": ["voter"],
        },
        headers=da,
    )
    assert made.status_code == 201, made.text
    token = client.post(f"{API}/users/{made.json()['id']}/tokens", json={"name": "t"}, headers=da)
    assert token.status_code == 201, token.text
    key = client.post(f"{API}/keys", json={"public_key": raw_key(), "label": "k2"}, headers=da)
    assert key.status_code == 201, key.text
    assert key.json()["agency_id"] == gov.agencies["da"]
    revoked = client.post(
        f"{API}/keys/{key.json()['id']}/revoke", json={"reason": "rotated"}, headers=da
    )
    assert revoked.status_code == 200, revoked.text
    # The site administrator still runs the site: accounts of agencies that are not stakeholders.
    cop = client.post(
        f"{API}/users",
        json={
            "username": "cop",
            "display_name": "cop",
            "agency_id": gov.world.agencies["Philadelphia Police Department"],
            "roles": ["intake"],
        },
        headers=gov.world.auth("admin"),
    )
    assert cop.status_code == 201, cop.text
    with gov.session() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.in_(["key.register", "key.revoke"]))
        ).all()
    assert actions.count("key.revoke") == 1
    # Every other stakeholder is told of both acts; the DA itself is not.
    new_key = key.json()["id"]
    both = ["key.revoke", "key.register"]
    for who, expected in (("court", both), ("city", both), ("da", [])):
        listed = client.get(
            f"{API}/key-notices",
            params={"stakeholder_id": gov.agencies[who]},
            headers=gov.auth(who),
        )
        assert listed.status_code == 200, listed.text
        mine = [n for n in listed.json()["items"] if n["key_id"] == new_key]
        assert [n["action"] for n in mine] == expected
        assert all(n["opened_by"] == "da-stakeholder-admin" for n in mine)
        assert all(n["key_stakeholder_id"] == gov.agencies["da"] for n in mine)
    with gov.session() as session:
        notice = session.scalars(select(KeyNotice)).first()
        assert notice is not None
        notice.action = "key.register"
        notice.fingerprint = "0" * 64
        with pytest.raises(AppendOnlyError):
            session.flush()
        session.rollback()
        # The database refuses it too, whatever code runs (the row-level trigger).
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(update(KeyNotice).values(fingerprint="0" * 64))
        session.rollback()


def test_the_attack_at_the_console(fresh_db: Database, tmp_path: Path) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    public = tmp_path / "k.pub"
    public.write_text(raw_key(), encoding="utf-8")
    args = ["keys", "register", str(public), "--label", "x", "--agency", str(gov.agencies["da"])]
    for who in ("admin", "court-voter", "court-stakeholder-admin"):
        result = runner.invoke(app, [*args, "--as", who, "--db", url])
        assert result.exit_code == 1, result.output
        assert "own stakeholder administrator" in " ".join(result.output.split())
    ok = runner.invoke(app, [*args, "--as", "da-stakeholder-admin", "--db", url])
    assert ok.exit_code == 0, ok.output
    # The console bootstraps accounts, but never one holding two roles that exclude each other.
    both = runner.invoke(
        app,
        [
            "user",
            "create",
            "da-both",
            "--agency",
            str(gov.agencies["da"]),
            "--role",
            "admin",
            "--role",
            "voter",
            "--db",
            url,
        ],
    )
    assert both.exit_code == 1, both.output
    assert "exclude each other" in " ".join(both.output.split())


def test_the_console_bootstraps_only_a_first_stakeholder_admin(
    fresh_db: Database, tmp_path: Path
) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    da = str(gov.agencies["da"])

    def create(name: str, role: str) -> Any:
        return runner.invoke(
            app, ["user", "create", name, "--agency", da, "--role", role, "--db", url]
        )

    second = create("da-second", "stakeholder_admin")
    assert second.exit_code == 1
    assert "already has an active stakeholder administrator" in " ".join(second.output.split())
    voter = create("da-extra", "voter")
    assert voter.exit_code == 1
    assert "does not grant votes" in " ".join(voter.output.split())
    # Once the DA has none (its administrator left), the operator bootstraps a new one, on record.
    gone = runner.invoke(app, ["user", "disable", "da-stakeholder-admin", "--db", url])
    assert gone.exit_code == 0, gone.output
    again = create("da-admin2", "stakeholder_admin")
    assert again.exit_code == 0, again.output
    with fresh_db.session() as session:
        made = session.scalar(select(User.id).where(User.username == "da-admin2"))
        entries = session.execute(
            select(AuditEntry.action, AuditEntry.user_id).where(AuditEntry.action == "user.create")
        ).all()
    assert made is not None
    assert ("user.create", None) in entries  # by the console's ``system``, not an account
