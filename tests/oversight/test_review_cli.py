"""``openpars oversight ...``: plant a canary, see an outside read flagged, review the case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from typer.testing import CliRunner

from openpars.cli import app
from openpars.db import Database
from openpars.identity.roles import Role
from tests.access.agreements import activate
from tests.factories import add_user, build_world
from tests.oversight.canary_site import CITY, PURPOSE, arrest

runner = CliRunner()


def _run(url: str, *args: str) -> tuple[int, Any, str]:
    result = runner.invoke(app, [*args, "--db", url])
    body = json.loads(result.stdout) if result.exit_code == 0 and result.stdout.strip() else None
    return result.exit_code, body, result.stderr


def test_the_whole_review_at_the_console(fresh_db: Database, tmp_path: Path) -> None:
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
        activate(s, world)
        for name in ("overseer", "overseer2"):
            add_user(s, world, name, CITY, [Role.OVERSIGHT])
    payload = tmp_path / "canary.json"
    body = {"label": "console tripwire", "arrest": arrest(7, "Vantongeren", "Ilse", sid="CAN-7")}
    payload.write_text(json.dumps(body), encoding="utf-8")
    code, planted, err = _run(url, "oversight", "canary", "plant", str(payload), "--as", "overseer")
    assert code == 0, err
    assert planted["pending"] is True and planted["person_id"] is None
    # Pending: the outside agency finds nothing, and the planter cannot confirm it alone.
    code, page, err = _run(
        url, "search", "persons", "--as", "ice", "--sid", "CAN-7",
        "--purpose", PURPOSE["purpose"], "--json",
    )  # fmt: skip
    assert code == 0 and page["items"] == [], err
    cid = str(planted["id"])
    code, _, err = _run(url, "oversight", "canary", "confirm", cid, "--as", "overseer")
    assert code != 0 and "second, different oversight reviewer" in err and "canary_id" in err
    code, planted, err = _run(url, "oversight", "canary", "confirm", cid, "--as", "overseer2")
    assert code == 0, err
    assert planted["pending"] is False and planted["confirmed_by_id"] == world.users["overseer2"]
    # The reader finds nothing; the outside agency finds the record and trips the wire.
    code, page, err = _run(url, "search", "persons", "--as", "reader", "--sid", "CAN-7", "--json")
    assert code == 0, err
    assert page["items"] == []
    code, page, err = _run(
        url, "search", "persons", "--as", "ice", "--sid", "CAN-7",
        "--purpose", PURPOSE["purpose"], "--json",
    )  # fmt: skip
    assert code == 0, err
    assert [p["id"] for p in page["items"]] == [planted["person_id"]]
    code, flags, err = _run(url, "oversight", "flags", "list", "--as", "overseer")
    assert code == 0, err
    assert flags["total"] == 1 and flags["items"][0]["subject_user_id"] == world.users["ice"]
    code, run, _ = _run(url, "oversight", "detectors", "run", "--as", "overseer")
    assert code == 0 and run == {"new_flags": []}
    code, cases, _ = _run(url, "oversight", "cases", "list", "--as", "overseer", "--state", "open")
    (case,) = cases["items"]
    cid = str(case["id"])
    steps = [
        ("assign", cid, "--to", "overseer2", "--as", "overseer"),
        ("note", cid, "--note", "asked the agency for its case file", "--as", "overseer2"),
        ("close", cid, "--finding", "sanction", "--note", "no case behind it", "--as", "overseer2"),
    ]
    for step in steps:
        code, detail, err = _run(url, "oversight", "cases", *step)
        assert code == 0, (step, err)
    code, detail, _ = _run(url, "oversight", "cases", "show", cid, "--as", "overseer")
    assert detail["state"] == "closed" and detail["finding"] == "sanction"
    assert [e["act"] for e in detail["history"]][-3:] == ["assigned", "noted", "closed"]
    code, listed, _ = _run(url, "oversight", "canary", "list", "--as", "overseer")
    assert listed["items"][0]["flags"] == 1


def test_the_console_refuses_with_the_field(fresh_db: Database) -> None:
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
        add_user(s, world, "overseer", CITY, [Role.OVERSIGHT])
    code, _, err = _run(url, "oversight", "cases", "list", "--as", "reader")
    assert code == 1 and "oversight:read" in err
    code, _, err = _run(url, "oversight", "cases", "close", "5", "--finding", "no_issue",
                        "--as", "overseer")  # fmt: skip
    assert code == 1 and "(field: case_id)" in err
    code, _, err = _run(url, "oversight", "cases", "close", "5", "--finding", "fired",
                        "--as", "overseer")  # fmt: skip
    assert code == 2 and "finding" in err
    code, _, err = _run(url, "oversight", "flags", "list", "--as", "nobody")
    assert code == 1 and "(field: as)" in err
