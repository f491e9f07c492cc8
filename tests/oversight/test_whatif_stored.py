"""A proposal's what-if replay kept with it: computed once when it opens, read from the database.

As attackers try: the stored replay must be the replay a fresh run gives for the same moment
(every query, every total), the voter must see the replay as of the proposal whatever the agency
reads afterwards, its hash must sit in the proposal's opening entry, the rows can be neither
changed nor deleted, and only the oversight role may replay again (a voter may not replace
the evidence the other voters see).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from openpars.access import service as reads
from openpars.access.schemas import PersonQuery
from openpars.cli import app
from openpars.config import Settings
from openpars.db import Database
from openpars.governance.models import ProposalReplay, ProposalReplayQuery
from openpars.oversight.whatif import (
    WHATIF_MONTHS,
    canonical,
    compute,
    latest_replay,
    of_proposal,
)
from openpars.web.app import create_app
from tests.factories import World, build_world
from tests.oversight.test_whatif import (
    WARRANT,
    Site,
    build,
    last_params,
    narrowed_proposal,
)

runner = CliRunner()


@pytest.fixture
def site(client: TestClient, db: Database, world: World) -> Site:
    return build(client, db, world)


def _all(client: TestClient, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """Every query of the stored replay, page by page (one query a page)."""
    first = client.get(path, params={"limit": 1}, headers=headers)
    assert first.status_code == 200, first.text
    body: dict[str, Any] = first.json()
    items = list(body["items"])
    while len(items) < body["totals"]["queries"]:
        page = client.get(path, params={"limit": 1, "offset": len(items)}, headers=headers)
        assert page.status_code == 200 and page.json()["totals"] == body["totals"]
        assert len(page.json()["items"]) == 1, page.text
        items += page.json()["items"]
    assert client.get(path, params={"offset": len(items)}, headers=headers).json()["items"] == []
    return {**body, "items": items}


def test_the_stored_replay_is_a_fresh_replay_of_that_moment_and_its_hash_is_in_the_log(
    db: Database, client: TestClient, world: World, site: Site
) -> None:
    gov, proposal_id = narrowed_proposal(db, world, site)
    path = f"/api/v1/proposals/{proposal_id}/what-if"
    stored = _all(client, path, gov.auth("da"))
    assert stored["months"] == WHATIF_MONTHS and stored["computed_by"] == gov.voters["da"].username
    assert stored["totals"]["queries"] == site.reads and stored["totals"]["newly_refused"] == 2
    with db.session() as s:
        row = latest_replay(s, proposal_id)
        assert row is not None and row.status == "done"
        target = of_proposal(s, proposal_id, actor=gov.voters["da"])
        fresh = compute(s, target, months=WHATIF_MONTHS, max_queries=100, now=row.computed_at)
        kept_hash = row.sha256
    kept_only = ("computed_at", "computed_by", "audit_entry")
    as_stored = {k: v for k, v in stored.items() if k not in kept_only}
    assert as_stored == {
        **fresh.model_dump(mode="json", exclude={"computed_at", "computed_by"}),
        "offset": 0,
        "limit": 1,
    }
    # The hash in the proposal's opening entry is the canonical replay's, all queries in it.
    assert kept_hash == hashlib.sha256(canonical(fresh)).hexdigest()
    assert last_params(db, "proposal.open")["replay_sha256"] == kept_hash
    assert last_params(db, "oversight.what_if")["sha256"] == kept_hash


def test_the_voter_sees_the_replay_as_of_the_proposal_until_someone_replays_again(
    db: Database, client: TestClient, world: World, site: Site
) -> None:
    gov, proposal_id = narrowed_proposal(db, world, site)
    path = f"/api/v1/proposals/{proposal_id}/what-if"
    before = client.get(path, headers=gov.auth("da")).json()
    # ICE reads again after the proposal opened: the replay kept does not move under the vote.
    with db.session(external=True) as s:
        reads.search_persons(
            s, principal=world.principals["ice"], query=PersonQuery(name="Kowalczyk"),
            context=WARRANT,
        )  # fmt: skip
    after = client.get(path, headers=gov.auth("da")).json()
    assert after.pop("audit_entry") != before.pop("audit_entry") and after == before
    # An outside agency and the administrator may not replay again; nothing kept.
    for who in ("ice", "admin", "reader"):
        refused = client.post(path, json={"months": 1}, headers=world.auth(who))
        assert refused.status_code == 403, (who, refused.text)
    # Nor may a voter: one party to the vote must not replace what the other voters see.
    for voter in ("da", "court"):
        refused = client.post(path, json={"months": 1}, headers=gov.auth(voter))
        assert refused.status_code == 403, (voter, refused.text)
        assert refused.json()["error"]["details"] == {"permission": "oversight:read"}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ProposalReplay)) == 1
    # The oversight role replays again: the new read is in it, the old replay stays in the table.
    again = client.post(path, json={"months": 1}, headers=world.auth("overseer"))
    assert again.status_code == 200, again.text
    assert again.json()["totals"]["queries"] == site.reads + 1
    assert again.json()["computed_by"] == "overseer" and again.json()["months"] == 1
    assert client.get(path, headers=gov.auth("da")).json()["totals"] == again.json()["totals"]
    recomputed = last_params(db, "oversight.what_if_recompute")
    assert recomputed["via"] == "api" and recomputed["months"] == 1
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ProposalReplay)) == 2


def test_the_kept_replay_cannot_be_changed_or_deleted(
    db: Database, world: World, site: Site
) -> None:
    _, proposal_id = narrowed_proposal(db, world, site)
    with db.session() as s:
        row = latest_replay(s, proposal_id)
        assert row is not None
        row_id = row.id
    queries = "governance_proposal_replay_queries"
    for statement in (
        f"UPDATE governance_proposal_replays SET months = 1 WHERE id = {row_id}",
        f"DELETE FROM governance_proposal_replays WHERE id = {row_id}",
        f"DELETE FROM {queries} WHERE replay_id = {row_id}",
        f"UPDATE {queries} SET content = '{{}}' WHERE replay_id = {row_id}",
    ):
        with pytest.raises(DBAPIError, match=r"(?i)append-only"), db.session() as s:
            s.execute(text(statement))
    with db.session() as s:
        kept = s.get(ProposalReplay, row_id)
        assert kept is not None and kept.months == WHATIF_MONTHS
        assert (
            s.scalar(select(func.count()).where(ProposalReplayQuery.replay_id == row_id))
            == site.reads
        )


def test_a_window_too_long_to_replay_again_keeps_nothing(
    db: Database, settings: Settings, world: World, site: Site
) -> None:
    gov, proposal_id = narrowed_proposal(db, world, site)
    path = f"/api/v1/proposals/{proposal_id}/what-if"
    small = settings.model_copy(update={"oversight_whatif_max_queries": 1})
    with TestClient(create_app(small, database=db)) as other:
        refused = other.post(path, json={"months": 3}, headers=world.auth("overseer"))
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert (error["field"], error["code"]) == ("months", "too_many_queries")
        shown = other.get(path, headers=gov.auth("da")).json()
    assert shown["months"] == WHATIF_MONTHS and shown["totals"]["queries"] == site.reads
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ProposalReplay)) == 1


def test_console_reads_the_kept_replay_and_replays_again(
    fresh_db: Database, settings: Settings
) -> None:
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
    with TestClient(create_app(settings, database=fresh_db)) as client:
        site = build(client, fresh_db, world)
    _, proposal_id = narrowed_proposal(fresh_db, world, site)
    args = ["oversight", "what-if", "--proposal", str(proposal_id), "--db", url]
    kept = runner.invoke(app, [*args, "--format", "json"])
    assert kept.exit_code == 0, kept.output
    body = json.loads(kept.stdout)
    assert body["months"] == WHATIF_MONTHS and body["totals"]["newly_refused"] == 2
    assert last_params(fresh_db, "oversight.what_if")["via"] == "cli"
    table = runner.invoke(app, args)
    assert (
        table.exit_code == 0 and "computed " in table.output and "newly refused 2" in table.output
    )
    again = runner.invoke(app, [*args, "--again", "--months", "2", "--format", "json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["months"] == 2
    assert last_params(fresh_db, "oversight.what_if_recompute")["via"] == "cli"
    bad = runner.invoke(app, [*args, "--again", "--months", "40"])
    assert bad.exit_code == 1 and "(field: months)" in bad.output
    refused = runner.invoke(app, [*args, "--again", "--as", "ice"])
    assert refused.exit_code == 1 and "oversight:read" in refused.output
    alone = runner.invoke(app, ["oversight", "what-if", "--again", "--db", url])
    assert alone.exit_code == 1 and "(field: again)" in alone.output
