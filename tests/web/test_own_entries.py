"""A user's own audit entries (the ones whose receipts they may fetch): one audited read in the
receipts service, behind ``GET /api/v1/audit/own-entries`` and the /audit page alike."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database
from openpars.web.app import create_app
from tests.factories import World
from tests.web.logon_steps import finish_logon_as
from tests.web.test_pages import give_password, log_in

OWN = "/api/v1/audit/own-entries"


def own_reads(db: Database) -> list[dict[str, object]]:
    """The params of every ``audit.own_entries`` entry, oldest first."""
    with db.session() as session:
        rows = session.execute(
            select(AuditEntry.user_id, AuditEntry.content)
            .where(AuditEntry.action == "audit.own_entries")
            .order_by(AuditEntry.id)
        ).all()
    return [json.loads(bytes(c))["params"] | {"user_id": u} for u, c in rows]


def ids_of(db: Database, user_id: int) -> list[int]:
    with db.session() as session:
        return list(
            session.scalars(
                select(AuditEntry.id)
                .where(AuditEntry.user_id == user_id)
                .order_by(AuditEntry.id.desc())
            )
        )


def test_the_api_lists_only_the_callers_entries_newest_first_a_page_at_a_time(
    client: TestClient, db: Database, world: World
) -> None:
    for _ in range(3):
        assert client.get("/api/v1/persons?name=Smith", headers=world.auth("reader")).is_success
    assert client.get("/api/v1/persons?name=Smith", headers=world.auth("court")).is_success
    mine = ids_of(db, world.users["reader"])
    first = client.get(OWN, params={"limit": 2}, headers=world.auth("reader"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert [e["id"] for e in body["entries"]] == mine[:2]
    assert {e["action"] for e in body["entries"]} == {"person.search"}
    assert body["next_before_id"] == mine[1]
    # The read is audited, by the service, once, naming what it returned.
    assert own_reads(db)[-1] == {
        "before_id": None, "limit": 2, "returned": 2, "first_id": mine[0], "last_id": mine[1],
        "user_id": world.users["reader"],
    }  # fmt: skip
    # The next page follows on from the last one, through the first listing's own entry.
    rest = client.get(
        OWN,
        params={"before_id": body["next_before_id"], "limit": 100},
        headers=world.auth("reader"),
    ).json()
    assert [e["id"] for e in rest["entries"]] == mine[2:]
    assert rest["next_before_id"] is None
    court = set(ids_of(db, world.users["court"]))
    assert court and not court & {e["id"] for e in body["entries"] + rest["entries"]}
    # A page beyond the site's maximum is cut to it; a nonsense cursor is refused by name.
    huge = client.get(OWN, params={"limit": 10**6}, headers=world.auth("reader"))
    assert huge.status_code == 200
    assert own_reads(db)[-1]["limit"] == client.app.state.settings.page_size_max  # type: ignore[attr-defined]
    bad = client.get(OWN, params={"before_id": 0}, headers=world.auth("reader"))
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "before_id"
    assert client.get(OWN).status_code == 401


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = create_app(settings, database=db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def test_the_audit_page_lists_through_the_same_audited_read_with_older_pages(
    web: TestClient, db: Database, world: World
) -> None:
    give_password(db, world, "reader")
    assert log_in(web, "reader").status_code == 303
    finish_logon_as(web, db, "reader")
    for _ in range(25):
        assert web.get("/").status_code == 200
        web.get("/search?kind=persons&name=Smith")
    before = len(own_reads(db))
    overview = web.get("/audit")
    assert overview.status_code == 200
    # One entry for the listing, written by the service (the page writes none of its own).
    assert len(own_reads(db)) == before + 1
    listed = [int(i) for i in re.findall(r'href="/audit/proof\?entry_id=(\d+)"', overview.text)]
    assert len(listed) == 20 and listed == sorted(listed, reverse=True)
    older = re.search(r'href="/audit\?before_id=(\d+)#mine-h"', overview.text)
    assert older and int(older.group(1)) == listed[-1]
    second = web.get(f"/audit?before_id={older.group(1)}")
    assert second.status_code == 200
    more = [int(i) for i in re.findall(r'href="/audit/proof\?entry_id=(\d+)"', second.text)]
    assert more and max(more) < listed[-1]
    assert own_reads(db)[-1]["before_id"] == listed[-1]
