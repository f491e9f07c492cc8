"""Fixtures of the read-path tests."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator

import pytest
from psycopg.pq import Trace
from sqlalchemy import Engine, event

from openpars.db import Database
from tests.access.wire import statements_by_turn


@pytest.fixture
def conversation(fresh_db: Database) -> Iterator[Callable[[Callable[[], object]], list[list[str]]]]:
    """The statements of each round trip on the external login's connections while a unit runs."""
    engine = fresh_db.external_engine()
    assert isinstance(engine, Engine)
    traces: list[object] = []

    def trace(dbapi_connection: object, _record: object, _proxy: object) -> None:
        if traces:
            pgconn = dbapi_connection.pgconn  # type: ignore[attr-defined]
            pgconn.trace(traces[0].fileno())  # type: ignore[attr-defined]
            pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)

    def untrace(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.pgconn.untrace()  # type: ignore[attr-defined]

    event.listen(engine, "checkout", trace)
    event.listen(engine, "checkin", untrace)

    def record(unit: Callable[[], object]) -> list[list[str]]:
        with tempfile.TemporaryFile(mode="w+") as file:
            traces.append(file)
            try:
                unit()
            finally:
                traces.clear()
            file.seek(0)
            return statements_by_turn(file.read())

    yield record
    event.remove(engine, "checkout", trace)
    event.remove(engine, "checkin", untrace)
