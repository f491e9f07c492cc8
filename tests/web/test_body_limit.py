"""Issue 10 item 14: the body limit bounds what is read, chunked bodies included.

The attacker sends 50 MB with no Content-Length (``Transfer-Encoding: chunked``). The body is
produced by a generator that counts what the server pulled from it: the server must stop a
little past the limit, not read the rest, and answer 413 in the error envelope.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2
from fastapi import FastAPI

from openpars.config import Settings
from openpars.db import Database
from openpars.web.app import create_app
from tests.factories import World
from tests.records.helpers import API, row_counts

CHUNK = 64 * 1024
TOTAL = 50 * 1024 * 1024


class CountingBody:
    """An endless-looking chunked body that records how many bytes were taken from it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # Starts like JSON so nothing but its size is wrong with it.
        yield b'{"narrative": "'
        while self.pulled < self.total:
            self.pulled += CHUNK
            yield b"x" * CHUNK


async def _post(app: FastAPI, body: CountingBody, headers: dict[str, str]) -> httpx2.Response:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.post(
            f"{API}/arrests",
            content=body,
            headers={**headers, "content-type": "application/json"},
        )


def test_chunked_body_past_the_limit_is_cut_off(
    settings: Settings, db: Database, world: World
) -> None:
    app = create_app(settings, database=db)
    body = CountingBody(TOTAL)
    before = row_counts(db)
    response = asyncio.run(_post(app, body, world.auth("intake")))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["field"] == "body"
    # Read up to the limit and one chunk more, then stopped: not the 50 MB.
    assert body.pulled <= settings.max_request_bytes + 2 * CHUNK
    assert row_counts(db) == before


def test_chunked_body_is_refused_before_the_caller_is_known(
    settings: Settings, db: Database
) -> None:
    """The limit protects the server from anyone, so it runs before authentication."""
    app = create_app(settings, database=db)
    body = CountingBody(TOTAL)
    response = asyncio.run(_post(app, body, {}))
    assert response.status_code == 413
    assert body.pulled <= settings.max_request_bytes + 2 * CHUNK


def test_declared_length_past_the_limit_reads_nothing(
    settings: Settings, db: Database, world: World
) -> None:
    app = create_app(settings, database=db)
    body = CountingBody(TOTAL)
    headers = {**world.auth("intake"), "content-length": str(TOTAL)}
    response = asyncio.run(_post(app, body, headers))
    assert response.status_code == 413
    assert body.pulled == 0


def test_chunked_body_under_the_limit_goes_through(
    settings: Settings, db: Database, world: World
) -> None:
    """A small chunked body is read whole and validated as usual (here: a schema error)."""
    app = create_app(settings, database=db)
    body = CountingBody(3 * CHUNK)
    response = asyncio.run(_post(app, body, world.auth("intake")))
    # The JSON never closes its string: the whole body was read, then found undecodable.
    assert response.status_code == 422
    assert body.pulled == 3 * CHUNK
