"""The log key as an operator with bad intentions tries it: lose it, replace it, re-sign.

A key is made only for a log that has signed nothing yet; once checkpoints exist the server,
the publisher and the console refuse a missing or different key and say what to do. The public
key is published (API, console) so anyone can check a checkpoint.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from openpars.audit import checkpoints, log, notes
from openpars.audit.models import AuditEntry
from openpars.cli import app as openpars_cli
from openpars.config import Settings
from openpars.db import Database
from openpars.web.app import create_app
from tests.audit.test_log import ORIGIN, add_entries
from tests.audit.test_log_export import verify

REFUSED_MISSING = "signing key file"
REFUSED_OTHER = "is not the key that signed the log"


def url_of(db: Database) -> str:
    """The database URL with its password, for the console's --db."""
    return db.bind.engine.url.render_as_string(hide_password=False)  # type: ignore[union-attr]


def site(db: Database, tmp_path: Path) -> Settings:
    """A site whose log has entries and a signed checkpoint."""
    settings = Settings(
        database_url=url_of(db), log_origin=ORIGIN, log_key_path=tmp_path / "log.key"
    )
    add_entries(db, 3)
    log.integrate_all(db)
    with db.session() as session:
        assert checkpoints.publish(session, settings=settings) is not None
    return settings


def replace_key(settings: Settings) -> str:
    """Overwrite the key file with a new key of the same origin; return the new public key."""
    skey, vkey = notes.generate_keys(ORIGIN)
    assert settings.log_key_path is not None
    settings.log_key_path.write_text(skey + "\n", encoding="ascii")
    return vkey


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    """Run `openpars ...` against the site, as the operator at the console would."""
    env = {"OPENPARS_LOG_KEY_PATH": str(settings.log_key_path), "OPENPARS_LOG_ORIGIN": ORIGIN}
    result = CliRunner().invoke(openpars_cli, [*args, "--db", settings.database_url], env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize("attack", ["delete", "replace"])
def test_a_lost_or_replaced_key_stops_the_server_the_publisher_and_the_console(
    fresh_db: Database, tmp_path: Path, attack: str
) -> None:
    settings = site(fresh_db, tmp_path)
    with fresh_db.session() as session:
        published = checkpoints.latest(session).log_vkey
    assert settings.log_key_path is not None
    if attack == "delete":
        settings.log_key_path.unlink()
        expected = REFUSED_MISSING
    else:
        replace_key(settings)
        expected = REFUSED_OTHER
    # The app does not start: the lifespan checks the key before serving anything.
    app = create_app(settings, database=fresh_db)
    with pytest.raises(checkpoints.LogKeyRefused) as refused, TestClient(app):
        pass  # pragma: no cover - the start-up must fail
    assert expected in refused.value.message and "restore" in refused.value.message
    assert published in refused.value.message
    # Nor does `openpars serve`, nor any console command that signs or prints the key.
    for command in (["serve", "--port", "1"], ["audit", "checkpoint"], ["audit", "key"]):
        code, output = cli(settings, *command)
        assert code != 0 and expected in " ".join(output.split()), (command, output)
    # The publisher thread refuses too, whatever key it was handed.
    with fresh_db.session() as session, pytest.raises(checkpoints.LogKeyRefused):
        checkpoints.publish(session, settings=settings)
    # Nothing was signed under a new key and no key file was made where one was deleted.
    with fresh_db.session() as session:
        assert checkpoints.latest(session).log_vkey == published
    if attack == "delete":
        assert not settings.log_key_path.exists()


def test_a_key_replaced_while_the_server_runs_is_refused_at_the_next_checkpoint(
    fresh_db: Database, tmp_path: Path
) -> None:
    settings = site(fresh_db, tmp_path)
    publisher = log.Publisher(fresh_db, settings)
    publisher.key = checkpoints.check_key(settings, fresh_db)
    replace_key(settings)
    add_entries(fresh_db, 1)
    with pytest.raises(checkpoints.LogKeyRefused, match="not the key that signed"):
        publisher.step(0.0)


def test_a_key_is_made_only_for_an_empty_log_loudly_and_is_published(
    fresh_db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="openpars.audit.log"):
        settings = site(fresh_db, tmp_path)
    assert "generated a NEW audit log signing key" in caplog.text
    with fresh_db.session() as session:
        vkey = checkpoints.latest(session).log_vkey
        announced = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "audit.log_key.generated")
        ).all()
    assert vkey in caplog.text and announced == ["audit.log_key.generated"]
    # Published without a token on the API, and on the console, byte for byte the same.
    app = create_app(settings, database=fresh_db)
    with TestClient(app) as client:
        response = client.get("/api/v1/audit/key")
        assert response.status_code == 200
        assert response.text == vkey + "\n"
        assert response.headers["content-type"].startswith("text/plain")
        # The key verifies the published checkpoint, which is what a stakeholder does with it.
        note = client.get("/api/v1/audit/checkpoint").text
        notes.verify_checkpoint(note, notes.parse_verifier_key(response.text.strip()))
    code, output = cli(settings, "audit", "key")
    assert (code, output) == (0, vkey + "\n")


def test_the_key_endpoint_before_any_key_exists(tmp_path: Path, fresh_db: Database) -> None:
    settings = Settings(
        database_url=url_of(fresh_db), log_origin=ORIGIN, log_key_path=tmp_path / "log.key"
    )
    # Served over the test's own app without the lifespan (which would make the key).
    response = TestClient(create_app(settings, database=fresh_db)).get("/api/v1/audit/key")
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "log_key"


def resign(export_text: str, skey: str) -> str:
    """The export with every checkpoint signed again by another key (what a key thief does)."""
    signer = notes.parse_signer_key(skey)
    lines = []
    for line in export_text.splitlines(keepends=True):
        if line.startswith("checkpoint "):
            body = notes.parse_note(base64.b64decode(line.split(" ")[1])).text
            line = (
                "checkpoint " + base64.b64encode(notes.sign_note(body, [signer]).encode()).decode()
            )
            line += "\n"
        lines.append(line)
    return "".join(lines)


def test_a_real_export_unwitnessed_and_re_signed(fresh_db: Database, tmp_path: Path) -> None:
    settings = site(fresh_db, tmp_path)
    # The stakeholder pins the key the site published (here from the API, without a token).
    with TestClient(create_app(settings, database=fresh_db)) as client:
        published = client.get("/api/v1/audit/key").text.strip()
    code, output = cli(settings, "audit", "export", "--out", str(tmp_path / "log.txt"))
    assert code == 0, output
    path = tmp_path / "log.txt"
    plain = verify(path, "--log-key", published)
    assert plain.returncode == 1
    assert "NOT WITNESSED" in plain.stderr and "--allow-unwitnessed" in plain.stderr
    assert verify(path, "--log-key", published, "--allow-unwitnessed").returncode == 0
    # Re-signed under a key of the same name: refused against the published key.
    forged_skey, forged_vkey = notes.generate_keys(ORIGIN)
    forged = tmp_path / "forged.txt"
    forged.write_text(resign(path.read_text(), forged_skey))
    assert verify(forged, "--log-key", forged_vkey, "--allow-unwitnessed").returncode == 0
    refused = verify(forged, "--log-key", published, "--allow-unwitnessed")
    assert refused.returncode == 1
    assert "no signature by the log key" in refused.stderr
