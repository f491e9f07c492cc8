"""Batch intake: the rules of single intake per arrest, refusals by index, one transaction."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from openpars.db import Database
from openpars.records.batch import BatchRefusal, submit_arrests
from openpars.records.enums import VersionedEntity
from openpars.records.repository import versions
from openpars.records.schemas import ArrestCreate, ArrestCreated
from tests.factories import World
from tests.records.factories import arrest_payload, person_payload
from tests.records.helpers import API, audit_since, last_audit_id, row_counts, submit


def _batch(db: Database, world: World, payloads: list[dict[str, Any]]) -> list[Any]:
    items = [ArrestCreate.model_validate(p) for p in payloads]
    with db.session() as session:
        return list(submit_arrests(session, actor=world.principals["intake"], items=items))


def _created(result: Any) -> ArrestCreated:
    assert isinstance(result, ArrestCreated), result
    return result


def _refused(result: Any) -> BatchRefusal:
    assert isinstance(result, BatchRefusal), result
    return result


def test_mixed_batch_writes_the_good_and_nothing_of_the_refused(
    client: TestClient, world: World, db: Database
) -> None:
    stored = arrest_payload()
    first = submit(client, world, stored).json()
    victim = first["person_ids"][1]
    with db.session() as session:
        [snapshot] = versions(session, VersionedEntity.PERSON, victim)
        known = snapshot.snapshot
    resembling = arrest_payload()
    resembling["involvements"][1]["person"] = person_payload(
        family_name=known["family_name"],
        given_name=known["given_name"],
        birth_date=known["birth_date"],
    )
    future = arrest_payload(arrested_at=(datetime.now(UTC) + timedelta(days=2)).isoformat())
    changed_resend = dict(stored, narrative="A different story.")
    good = [arrest_payload(), arrest_payload()]
    counts, mark = row_counts(db), last_audit_id(db)

    results = _batch(db, world, [good[0], future, resembling, changed_resend, good[1]])

    created = [_created(results[0]), _created(results[4])]
    assert [r.replayed for r in created] == [False, False]
    refusals = [_refused(results[i]) for i in (1, 2, 3)]
    assert [(r.index, r.code, r.field) for r in refusals] == [
        (1, "invalid_input", "arrested_at"),
        (2, "person_match_required", "involvements.1.person"),
        (3, "report_id_reused", "report_id"),
    ]
    assert refusals[0].status == 422 and "in the future" in refusals[0].message
    [pending] = refusals[1].details["involvements"]
    assert pending["candidates"][0]["person_id"] == victim
    after = row_counts(db)
    assert after["arrests"] == counts["arrests"] + 2
    assert after["persons"] == counts["persons"] + 6
    assert after["charges"] == counts["charges"] + 6
    assert after["involvements"] == counts["involvements"] + 6
    assert after["record_versions"] == counts["record_versions"] + 8  # 2 arrests, 6 persons
    assert audit_since(db, mark) == [
        ("write", "arrest.create", "ok"),
        ("refused", "arrest.create", "refused"),
        ("refused", "arrest.create", "refused"),
        ("refused", "arrest.create", "refused"),
        ("write", "arrest.create", "ok"),
    ]
    # What was written is what single intake writes: the arrest reads back whole.
    read = client.get(f"{API}/arrests/{created[0].arrest_id}", headers=world.auth("intake"))
    assert read.status_code == 200
    history = client.get(
        f"{API}/arrests/{created[0].arrest_id}/history", headers=world.auth("intake")
    ).json()["items"]
    [version] = history
    assert [i["id"] for i in version["snapshot"]["involvements"]] == created[0].involvement_ids
    assert len(version["snapshot"]["charges"]) == 3


def test_resending_a_whole_batch_replays_it(world: World, db: Database) -> None:
    payloads = [arrest_payload() for _ in range(3)]
    first = [_created(r) for r in _batch(db, world, payloads)]
    counts, mark = row_counts(db), last_audit_id(db)

    again = [_created(r) for r in _batch(db, world, copy.deepcopy(payloads))]

    assert all(r.replayed for r in again)
    assert [r.arrest_id for r in again] == [r.arrest_id for r in first]
    assert [r.charge_ids for r in again] == [r.charge_ids for r in first]
    assert [r.involvement_ids for r in again] == [r.involvement_ids for r in first]
    assert row_counts(db) == counts
    assert [a for _, a, _ in audit_since(db, mark)] == ["arrest.create.replayed"] * 3


def test_a_later_item_sees_what_an_earlier_item_created(world: World, db: Database) -> None:
    earlier = arrest_payload()
    arrestee = earlier["involvements"][0]["person"]
    by_sid = arrest_payload()
    by_sid["involvements"][0]["person"] = person_payload(sid=arrestee["sid"])
    by_fbi = arrest_payload()
    by_fbi["involvements"][0]["person"] = person_payload(fbi_number=arrestee["fbi_number"])
    by_name = arrest_payload()
    victim = earlier["involvements"][1]["person"]
    by_name["involvements"][1]["person"] = dict(victim)
    resend = copy.deepcopy(earlier)
    taken_otn = arrest_payload(otn=earlier["otn"])

    results = _batch(db, world, [earlier, by_sid, by_fbi, by_name, resend, taken_otn])

    first = _created(results[0])
    assert _created(results[1]).person_ids[0] == first.person_ids[0]
    assert _created(results[1]).links[0].matched_on == "sid"
    assert _created(results[2]).person_ids[0] == first.person_ids[0]
    assert _created(results[2]).links[0].matched_on == "fbi_number"
    match = _refused(results[3])
    assert match.code == "person_match_required"
    [pending] = match.details["involvements"]
    assert pending["candidates"][0]["person_id"] == first.person_ids[1]
    replayed = _created(results[4])
    assert replayed.replayed and replayed.arrest_id == first.arrest_id
    assert (_refused(results[5]).code, _refused(results[5]).field) == ("conflict", "otn")


def test_batch_endpoint_answers_each_item(client: TestClient, world: World, db: Database) -> None:
    good = arrest_payload()
    bad = arrest_payload(arrested_at=(datetime.now(UTC) + timedelta(days=2)).isoformat())
    mark = last_audit_id(db)
    response = client.post(
        f"{API}/arrests/batch", json=[good, bad, good], headers=world.auth("intake")
    )
    assert response.status_code == 200
    body = response.json()["items"]
    assert body[0]["arrest_id"] == body[2]["arrest_id"] and body[2]["replayed"] is True
    assert body[1]["refused"] is True and body[1]["index"] == 1
    assert body[1]["field"] == "arrested_at" and body[1]["status"] == 422
    assert [a for _, a, _ in audit_since(db, mark)] == [
        "arrest.create",
        "arrest.create",
        "arrest.create.replayed",
    ]


def test_batch_endpoint_refuses_oversized_and_foreign_batches(
    client: TestClient, world: World, db: Database
) -> None:
    counts = row_counts(db)
    too_many = client.post(
        f"{API}/arrests/batch", json=[arrest_payload()] * 501, headers=world.auth("intake")
    )
    assert too_many.status_code in (413, 422)
    empty = client.post(f"{API}/arrests/batch", json=[], headers=world.auth("intake"))
    assert empty.status_code == 422
    wrong = client.post(
        f"{API}/arrests/batch", json=[arrest_payload()], headers=world.auth("charging")
    )
    assert wrong.status_code == 403
    assert row_counts(db) == counts
