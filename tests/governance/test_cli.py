"""The governance commands through Typer, on a database whose commits are real."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from openpars.db import Database, utcnow
from openpars.governance.cli import app
from tests.factories import build_world
from tests.governance.helpers import build_gov

runner = CliRunner()


def run(*args: str, db: str | None = None) -> Any:
    extra = ["--db", db] if db else []
    return runner.invoke(app, [*args, *extra])


def text(result: Any) -> str:
    """The output with the console's line wrapping undone."""
    return " ".join(result.output.split())


def test_the_whole_flow_at_the_console(fresh_db: Database, tmp_path: Path) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)

    key_file = tmp_path / "da.pem"
    generated = run("keys", "generate", "--out", str(key_file))
    assert generated.exit_code == 0, generated.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert run("keys", "generate", "--out", str(key_file)).exit_code == 1
    registered = run(
        "keys",
        "register",
        f"{key_file}.pub",
        "--label",
        "cli key",
        "--as",
        "da-stakeholder-admin",
        db=url,
    )
    assert registered.exit_code == 0, registered.output

    deadline = (utcnow() + timedelta(days=7)).isoformat()
    opened = run(
        "proposal",
        "open",
        "--agreement",
        str(gov.agreement_id),
        "--action",
        "adopt",
        "--deadline",
        deadline,
        "--summary",
        "Adopt, arrestees only",
        "--as",
        "da-voter",
        db=url,
    )
    assert opened.exit_code == 0, opened.output
    assert "opened proposal 1" in text(opened)

    # The DA signs with the proposal read from the database ...
    signed = run(
        "vote",
        "sign",
        "--key",
        str(key_file),
        "--proposal",
        "1",
        "--choice",
        "yes",
        "--rationale",
        "Arrestees only, as in 2010.",
        "--as",
        "da-voter",
        db=url,
    )
    assert signed.exit_code == 0, signed.output
    (tmp_path / "da-vote.json").write_text(signed.output, encoding="utf-8")
    submitted = run("vote", "submit", str(tmp_path / "da-vote.json"), "--as", "da-voter", db=url)
    assert submitted.exit_code == 0, submitted.output
    assert "the proposal is open (1 yes of 2)" in text(submitted)

    # ... the court signs fully offline, from the proposal's JSON alone.
    proposal_file = tmp_path / "proposal.json"
    proposal_file.write_text(run("proposal", "show", "1", "--json", db=url).output)
    court_key = tmp_path / "court.pem"
    court_key.write_bytes(
        gov.keys["court"].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    offline = run(
        "vote",
        "sign",
        "--key",
        str(court_key),
        "--proposal",
        "1",
        "--proposal-file",
        str(proposal_file),
        "--stakeholder",
        str(gov.agencies["court"]),
        "--choice",
        "yes",
        "--rationale",
        "Agreed.",
        "--at",
        utcnow().isoformat(),
    )
    assert offline.exit_code == 0, offline.output
    (tmp_path / "court-vote.json").write_text(offline.output, encoding="utf-8")
    applied = run(
        "vote", "submit", str(tmp_path / "court-vote.json"), "--as", "court-voter", db=url
    )
    assert "the proposal is applied" in text(applied), applied.output
    replay = run("vote", "submit", str(tmp_path / "court-vote.json"), "--as", "court-voter", db=url)
    assert replay.exit_code == 1
    assert "error:" in text(replay)

    shown = run("proposal", "show", "1", db=url)
    assert "Arrestees only, as in 2010." in text(shown)
    assert "status applied" in text(shown)

    export = tmp_path / "export.json"
    assert run("vote", "export", "--proposal", "1", "--out", str(export), db=url).exit_code == 0
    pins = []
    for who in ("da", "court", "city"):
        pins += ["--stakeholder-keys", str(tmp_path / f"{who}.keys.json")]
        published = run(
            "keys", "publish", "--agency", str(gov.agencies[who]), "--out", pins[-1], db=url
        )
        assert published.exit_code == 0, published.output
    assert len(json.loads((tmp_path / "da.keys.json").read_text())["keys"]) == 2
    verified = run("vote", "verify", "--export", str(export), *pins)
    assert verified.exit_code == 0, verified.output
    assert "OK: every signature verifies with the pinned keys" in text(verified)
    unpinned = run("vote", "verify", "--export", str(export))
    assert unpinned.exit_code == 1
    assert "--stakeholder-keys" in text(unpinned)
    trusting = run("vote", "verify", "--export", str(export), "--trust-export-keys")
    assert trusting.exit_code == 0, trusting.output
    assert "self-consistent, not that the stakeholders signed it" in text(trusting)
    document = json.loads(export.read_text())
    document["votes"][0]["choice"] = "no"
    export.write_text(json.dumps(document))
    tampered = run("vote", "verify", "--export", str(export), *pins)
    assert tampered.exit_code == 1
    assert "FAIL" in text(tampered)

    timeline = run("proposal", "timeline", "--agreement", str(gov.agreement_id), "--json", db=url)
    assert "vote.cast" in {e["kind"] for e in json.loads(timeline.output)}
    assert "1 proposal(s)" in run("proposal", "list", db=url).output
    assert "0 event(s)" in run("proposal", "tick", db=url).output


def test_board_and_key_commands(fresh_db: Database, tmp_path: Path) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    shown = json.loads(run("board", "show", "--json", db=url).output)
    assert (shown["quorum"], shown["size"]) == (2, 3)
    members = [str(gov.agencies[w]) for w in ("da", "court", "city")]
    deadline = (utcnow() + timedelta(days=7)).isoformat()
    change = ["--deadline", deadline, "--summary", "3 of 3"]
    bad = run(
        "board",
        "propose",
        *[a for m in members for a in ("--member", m)],
        "--quorum",
        "4",
        *change,
        "--as",
        "agreements",
        db=url,
    )
    assert bad.exit_code == 1
    assert "quorum" in text(bad)
    good = run(
        "board",
        "propose",
        *[a for m in members for a in ("--member", m)],
        "--quorum",
        "3",
        "--solo",
        "suspend",
        *change,
        "--as",
        "da-voter",
        db=url,
    )
    assert good.exit_code == 0, good.output
    assert "opened proposal 1: board" in text(good)
    # Opening it changes nothing: the board in force decides it by its quorum.
    again = json.loads(run("board", "show", "--json", db=url).output)
    assert (again["version"], again["quorum"]) == (1, 2)
    keys = json.loads(run("keys", "list", "--json", db=url).output)
    assert len(keys) == 3
    revoked = run(
        "keys",
        "revoke",
        str(keys[0]["id"]),
        "--reason",
        "rotated",
        "--as",
        "da-stakeholder-admin",
        db=url,
    )
    assert revoked.exit_code == 0, revoked.output
    assert run("keys", "revoke", str(keys[0]["id"]), "--reason", "again", db=url).exit_code == 1
    assert run("keys", "list", "--as", "nobody", db=url).exit_code == 1
