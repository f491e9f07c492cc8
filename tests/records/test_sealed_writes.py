"""A booking officer probing sealed records through writes learns nothing (issue 10 item 9).

The attacker is an internal writer without sealed access who holds an identifier of someone
whose only arrest was sealed: a SID, an FBI number, a person id, an OTN, a docket number.
Each probe is sent twice, once with the sealed identifier and once with one never used, and
the two whole responses must be the same once the freshly assigned ids are set aside. Before,
intake linked the sealed person (answering with their old id, and showing them again), named
person ids in ``identifier_mismatch`` and refused the OTN with a 409.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from openpars.db import Database
from tests.factories import World
from tests.records.factories import arrest_payload, person_payload
from tests.records.helpers import API, arraignment, row_counts, step, submit

ORDER = {"order_reference": "CP-51-MD-0001234-2026", "reason": "petition granted"}
UNUSED_SID, UNUSED_FBI, UNUSED_OTN = "999-99-99-9", "9999999ZZ9", "Z9999999-9"


def _sealed(client: TestClient, world: World, *, docket: str | None = None) -> dict[str, Any]:
    """An arrest entered and then sealed; its arrestee appears nowhere else."""
    payload = arrest_payload()
    created = submit(client, world, payload).json()
    if docket is not None:
        assert step(client, world, created["arrest_id"], "charging-decision",
                    {"outcome": "approved"}, "charging").status_code == 201  # fmt: skip
        body = arraignment(docket=docket)
        assert step(client, world, created["arrest_id"], "arraignment", body, "court").is_success
    seal = {"action": "seal", **ORDER}
    sealed = step(client, world, created["arrest_id"], "seal", seal, "court")
    assert sealed.status_code == 200, sealed.text
    arrestee = payload["involvements"][0]["person"]
    return {
        "arrest_id": created["arrest_id"],
        "person_id": created["person_ids"][0],
        "sid": arrestee["sid"],
        "fbi_number": arrestee["fbi_number"],
        "otn": payload["otn"],
    }


def _ids_set_aside(body: Any) -> Any:
    """The response with every id replaced, so two fresh records compare equal (the audit entry
    each answer names included: the next id either way)."""
    if isinstance(body, dict):
        return {
            k: "ID" if k.endswith(("_id", "_ids", "audit_entry")) else _ids_set_aside(v)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [_ids_set_aside(v) for v in body]
    return body


def _probe(client: TestClient, world: World, **person: Any) -> Any:
    payload = arrest_payload()
    payload["involvements"][0]["person"] = person_payload(offset=11, **person)
    return submit(client, world, payload)


def _same(hidden: Any, unknown: Any) -> None:
    assert hidden.status_code == unknown.status_code
    assert _ids_set_aside(hidden.json()) == _ids_set_aside(unknown.json())


def test_a_sealed_sid_answers_as_an_unknown_one(
    client: TestClient, world: World, db: Database
) -> None:
    sealed = _sealed(client, world)
    hidden = _probe(client, world, sid=sealed["sid"])
    unknown = _probe(client, world, sid=UNUSED_SID)
    assert hidden.status_code == 201, hidden.text
    _same(hidden, unknown)
    new_id = hidden.json()["person_ids"][0]
    assert new_id != sealed["person_id"]
    assert hidden.json()["links"][0]["matched_on"] == "new"
    # The sealed person stays as absent as one that never existed, to readers as to writers.
    for user in ("reader", "intake"):
        gone = client.get(f"{API}/persons/{sealed['person_id']}", headers=world.auth(user))
        never = client.get(f"{API}/persons/99999", headers=world.auth(user))
        assert gone.status_code == never.status_code == 404
        assert gone.json()["error"]["code"] == never.json()["error"]["code"]
    found = client.get(
        f"{API}/persons", params={"sid": sealed["sid"]}, headers=world.auth("reader")
    )
    assert [p["id"] for p in found.json()["items"]] == [new_id]
    # The clerk with sealed access sees both records holding the SID, to have them reconciled.
    both = client.get(f"{API}/persons", params={"sid": sealed["sid"]}, headers=world.auth("clerk"))
    assert sorted(p["id"] for p in both.json()["items"]) == sorted([sealed["person_id"], new_id])


def test_a_sealed_fbi_number_answers_as_an_unknown_one(client: TestClient, world: World) -> None:
    sealed = _sealed(client, world)
    hidden = _probe(client, world, fbi_number=sealed["fbi_number"])
    unknown = _probe(client, world, fbi_number=UNUSED_FBI)
    assert hidden.status_code == 201, hidden.text
    _same(hidden, unknown)
    assert hidden.json()["person_ids"][0] != sealed["person_id"]


def test_a_sealed_number_beside_a_visible_one_links_the_visible_person(
    client: TestClient, world: World
) -> None:
    # Before: "identifier_mismatch: SID ... belongs to person 30 but FBI number ... to person 1".
    sealed = _sealed(client, world)
    visible = submit(client, world, arrest_payload()).json()
    with_fbi = client.get(f"{API}/persons/{visible['person_ids'][0]}", headers=world.auth("reader"))
    fbi = with_fbi.json()["person"]["fbi_number"]
    hidden = _probe(client, world, sid=sealed["sid"], fbi_number=fbi)
    unknown = _probe(client, world, sid=UNUSED_SID, fbi_number=fbi)
    assert hidden.status_code == 201, hidden.text
    _same(hidden, unknown)
    assert hidden.json()["links"][0] == {
        "index": 0,
        "person_id": visible["person_ids"][0],
        "matched_on": "fbi_number",
    }


def test_a_sealed_person_id_answers_as_an_unknown_one(
    client: TestClient, world: World, db: Database
) -> None:
    sealed = _sealed(client, world)
    before = row_counts(db)
    answers = []
    for person_id in (sealed["person_id"], 99999):
        payload = arrest_payload()
        payload["involvements"][0] = {"role": "arrestee", "person_id": person_id}
        answers.append(submit(client, world, payload))
    hidden, unknown = answers
    assert hidden.status_code == unknown.status_code == 404
    # Byte for byte, but for the id asked about and the audit entry each refusal names.
    text = re.sub(r'"audit_entry":[0-9]+', "", hidden.text)
    assert text.replace(str(sealed["person_id"]), "N") == re.sub(
        r'"audit_entry":[0-9]+', "", unknown.text
    ).replace("99999", "N")
    assert row_counts(db) == before


def test_a_sealed_otn_answers_as_an_unused_one(client: TestClient, world: World) -> None:
    sealed = _sealed(client, world)
    hidden = submit(client, world, arrest_payload(otn=sealed["otn"]))
    unknown = submit(client, world, arrest_payload(otn=UNUSED_OTN))
    assert hidden.status_code == 201, hidden.text
    _same(hidden, unknown)
    # An OTN the writer does see is still one arrest's only.
    clash = submit(client, world, arrest_payload(otn=sealed["otn"]))
    assert clash.status_code == 409 and clash.json()["error"]["field"] == "otn"


def test_a_sealed_report_id_answers_as_an_unused_one(client: TestClient, world: World) -> None:
    # Before: a resend replayed the sealed arrest (200, its ids) and a changed report was
    # refused as report_id_reused: the booking officer learned that it had been sealed.
    seal = {"action": "seal", **ORDER}
    sealed = []
    for _ in range(2):
        payload = arrest_payload()
        created = submit(client, world, payload).json()
        assert step(client, world, created["arrest_id"], "seal", seal, "court").status_code == 200
        sealed.append((payload, created["arrest_id"]))
    (resent, first_id), (changed, _) = sealed
    hidden = submit(client, world, resent)
    unknown = submit(client, world, arrest_payload())
    assert hidden.status_code == 201, hidden.text
    _same(hidden, unknown)
    assert hidden.json()["arrest_id"] != first_id
    # The new arrest now owns the report id: a resend replays it, as for any report.
    again = submit(client, world, resent)
    assert again.status_code == 200 and again.json()["arrest_id"] == hidden.json()["arrest_id"]
    hidden = submit(client, world, arrest_payload(report_id=changed["report_id"]))
    unknown = submit(client, world, arrest_payload(report_id="PPD-NEVER-USED"))
    assert hidden.status_code == 201, hidden.text
    _same(hidden, unknown)


def test_a_batch_answers_sealed_identifiers_as_unknown_ones(
    client: TestClient, world: World
) -> None:
    sealed = _sealed(client, world)

    def batch(sid: str, otn: str) -> Any:
        items = [arrest_payload(otn=otn), arrest_payload()]
        items[1]["involvements"][0]["person"] = person_payload(offset=11, sid=sid)
        return client.post(f"{API}/arrests/batch", json=items, headers=world.auth("intake"))

    hidden = batch(sealed["sid"], sealed["otn"])
    unknown = batch(UNUSED_SID, UNUSED_OTN)
    assert hidden.status_code == 200, hidden.text
    _same(hidden, unknown)
    assert sealed["person_id"] not in hidden.json()["items"][1]["person_ids"]


def test_amendments_answer_sealed_identifiers_as_unknown_ones(
    client: TestClient, world: World
) -> None:
    # Before: 409 identifier_taken "... already belongs to person 1".
    sealed = _sealed(client, world)
    answers: dict[str, list[Any]] = {"person": [], "arrest": []}
    for sid, otn in ((sealed["sid"], sealed["otn"]), (UNUSED_SID, UNUSED_OTN)):
        target = submit(client, world, arrest_payload()).json()
        answers["person"].append(
            client.patch(
                f"{API}/persons/{target['person_ids'][0]}",
                json={"reason": "SID from the state bureau", "sid": sid},
                headers=world.auth("intake"),
            )
        )
        answers["arrest"].append(
            client.patch(
                f"{API}/arrests/{target['arrest_id']}",
                json={"reason": "OTN from the state", "otn": otn},
                headers=world.auth("intake"),
            )
        )
    for hidden, unknown in answers.values():
        assert hidden.status_code == 200, hidden.text
        _same(hidden, unknown)


def test_a_sealed_docket_number_answers_as_an_unused_one(client: TestClient, world: World) -> None:
    docket = "MC-51-CR-0009999-2025"
    _sealed(client, world, docket=docket)
    answers = []
    for number in (docket, "MC-51-CR-0001111-2025"):
        arrest_id = submit(client, world, arrest_payload()).json()["arrest_id"]
        step(client, world, arrest_id, "charging-decision", {"outcome": "approved"}, "charging")
        answers.append(step(client, world, arrest_id, "arraignment", arraignment(docket=number),
                            "court"))  # fmt: skip
    hidden, unknown = answers
    assert hidden.status_code == unknown.status_code == 201, hidden.text
    # The same answer but for the number each gave.
    assert {**_ids_set_aside(hidden.json()), "docket_number": None} == {
        **_ids_set_aside(unknown.json()),
        "docket_number": None,
    }
    # The clerk, who sees the sealed arrest, is told the number is taken.
    arrest_id = submit(client, world, arrest_payload()).json()["arrest_id"]
    step(client, world, arrest_id, "charging-decision", {"outcome": "approved"}, "charging")
    refused = step(client, world, arrest_id, "arraignment", arraignment(docket=docket), "clerk")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "docket_taken"


def test_unsealing_waits_until_no_identifier_would_show_twice(
    client: TestClient, world: World
) -> None:
    sealed = _sealed(client, world)
    payload = arrest_payload(otn=sealed["otn"])
    payload["involvements"][0]["person"] = person_payload(offset=11, sid=sealed["sid"])
    reused = submit(client, world, payload).json()
    unseal = {"action": "unseal", **ORDER}
    refused = step(client, world, sealed["arrest_id"], "seal", unseal, "clerk")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "identifier_clash"
    assert error["details"]["clashes"] == [
        f"OTN {sealed['otn']} is also on arrest {reused['arrest_id']}",
        f"SID {sealed['sid']} of person {sealed['person_id']} is also on person "
        f"{reused['person_ids'][0]}",
    ]
    # Corrected by amendments, the numbers are one record's again and the unseal goes through.
    fixes = [
        (f"persons/{reused['person_ids'][0]}", {"reason": "wrong SID typed", "sid": None}),
        (f"arrests/{reused['arrest_id']}", {"reason": "wrong OTN typed", "otn": UNUSED_OTN}),
    ]
    for path, body in fixes:
        fixed = client.patch(f"{API}/{path}", json=body, headers=world.auth("intake"))
        assert fixed.status_code == 200, fixed.text
    done = step(client, world, sealed["arrest_id"], "seal", unseal, "clerk")
    assert done.status_code == 200, done.text
    assert done.json()["sealed"] is False
