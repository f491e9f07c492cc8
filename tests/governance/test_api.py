"""Governance through the real app: proposals, signed votes, board, keys, timeline, errors."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi.testclient import TestClient

from openpars.db import utcnow
from openpars.governance import signing
from openpars.governance.quorum import Choice
from openpars.governance.schemas import ProposalRead
from tests.governance.helpers import Gov, rows


def propose(client: TestClient, gov: Gov, who: str = "da", **body: Any) -> dict[str, Any]:
    payload = {
        "agreement_id": gov.agreement_id,
        "action": "adopt",
        "summary": "Adopt the ICE agreement, arrestees only",
        "deadline": (utcnow() + timedelta(days=7)).isoformat(),
        **body,
    }
    response = client.post("/api/v1/proposals", json=payload, headers=gov.auth(who))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def signed(
    gov: Gov,
    proposal: dict[str, Any],
    who: str,
    choice: str,
    rationale: str,
    *,
    stakeholder: str | None = None,
) -> dict[str, Any]:
    """Sign as the CLI does offline: from the proposal's published fields only."""
    statement = signing.statement_for(
        ProposalRead.model_validate(proposal),
        stakeholder_id=gov.agencies[stakeholder or who],
        key_fingerprint=signing.fingerprint(signing.public_raw(gov.keys[who])),
        choice=Choice(choice),
        rationale=rationale,
        at=utcnow(),
    )
    return signing.sign_vote(gov.keys[who], statement, rationale)


def post_vote(client: TestClient, gov: Gov, who: str, vote: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1/proposals/{vote['proposal_id']}/votes", json=vote, headers=gov.auth(who)
    )


def verify_offline(export: dict[str, Any]) -> dict[str, str]:
    """Re-verify an exported voting history with nothing but cryptography and the JSON.

    Written independently of openpars's own code on purpose: this is what a stakeholder's
    auditor would write. Returns each stakeholder's standing choice.
    """
    proposal = export["proposal"]
    keys = {k["fingerprint"]: k for k in export["keys"]}
    standing: dict[str, tuple[str, str]] = {}
    for vote in export["votes"]:
        key = keys[vote["key_fingerprint"]]
        raw = base64.b64decode(key["public_key"])
        assert hashlib.sha256(raw).hexdigest() == key["fingerprint"]
        assert key["agency_id"] == vote["stakeholder_id"]
        message = base64.b64decode(vote["signed"])
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(vote["signature"]), message)
        lines = message.decode("utf-8").split("\n")
        assert lines[0] == "openpars-vote/v2" and lines[-1] == ""
        fields = dict(line.split(" ", 1) for line in lines[1:-1])
        assert fields["proposal"] == str(proposal["id"])
        assert fields["agreement"] == str(proposal["agreement_id"])
        assert fields["version-hash"] == proposal["content_hash"]
        assert fields["action"] == proposal["action"]
        for line in ("effective-at", "new-expires-at"):
            when = proposal[line.replace("-", "_")]
            assert fields[line] == ("none" if when is None else fields[line])
            assert when is None or datetime.fromisoformat(when) == datetime.fromisoformat(
                fields[line].replace("Z", "+00:00")
            )
        assert fields["stakeholder"] == str(vote["stakeholder_id"])
        assert fields["key"] == vote["key_fingerprint"]
        assert fields["choice"] == vote["choice"]
        digest = hashlib.sha256(vote["rationale"].encode("utf-8")).hexdigest()
        assert fields["rationale-sha256"] == digest
        at = fields["at"]
        previous = standing.get(str(vote["stakeholder_id"]))
        assert previous is None or previous[1] < at  # changes are strictly later
        standing[str(vote["stakeholder_id"])] = (vote["choice"], at)
    return {k: v[0] for k, v in standing.items()}


def test_adopt_by_signed_votes_and_reverify_offline(client: TestClient, gov: Gov) -> None:
    board = client.get("/api/v1/board", headers=gov.auth("court")).json()
    assert (board["quorum"], board["size"], board["solo_actions"]) == (2, 3, ["suspend"])
    assert [m["voters"] for m in board["members"]] == [
        ["da-voter"],
        ["court-voter"],
        ["city-voter"],
    ]
    proposal = propose(client, gov)
    assert (proposal["status"], proposal["required_yes"], proposal["tally"]["needed"]) == (
        "open",
        2,
        2,
    )

    first = post_vote(
        client, gov, "da", signed(gov, proposal, "da", "no", "Not until we see the logs.")
    )
    assert first.status_code == 201, first.text
    changed = signed(gov, proposal, "da", "yes", "Logs reviewed; arrestees only.")
    assert post_vote(client, gov, "da", changed).json()["proposal"]["status"] == "open"
    receipt = post_vote(client, gov, "city", signed(gov, proposal, "city", "yes", "Agreed."))
    assert receipt.json()["proposal"]["status"] == "applied"

    export = client.get(
        f"/api/v1/proposals/{proposal['id']}/votes", headers=gov.auth("court")
    ).json()
    assert len(export["votes"]) == 3
    standing = verify_offline(json.loads(json.dumps(export)))
    assert standing == {str(gov.agencies["da"]): "yes", str(gov.agencies["city"]): "yes"}
    # Any tampering with the exported history is caught by the same check.
    tampered = json.loads(json.dumps(export))
    tampered["votes"][0]["rationale"] = "Something else."
    with pytest.raises(AssertionError):
        verify_offline(tampered)
    swapped = json.loads(json.dumps(export))
    swapped["votes"][0]["signed"] = export["votes"][1]["signed"]
    with pytest.raises(InvalidSignature):
        verify_offline(swapped)

    timeline = client.get(
        f"/api/v1/agreements/{gov.agreement_id}/governance-timeline", headers=gov.auth("court")
    ).json()["items"]
    kinds = [e["kind"] for e in timeline]
    assert {"vote.cast", "vote.changed", "proposal.applied", "agreement.adopted"} <= set(kinds)
    assert any(e["rationale"] == "Not until we see the logs." for e in timeline)


def test_bad_votes_over_http_record_nothing(client: TestClient, gov: Gov) -> None:
    proposal = propose(client, gov)
    good = signed(gov, proposal, "da", "yes", "fine")
    cases = [
        ({**good, "signature": "%%%"}, 422, "signature"),
        ({**good, "signature": base64.b64encode(b"x" * 10).decode()}, 422, "signature"),
        (signed(gov, proposal, "da", "yes", "r" * 4001), 422, "rationale"),
        ({**good, "version_hash": "a" * 64}, 409, "version_hash"),
        (signed(gov, proposal, "court", "yes", "the court's vote"), 409, "stakeholder_id"),
        (
            signed(gov, proposal, "court", "yes", "court key, DA vote", stakeholder="da"),
            403,
            "key_fingerprint",
        ),
    ]
    with gov.session() as session:
        before = rows(session)
    for vote, status, field in cases:
        response = post_vote(client, gov, "da", vote)
        assert response.status_code == status, response.text
        assert response.json()["error"]["field"] == field
    missing = client.post(
        "/api/v1/proposals/987654/votes",
        json={**good, "proposal_id": 987654},
        headers=gov.auth("da"),
    )
    assert (missing.status_code, missing.json()["error"]["field"]) == (404, "proposal_id")
    mismatch = client.post(
        f"/api/v1/proposals/{proposal['id'] + 1}/votes", json=good, headers=gov.auth("da")
    )
    assert (mismatch.status_code, mismatch.json()["error"]["field"]) == (422, "proposal_id")
    not_voter = client.post(
        f"/api/v1/proposals/{proposal['id']}/votes",
        json=good,
        headers=gov.world.auth("charging"),
    )
    # An account without the vote permission is refused at the edge, before its body is read.
    assert (not_voter.status_code, not_voter.json()["error"]["code"]) == (
        403,
        "permission_denied",
    )
    with gov.session() as session:
        assert rows(session) == before
    assert post_vote(client, gov, "da", good).status_code == 201
    replay = post_vote(client, gov, "da", good)
    assert (replay.status_code, replay.json()["error"]["code"]) == (409, "replayed_vote")


def test_bad_proposals_over_http(client: TestClient, gov: Gov) -> None:
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    response = client.post(
        "/api/v1/proposals",
        json={
            "agreement_id": gov.agreement_id,
            "action": "adopt",
            "summary": "x",
            "deadline": past,
        },
        headers=gov.auth("da"),
    )
    assert (response.status_code, response.json()["error"]["field"]) == (422, "deadline")
    response = client.post(
        "/api/v1/proposals",
        json={
            "agreement_id": 55555,
            "action": "adopt",
            "summary": "x",
            "deadline": (utcnow() + timedelta(days=1)).isoformat(),
        },
        headers=gov.auth("da"),
    )
    assert (response.status_code, response.json()["error"]["field"]) == (404, "agreement_id")
    assert client.get("/api/v1/proposals/424242", headers=gov.auth("da")).status_code == 404
    assert (
        client.get(
            "/api/v1/agreements/424242/governance-timeline", headers=gov.auth("da")
        ).status_code
        == 404
    )


def test_board_changes_are_proposals_not_writes(client: TestClient, gov: Gov) -> None:
    members = [gov.agencies[w] for w in ("da", "court", "city")]
    body = {"members": members, "quorum": 3, "solo_actions": []}
    # There is no write endpoint for the board any more: every change is an 'board' proposal.
    for who in (gov.auth("da"), gov.world.auth("agreements")):
        assert client.put("/api/v1/board", json=body, headers=who).status_code == 405
    proposal = {
        "action": "board",
        "summary": "all three",
        "deadline": (utcnow() + timedelta(days=1)).isoformat(),
    }
    too_many = client.post(
        "/api/v1/proposals",
        json={**proposal, "board": {**body, "quorum": 4}},
        headers=gov.world.auth("agreements"),
    )
    assert (too_many.status_code, too_many.json()["error"]["field"]) == (422, "quorum")
    ice = gov.world.agencies["Immigration and Customs Enforcement"]
    outsider = client.post(
        "/api/v1/proposals",
        json={**proposal, "board": {**body, "members": [*members, ice]}},
        headers=gov.world.auth("agreements"),
    )
    assert (outsider.status_code, outsider.json()["error"]["field"]) == (422, "members")
    response = client.post(
        "/api/v1/proposals", json={**proposal, "board": body}, headers=gov.auth("da")
    )
    assert response.status_code == 201, response.text
    assert client.get("/api/v1/board", headers=gov.auth("da")).json()["version"] == 1


def test_keys_register_list_revoke(client: TestClient, gov: Gov) -> None:
    new = Ed25519PrivateKey.generate()
    raw = base64.b64encode(signing.public_raw(new)).decode()
    created = client.post(
        "/api/v1/keys", json={"public_key": raw, "label": "spare"}, headers=gov.admin_auth("court")
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["agency_id"] == gov.agencies["court"]
    again = client.post(
        "/api/v1/keys", json={"public_key": raw, "label": "dup"}, headers=gov.admin_auth("court")
    )
    assert again.status_code == 409
    foreign = client.post(
        "/api/v1/keys",
        json={
            "public_key": base64.b64encode(b"k" * 32).decode(),
            "label": "x",
            "agency_id": gov.agencies["da"],
        },
        headers=gov.admin_auth("court"),
    )
    assert foreign.status_code == 403
    listed = client.get("/api/v1/keys", headers=gov.auth("da")).json()["items"]
    assert key["fingerprint"] in [k["fingerprint"] for k in listed]
    revoked = client.post(
        f"/api/v1/keys/{key['id']}/revoke",
        json={"reason": "rotated"},
        headers=gov.admin_auth("court"),
    )
    assert revoked.json()["revoked_by"] == "court-stakeholder-admin"


def test_external_agencies_cannot_read_governance(client: TestClient, gov: Gov) -> None:
    response = client.get("/api/v1/proposals", headers=gov.world.auth("ice"))
    assert response.status_code == 403


def test_listing_showing_and_ticking(client: TestClient, gov: Gov) -> None:
    opened = propose(client, gov, who="da")
    # Agreement managers may open proposals too, without being voters.
    by_admin = client.post(
        "/api/v1/proposals",
        json={
            "agreement_id": gov.agreement_id,
            "action": "renew",
            "summary": "renew",
            "deadline": (utcnow() + timedelta(days=3)).isoformat(),
            "new_expires_at": (utcnow() - timedelta(days=1)).isoformat(),
        },
        headers=gov.world.auth("agreements"),
    )
    assert (by_admin.status_code, by_admin.json()["error"]["field"]) == (422, "new_expires_at")
    listed = client.get(
        "/api/v1/proposals",
        params={"status": "open", "agreement_id": gov.agreement_id},
        headers=gov.auth("city"),
    ).json()["items"]
    assert [p["id"] for p in listed] == [opened["id"]]
    applied = client.get(
        "/api/v1/proposals", params={"status": "applied"}, headers=gov.auth("city")
    ).json()
    assert applied["items"] == [] and applied["total"] == 0
    shown = client.get(f"/api/v1/proposals/{opened['id']}", headers=gov.auth("city")).json()
    assert shown["board_members"] == [gov.agencies[w] for w in ("da", "court", "city")]
    assert client.post("/api/v1/governance/tick", headers=gov.auth("da")).status_code == 403
    ticked = client.post("/api/v1/governance/tick", headers=gov.world.auth("agreements"))
    assert (ticked.status_code, ticked.json()["items"]) == (200, [])


def test_renewal_notices_over_http(client: TestClient, gov: Gov) -> None:
    from openpars.governance.decisions import tick

    proposal = propose(client, gov)
    for who in ("da", "court"):
        assert (
            post_vote(client, gov, who, signed(gov, proposal, who, "yes", "ok")).status_code == 201
        )
    with gov.session() as session:
        tick(session, now=utcnow() + timedelta(days=330))
    mine = client.get(
        "/api/v1/renewal-notices",
        params={"stakeholder_id": gov.agencies["court"]},
        headers=gov.auth("court"),
    ).json()["items"]
    assert [(n["agreement_id"], n["evidence_url"]) for n in mine] == [
        (gov.agreement_id, f"/api/v1/agreements/{gov.agreement_id}/evidence")
    ]
    everything = client.get("/api/v1/renewal-notices", headers=gov.auth("court")).json()
    assert len(everything["items"]) == everything["total"] == 3
