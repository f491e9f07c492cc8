"""A refresh of many leaves is a bulk load (``facts._bulk_load``): the facts' and queries'
indexes dropped while the rows go in and built after, larger sort memory on PostgreSQL, one
range instead of batches. Its rows must be those of a refresh in small batches with every
index kept, from the first leaf and from far behind; the indexes must come back as the schema
declares them; and on PostgreSQL a reader holding the facts must neither wait behind it nor
deadlock with it (the refresh then keeps its indexes and batches)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from openpars.audit import log
from openpars.db import Database
from openpars.oversight import facts, flags
from openpars.oversight.detection import DetectionPeriod
from tests.conftest import BACKEND
from tests.factories import World
from tests.oversight.harness import build_traffic

# Every derived table the refresh writes, every column but the facts' generated id, in order.
TABLES = {
    "oversight_access_facts": (
        "entry_id, person_id, at, user_id, agency_id, agreement_id, agreement_version, purpose, "
        "case_reference, on_behalf_of, action, criteria, name_given, identifier_given, "
        "result_count",
        "entry_id, person_id",
    ),
    "oversight_access_queries": ("*", "entry_id"),
    "oversight_access_refusals": ("*", "entry_id"),
    "oversight_user_days": ("*", "user_id, agency_id, day"),
    "oversight_charge_timeline": ("*", "arrest_id, start_at"),
    "oversight_arrestee_arrests": ("*", "person_id, arrest_id"),
    "oversight_watermarks": ("*", "name"),
}
NEVER = 10**12  # bulk_leaves no refresh reaches


def _rows(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: [
            tuple(r) for r in session.execute(text(f"SELECT {cols} FROM {table} ORDER BY {order}"))
        ]
        for table, (cols, order) in TABLES.items()
    }


def _indexes(session: Session) -> list[tuple[Any, ...]]:
    """The derived tables' index definitions as the database reports them."""
    if BACKEND == "postgresql":
        sql = (
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
            "('oversight_access_facts', 'oversight_access_queries', 'oversight_access_refusals', "
            "'oversight_user_days') "
            "ORDER BY indexname"
        )
    else:
        sql = (
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
            "('oversight_access_facts', 'oversight_access_queries', 'oversight_access_refusals', "
            "'oversight_user_days') "
            "ORDER BY name"
        )
    return [tuple(r) for r in session.execute(text(sql))]


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.bind, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.bind, "before_cursor_execute", record)


def _bulk(statements: list[str]) -> bool:
    return any(s.startswith("DROP INDEX") for s in statements)


@pytest.fixture
def traffic(db: Database, world: World) -> None:
    """The harness's eight weeks of external reads, every shape of query, nothing integrated."""
    build_traffic(db, world, seed=2)


def test_a_bulk_load_from_the_first_leaf_writes_the_rows_of_small_batches(
    db: Database, traffic: None
) -> None:
    with db.session() as s:
        assert log.integrate(s, limit=100_000) > 500
    with db.session() as s:
        indexes = _indexes(s)
        with _statements(db) as seen:
            bulk = facts.refresh(s, bulk_leaves=0)
        assert _bulk(seen), "the refresh from the first leaf was not a bulk load"
        assert _indexes(s) == indexes
        loaded = _rows(s)
        s.rollback()
    with db.session() as s, _statements(db) as seen:
        batched = facts.refresh(s, batch=7, bulk_leaves=NEVER)
        assert not _bulk(seen)
        assert batched == bulk and bulk.facts > 300
        assert _rows(s) == loaded


def test_a_bulk_load_far_behind_adds_to_the_rows_already_there(db: Database, traffic: None) -> None:
    """The facts read the log's first 200 leaves, then the rest in bulk (more leaves than were
    read): the per-day rows of the days both parts touch are merged, not written twice."""
    with db.session() as s:
        assert log.integrate(s, limit=200) == 200
    with db.session() as s:
        assert facts.refresh(s, bulk_leaves=NEVER).end == 200
    with db.session() as s:
        assert log.integrate(s, limit=100_000) > 200
    with db.session() as s, _statements(db) as seen:
        far = facts.refresh(s, bulk_leaves=0)
        assert _bulk(seen) and far.start == 200
        loaded = _rows(s)
        s.rollback()
    with db.session() as s, _statements(db) as seen:
        facts.refresh(s, batch=5, bulk_leaves=NEVER)
        assert not _bulk(seen)
        assert _rows(s) == loaded


def test_a_refresh_behind_by_fewer_leaves_than_it_read_keeps_its_indexes(
    db: Database, traffic: None
) -> None:
    with db.session() as s:
        log.integrate(s, limit=200)
        facts.refresh(s, bulk_leaves=NEVER)
        log.integrate(s, limit=150)
    with db.session() as s, _statements(db) as seen:
        again = facts.refresh(s, bulk_leaves=0)
        assert (again.start, again.end) == (200, 350) and not _bulk(seen)


@pytest.mark.skipif(BACKEND != "postgresql", reason="table locks and settings: PostgreSQL")
def test_a_bulk_load_does_not_wait_for_a_reader_of_the_facts(
    db: Database, engine: Engine, traffic: None
) -> None:
    """Another transaction reading the facts holds their share lock: the refresh keeps its
    indexes and batches instead of queueing its exclusive lock behind the reader (where every
    later reader would queue behind it, or a reader asking for the watermark would deadlock)."""
    with db.session() as s:
        log.integrate(s, limit=100_000)
    with db.session() as s:
        facts.refresh(s, bulk_leaves=0)
        loaded = _rows(s)
        s.rollback()
    reader = engine.connect()
    try:
        reader.execute(text("SELECT count(*) FROM oversight_access_facts")).scalar_one()
        with db.session() as s, _statements(db) as seen:
            # A refresh that queued for the lock would fail here, not hang the suite.
            s.execute(text("SELECT set_config('lock_timeout', '5s', true)"))
            memory = s.execute(text("SELECT current_setting('work_mem')")).scalar_one()
            facts.refresh(s, bulk_leaves=0)
            assert not _bulk(seen)
            assert any("NOWAIT" in x for x in seen)
            assert _rows(s) == loaded
            assert s.execute(text("SELECT current_setting('work_mem')")).scalar_one() == memory
            s.rollback()
    finally:
        reader.rollback()
        reader.close()


@pytest.mark.skipif(BACKEND != "postgresql", reason="server settings: PostgreSQL")
def test_a_bulk_load_sorts_in_more_memory_and_gives_the_setting_back(
    db: Database, traffic: None
) -> None:
    with db.session() as s:
        log.integrate(s, limit=100_000)
    memories: list[str] = []

    def probe(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("CREATE TEMPORARY TABLE"):
            cursor.execute("SELECT current_setting('work_mem')")
            memories.append(cursor.fetchone()[0])

    with db.session() as s:
        before = s.execute(text("SELECT current_setting('work_mem')")).scalar_one()
        event.listen(db.bind, "before_cursor_execute", probe)
        try:
            facts.refresh(s, bulk_leaves=0)
        finally:
            event.remove(db.bind, "before_cursor_execute", probe)
        assert memories == [facts.BULK_MEMORY]
        assert s.execute(text("SELECT current_setting('work_mem')")).scalar_one() == before
        s.rollback()


@pytest.mark.skipif(BACKEND != "postgresql", reason="parallel workers: PostgreSQL")
def test_a_bulk_load_stages_in_parallel_workers_and_writes_the_rows_of_small_batches(
    db: Database, traffic: None
) -> None:
    """The bulk load's staging (the JSON parse) is planned for parallel workers, which then do
    every scan (the leader only gathers), and the rows are those of a serial refresh in small
    batches; the planner settings are given back after the statement."""
    with db.session() as s:
        log.integrate(s, limit=100_000)
    plans: list[str] = []
    settings = ", ".join(f"current_setting('{n}')" for n in facts.PARALLEL_STAGING)

    def probe(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().startswith("CREATE TEMPORARY TABLE"):
            cursor.execute(f"EXPLAIN {statement}", parameters)
            plans.append("\n".join(r[0] for r in cursor.fetchall()))

    with db.session() as s:
        before = s.execute(text(f"SELECT {settings}")).one()
        # The test's tables are tiny: let the planner split them, and the workers do it all.
        s.execute(text("SELECT set_config('min_parallel_table_scan_size', '0', true)"))
        s.execute(text("SELECT set_config('parallel_leader_participation', 'off', true)"))
        event.listen(db.bind, "before_cursor_execute", probe)
        try:
            with _statements(db) as seen:
                facts.refresh(s, bulk_leaves=0)
        finally:
            event.remove(db.bind, "before_cursor_execute", probe)
        assert _bulk(seen) and len(plans) == 1
        assert "Gather" in plans[0], plans[0]
        assert s.execute(text(f"SELECT {settings}")).one() == before
        loaded = _rows(s)
        s.rollback()
    with db.session() as s:
        facts.refresh(s, batch=7, bulk_leaves=NEVER)
        assert _rows(s) == loaded and len(loaded["oversight_access_facts"]) > 300


@pytest.mark.skipif(BACKEND != "postgresql", reason="server settings: PostgreSQL")
def test_the_whole_stores_detectors_hash_in_more_memory_and_a_days_do_not(
    db: Database, traffic: None
) -> None:
    """Detectors over the whole store group millions of rows: their statements run with the
    bulk memory (PostgreSQL 15's spilling hash aggregate took minutes at 10M with 4 MB); a
    day's keep the server's setting, and the setting is given back after either."""
    with db.session() as s:
        log.integrate(s, limit=100_000)
    memories: list[str] = []

    def probe(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "oversight_access_facts" in statement and statement.lstrip().startswith("SELECT"):
            cursor.execute("SELECT current_setting('work_mem')")
            memories.append(cursor.fetchone()[0])

    with db.session() as s:
        facts.refresh(s)
        before = s.execute(text("SELECT current_setting('work_mem')")).scalar_one()
        day = DetectionPeriod(
            start=datetime(2026, 3, 2, tzinfo=UTC), end=datetime(2026, 3, 3, tzinfo=UTC)
        )
        event.listen(db.bind, "before_cursor_execute", probe)
        try:
            flags.run_detectors(s, refreshed=True)
            whole = list(memories)
            memories.clear()
            flags.run_detectors(s, period=day, refreshed=True)
        finally:
            event.remove(db.bind, "before_cursor_execute", probe)
        assert whole and set(whole) == {facts.BULK_MEMORY}
        assert memories and facts.BULK_MEMORY not in memories
        assert s.execute(text("SELECT current_setting('work_mem')")).scalar_one() == before
        s.rollback()
