"""Pooled PostgreSQL connections are pinged only after sitting idle (db.pooled_postgresql).

A ping on every checkout cost every request a round trip; a connection in steady use was just
seen alive. A dead idle connection is replaced before anyone uses it; a connection that dies
while in steady use fails its statement (nothing is returned), and the pool starts afresh.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from openpars import db as dbmod
from openpars.db import Database, make_unpooled_engine
from tests.conftest import BACKEND, PG_ADMIN_URL

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="a pool of network connections")


@pytest.fixture
def pooled(fresh_db: Database) -> Iterator[Engine]:
    engine = dbmod.pooled_postgresql(fresh_db.bind.engine.url)
    yield engine
    engine.dispose()


def _backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _terminate(pid: int) -> None:
    admin = make_unpooled_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    finally:
        admin.dispose()


def test_a_dead_idle_connection_is_replaced_before_use(
    pooled: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend(pooled)
    _terminate(first)
    monkeypatch.setattr(dbmod, "IDLE_PING_S", 0.0)
    second = _backend(pooled)
    assert second != first


def test_a_connection_in_steady_use_is_not_pinged_and_a_dead_one_fails_then_recovers(
    pooled: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dbmod, "IDLE_PING_S", 3600.0)
    first = _backend(pooled)
    _terminate(first)
    with pytest.raises(OperationalError):
        _backend(pooled)
    # The disconnect invalidated the pool: the next checkout is a fresh connection.
    assert _backend(pooled) != first
