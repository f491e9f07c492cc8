"""Issue 11, attack 4: erasing the evidence of misuse, tried through the API, the CLI and the
database itself. Shredding needs the court order recorded on a sealed or expunged record; every
other attempt is refused and audited, and content deleted outside it fails verification."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openpars.audit import checkpoints, log
from openpars.audit import export as exporting
from openpars.audit.cli import app as audit_cli
from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.models import AuditEntry, AuditLeaf, shredding_ddl
from openpars.audit.service import append
from openpars.config import Settings
from openpars.db import Database
from tests.audit import records
from tests.audit.test_log import ORIGIN
from tests.factories import World

SHRED = "/api/v1/audit/shred"


def read_by(db: Database, agency_id: int | None, *, arrest_id: int, person_id: int) -> int:
    """An outside agency's read of an arrestee: the evidence an attacker wants gone."""
    with db.session() as session:
        event = AuditEvent(
            kind=AuditKind.READ, action="arrests.get", username="ice", agency_id=agency_id,
            arrest_ids=[arrest_id], person_ids=[person_id],
        )  # fmt: skip
        return append(session, event).id


def has_content(db: Database, entry_id: int) -> bool:
    with db.session() as session:
        entry = session.get(AuditEntry, entry_id)
        assert entry is not None
        return entry.content is not None


def without_guard(session: Session, statement: str) -> None:
    """Run a statement with the database's guard on audit_entries' UPDATE dropped, as the
    tables' owner could, then put the guard back."""
    dialect = session.get_bind().dialect.name
    connection = session.connection()
    if dialect == "sqlite":
        connection.exec_driver_sql("DROP TRIGGER audit_entries_no_update")
    else:
        connection.exec_driver_sql(
            "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_shredding_only"
        )
    connection.exec_driver_sql(statement)
    if dialect == "sqlite":
        for ddl in shredding_ddl("sqlite"):
            connection.exec_driver_sql(ddl)
    else:
        connection.exec_driver_sql(
            "ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_shredding_only"
        )


def count(db: Database, action: str, outcome: Outcome) -> int:
    with db.session() as session:
        found = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == action, AuditEntry.outcome == outcome)
        )
    return int(found or 0)


def verify_export(db: Database, settings: Settings, path: Path) -> subprocess.CompletedProcess[str]:
    """Publish a checkpoint, export the log and run the independent verifier on it."""
    log.integrate_all(db)
    with db.session() as session:
        checkpoints.publish(session, settings=settings)
        path.write_text("".join(exporting.export(session, settings=settings)), encoding="utf-8")
    key = checkpoints.key_file(settings, create=False)
    assert key is not None
    # No witness cosigns in this test: the verifier must be told to accept an unwitnessed log.
    command = [
        sys.executable, "-m", "openpars_verify", "export", str(path),
        "--log-key", key.vkey, "--allow-unwitnessed",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def leaf_index(db: Database, entry_id: int) -> int:
    with db.session() as session:
        found = session.scalar(select(AuditLeaf.leaf_index).where(AuditLeaf.entry_id == entry_id))
    assert found is not None
    return int(found)


def test_api_shredding_without_the_records_order_is_refused_and_audited(
    client: TestClient, db: Database, world: World, settings: Settings, tmp_path: Path
) -> None:
    checkpoints.check_key(settings, db)
    ice = world.agencies["Immigration and Customs Enforcement"]
    with db.session() as session:
        records.arrest(session, 501, person_ids=[601])  # an ordinary record
        records.arrest(session, 502, order="MC-502", person_ids=[602])
        records.arrest(session, 503, order="MC-503", expunged=True, person_ids=[603])
    misuse = read_by(db, ice, arrest_id=501, person_id=601)
    sealed = read_by(db, ice, arrest_id=502, person_id=602)
    other = read_by(db, ice, arrest_id=503, person_id=603)
    attempts = [
        ("court", {"order_reference": "MC-502", "arrest_id": 502}, 403, None),  # no sealed access
        ("admin", {"order_reference": "MC-502", "arrest_id": 502}, 403, None),
        ("ice", {"order_reference": "MC-502", "arrest_id": 501}, 403, None),
        ("clerk", {"order_reference": "MC-502", "arrest_id": 501}, 409, "arrest_id"),  # unsealed
        ("clerk", {"order_reference": "MC-502", "person_id": 601}, 409, "person_id"),
        ("clerk", {"order_reference": "MC-502", "arrest_id": 503}, 409, "order_reference"),
        ("clerk", {"order_reference": "MC-502", "person_id": 603}, 409, "order_reference"),
        ("clerk", {"order_reference": "MC-503", "arrest_id": 9999}, 404, "arrest_id"),
        ("clerk", {"order_reference": "MC-502", "arrest_id": 502, "person_id": 602}, 422, None),
        ("clerk", {"arrest_id": 501}, 422, "order_reference"),  # no order at all
    ]
    for user, body, status, field in attempts:
        response = client.post(SHRED, json=body, headers=world.auth(user))
        assert response.status_code == status, (user, body, response.text)
        if field is not None:
            assert response.json()["error"]["field"] == field, response.text
    assert count(db, f"POST {SHRED}", Outcome.REFUSED) == len(attempts)
    assert has_content(db, misuse) and has_content(db, sealed) and has_content(db, other)
    assert count(db, "audit.shred", Outcome.OK) == 0

    done = client.post(
        SHRED, json={"order_reference": "MC-502", "arrest_id": 502}, headers=world.auth("clerk")
    )
    assert done.status_code == 200, done.text
    assert done.json()["entry_ids"] == [sealed]
    assert not has_content(db, sealed) and has_content(db, misuse)

    # A proper shredding verifies, and the verifier names the order it was done under.
    good = verify_export(db, settings, tmp_path / "good.txt")
    assert good.returncode == 0, good.stderr
    assert "1 shredded" in good.stdout and "shredded under orders MC-502" in good.stdout

    # Erasing the misuse evidence in the database is not a shredding: the database refuses it,
    erase = f"UPDATE audit_entries SET salt = NULL, content = NULL WHERE id = {int(misuse)}"
    with pytest.raises(DBAPIError, match="append-only"), db.session() as session:
        session.execute(text(erase))
    assert has_content(db, misuse)
    # and with its guard dropped by whoever owns the tables, the verifier says so.
    with db.session() as session:
        without_guard(session, erase)
    assert not has_content(db, misuse)
    index = leaf_index(db, misuse)
    bad = verify_export(db, settings, tmp_path / "bad.txt")
    assert bad.returncode == 1
    assert f"entry {index} was shredded but no audit.shred entry" in bad.stderr


def test_cli_shredding_without_the_records_order_is_refused_and_audited(
    fresh_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENPARS_LOG_KEY_PATH", str(tmp_path / "log.key"))
    monkeypatch.setenv("OPENPARS_LOG_ORIGIN", ORIGIN)
    with fresh_db.session() as session:
        records.arrest(session, 5, person_ids=[50])
        records.arrest(session, 6, order="MC-6", person_ids=[60])
        records.arrest(session, 8, order="MC-8", person_ids=[62])
    misuse = read_by(fresh_db, None, arrest_id=5, person_id=50)
    sealed = read_by(fresh_db, None, arrest_id=6, person_id=60)
    other = read_by(fresh_db, None, arrest_id=8, person_id=62)
    runner = CliRunner()
    db_option = ["--db", fresh_db.bind.engine.url.render_as_string(hide_password=False)]
    attempts = [
        (["--order", " ", "--arrest-id", "6"], "order_reference"),  # without an order
        (["--order", "MC-6", "--person-id", "62"], "no arrest of person 62"),  # another person's
        (["--order", "MC-6", "--arrest-id", "5"], "neither sealed nor expunged"),  # unsealed
        (["--order", "MC-6", "--person-id", "50"], "neither sealed nor expunged"),
    ]
    for args, message in attempts:
        refused = runner.invoke(audit_cli, ["shred", *args, *db_option])
        assert refused.exit_code == 1 and message in refused.output, refused.output
    assert count(fresh_db, "audit.shred", Outcome.REFUSED) == len(attempts)
    assert all(has_content(fresh_db, e) for e in (misuse, sealed, other))
    done = runner.invoke(audit_cli, ["shred", "--order", "MC-6", "--person-id", "60", *db_option])
    assert done.exit_code == 0 and "1 audit entries under order MC-6" in done.output
    assert not has_content(fresh_db, sealed) and has_content(fresh_db, misuse)
    assert count(fresh_db, "audit.shred", Outcome.OK) == 1
