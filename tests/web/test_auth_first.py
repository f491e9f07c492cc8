"""Issue 10 item 15: the caller is checked before any body or parameter is.

Tried as a stranger would: no token, a made-up token, and a valid token of the wrong role,
each sending a garbage body and out-of-range parameters to every route of the API. The answer
is always 401 or 403, never a 422 that describes the payload the route expects.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from openpars.audit.events import Outcome
from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database
from openpars.web.app import ROUTERS, create_app
from openpars.web.context import edge_of
from tests.factories import World, build_world
from tests.records.factories import arrest_payload
from tests.records.helpers import API, row_counts

# Every path parameter gets a value no column could hold, every query a nonsense value.
HUGE = "99999999999999999999"


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of the API (not /docs, /openapi.json or /healthz)."""
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]


def concrete(route: APIRoute) -> list[tuple[str, str]]:
    """(method, url) pairs for a route, with absurd path values and query parameters."""
    path = API + re.sub(r"\{[^}]+\}", HUGE, route.path) + "?offset=-5&limit=abc&name=%00"
    return [(method, path) for method in sorted(route.methods)]


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    """The real app over the test's database."""
    return create_app(settings, database=db)


def test_every_api_route_declares_its_edge(app: FastAPI) -> None:
    missing = [r.path for r in api_routes(app) if edge_of(r) is None]
    assert missing == []
    public = sorted(API + r.path for r in api_routes(app) if (e := edge_of(r)) and e.public)
    # Only the log's public face answers without a caller (its key, hashes and signatures),
    # the published transparency reports (noisy counts and their privacy budget), and logon.
    assert public == [
        f"{API}/audit/checkpoint",
        f"{API}/audit/checkpoints/{{size}}/cosignatures",
        f"{API}/audit/key",
        f"{API}/audit/proof/consistency",
        f"{API}/audit/proof/inclusion",
        f"{API}/sessions",
        f"{API}/transparency/releases",
        f"{API}/transparency/releases/{{month}}",
    ]


JSON = {"content-type": "application/json"}
GARBAGE: list[tuple[str, dict[str, Any]]] = [
    ("json", {"json": {"nonsense": [1, 2, 3], "person_id": 10**30}}),
    ("broken json", {"content": b'{"a": ', "headers": JSON}),
    ("not utf-8", {"content": b'{"a": "\xff\xfe"}', "headers": JSON}),
    ("text", {"content": b"hello", "headers": {"content-type": "text/plain"}}),
]


@pytest.mark.parametrize(("label", "body"), GARBAGE, ids=[g[0] for g in GARBAGE])
def test_no_token_is_401_on_every_route_whatever_the_input(
    app: FastAPI, client: TestClient, db: Database, label: str, body: dict[str, Any]
) -> None:
    before = row_counts(db)
    for route in api_routes(app):
        edge = edge_of(route)
        if edge is None or edge.public:
            continue
        for method, url in concrete(route):
            for headers in ({}, {"Authorization": "Bearer not-a-real-token"}):
                kwargs = {**body, "headers": {**body.get("headers", {}), **headers}}
                if method == "GET" or method == "DELETE":
                    kwargs.pop("json", None)
                    kwargs.pop("content", None)
                response = client.request(method, url, **kwargs)
                assert response.status_code == 401, (method, url, label, response.text)
                error = response.json()["error"]
                assert error["code"] in {"token_missing", "token_invalid"}
                assert response.headers["www-authenticate"] == "Bearer"
    assert row_counts(db) == before


def test_wrong_role_is_403_before_the_body_is_read(
    app: FastAPI, client: TestClient, world: World
) -> None:
    """The outside agency's valid token on every route its role does not open."""
    refused = 0
    for route in api_routes(app):
        edge = edge_of(route)
        assert edge is not None
        if edge.public or not edge.any_of or "external:query" in edge.any_of:
            continue
        for method, url in concrete(route):
            for label, body in GARBAGE:
                kwargs = {**body, "headers": {**body.get("headers", {}), **world.auth("fbi")}}
                response = client.request(method, url, **kwargs)
                assert response.status_code == 403, (method, url, label, response.text)
                assert response.json()["error"]["code"] == "permission_denied"
                refused += 1
    assert refused > 100


def test_intake_body_from_a_reader_is_403_not_422(client: TestClient, world: World) -> None:
    """The issue's case: a schema error would tell a reader what an arrest payload needs."""
    bad = arrest_payload()
    bad.pop("arresting_officer")
    response = client.post(f"{API}/arrests", json=bad, headers=world.auth("reader"))
    assert response.status_code == 403
    error = response.json()["error"]
    # The refusal is audited, and its entry named in the envelope and the header.
    assert str(error.pop("audit_entry")) == response.headers["OpenPARS-Audit-Entry"]
    assert error == {
        "code": "permission_denied",
        "message": "your account (reader) lacks the permission this request needs (arrest:create)",
        "field": None,
        "details": {"permission": "arrest:create"},
    }
    # The right role, same payload: now the payload is what is wrong.
    response = client.post(f"{API}/arrests", json=bad, headers=world.auth("intake"))
    assert (response.status_code, response.json()["error"]["field"]) == (422, "arresting_officer")


def test_one_transaction_per_request(client: TestClient, world: World, db: Database) -> None:
    """Authenticating first does not cost a second transaction: the endpoint continues it."""
    begun: list[Session] = []

    def count(session: Session, transaction: SessionTransaction, *_: object) -> None:
        if not transaction.nested:  # a savepoint (intake's race guard) is not a transaction
            begun.append(session)

    event.listen(Session, "after_begin", count)
    try:
        ok = client.get(f"{API}/users/me", headers=world.auth("reader"))
        assert ok.status_code == 200
        assert len(begun) == 1
        begun.clear()
        written = client.post(f"{API}/arrests", json=arrest_payload(), headers=world.auth("intake"))
        assert written.status_code == 201
        assert len(begun) == 1
    finally:
        event.remove(Session, "after_begin", count)


def test_refusals_are_audited_on_a_real_database(settings: Settings, fresh_db: Database) -> None:
    """The edge's transaction is closed before the refusal is logged in a transaction of its own.

    On a SQLite file every transaction holds the write lock, so a transaction left open would
    make the refusal wait for it (30 s, then fail); here both answers come at once.
    """
    with fresh_db.session() as session:
        world = build_world(session)
    app = create_app(settings, database=fresh_db)
    with TestClient(app) as client:
        started = time.monotonic()
        bad = client.post(f"{API}/arrests", json={}, headers=world.auth("reader"))
        assert bad.status_code == 403
        gone = client.get(f"{API}/arrests/987654", headers=world.auth("reader"))
        assert gone.status_code == 404
        assert time.monotonic() - started < 10
    with fresh_db.session() as session:
        refused = session.execute(
            select(AuditEntry.action, AuditEntry.user_id).where(
                AuditEntry.outcome == Outcome.REFUSED
            )
        ).all()
    assert sorted(refused) == [
        ("GET /api/v1/arrests/987654", world.users["reader"]),
        ("POST /api/v1/arrests", world.users["reader"]),
    ]
