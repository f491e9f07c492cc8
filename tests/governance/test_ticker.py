"""The governance ticker runs tick in its own transaction; the app starts and stops it."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database
from openpars.governance.jobs import Ticker
from openpars.web.app import create_app
from tests.factories import build_world


def test_ticker_step_commits_one_audited_tick(fresh_db: Database) -> None:
    with fresh_db.session() as session:
        build_world(session)
        before = len(session.scalars(select(AuditEntry.id)).all())
    Ticker(fresh_db, interval=60).step()
    with fresh_db.session() as session:
        actions = session.scalars(select(AuditEntry.action)).all()[before:]
    # The first use of a fresh site sets (and logs) its default board once.
    assert actions == ["board.bootstrap", "governance.tick"]
    Ticker(fresh_db, interval=60).step()
    with fresh_db.session() as session:
        actions = session.scalars(select(AuditEntry.action)).all()[before + 2 :]
    assert actions == ["governance.tick"]


def test_app_runs_the_ticker_while_serving(fresh_db: Database, settings: Settings) -> None:
    with fresh_db.session() as session:
        build_world(session)
    fast = settings.model_copy(update={"governance_tick_interval_s": 0.05})
    with TestClient(create_app(fast, database=fresh_db)) as client:
        assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with fresh_db.session() as session:
                if session.scalars(
                    select(AuditEntry.id).where(AuditEntry.action == "governance.tick")
                ).first():
                    break
            time.sleep(0.05)
    with fresh_db.session() as session:
        ticks = session.scalars(
            select(AuditEntry.id).where(AuditEntry.action == "governance.tick")
        ).all()
    assert ticks
