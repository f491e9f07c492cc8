"""Edges of the log server: key files, refusals, the CLI's other commands, the app lifespan."""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select
from typer.testing import CliRunner

from openpars.audit import checkpoints, log, merkle, notes, witness
from openpars.audit import export as exporting
from openpars.audit import repository as repo
from openpars.audit.cli import app as audit_cli
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database
from openpars.errors import AuditUnavailable, Conflict, Forbidden, InvalidInput, NotFound
from openpars.identity.principal import Principal
from openpars.identity.roles import Role
from openpars.web.app import create_app
from tests.audit import records
from tests.audit.test_log import (
    ORIGIN,
    add_entries,
    cosignature_line,
    leaf_hashes,
    log_settings,
    witness_keys,
)

READER = Principal(
    user_id=None, username="r", agency_id=None, agency_kind=None, roles=frozenset({Role.READER})
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=5))
def test_any_batching_gives_the_from_scratch_tree(db: Database, batches: list[int]) -> None:
    assert isinstance(db.bind, Connection)
    savepoint = db.bind.begin_nested()  # each example starts from the same log
    try:
        for batch in batches:
            add_entries(db, batch)
            with db.session() as session:
                log.integrate(session, limit=max(1, batch - 1))
        log.integrate_all(db)
        with db.session() as session:
            hashes = leaf_hashes(session)
            size = repo.tree_size(session)
            assert size == len(hashes)
            assert log.root_at(session, size) == merkle.root_from_leaf_hashes(hashes)
            frontier = log.load_frontier(session, size)
            assert merkle.root_from_frontier(frontier) == merkle.root_from_leaf_hashes(hashes)
    finally:
        savepoint.rollback()


def test_key_location_origin_and_a_mismatched_key(tmp_path: Path) -> None:
    sqlite = Settings(database_url=f"sqlite:///{tmp_path / 'site.db'}", site_name="City of X")
    assert checkpoints.key_path(sqlite) == tmp_path.resolve() / checkpoints.KEY_FILE
    assert checkpoints.log_origin(sqlite) == "City-of-X/audit"
    server = Settings(database_url="postgresql://db.example/openpars")
    assert checkpoints.key_path(server) == Path.cwd() / checkpoints.KEY_FILE
    settings_a = log_settings(tmp_path)
    checkpoints.key_file(settings_a, create=True)
    renamed = settings_a.model_copy(update={"log_origin": "other.example/audit"})
    with pytest.raises(notes.NoteError, match="OPENPARS_LOG_ORIGIN"):
        checkpoints.key_file(renamed, create=False)


def test_refusals_of_the_witness_service(db: Database, tmp_path: Path) -> None:
    signer, vkey = witness_keys("witness-da.example")
    impostor, _ = witness_keys("witness-da.example")  # same name, another key
    with db.session() as session:
        with pytest.raises(InvalidInput, match="not a C2SP verifier key"):
            witness.install(session, vkey="garbage+00000000+AAAA")
        added = witness.install(session, vkey=vkey)
        with pytest.raises(Conflict, match="is or was registered"):
            witness.install(session, vkey=vkey)
        with pytest.raises(Forbidden):
            witness.list_witnesses(session, actor=READER)
        cp = checkpoints.publish(session, settings=log_settings(tmp_path))
        assert cp is not None
        with pytest.raises(InvalidInput, match="key ID does not match"):
            witness.submit_cosignature(
                session, size=cp.size, cosignature=cosignature_line(cp.note, impostor), quorum=1
            )
        # A whole cosigned note is accepted as well as a bare line.
        whole = notes.add_cosignature(cp.note, signer, 1_700_000_000)
        done = witness.submit_cosignature(session, size=cp.size, cosignature=whole, quorum=1)
        assert done.final and done.witness == "witness-da.example"
        witness.retire(session, name=added.name)
        with pytest.raises(NotFound):
            witness.retire(session, name=added.name)
        # A witness that left comes back only under a new key name.
        with pytest.raises(Conflict, match="is or was registered"):
            witness.install(session, vkey=vkey)


def test_export_ranges_and_an_empty_log(db: Database, tmp_path: Path) -> None:
    settings = log_settings(tmp_path)
    with db.session() as session:
        with pytest.raises(InvalidInput, match="start must be"):
            exporting.export_range(session, start=-1)
        first = checkpoints.publish(session, settings=settings)
        assert first is not None
        add_entries(db, 5)
        log.integrate(session)
        later = checkpoints.publish(session, settings=settings)
        assert later is not None
        with pytest.raises(InvalidInput, match="no signed checkpoint"):
            exporting.export_range(session, start=later.size + 1)
        # An end between checkpoints snaps down to the older one.
        assert exporting.export_range(session, end=later.size - 1).end == first.size
        lines = list(exporting.export(session, settings=settings, start=first.size))
    # A range starting at a checkpoint's size carries that checkpoint right after the frontier.
    assert lines[1].startswith("frontier ") == (first.size > 0)
    assert lines[1 + (first.size > 0)].startswith("checkpoint ")
    assert lines[-1] == f"end {later.size}\n"


def test_proof_store_misses_and_failed_bulk_appends(db: Database) -> None:
    with pytest.raises(merkle.ProofError, match="not in the log"):
        log.PrefetchedStore({}).node(3, 1)
    with db.session() as session:
        # A real refusal by the database: an entry row it will not take, or an over-long action.
        if session.get_bind().dialect.name == "sqlite":
            session.connection().exec_driver_sql(
                "CREATE TRIGGER test_refuse BEFORE INSERT ON audit_entries "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
            event = AuditEvent(kind=AuditKind.READ, action="x", arrest_ids=[1])
        else:
            event = AuditEvent(kind=AuditKind.READ, action="x" * 101)
        savepoint = session.begin_nested()
        with pytest.raises(AuditUnavailable):
            log.append_many(session, [event])
        savepoint.rollback()


def test_a_failed_round_is_logged_and_the_loop_goes_on(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "log.key").write_text("not a key\n")
    publisher = log.Publisher(db, log_settings(tmp_path))
    calls = 0
    original = publisher.step

    def step(now: float | None = None) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            publisher._stop.set()
        return original(now)

    publisher.step = step  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="openpars.audit.log"):
        publisher.run()
    assert calls == 2
    assert "publication failed" in caplog.text


def test_the_app_runs_the_publisher_over_an_engine(fresh_db: Database, tmp_path: Path) -> None:
    settings = log_settings(tmp_path).model_copy(update={"checkpoint_min_interval_s": 0.01})
    app = create_app(settings, database=fresh_db)
    with TestClient(app) as client:
        for _ in range(500):
            if client.get("/api/v1/audit/checkpoint").status_code == 200:
                break
            time.sleep(0.01)  # the publisher's first round runs at start-up
        assert client.get("/api/v1/audit/checkpoint").status_code == 200


def test_cli_proofs_witnesses_and_shredding(
    fresh_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("OPENPARS_LOG_KEY_PATH", str(tmp_path / "log.key"))
    monkeypatch.setenv("OPENPARS_LOG_ORIGIN", ORIGIN)
    add_entries(fresh_db, 6, arrest_id=5)
    with fresh_db.session() as session:
        records.arrest(session, 5, order="MC-7")
    runner = CliRunner()
    db_option = ["--db", url]
    assert runner.invoke(audit_cli, ["checkpoint", *db_option]).exit_code == 0
    with fresh_db.session() as session:
        size = checkpoints.latest(session).size
        hashes = leaf_hashes(session)
    consistency = runner.invoke(audit_cli, ["proof", "--first", "2", *db_option])
    assert consistency.exit_code == 0
    proof = [base64.b64decode(line) for line in consistency.output.split()]
    root = merkle.root_from_leaf_hashes(hashes)
    merkle.verify_consistency(2, size, proof, merkle.root_from_leaf_hashes(hashes[:2]), root)
    both = runner.invoke(audit_cli, ["proof", "--first", "2", "--index", "1", *db_option])
    assert both.exit_code == 1 and "exactly one" in both.output
    exported = runner.invoke(audit_cli, ["export", *db_option])
    assert exported.exit_code == 0 and exported.output.endswith(f"end {size}\n")
    _, vkey = witness_keys("witness-city.example")
    # The console operator cannot register a witness: the direct command is gone, and its
    # proposal needs a stakeholder's designated voter (see tests/governance).
    assert runner.invoke(audit_cli, ["witness", "add", vkey, *db_option]).exit_code == 2
    with fresh_db.session() as session:
        witness.install(session, vkey=vkey)
    listed = runner.invoke(audit_cli, ["witness", "list", *db_option])
    assert "active" in listed.output and "witness-city.example" in listed.output
    shred = runner.invoke(audit_cli, ["shred", "--order", "MC-7", "--arrest-id", "5", *db_option])
    assert shred.exit_code == 0 and "6 audit entries" in shred.output
    with fresh_db.session() as session:
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions[-3:] == ["audit.export", "audit.witnesses.list", "audit.shred"]
    entries = runner.invoke(audit_cli, ["entries", "--limit", "3", *db_option])
    assert [json.loads(line)["id"] for line in entries.output.splitlines()] == [1, 2, 3]
