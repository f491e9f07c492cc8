"""GET /metrics: requests by route; the public log endpoints are counted there, not audited."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openpars.audit.models import AuditEntry
from openpars.db import Database
from openpars.web.metrics import METRIC, RequestCounts
from tests.factories import World

PUBLIC_LOG = ("/api/v1/audit/checkpoint", "/api/v1/audit/key")


def _count(text: str, method: str, route: str, status: int) -> int:
    pattern = rf'^{METRIC}{{method="{method}",route="{re.escape(route)}",status="{status}"}} (\d+)$'
    found = re.search(pattern, text, flags=re.MULTILINE)
    return int(found.group(1)) if found else 0


def _entries(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def _metrics(client: TestClient, world: World) -> str:
    response = client.get("/metrics", headers=world.auth("admin"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def test_public_log_reads_are_counted_by_route_and_leave_no_audit_entry(
    client: TestClient, world: World, db: Database
) -> None:
    before = _entries(db)
    statuses = {path: client.get(path).status_code for path in PUBLIC_LOG for _ in range(3)}
    assert _entries(db) == before
    text = _metrics(client, world)
    for path, status in statuses.items():
        assert _count(text, "GET", path, status) == 3


def test_refused_public_log_reads_are_counted_not_audited(
    client: TestClient, world: World, db: Database
) -> None:
    # A stranger's malformed proof request: no entry (it could fill the log), but counted.
    before = _entries(db)
    for _ in range(5):
        answer = client.get("/api/v1/audit/proof/inclusion", params={"index": 7, "size": 3})
        assert answer.status_code in (404, 409, 422)
    assert _entries(db) == before
    text = _metrics(client, world)
    assert _count(text, "GET", "/api/v1/audit/proof/inclusion", answer.status_code) == 5
    # A refused read of records is still audited.
    assert client.get("/api/v1/persons", params={"name": "Sm"}).status_code == 401
    assert _entries(db) == before + 1


def test_routes_are_counted_by_template_and_unknown_paths_together(
    client: TestClient, world: World
) -> None:
    for person_id in (101, 102):
        client.get(f"/api/v1/persons/{person_id}", headers=world.auth("reader"))
    client.get("/no/such/path/1")
    client.get("/no/such/path/2")
    text = _metrics(client, world)
    assert _count(text, "GET", "/api/v1/persons/{person_id}", 404) == 2
    assert "/api/v1/persons/101" not in text
    assert _count(text, "GET", "(unmatched)", 404) == 2


def test_refusals_are_counted_too(client: TestClient, world: World) -> None:
    assert client.get("/api/v1/persons", params={"name": "Sm"}).status_code == 401
    assert _count(_metrics(client, world), "GET", "/api/v1/persons", 401) == 1


def test_metrics_need_an_auditor_or_the_site_administrator(
    client: TestClient, world: World
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    for outsider in ("reader", "fbi", "intake"):
        assert client.get("/metrics", headers=world.auth(outsider)).status_code == 403
    # The scrape itself is counted as it is answered, so it shows from the next scrape on.
    _metrics(client, world)
    assert _count(_metrics(client, world), "GET", "/metrics", 200) >= 1


def test_the_exposition_escapes_label_values_and_sorts_series() -> None:
    counts = RequestCounts()
    counts.add("GET", '/a"b\\c\nd', 200)
    counts.add("GET", "/a", 200)
    counts.add("GET", "/a", 200)
    lines = counts.exposition().splitlines()
    assert lines[0].startswith(f"# HELP {METRIC} ")
    assert lines[1] == f"# TYPE {METRIC} counter"
    assert lines[2] == f'{METRIC}{{method="GET",route="/a",status="200"}} 2'
    assert lines[3] == f'{METRIC}{{method="GET",route="/a\\"b\\\\c\\nd",status="200"}} 1'
