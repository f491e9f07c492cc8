"""Many concurrent requests on one server: every one answered, each with its entry, none early.

Real commits (fresh_db) and the real app over ASGI; more concurrent requests than the server
has worker threads (40), the case in which SQLite's write lock once waited for a thread held
by its own waiters until every request failed with "database is locked".
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
from sqlalchemy import Connection, event, func, select

from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database
from openpars.web.app import create_app
from openpars.web.gate import writer_gate
from tests.factories import World, build_world

CLIENTS = 64


def _world(db: Database) -> World:
    with db.session() as session:
        return build_world(session)


def _entries(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def _searches(app: Any, headers: dict[str, str], n: int) -> list[httpx2.Response]:
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t", timeout=60) as client:
        return await asyncio.gather(
            *(
                client.get("/api/v1/persons", params={"name": "Sm"}, headers=headers)
                for _ in range(n)
            )
        )


def test_more_concurrent_reads_than_threads_all_answer_each_audited(
    fresh_db: Database, settings: Settings
) -> None:
    world = _world(fresh_db)
    before = _entries(fresh_db)
    app = create_app(settings, database=fresh_db)
    responses = asyncio.run(_searches(app, world.auth("reader"), CLIENTS))
    assert [r.status_code for r in responses] == [200] * CLIENTS
    assert _entries(fresh_db) == before + CLIENTS


def test_refusals_and_answers_mixed_all_come_back_each_audited(
    fresh_db: Database, settings: Settings
) -> None:
    # A refusal is audited by the error handler after the request's own unit has ended; with
    # the gate held by another request it must wait on the event loop, not block it.
    world = _world(fresh_db)
    before = _entries(fresh_db)
    app = create_app(settings, database=fresh_db)

    async def mixed() -> list[httpx2.Response]:
        answered, refused = await asyncio.gather(
            _searches(app, world.auth("reader"), CLIENTS // 2),
            _searches(app, {"Authorization": "Bearer not-a-token"}, CLIENTS // 2),
        )
        return [*answered, *refused]

    responses = asyncio.run(mixed())
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (CLIENTS // 2) + [401] * (CLIENTS // 2)
    assert _entries(fresh_db) == before + CLIENTS


def test_a_failed_commit_returns_no_data_and_the_next_request_goes_through(
    fresh_db: Database, settings: Settings
) -> None:
    world = _world(fresh_db)
    before = _entries(fresh_db)
    app = create_app(settings, database=fresh_db)
    failures = {"left": 1}

    def fail_once(_conn: Connection) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("disk full at commit")

    event.listen(fresh_db.bind, "commit", fail_once)
    try:
        first, second = asyncio.run(_in_turn(app, world.auth("reader")))
    finally:
        event.remove(fresh_db.bind, "commit", fail_once)
    assert first.status_code == 500
    assert "items" not in first.text and "Sm" not in first.text
    assert second.status_code == 200
    # The failed request's entry went with its transaction; only the second one's is kept.
    assert _entries(fresh_db) == before + 1


async def _in_turn(app: Any, headers: dict[str, str]) -> list[httpx2.Response]:
    first = await _searches(app, headers, 1)
    second = await _searches(app, headers, 1)
    return [*first, *second]


def test_the_gate_admits_one_request_at_a_time_on_sqlite_only(fresh_db: Database) -> None:
    inside = {"now": 0, "most": 0}

    async def hold() -> None:
        async with writer_gate(fresh_db):
            inside["now"] += 1
            inside["most"] = max(inside["most"], inside["now"])
            await asyncio.sleep(0.01)
            inside["now"] -= 1

    async def many() -> None:
        await asyncio.gather(*(hold() for _ in range(8)))

    asyncio.run(many())
    assert inside["most"] == (1 if fresh_db.dialect == "sqlite" else 8)
    # A second event loop gets a lock of its own (test clients run one loop per client).
    asyncio.run(many())
    assert inside["now"] == 0
