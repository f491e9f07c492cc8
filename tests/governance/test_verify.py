"""The offline verifier finds every kind of inconsistency in an export."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from openpars.errors import InvalidInput
from openpars.governance.quorum import Choice
from openpars.governance.verify import verify_export
from openpars.governance.votes import export_votes, submit_vote
from tests.governance.helpers import Gov


@pytest.fixture
def export(gov: Gov) -> dict[str, Any]:
    """An applied adoption: DA no then yes, court yes."""
    pid = gov.propose()
    for who, choice, minute in (
        ("da", Choice.NO, 1),
        ("da", Choice.YES, 2),
        ("court", Choice.YES, 3),
    ):
        moment = gov.at(minutes=minute)
        with gov.session() as session:
            submit_vote(
                session,
                actor=gov.voters[who],
                data=gov.ballot(pid, who, choice, moment),
                now=moment,
            )
    with gov.session() as session:
        return export_votes(session, actor=gov.voters["city"], proposal_id=pid).model_dump(
            mode="json"
        )


def test_a_true_history_verifies(export: dict[str, Any], gov: Gov) -> None:
    result = verify_export(export)
    assert result.ok, result.problems
    assert (result.votes_checked, result.decision) == (3, "Approved")
    assert result.standing == {gov.agencies["da"]: Choice.YES, gov.agencies["court"]: Choice.YES}


def tampered(export: dict[str, Any], change: Any) -> list[str]:
    document = copy.deepcopy(export)
    change(document)
    return verify_export(document).problems


def test_each_kind_of_tampering_is_reported(export: dict[str, Any]) -> None:
    def unknown_key(d: dict[str, Any]) -> None:
        d["votes"][0]["key_fingerprint"] = "0" * 64

    def other_stakeholder(d: dict[str, Any]) -> None:
        d["votes"][0]["stakeholder_id"] = d["votes"][2]["stakeholder_id"]

    def bad_fingerprint(d: dict[str, Any]) -> None:
        d["keys"][0]["public_key"] = d["keys"][1]["public_key"]

    def revoked_before(d: dict[str, Any]) -> None:
        d["keys"][0]["revoked_at"] = "2000-01-01T00:00:00Z"

    def swapped_bytes(d: dict[str, Any]) -> None:
        d["votes"][0]["signed"] = d["votes"][1]["signed"]

    def changed_rationale(d: dict[str, Any]) -> None:
        d["votes"][2]["rationale"] = "something else"

    def changed_status(d: dict[str, Any]) -> None:
        d["proposal"]["status"] = "rejected"

    def broken_signature(d: dict[str, Any]) -> None:
        d["votes"][1]["signature"] = "@@@"

    cases = {
        unknown_key: "is not in the export",
        other_stakeholder: "signed with a key of agency",
        bad_fingerprint: "fingerprint does not match",
        revoked_before: "after its key was revoked",
        swapped_bytes: "signature does not verify",
        changed_rationale: "differs from the exported proposal or vote on line 'rationale-sha256'",
        changed_status: "recorded as rejected, but its votes give approved",
        broken_signature: "malformed",
    }
    for change, message in cases.items():
        problems = tampered(export, change)
        assert any(message in p for p in problems), (change.__name__, problems)


def test_not_an_export() -> None:
    with pytest.raises(InvalidInput, match="not an openpars vote export"):
        verify_export({"votes": []})
