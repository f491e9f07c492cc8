"""The ticker's loop: a failed round is logged and retried; rounds that did work are logged."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from openpars.db import Base, Database, make_engine
from openpars.governance.jobs import Ticker
from tests.conftest import new_database_url
from tests.factories import build_world
from tests.governance.helpers import build_gov

LOGGER = "openpars.governance"


@pytest.fixture
def empty_db(tmp_path: Path) -> Iterator[Database]:
    """A database with no schema yet: every tick fails until the tables exist."""
    url, drop = new_database_url(tmp_path)
    engine = make_engine(url)
    yield Database(engine)
    engine.dispose()
    drop()  # type: ignore[operator]


def _wait_for(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the ticker did not get there in time"
        time.sleep(0.02)


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_a_failed_round_is_logged_and_the_next_one_does_the_work(
    empty_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    ticker = Ticker(empty_db, interval=0.05)
    ticker.start()
    try:
        _wait_for(lambda: bool(_records(caplog, logging.ERROR)))
        failed = _records(caplog, logging.ERROR)[0]
        assert failed.getMessage() == "governance tick failed; retrying in 0 s"
        assert failed.exc_info is not None
        # The site comes up; a proposal's deadline has already passed.
        assert isinstance(empty_db.bind, Engine)
        Base.metadata.create_all(empty_db.bind)
        with empty_db.session() as session:
            world = build_world(session)
        gov = build_gov(empty_db, world)
        gov.propose(now=gov.at(days=-2), deadline=gov.at(days=-1))
        _wait_for(lambda: bool(_records(caplog, logging.INFO)))
    finally:
        ticker.stop()
    done = [r.getMessage() for r in _records(caplog, logging.INFO)]
    assert done[0] == "governance tick: proposal.failed"
    assert ticker._thread is not None and not ticker._thread.is_alive()


def test_stopping_a_ticker_that_never_started_is_harmless(empty_db: Database) -> None:
    # An app whose startup failed before the ticker started still runs its shutdown.
    ticker = Ticker(empty_db, interval=30)
    started = time.monotonic()
    ticker.stop()
    assert time.monotonic() - started < 1
    assert ticker._thread is None
