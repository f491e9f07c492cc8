"""The governance commands' text and JSON listings, and their refusals of unreadable files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from openpars.db import Database, utcnow
from openpars.governance.cli import app
from tests.factories import build_world
from tests.governance.helpers import Gov, build_gov

runner = CliRunner()


def run(*args: str, db: str | None = None) -> Any:
    extra = ["--db", db] if db else []
    # A fixed width, so the console wraps the same way whatever terminal runs the tests.
    return runner.invoke(app, [*args, *extra], env={"COLUMNS": "200"})


def lines(result: Any) -> list[str]:
    assert result.exit_code == 0, result.output
    return [line.rstrip() for line in result.stdout.splitlines()]


@pytest.fixture
def site(fresh_db: Database) -> tuple[Gov, str]:
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    assert isinstance(fresh_db.bind, Engine)
    return gov, fresh_db.bind.url.render_as_string(hide_password=False)


def test_a_proposal_past_its_deadline_is_listed_failed_with_its_reason(
    site: tuple[Gov, str],
) -> None:
    gov, url = site
    proposal_id = gov.propose(now=gov.at(days=-2), deadline=gov.at(days=-1))
    agreement = str(gov.agreement_id)

    ticked = lines(run("proposal", "tick", db=url))
    assert ticked[-1] == "1 event(s)"
    assert ticked[0].startswith(f"proposal.failed: agreement {agreement} the deadline passed")
    assert lines(run("proposal", "tick", db=url)) == ["0 event(s)"]

    shown = lines(run("proposal", "show", str(proposal_id), db=url))
    assert shown[0].startswith(f"proposal {proposal_id}: adopt agreement {agreement} version 1")
    assert any(line.startswith("  status failed; board v1: 2 of 3") for line in shown)
    assert "  tally: yes [], no [], abstain []" in shown
    assert any(line.startswith("  the deadline passed without a quorum") for line in shown)

    as_json = json.loads(run("proposal", "show", str(proposal_id), "--json", db=url).stdout)
    assert as_json["proposal"]["status"] == "failed"
    assert as_json["proposal"]["closed_reason"].startswith("the deadline passed without a quorum")
    assert as_json["votes"] == []

    listed = json.loads(run("proposal", "list", "--agreement", agreement, "--json", db=url).stdout)[
        "items"
    ]
    assert [(p["id"], p["status"], p["required_yes"]) for p in listed] == [
        (proposal_id, "failed", 2)
    ]
    opened = json.loads(run("proposal", "list", "--status", "open", "--json", db=url).stdout)
    assert opened["items"] == [] and opened["total"] == 0

    history = lines(run("proposal", "timeline", "--agreement", agreement, db=url))
    proposal_lines = [line for line in history if line.split()[1].startswith("proposal.")]
    assert proposal_lines == [
        f"{gov.at(days=-2).isoformat()}  proposal.opened      da-voter proposed to adopt: adopt "
        "the ICE agreement",
        f"{gov.at(days=-1).isoformat()}  proposal.failed      the deadline passed without a quorum "
        "(0 yes of 2 needed; 3 did not vote)",
    ]
    assert any(line.split()[1] == "agreement.created" for line in history)

    # A proposal still open has only its opening in the history.
    reopened = gov.propose(now=utcnow())
    entries = json.loads(
        run("proposal", "timeline", "--agreement", agreement, "--json", db=url).stdout
    )
    assert [e["kind"] for e in entries if e["proposal_id"] == reopened] == ["proposal.opened"]
    assert [e["kind"] for e in entries if e["proposal_id"] == proposal_id] == [
        "proposal.opened",
        "proposal.failed",
    ]


def test_board_and_keys_read_as_text(site: tuple[Gov, str]) -> None:
    gov, url = site
    board = lines(run("board", "show", db=url))
    assert board[0].startswith("board v1: 2 of 3; solo: suspend; reminders ")
    members = board[1:]
    assert len(members) == 3
    da = next(line for line in members if line.startswith(f"  {gov.agencies['da']} "))
    assert "voters da-voter; 1 key(s)" in da

    keys = lines(run("keys", "list", "--agency", str(gov.agencies["court"]), db=url))
    assert len(keys) == 1 and keys[0].endswith("court board key  active")
    key_id = keys[0].split()[0]
    revoked = run(
        "keys",
        "revoke",
        key_id,
        "--reason",
        "lost laptop",
        "--as",
        "court-stakeholder-admin",
        db=url,
    )
    assert revoked.exit_code == 0, revoked.output
    (after,) = lines(run("keys", "list", "--agency", str(gov.agencies["court"]), db=url))
    assert "court board key  revoked " in after
    board_after = lines(run("board", "show", db=url))
    court = next(line for line in board_after if line.startswith(f"  {gov.agencies['court']} "))
    assert "voters court-voter; 0 key(s)" in court


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (("vote", "submit"), "file"),
        (("vote", "verify", "--trust-export-keys", "--export"), "export"),
    ],
)
def test_unreadable_json_files_are_refused_naming_the_option(
    tmp_path: Path, command: tuple[str, ...], field: str
) -> None:
    missing = tmp_path / "missing.json"
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json", encoding="utf-8")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    for path, says in (
        (missing, "cannot read JSON from"),
        (garbled, "cannot read JSON from"),
        (listed, "must hold a JSON object"),
    ):
        result = run(*command, str(path))
        assert result.exit_code == 1, result.output
        message = " ".join(result.stderr.split())
        assert f"error: {field}: " in message and says in message
        assert f"(field: {field})" in message
