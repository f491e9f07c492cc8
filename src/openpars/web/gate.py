"""The writer gate: on SQLite, one request at a time holds the database's write lock.

Every openpars transaction on SQLite begins IMMEDIATE and so holds the file's one write lock
until it ends. A request's transaction spans two steps on worker threads: the edge opens it and
authenticates the caller, then the endpoint reads, appends the audit entry and commits. Were
requests to wait for the write lock inside worker threads (SQLite's busy handler), enough of them
would occupy every worker thread while the request holding the lock waits for a thread to run
its endpoint: each waiter then times out with "database is locked" (bench/http_load.py saw every
request of 64 concurrent clients fail so). Behind the gate a request waits on the event loop,
holding no thread and no connection, and enters when the previous one's transaction has ended.

PostgreSQL locks rows, not the database: there the gate lets every request through.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openpars.db import Database

# One lock per database and event loop (a test client may run several loops in turn).
_LOCKS: weakref.WeakKeyDictionary[
    Database, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
] = weakref.WeakKeyDictionary()


def _lock_of(db: Database) -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    per_loop = _LOCKS.setdefault(db, weakref.WeakKeyDictionary())
    lock = per_loop.get(loop)
    if lock is None:
        lock = per_loop[loop] = asyncio.Lock()
    return lock


@asynccontextmanager
async def writer_gate(db: Database) -> AsyncIterator[None]:
    """Hold the database's writer gate for the block (SQLite); pass straight through otherwise."""
    if db.dialect != "sqlite":
        yield
        return
    async with _lock_of(db):
        yield
