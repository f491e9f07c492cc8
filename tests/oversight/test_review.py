"""The review queue through the API: cases, assignment, notes, findings, and who may do what."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from openpars.audit.models import AuditEntry
from openpars.db import Database
from openpars.oversight import flags as flagging
from openpars.oversight import review
from openpars.oversight.flags import FlagDraft, canary_detector
from tests.factories import World
from tests.oversight.canary_site import OVERSIGHT, PURPOSE, Site, build, flags


def _hit(client: TestClient, world: World, site: Site, who: str = "ice") -> None:
    answer = client.get(
        f"/api/v1/persons/{site.canary_person}", params=PURPOSE, headers=world.auth(who)
    )
    assert answer.status_code == 200, answer.text


def _oversight_actions(db: Database) -> list[str]:
    with db.session() as s:
        rows = s.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.like("oversight.%"))
            .order_by(AuditEntry.id)
        )
        return list(rows)


def test_the_review_lifecycle(client: TestClient, db: Database, world: World) -> None:
    site = build(client, db, world)
    _hit(client, world, site)
    _hit(client, world, site)
    me = world.auth("overseer")
    cases = client.get(f"{OVERSIGHT}/cases", headers=me)
    assert cases.status_code == 200, cases.text
    (case,) = cases.json()["items"]
    assert case["detector"] == "canary" and case["state"] == "open" and case["flags"] == 2
    assert case["subject_user_id"] == world.users["ice"]
    url = f"{OVERSIGHT}/cases/{case['id']}"
    assigned = client.post(f"{url}/assign", json={"assignee": "overseer2"}, headers=me)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["state"] == "assigned"
    assert assigned.json()["assignee_id"] == world.users["overseer2"]
    other = world.auth("overseer2")
    noted = client.post(f"{url}/notes", json={"note": "asked ICE for the case file"}, headers=other)
    assert noted.status_code == 200, noted.text
    closed = client.post(
        f"{url}/close",
        json={"finding": "referral_to_stakeholders", "note": "no case"},
        headers=other,
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["state"] == "closed" and body["finding"] == "referral_to_stakeholders"
    acts = [e["act"] for e in body["history"]]
    assert acts == ["opened", "flag_added", "flag_added", "assigned", "noted", "closed"]
    assert [len(f["entry_ids"]) for f in body["flag_list"]] == [1, 1]
    # A closed case takes notes only.
    again = client.post(f"{url}/close", json={"finding": "no_issue"}, headers=other)
    assert again.status_code == 409 and again.json()["error"]["field"] == "case_id"
    late = client.post(f"{url}/notes", json={"note": "stakeholders informed"}, headers=other)
    assert late.status_code == 200
    # A new hit after closing opens a new case.
    _hit(client, world, site)
    listed = client.get(f"{OVERSIGHT}/cases", params={"state": "open"}, headers=me).json()
    assert [c["flags"] for c in listed["items"]] == [1]
    assert listed["items"][0]["id"] != case["id"]
    shown = client.get(url, headers=me).json()
    assert shown["finding"] == "referral_to_stakeholders"  # the finding never changed
    # Every read and act left one entry.
    assert _oversight_actions(db) == [
        "oversight.canary.plant",
        "oversight.canary.confirm",
        "oversight.case.list",
        "oversight.case.assign",
        "oversight.case.note",
        "oversight.case.close",
        "oversight.case.note",
        "oversight.case.list",
        "oversight.case.show",
    ]


def test_the_flags_list_names_the_entries(client: TestClient, db: Database, world: World) -> None:
    site = build(client, db, world)
    _hit(client, world, site)
    page = client.get(f"{OVERSIGHT}/flags", params={"detector": "canary"}, headers=world.auth(
        "overseer"
    ))  # fmt: skip
    assert page.status_code == 200, page.text
    (flag,) = page.json()["items"]
    with db.session() as s:
        last_read = s.scalar(
            select(AuditEntry.id).where(AuditEntry.action == "person.get").order_by(
                AuditEntry.id.desc()
            )
        )  # fmt: skip
    assert flag["entry_ids"] == [last_read]
    assert flag["case_id"] is not None
    empty = client.get(f"{OVERSIGHT}/flags", params={"detector": "burst"}, headers=world.auth(
        "overseer"
    ))  # fmt: skip
    assert empty.json()["items"] == [] and empty.json()["total"] == 0


def test_running_the_detectors_twice_duplicates_nothing(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)
    _hit(client, world, site)
    me = world.auth("overseer")
    first = client.post(f"{OVERSIGHT}/detectors/run", headers=me)
    second = client.post(f"{OVERSIGHT}/detectors/run", headers=me)
    assert first.status_code == second.status_code == 200, first.text
    # The trigger flagged the read already; the detector finds the very same finding.
    assert first.json()["new_flags"] == second.json()["new_flags"] == []
    assert len(flags(db)) == 1
    with db.session() as s:
        (draft,) = canary_detector(s)
    assert (draft.detector, draft.dedupe_key) == (flags(db)[0].detector, flags(db)[0].dedupe_key)


def _self_flag(session: Session, world: World, who: str) -> list[FlagDraft]:
    """A detector that flags a reviewer's own account (future detectors watch every user)."""
    return [
        FlagDraft(
            detector="test_self",
            dedupe_key=f"user:{who}",
            rule="looked up their own surname",
            threshold=None,
            subject_user_id=world.users[who],
            subject_agency_id=world.agencies["City of Philadelphia"],
            subject_agreement_id=None,
            entry_ids=(),
            raised_at=datetime(2025, 7, 1, tzinfo=UTC),
        )
    ]


def test_a_reviewer_cannot_close_or_take_a_case_about_their_own_account(
    client: TestClient, db: Database, world: World
) -> None:
    build(client, db, world)
    with db.session() as s:
        detector = [lambda ss: _self_flag(ss, world, "overseer")]
        created = review.run_detectors(s, actor=world.principals["overseer2"], detectors=detector)
        again = flagging.run_detectors(s, detector)
    assert len(created) == 1 and again == []
    me = world.auth("overseer")
    (case,) = client.get(f"{OVERSIGHT}/cases", headers=me).json()["items"]
    url = f"{OVERSIGHT}/cases/{case['id']}"
    own = client.post(f"{url}/close", json={"finding": "no_issue"}, headers=me)
    assert own.status_code == 403, own.text
    assert own.json()["error"]["code"] == "own_case"
    assert own.json()["error"]["field"] == "case_id"
    to_self = client.post(f"{url}/assign", json={"assignee": "overseer"}, headers=world.auth(
        "overseer2"
    ))  # fmt: skip
    assert to_self.status_code == 422 and to_self.json()["error"]["field"] == "assignee"
    other = client.post(f"{url}/close", json={"finding": "training"}, headers=world.auth(
        "overseer2"
    ))  # fmt: skip
    assert other.status_code == 200 and other.json()["finding"] == "training"


OVERSIGHT_ROUTES = [
    ("get", "/canaries", None),
    ("post", "/canaries/{canary}/confirm", None),
    ("get", "/flags", None),
    ("get", "/cases", None),
    ("get", "/cases/{case}", None),
    ("post", "/detectors/run", None),
    ("post", "/detections", {"from": "2026-01-01", "to": "2026-01-02"}),
    ("post", "/cases/{case}/assign", {"assignee": "overseer2"}),
    ("post", "/cases/{case}/notes", {"note": "x"}),
    ("post", "/cases/{case}/close", {"finding": "no_issue"}),
]


@pytest.mark.parametrize("who", ["ice", "fbi", "reader", "admin", "clerk", "charging"])
def test_no_one_but_a_reviewer_sees_or_acts_and_the_agency_never_sees_its_own_flags(
    client: TestClient, db: Database, world: World, who: str
) -> None:
    site = build(client, db, world)
    _hit(client, world, site)
    (case,) = client.get(f"{OVERSIGHT}/cases", headers=world.auth("overseer")).json()["items"]
    before = flags(db)
    for method, path, body in OVERSIGHT_ROUTES:
        url = OVERSIGHT + path.format(case=case["id"], canary=site.canary_id)
        answer = client.request(method, url, json=body, headers=world.auth(who))
        assert answer.status_code == 403, (who, url, answer.text)
        assert answer.json()["error"]["code"] == "permission_denied"
        error = answer.json()["error"]
        # Nothing but the refusal and its own audit entry's id (a number of its own).
        assert set(error) <= {"code", "message", "field", "details", "audit_entry"}
        assert str(site.canary_person) not in str((error["message"], error.get("details")))
    shown = client.get(f"{OVERSIGHT}/cases/{case['id']}", headers=world.auth("overseer")).json()
    assert shown["state"] == "open" and [e["act"] for e in shown["history"]][-1] == "flag_added"
    assert len(flags(db)) == len(before)


def test_bad_input_names_the_field(client: TestClient, db: Database, world: World) -> None:
    site = build(client, db, world)
    _hit(client, world, site)
    me = world.auth("overseer")
    (case,) = client.get(f"{OVERSIGHT}/cases", headers=me).json()["items"]
    url = f"{OVERSIGHT}/cases/{case['id']}"
    cases = [
        ("post", f"{url}/close", {"finding": "fired"}, 422, "finding"),
        ("post", f"{url}/close", {}, 422, "finding"),
        ("post", f"{url}/assign", {"assignee": "reader"}, 422, "assignee"),
        ("post", f"{url}/assign", {"assignee": "nobody"}, 422, "assignee"),
        ("post", f"{url}/notes", {"note": ""}, 422, "note"),
        ("post", f"{url}/notes", {"note": "x", "edit": 1}, 422, "edit"),
        ("get", f"{OVERSIGHT}/cases/999999", None, 404, "case_id"),
        ("post", f"{OVERSIGHT}/cases/999999/close", {"finding": "no_issue"}, 404, "case_id"),
        ("get", f"{OVERSIGHT}/cases", None, 422, "state"),
        ("get", f"{OVERSIGHT}/flags?limit=0", None, 422, "limit"),
    ]
    for method, target, body, status, field in cases:
        params = {"state": "shut"} if target.endswith("/cases") and method == "get" else None
        answer = client.request(method, target, json=body, params=params, headers=me)
        assert answer.status_code == status, (target, body, answer.text)
        assert answer.json()["error"]["field"] == field, (target, body, answer.text)


def test_the_case_history_is_append_only_in_the_database(
    client: TestClient, db: Database, world: World
) -> None:
    site = build(client, db, world)
    _hit(client, world, site)
    client.get(f"{OVERSIGHT}/cases", headers=world.auth("overseer"))
    for statement in (
        "UPDATE oversight_case_events SET note = 'edited'",
        "DELETE FROM oversight_case_events",
    ):
        with pytest.raises(Exception, match="append-only"), db.session() as s:
            s.execute(text(statement))
