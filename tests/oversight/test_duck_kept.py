"""A kept DuckDB file (``oversight.duck_kept``) brought up to the store holds what a fresh copy
holds, and the detectors read the same from it.

The store changes between bring-ups the ways a running site changes it: new entries (some
integrated later than others, so the facts refresh reads them in a later step), a person
amended, a charging decision, an arrest sealed and its entries crypto-shredded (their content
NULL in place, their facts purged when the refresh reads the shredding entry's leaf). After each
step every copied table of the kept file equals a fresh copy's, row for row, and every
detector's drafts over the whole store are the same. A file made from another store is
refused naming the setting; a file of another definition is built again; a second run on the
same file is told the file is in use; a bring-up that fails part-way leaves the file as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from openpars.audit import log
from openpars.audit.shred import shred
from openpars.db import Database
from openpars.errors import InvalidInput
from openpars.oversight import duck, duck_kept, facts
from openpars.oversight.flags import DETECTORS, FlagDraft
from openpars.records import workflow
from openpars.records.amendments import amend_person, seal_arrest
from openpars.records.enums import InvolvementRole
from openpars.records.models import Involvement
from openpars.records.schemas import ChargingDecisionCreate, PersonAmend, SealCreate
from tests.conftest import BACKEND
from tests.factories import World, build_world
from tests.oversight.harness import Traffic, build_traffic

pytest.importorskip("duckdb_engine")

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql", reason="DuckDB attaches a PostgreSQL store"
)

ORDER = "CP-51-MD-0042-2026"


def _url(store: Database) -> Any:
    with store.session() as session:
        return session.get_bind().url


def _tables(reader: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every copied table's rows, sorted (the kept file's order is its own)."""
    return {
        table: sorted(
            reader.execute(text(f'SELECT * FROM main."{table}"')).all(),
            key=repr,
        )
        for table in duck.DEFAULT_COPIED
    }


def _drafts(reader: Session) -> list[FlagDraft]:
    found = [draft for detector in DETECTORS for draft in detector(reader, None, None)]
    return sorted(found, key=lambda d: (d.detector, d.dedupe_key))


@contextmanager
def _kept(url: Any, path: Path) -> Iterator[Session]:
    with duck.reader(url, kept_file=path) as reader:
        yield reader


def _same(url: Any, path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The kept file brought up equals a fresh copy, table by table and draft by draft."""
    with _kept(url, path) as kept, duck.reader(url) as fresh:
        kept_rows, fresh_rows = _tables(kept), _tables(fresh)
        for table in duck.DEFAULT_COPIED:
            assert kept_rows[table] == fresh_rows[table], table
        assert _drafts(kept) == _drafts(fresh)
    return kept_rows


def _refresh(store: Database) -> None:
    with store.session() as session:
        facts.refresh(session)


def _world(store: Database) -> tuple[World, Traffic]:
    with store.session() as session:
        world = build_world(session)
    traffic = build_traffic(store, world, seed=6)
    return world, traffic


def _arrestee(session: Session) -> tuple[int, int]:
    """An arrest read by an external agency and one of its arrestees."""
    row = session.execute(
        select(Involvement.arrest_id, Involvement.person_id)
        .join(facts.AccessFact, facts.AccessFact.person_id == Involvement.person_id)
        .where(Involvement.role == InvolvementRole.ARRESTEE)
        .order_by(Involvement.arrest_id)
        .limit(1)
    ).one()
    return int(row[0]), int(row[1])


def test_a_kept_file_brought_up_holds_what_a_fresh_copy_holds(
    fresh_db: Database, tmp_path: Path
) -> None:
    store, path = fresh_db, tmp_path / "kept.duckdb"
    world, traffic = _world(store)
    url = _url(store)
    # Half the log integrated and read by the facts: the file is built from that.
    with store.session() as session:
        log.integrate(session, limit=400)
    _refresh(store)
    first = _same(url, path)
    assert first["oversight_access_facts"]
    # The rest integrated later; a person amended and a charging decision, not refreshed yet.
    log.integrate_all(store)
    with store.session() as session:
        arrest_id, person_id = _arrestee(session)
        amend_person(
            session,
            actor=world.principals["intake"],
            person_id=person_id,
            data=PersonAmend.model_validate({"reason": "typo", "family_name": "Kept-Copy"}),
        )
        workflow.decide_charges(
            session,
            actor=world.principals["charging"],
            arrest_id=arrest_id,
            data=ChargingDecisionCreate.model_validate(
                {"outcome": "declined", "reason": "insufficient evidence"}
            ),
            now=traffic.start + timedelta(hours=1),
        )
    second = _same(url, path)
    assert len(second["audit_leaves"]) > len(first["audit_leaves"])
    # The facts refreshed: new facts, per-day rows merged, the timeline rebuilt.
    _refresh(store)
    third = _same(url, path)
    assert len(third["oversight_access_facts"]) > len(first["oversight_access_facts"])
    # A court order: the arrest sealed and the entries about it shredded; brought up before
    # the shredding entry is integrated, after, and after the refresh purges the facts.
    with store.session() as session:
        seal_arrest(
            session,
            actor=world.principals["clerk"],
            arrest_id=arrest_id,
            data=SealCreate(action="expunge", order_reference=ORDER, reason="court order"),
        )
        shredded = shred(
            session, actor=world.principals["clerk"], order_reference=ORDER, arrest_id=arrest_id
        )
    assert shredded
    _same(url, path)
    log.integrate_all(store)
    _same(url, path)
    _refresh(store)
    last = _same(url, path)
    entries = {row[0]: row for row in last["audit_entries"]}
    content = list(entries[shredded[0]]._fields).index("content")
    assert all(entries[i][content] is None for i in shredded)
    assert not {row[1] for row in last["oversight_access_facts"]} & set(shredded)


def test_a_file_of_another_store_is_refused_and_of_another_definition_built_again(
    fresh_db: Database, tmp_path: Path
) -> None:
    store, path = fresh_db, tmp_path / "kept.duckdb"
    _world(store)
    log.integrate_all(store)
    _refresh(store)
    url = _url(store)
    with _kept(url, path) as kept:
        built = len(_tables(kept)["audit_entries"])
    # Another store (the same log rewritten: its last leaf's hash differs) is refused.
    with store.session() as session:
        session.execute(text("ALTER TABLE audit_leaves DISABLE TRIGGER USER"))
        session.execute(
            text(
                "UPDATE audit_leaves SET leaf_hash = sha256(leaf_hash) "
                "WHERE leaf_index = (SELECT max(leaf_index) FROM audit_leaves)"
            )
        )
        session.execute(text("ALTER TABLE audit_leaves ENABLE TRIGGER USER"))
    with pytest.raises(InvalidInput) as refused, _kept(url, path):
        pass
    assert refused.value.field == duck_kept.SETTING
    assert "another store's copy" in str(refused.value)
    # A file of another definition (an older format) is built again, not read as it is.
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("UPDATE openpars_kept_copy SET value = 'older' WHERE key = 'definition'")
    con.execute("UPDATE openpars_kept_copy SET value = '0' WHERE key = 'leaves'")
    con.execute("DELETE FROM audit_entries WHERE id % 2 = 0")
    con.close()
    with _kept(url, path) as kept:
        assert len(_tables(kept)["audit_entries"]) == built
        meta = dict(kept.execute(text("SELECT key, value FROM openpars_kept_copy")).all())
    assert meta["definition"] != "older"


def test_a_file_in_use_by_another_run_is_a_clear_error(fresh_db: Database, tmp_path: Path) -> None:
    store, path = fresh_db, tmp_path / "kept.duckdb"
    _world(store)
    log.integrate_all(store)
    _refresh(store)
    url = _url(store)
    import multiprocessing

    ready, done = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.get_context("fork").Process(
        target=_hold, args=(str(url.render_as_string(hide_password=False)), path, ready, done)
    )
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(InvalidInput) as in_use, _kept(url, path):
            pass
        assert in_use.value.field == duck_kept.SETTING
        assert "in use by another run" in str(in_use.value)
    finally:
        done.set()
        holder.join(60)


def _hold(url: str, path: Path, ready: Any, done: Any) -> None:
    with duck.reader(url, kept_file=path):
        ready.set()
        done.wait(60)


def test_a_file_openpars_did_not_make_is_refused(fresh_db: Database, tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE invoices (id INTEGER)")
    con.close()
    with pytest.raises(InvalidInput) as refused, _kept(_url(fresh_db), path):
        pass
    assert refused.value.field == duck_kept.SETTING
    assert "not a copy openpars made" in str(refused.value)


def test_detect_at_the_console_with_a_kept_file(fresh_db: Database, tmp_path: Path) -> None:
    # ``openpars oversight detect --engine duckdb --duckdb-file PATH``: the file is built by
    # the first run and brought up by the next; the flags are the same as without it.
    import json

    from typer.testing import CliRunner

    from openpars.cli import app
    from openpars.oversight.models import Flag
    from tests.oversight.canary_site import add_reviewers

    store, path = fresh_db, tmp_path / "kept.duckdb"
    world, _traffic = _world(store)
    add_reviewers(store, world)
    log.integrate_all(store)
    url = _url(store).render_as_string(hide_password=False)

    def detect(*args: str) -> Any:
        command = ["oversight", "detect", "--as", "overseer", *args, "--db", url]
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    assert detect("--engine", "duckdb", "--duckdb-file", str(path))["new_flags"]
    assert path.is_file()
    with store.session() as session:
        keys = set(session.execute(select(Flag.detector, Flag.dedupe_key)).all())
    # Brought up (nothing new in the store but the first run's audit entry): nothing new found,
    # and the store engine finds nothing the kept file missed.
    assert detect("--engine", "duckdb", "--duckdb-file", str(path))["new_flags"] == []
    assert detect()["new_flags"] == []
    with store.session() as session:
        assert set(session.execute(select(Flag.detector, Flag.dedupe_key)).all()) == keys
    wrong = CliRunner().invoke(
        app, ["oversight", "detect", "--as", "overseer", "--duckdb-file", str(path), "--db", url]
    )
    assert wrong.exit_code != 0 and "duckdb_file" in wrong.stderr, wrong.stderr


def test_a_bring_up_that_fails_part_way_leaves_the_previous_file(
    fresh_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The log is caught up, then the derived tables' step fails: the file is as the previous
    # run left it (one DuckDB transaction), and the next opening brings it up whole.
    store, path = fresh_db, tmp_path / "kept.duckdb"
    _world(store)
    with store.session() as session:
        log.integrate(session, limit=400)
    _refresh(store)
    url = _url(store)
    before = _same(url, path)
    log.integrate_all(store)
    _refresh(store)

    def fails(*_args: Any) -> None:
        raise RuntimeError("interrupted after the log's rows")

    with monkeypatch.context() as patched:
        patched.setattr(duck_kept, "_catch_up_derived", fails)
        with pytest.raises(RuntimeError, match="interrupted"), _kept(url, path):
            pass
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        for table in ("audit_leaves", "oversight_access_facts"):
            count = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert count is not None and count[0] == len(before[table]), table
    finally:
        con.close()
    after = _same(url, path)
    assert len(after["audit_leaves"]) > len(before["audit_leaves"])
