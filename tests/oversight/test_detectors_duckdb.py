"""Every detector gives the same drafts on DuckDB reading the store as on PostgreSQL.

DuckDB (``oversight.duck``: the PostgreSQL scanner shipped by the PyPI package of the same
version, loaded by path; the store ATTACHed read-only, its tables as views with naive UTC
instants) runs each detector's own statements in their DuckDB spellings (dialect ``duckdb``).
Over the harness's traffic, whose misuse fires every detector, each detector's drafts (rule,
threshold, subject, entries, instant) over the whole store, over the traffic's period and over
one day of it (the daily run's history read from the per-day rows) must equal PostgreSQL's.
Then the flags found on DuckDB are stored through the store's own transaction and audited as
a PostgreSQL run's (``review.run_detectors`` with ``reader``).
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from openpars.audit import log
from openpars.audit.models import AuditEntry
from openpars.cli import app
from openpars.db import Database
from openpars.oversight import detectors as d
from openpars.oversight import duck, facts, review
from openpars.oversight.flags import DETECTORS, DetectionPeriod, FlagDraft
from openpars.oversight.models import Flag, FlagEntry
from tests.conftest import BACKEND
from tests.factories import build_world
from tests.oversight.canary_site import add_reviewers
from tests.oversight.harness import build_traffic

pytest.importorskip("duckdb_engine")

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql",
    reason="DuckDB attaches the PostgreSQL store here; a SQLite store's instants are text",
)


NAMES = {
    d.BURST,
    d.WILDCARD,
    d.SEQUENTIAL,
    d.ZERO_HITS,
    d.DATE_SWEEP,
    d.SHARED_CASE,
    d.MANY_USERS,
    d.OWN_NAME,
    d.SKEW,
    d.NEVER_CHARGED,
    d.OFF_HOURS,
    d.DORMANT,
}


def _drafts(found: list[FlagDraft]) -> list[FlagDraft]:
    return sorted(found, key=lambda d: (d.detector, d.dedupe_key))


@pytest.mark.parametrize("seed", [1, 2])
def test_every_detector_finds_the_same_on_duckdb(fresh_db: Database, seed: int) -> None:
    store = fresh_db
    with store.session() as session:
        world = build_world(session)
    traffic = build_traffic(store, world, seed=seed)
    with store.session() as session:
        log.integrate(session)
    with store.session() as session:
        facts.refresh(session)
    with store.session() as session:
        url = session.get_bind().url
    start = datetime.combine(traffic.start.date(), time(), traffic.start.tzinfo)
    end = datetime.combine(traffic.end.date() + timedelta(days=1), time(), traffic.end.tzinfo)
    busiest = datetime.combine(traffic.end.date(), time(), traffic.end.tzinfo)
    periods = [
        None,
        DetectionPeriod(start=start, end=end),
        DetectionPeriod(start=busiest, end=busiest + timedelta(days=1)),
    ]
    fired: set[str] = set()
    with duck.reader(url) as reader, store.session() as session:
        assert reader.get_bind().dialect.name == "duckdb"
        for period in periods:
            for detector in DETECTORS:
                on_pg = _drafts(detector(session, period, None))
                on_duck = _drafts(detector(reader, period, None))
                assert on_duck == on_pg, (detector.__name__, period)
                fired |= {draft.detector for draft in on_pg}
    # Not vacuous: every detector of issue 13 fired on this traffic (on both engines alike).
    assert fired >= NAMES, NAMES - fired


def test_flags_found_on_duckdb_are_stored_and_audited_in_the_store(fresh_db: Database) -> None:
    store = fresh_db
    with store.session() as session:
        world = build_world(session)
    build_traffic(store, world, seed=3)
    add_reviewers(store, world)
    overseer = world.principals["overseer"]
    with store.session() as session:
        log.integrate(session)
    with store.session() as session:
        facts.refresh(session)
        url = session.get_bind().url
    with duck.reader(url) as reader:
        expected = {
            (draft.detector, draft.dedupe_key, tuple(sorted(set(draft.entry_ids))))
            for detector in DETECTORS
            for draft in detector(reader, None, None)
        }
        with store.session() as session:
            audited = session.scalar(select(func.count()).select_from(AuditEntry))
            created = review.run_detectors(session, actor=overseer, reader=reader)
        with store.session() as session:
            again = review.run_detectors(session, actor=overseer, reader=reader)
    assert created and not again
    with store.session() as session:
        rows = session.execute(
            select(Flag.detector, Flag.dedupe_key, FlagEntry.entry_id).join(
                FlagEntry, FlagEntry.flag_id == Flag.id
            )
        ).all()
        runs = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "oversight.detectors.run")
        ).all()
        after = session.scalar(select(func.count()).select_from(AuditEntry))
    stored: dict[tuple[str, str], set[int]] = {}
    for detector_name, key, entry_id in rows:
        stored.setdefault((detector_name, key), set()).add(entry_id)
    assert {(d, k, tuple(sorted(e))) for (d, k), e in stored.items()} == expected
    assert len(runs) == 2 and after == (audited or 0) + 2


def _detect(url: str, *args: str) -> Any:
    command = ["oversight", "detect", "--as", "overseer", *args, "--db", url]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_detect_at_the_console_on_duckdb(fresh_db: Database) -> None:
    # ``openpars oversight detect --engine duckdb``: the new flags are the store engine's own
    # (the same findings, stored once: the run on the store after it finds nothing new).
    store = fresh_db
    with store.session() as session:
        world = build_world(session)
    build_traffic(store, world, seed=4)
    add_reviewers(store, world)
    with store.session() as session:
        log.integrate(session)
    assert isinstance(store.bind, Engine)
    url = store.bind.url.render_as_string(hide_password=False)
    # The facts are not refreshed here: the command brings them up to the log and commits.
    found = _detect(url, "--engine", "duckdb")
    assert found["new_flags"]
    with store.session() as session:
        keys = set(session.execute(select(Flag.detector, Flag.dedupe_key)).all())
        engine = session.scalars(
            select(AuditEntry.content).where(AuditEntry.action == "oversight.detectors.run")
        ).one()
    assert b'"engine":"duckdb"' in (engine or b"").replace(b" ", b"")
    assert _detect(url)["new_flags"] == []
    with store.session() as session:
        assert set(session.execute(select(Flag.detector, Flag.dedupe_key)).all()) == keys
        assert {k[0] for k in keys} >= NAMES


def test_detect_on_duckdb_refuses_a_sqlite_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(
        app, ["oversight", "detect", "--as", "overseer", "--engine", "duckdb", "--db", url]
    )
    assert result.exit_code != 0
    assert "engine" in result.stderr and "PostgreSQL" in result.stderr, result.stderr


def test_detect_on_duckdb_without_its_packages_names_them(
    fresh_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deployment installed without the dev extra: the console names the engine and the
    # missing package, and nothing is written (not even the facts' refresh).
    monkeypatch.setattr(duck, "_NEEDED", (*duck._NEEDED, "openpars_absent_module"))
    before = _entries(fresh_db)
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        app, ["oversight", "detect", "--as", "overseer", "--engine", "duckdb", "--db", url]
    )
    assert result.exit_code != 0
    assert "engine duckdb needs the Python packages openpars_absent_module" in result.stderr
    assert _entries(fresh_db) == before


def _entries(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry)) or 0
