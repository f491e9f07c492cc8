"""Exports from a real server database, checked by the independent verifier as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openpars.audit import checkpoints, log, witness
from openpars.audit import export as exporting
from openpars.audit import repository as repo
from openpars.audit.cli import app as audit_cli
from openpars.config import Settings
from openpars.db import Database
from tests.audit import records
from tests.audit.test_log import COURT, ORIGIN, add_entries, cosignature_line, witness_keys


def verify(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `openpars-verify export` in a separate interpreter, as a stakeholder would."""
    command = [sys.executable, "-m", "openpars_verify", "export", str(path), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def url_of(db: Database) -> str:
    return db.bind.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def site(fresh_db: Database, tmp_path: Path) -> tuple[Settings, list[str]]:
    """A log with shredded entries and several checkpoints, each cosigned by two witnesses."""
    settings = Settings(
        database_url=url_of(fresh_db), log_origin=ORIGIN, log_key_path=tmp_path / "log.key"
    )
    keys = [witness_keys(f"witness-{n}.example") for n in ("da", "court")]
    with fresh_db.session() as session:
        for _, vkey in keys:
            witness.install(session, vkey=vkey)
    with fresh_db.session() as session:
        records.arrest(session, 77, order="MC-51-MD-9-2026")
    publisher = log.Publisher(fresh_db, settings)
    for round_number, (count, arrest) in enumerate([(5, 77), (9, 78), (6, 77), (1, None)]):
        add_entries(fresh_db, count, arrest_id=arrest)
        if round_number == 2:
            with fresh_db.session() as session:
                log.shred(session, actor=COURT, order_reference="MC-51-MD-9-2026", arrest_id=77)
        cp = publisher.step(float(round_number * 100))
        assert cp is not None
        with fresh_db.session() as session:
            for signer, _ in keys:
                witness.submit_cosignature(
                    session, size=cp.size, cosignature=cosignature_line(cp.note, signer), quorum=2
                )
    vkey = checkpoints.check_key(settings, fresh_db).vkey
    trust = ["--log-key", vkey, "--quorum", "2"]
    for _, witness_vkey in keys:
        trust += ["--witness-key", witness_vkey]
    return settings, trust


def write_export(db: Database, settings: Settings, path: Path, *, start: int = 0) -> str:
    with db.session() as session:
        text = "".join(exporting.export(session, settings=settings, start=start))
    path.write_text(text, encoding="utf-8")
    return text


def test_the_verifier_accepts_a_real_export_with_shredded_entries(
    fresh_db: Database, site: tuple[Settings, list[str]], tmp_path: Path
) -> None:
    settings, trust = site
    text = write_export(fresh_db, settings, tmp_path / "log.txt")
    assert text.count("\nshredded ") == 11  # the 5 + 6 reads of arrest 77
    assert text.count("\ncheckpoint ") == 4
    result = verify(tmp_path / "log.txt", *trust)
    assert result.returncode == 0, result.stderr
    assert "11 shredded" in result.stdout and "4 checkpoints" in result.stdout
    # A range that starts mid-log carries the frontier and still verifies.
    write_export(fresh_db, settings, tmp_path / "tail.txt", start=7)
    tail = verify(tmp_path / "tail.txt", *trust)
    assert tail.returncode == 0, tail.stderr


def test_the_verifier_rejects_a_tampered_copy_naming_the_index(
    fresh_db: Database, site: tuple[Settings, list[str]], tmp_path: Path
) -> None:
    settings, trust = site
    lines = write_export(fresh_db, settings, tmp_path / "log.txt").splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if line.startswith("entry 12 "))
    tag, index, commitment, salt, content = lines[target].split(" ")
    # One changed character of the base64 content: a different entry behind the commitment.
    flipped = ("B" if content[5] != "B" else "C").join((content[:5], content[6:]))
    lines[target] = " ".join((tag, index, commitment, salt, flipped))
    (tmp_path / "tampered.txt").write_text("".join(lines), encoding="utf-8")
    result = verify(tmp_path / "tampered.txt", *trust)
    assert result.returncode == 1
    assert "index 12" in result.stderr
    # Dropping an entry is caught as well.
    del lines[target]
    (tmp_path / "dropped.txt").write_text("".join(lines), encoding="utf-8")
    dropped = verify(tmp_path / "dropped.txt", *trust)
    assert dropped.returncode == 1 and "index 12" in dropped.stderr


def test_cli_export_is_audited_and_verifies(
    fresh_db: Database,
    site: tuple[Settings, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, trust = site
    monkeypatch.setenv("OPENPARS_LOG_KEY_PATH", str(settings.log_key_path))
    monkeypatch.setenv("OPENPARS_LOG_ORIGIN", ORIGIN)
    runner = CliRunner()
    db_option = ["--db", url_of(fresh_db)]
    result = runner.invoke(audit_cli, ["export", "--out", str(tmp_path / "cli.txt"), *db_option])
    assert result.exit_code == 0, result.output
    verified = verify(tmp_path / "cli.txt", *trust)
    assert verified.returncode == 0, verified.stderr
    entries = runner.invoke(audit_cli, ["entries", "--limit", "1000", *db_option])
    assert '"action": "audit.export"' in entries.output
    # The export entry is not integrated yet; integrate and publish through the CLI.
    assert runner.invoke(audit_cli, ["integrate", *db_option]).exit_code == 0
    published = runner.invoke(audit_cli, ["checkpoint", *db_option])
    assert published.exit_code == 0 and published.output.startswith(ORIGIN + "\n")
    with fresh_db.session() as session:
        size = repo.tree_size(session)
    proof = runner.invoke(audit_cli, ["proof", "--index", "3", *db_option])
    assert proof.exit_code == 0 and len(proof.output.split()) == (size - 1).bit_length()
    refused = runner.invoke(audit_cli, ["shred", "--order", " ", "--arrest-id", "1", *db_option])
    assert refused.exit_code == 1 and "order_reference" in refused.output
