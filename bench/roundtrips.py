"""Count what a unit of work costs the database, measured at the driver: statements and round trips.

PostgreSQL: psycopg's libpq protocol trace of every connection checked out while counting is
read back. A statement is an Execute (extended protocol) or a Query (simple protocol: BEGIN,
COMMIT); a round trip is one turn of the conversation (the client sends, then waits for the
server), so statements sent together in a pipeline count once. The pool's liveness ping, when
the engine pings, runs before the checkout event starts the trace and is added: one statement
and one round trip per checkout.

SQLite: the statements the library runs (its trace callback, BEGIN and COMMIT included); there
is no network, so round trips are None.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from sqlalchemy import Engine, event


def _wire(trace: str) -> tuple[int, int]:
    """(statements, round trips) in a libpq trace."""
    statements = turns = 0
    last = "B"
    for line in trace.splitlines():
        parts = line.split("\t")
        direction = parts[0].strip()[:1]
        if direction == "F":
            turns += last == "B"
            statements += len(parts) > 2 and parts[2].split(" ")[0] in ("Execute", "Query")
        if direction in ("F", "B"):
            last = direction
    return statements, turns


class Counter:
    """Statements and round trips of the connections some engines check out while counting."""

    def __init__(self, *engines: Engine) -> None:
        self.engines = tuple(dict.fromkeys(engines))
        self.postgresql = self.engines[0].dialect.name == "postgresql"
        self.on = False
        self.checkouts = self.pings = self.sqlite_statements = 0
        self._traced: list[Any] = []
        self._file = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by close()
        self._listeners: list[Any] = []
        for engine in self.engines:
            listener = partial(self._checkout, engine.pool)
            self._listeners.append(listener)
            event.listen(engine, "checkout", listener)

    def _sqlite_statement(self, _sql: str) -> None:
        self.sqlite_statements += self.on

    def _checkout(self, pool: Any, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if not self.on:
            return
        self.checkouts += 1
        self.pings += bool(getattr(pool, "_pre_ping", False))
        if dbapi_connection in self._traced:
            return
        self._traced.append(dbapi_connection)
        if not self.postgresql:
            dbapi_connection.set_trace_callback(self._sqlite_statement)
            return
        from psycopg.pq import Trace

        dbapi_connection.pgconn.trace(self._file.fileno())
        dbapi_connection.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)

    @contextmanager
    def counting(self) -> Iterator[None]:
        """Count what runs inside the block."""
        self.checkouts = self.pings = self.sqlite_statements = 0
        self._file.seek(0)
        self._file.truncate()
        self.on = True
        try:
            yield
        finally:
            self.on = False
            for connection in self._traced:
                if self.postgresql:
                    connection.pgconn.untrace()
                else:
                    connection.set_trace_callback(None)
            self._traced.clear()

    def figures(self) -> dict[str, Any]:
        """Checkouts, statements and round trips of the last counted block."""
        if not self.postgresql:
            return {
                "checkouts": self.checkouts,
                "statements": self.sqlite_statements,
                "round_trips": None,
            }
        self._file.flush()
        self._file.seek(0)
        statements, turns = _wire(self._file.read())
        return {
            "checkouts": self.checkouts,
            "statements": statements + self.pings,
            "round_trips": turns + self.pings,
        }

    def close(self) -> None:
        """Stop listening and drop the trace file."""
        for engine, listener in zip(self.engines, self._listeners, strict=True):
            event.remove(engine, "checkout", listener)
        self._file.close()


def count(engines: tuple[Engine, ...], unit: Callable[[], object]) -> dict[str, Any]:
    """Run `unit` once and report its checkouts, statements and round trips."""
    counter = Counter(*engines)
    try:
        with counter.counting():
            unit()
        return counter.figures()
    finally:
        counter.close()
