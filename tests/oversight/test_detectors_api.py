"""Detection runs through the API and the console: a period, the site's thresholds, audited;
users' surname and address set by an administrator; bad input names the argument."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from openpars.audit import log
from openpars.audit.models import AuditEntry
from openpars.cli import app
from openpars.db import Database
from openpars.identity.models import User
from openpars.identity.roles import Role
from openpars.oversight.models import Flag
from tests.factories import World, add_user, build_world
from tests.oversight.canary_site import CITY, OVERSIGHT, PURPOSE, build

runner = CliRunner()


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_a_run_flags_a_user_looking_up_their_own_surname_once(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)
    admin = world.auth("admin")
    profile = {"family_name": "Zbrozek", "address": None}
    url = f"/api/v1/users/{world.users['ice']}/profile"
    # The agency cannot set its own users' profiles; the administrator can.
    assert client.put(url, json=profile, headers=world.auth("ice")).status_code == 403
    answer = client.put(url, json=profile, headers=admin)
    assert answer.status_code == 200, answer.text
    assert {k: v for k, v in answer.json().items() if k != "audit_entry"} == profile
    # The period runs from the day read before the lookup to the day read after it, each read
    # once: a lookup at 23:59:59 UTC is still inside it when the run starts after midnight.
    first = _today()
    got = client.get(
        f"/api/v1/persons/{site.twin_person}", params=PURPOSE, headers=world.auth("ice")
    )
    assert got.status_code == 200, got.text
    with db.session() as s:
        log.integrate(s)
    me = world.auth("overseer")
    body = {"from": first, "to": _today()}
    run = client.post(f"{OVERSIGHT}/detections", json=body, headers=me)
    assert run.status_code == 200, run.text
    assert run.json()["from"] == body["from"] and run.json()["to"] == body["to"]
    with db.session() as s:
        stored = s.scalars(select(Flag).where(Flag.id.in_(run.json()["new_flags"]))).all()
        own = [f for f in stored if f.detector == "own_surname_or_address"]
        assert len(own) == 1 and own[0].subject_user_id == world.users["ice"]
        assert "own surname" in own[0].rule
    # The same period again: nothing new; both runs audited with their period.
    again = client.post(f"{OVERSIGHT}/detections", json=body, headers=me)
    assert again.status_code == 200 and again.json()["new_flags"] == []
    with db.session() as s:
        runs = s.scalars(
            select(AuditEntry.id).where(AuditEntry.action == "oversight.detectors.run")
        ).all()
    assert len(runs) == 2
    # The flag reaches the review queue; the agency never sees it.
    cases = client.get(f"{OVERSIGHT}/cases", headers=me).json()["items"]
    assert "own_surname_or_address" in {c["detector"] for c in cases}
    for path in ("/flags", "/cases"):
        assert client.get(OVERSIGHT + path, headers=world.auth("ice")).status_code == 403
    assert (
        client.post(f"{OVERSIGHT}/detections", json=body, headers=world.auth("ice")).status_code
        == 403
    )


def test_bad_periods_name_the_argument_and_write_nothing_but_the_refusal(
    client: TestClient, db: Database, world: World
) -> None:
    build(client, db, world)
    me = world.auth("overseer")
    future = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"from": future, "to": future}, "from", "period_in_future"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to", "empty_period"),
        ({"from": "2026-02-30"}, "from", "invalid_input"),
        ({"since": "2026-01-01"}, "since", "invalid_input"),
    ]
    with db.session() as s:
        before = s.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))
    for body, field, code in cases:
        answer = client.post(f"{OVERSIGHT}/detections", json=body, headers=me)
        assert answer.status_code == 422, (body, answer.text)
        error = answer.json()["error"]
        assert error["field"] == field and error["code"] == code, (body, error)
    with db.session() as s:
        after = s.scalars(select(AuditEntry.action).where(AuditEntry.id > (before or 0))).all()
        assert "oversight.detectors.run" not in after
        assert s.scalar(select(Flag.id).where(Flag.detector != "canary")) is None


def _run(url: str, *args: str) -> tuple[int, Any, str]:
    result = runner.invoke(app, [*args, "--db", url])
    body = json.loads(result.stdout) if result.exit_code == 0 and "{" in result.stdout else None
    return result.exit_code, body, result.stderr


def test_detect_and_profiles_at_the_console(fresh_db: Database) -> None:
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
        add_user(s, world, "overseer", CITY, [Role.OVERSIGHT])
    code, _body, err = _run(
        url, "user", "profile", "ice", "--family-name", "Okafor", "--address", "12 Elm St"
    )
    assert code == 0, err
    with fresh_db.session() as s:
        user = s.scalars(select(User).where(User.username == "ice")).one()
        assert (user.family_name, user.address) == ("Okafor", "12 Elm St")
    day = _today()
    code, body, err = _run(
        url, "oversight", "detect", "--from", day, "--to", day, "--as", "overseer"
    )
    assert code == 0, err
    assert body == {"from": day, "to": day, "new_flags": []}
    code, _body, err = _run(url, "oversight", "detect", "--from", day, "--to", "2000-01-01",
                            "--as", "overseer")  # fmt: skip
    assert code != 0 and "to" in err and "empty" in err
    code, _body, err = _run(url, "oversight", "detect", "--as", "ice")
    assert code != 0
