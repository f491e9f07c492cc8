"""Offline verification against the stakeholders' published keys: the verifier's tamper matrix.

The attacker here holds the export (and can rewrite it, keys included) but not the
stakeholders' private keys nor the key files they published by their own channels.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpars_verify import cli as independent
from typer.testing import CliRunner

from openpars.errors import InvalidInput
from openpars.governance import signing
from openpars.governance.cli import app
from openpars.governance.keyring import publish_keys
from openpars.governance.quorum import Choice
from openpars.governance.verify import pinned_keys, verify_export
from openpars.governance.votes import export_votes, submit_vote
from tests.governance.helpers import Gov

Doc = dict[str, Any]


@pytest.fixture
def export(gov: Gov) -> Doc:
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


@pytest.fixture
def published(gov: Gov) -> dict[str, Doc]:
    """Each stakeholder's key file, as it publishes it."""
    with gov.session() as session:
        return {
            who: publish_keys(
                session, actor=gov.voters[who], agency_id=gov.agencies[who]
            ).model_dump(mode="json")
            for who in ("da", "court", "city")
        }


def problems(
    export: Doc, files: list[Doc], change: Callable[[Doc], None] | None = None
) -> list[str]:
    document = copy.deepcopy(export)
    if change is not None:
        change(document)
    return verify_export(document, pinned_keys(files)).problems


def resign(document: Doc, gov: Gov, who: str, private: Any) -> None:
    """What an attacker with its own key does: re-sign the stakeholder's votes and swap its key."""
    agency = gov.agencies[who]
    fp = signing.fingerprint(signing.public_raw(private))
    for key in document["keys"]:
        if key["agency_id"] == agency:
            key["fingerprint"] = fp
            key["public_key"] = signing.encode_b64(signing.public_raw(private))
    for vote in document["votes"]:
        if vote["stakeholder_id"] != agency:
            continue
        old = signing.VoteStatement.decode(signing.decode_b64(vote["signed"], field="signed"))
        new = signing.VoteStatement(**{**_fields(old), "key_fingerprint": fp})
        vote["key_fingerprint"] = fp
        vote["signed"] = signing.encode_b64(new.encode())
        vote["signature"] = signing.encode_b64(private.sign(new.encode()))


def _fields(statement: signing.VoteStatement) -> dict[str, Any]:
    return {name: getattr(statement, name) for name in signing.VoteStatement.__slots__}


def test_a_true_history_verifies_against_the_pinned_keys(
    export: Doc, published: dict[str, Doc], gov: Gov
) -> None:
    result = verify_export(export, pinned_keys(list(published.values())))
    assert result.ok, result.problems
    assert (result.votes_checked, result.decision, result.notes) == (3, "Approved", [])
    assert published["da"]["stakeholder_id"] == gov.agencies["da"]
    assert published["da"]["name"] == "District Attorney's Office"
    assert published["da"]["format"] == "openpars-stakeholder-keys/v1"


def test_the_tamper_matrix(export: Doc, published: dict[str, Doc], gov: Gov) -> None:
    files = list(published.values())
    attacker = signing.load_private_pem(signing.generate_private_pem())
    other_bytes = signing.encode_b64(signing.public_raw(attacker))

    def action(d: Doc) -> None:
        d["proposal"]["action"] = "terminate"

    def effective(d: Doc) -> None:
        d["proposal"]["effective_at"] = "2030-01-01T00:00:00Z"

    def expiry(d: Doc) -> None:
        d["proposal"]["new_expires_at"] = "2030-01-01T00:00:00Z"

    def swapped(d: Doc) -> None:
        resign(d, gov, "da", attacker)

    def missing(d: Doc) -> None:
        d["keys"] = [k for k in d["keys"] if k["agency_id"] != gov.agencies["da"]]

    def bytes_changed(d: Doc) -> None:
        d["keys"][0]["public_key"] = other_bytes

    def agency_changed(d: Doc) -> None:
        d["keys"][0]["agency_id"] = gov.agencies["city"]

    def stakeholder(d: Doc) -> None:
        d["votes"][2]["stakeholder_id"] = gov.agencies["city"]

    cases: dict[Callable[[Doc], None], str] = {
        action: "on line 'action' (signed 'adopt', exported 'terminate')",
        effective: "on line 'effective-at' (signed 'none'",
        expiry: "on line 'new-expires-at'",
        swapped: "in the export is not among the pinned keys",
        missing: "is not in the export",
        bytes_changed: "has other bytes in the export than pinned",
        agency_changed: "but the export gives it to agency",
        stakeholder: "signed with a key of agency",
    }
    for change, message in cases.items():
        found = problems(export, files, change)
        assert any(message in p for p in found), (change.__name__, found)
    # Against the export's own keys the swap passes: that is all --trust-export-keys shows.
    document = copy.deepcopy(export)
    swapped(document)
    assert verify_export(document).ok
    assert not verify_export(document, pinned_keys(files)).ok


def test_pinned_files_of_other_stakeholders(
    export: Doc, published: dict[str, Doc], gov: Gov
) -> None:
    # The DA's file left out (the court's given twice): the DA's votes cannot be checked.
    found = problems(export, [published["court"], published["court"], published["city"]])
    assert any("is not a pinned key; pass the published keys of stakeholder" in p for p in found)
    # A file claiming the DA's key for the court.
    forged = copy.deepcopy(published["da"]) | {"stakeholder_id": gov.agencies["court"]}
    found = problems(export, [forged, published["court"]])
    assert any("is pinned for stakeholder" in p for p in found), found
    assert any("signed with a key of agency" in p for p in found), found


def test_key_validity_from_the_pinned_file(export: Doc, published: dict[str, Doc]) -> None:
    revoked = copy.deepcopy(published["da"])
    revoked["keys"][0]["revoked_at"] = "2000-01-01T00:00:00Z"
    found = problems(export, [revoked, published["court"]])
    assert any("after its key was revoked" in p for p in found), found
    late = copy.deepcopy(published["da"])
    late["keys"][0]["valid_from"] = "2999-01-01T00:00:00Z"
    found = problems(export, [late, published["court"]])
    assert any("before its key was registered" in p for p in found), found


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.update(format="something/v9"),
        lambda f: f.pop("stakeholder_id"),
        lambda f: f["keys"][0].update(fingerprint="0" * 64),
        lambda f: f["keys"][0].update(public_key="@@"),
    ],
)
def test_malformed_key_files_are_refused(published: dict[str, Doc], change: Any) -> None:
    document = copy.deepcopy(published["da"])
    change(document)
    with pytest.raises(InvalidInput) as caught:
        pinned_keys([document])
    assert caught.value.field == "stakeholder-keys"


def test_stored_v1_votes_still_verify(export: Doc, published: dict[str, Doc], gov: Gov) -> None:
    document = copy.deepcopy(export)
    vote = document["votes"][2]
    proposal = document["proposal"]
    old = signing.VoteStatementV1(
        proposal_id=proposal["id"],
        agreement_id=proposal["agreement_id"],
        version_hash=proposal["content_hash"],
        choice=Choice(vote["choice"]),
        rationale_sha256=signing.rationale_digest(vote["rationale"]),
        at=signing.parse_at(vote["at"]),
    )
    vote["signed"] = signing.encode_b64(old.encode())
    vote["signature"] = signing.encode_b64(gov.keys["court"].sign(old.encode()))
    result = verify_export(document, pinned_keys(list(published.values())))
    assert result.ok, result.problems
    assert result.notes == [
        f"vote {vote['id']}: an openpars-vote/v1 vote; it does not bind the action, its times, "
        "the stakeholder or the key"
    ]
    vote["choice"] = "no"
    result = verify_export(document, pinned_keys(list(published.values())))
    assert any("the signed statement differs from the recorded vote" in p for p in result.problems)


def test_a_malformed_export(export: Doc) -> None:
    broken = copy.deepcopy(export)
    broken["keys"][0].pop("created_at")
    with pytest.raises(InvalidInput, match="keys are malformed"):
        verify_export(broken)
    with pytest.raises(InvalidInput, match="not an openpars vote export"):
        verify_export({"proposal": {"id": 1}, "keys": [], "votes": []})


def test_published_keys_over_http(client: TestClient, gov: Gov) -> None:
    da = gov.agencies["da"]
    response = client.get(f"/api/v1/stakeholders/{da}/keys", headers=gov.auth("court"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["format"], body["stakeholder_id"], len(body["keys"])) == (
        "openpars-stakeholder-keys/v1",
        da,
        1,
    )
    assert body["keys"][0]["fingerprint"] == signing.fingerprint(signing.public_raw(gov.keys["da"]))
    missing = client.get("/api/v1/stakeholders/987654/keys", headers=gov.auth("court"))
    assert (missing.status_code, missing.json()["error"]["field"]) == (404, "agency_id")
    assert client.get(f"/api/v1/stakeholders/{da}/keys").status_code == 401


def test_the_swap_at_the_console(
    export: Doc, published: dict[str, Doc], gov: Gov, tmp_path: Path
) -> None:
    attacker = signing.load_private_pem(signing.generate_private_pem())
    document = copy.deepcopy(export)
    resign(document, gov, "da", attacker)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    pins = []
    for who, file in published.items():
        pins += ["--stakeholder-keys", str(tmp_path / f"{who}.json")]
        Path(pins[-1]).write_text(json.dumps(file), encoding="utf-8")
    result = CliRunner().invoke(app, ["vote", "verify", "--export", str(path), *pins])
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "is not among the pinned keys" in " ".join(
        result.stderr.split()
    )
    trusted = CliRunner().invoke(
        app, ["vote", "verify", "--export", str(path), "--trust-export-keys"]
    )
    assert trusted.exit_code == 0, trusted.output
    assert "self-consistent" in " ".join(trusted.output.split())


def test_console_notes_v1_votes_and_signing_needs_its_terms(
    export: Doc, published: dict[str, Doc], gov: Gov, tmp_path: Path
) -> None:
    document = copy.deepcopy(export)
    vote, proposal = document["votes"][2], document["proposal"]
    old = signing.VoteStatementV1(
        proposal_id=proposal["id"],
        agreement_id=proposal["agreement_id"],
        version_hash=proposal["content_hash"],
        choice=Choice(vote["choice"]),
        rationale_sha256=signing.rationale_digest(vote["rationale"]),
        at=signing.parse_at(vote["at"]),
    )
    vote["signed"] = signing.encode_b64(old.encode())
    vote["signature"] = signing.encode_b64(gov.keys["court"].sign(old.encode()))
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    pins = []
    for who, file in published.items():
        pins += ["--stakeholder-keys", str(tmp_path / f"{who}.json")]
        Path(pins[-1]).write_text(json.dumps(file), encoding="utf-8")
    result = CliRunner().invoke(app, ["vote", "verify", "--export", str(path), *pins])
    assert result.exit_code == 0, result.output
    assert "NOTE vote" in result.stderr and "openpars-vote/v1" in result.stderr
    # Offline signing: the proposal file must be the proposal named, and the stakeholder given.
    key = tmp_path / "court.pem"
    key.write_bytes(signing.generate_private_pem())
    proposal_file = tmp_path / "proposal.json"
    proposal_file.write_text(json.dumps(document), encoding="utf-8")
    sign = ["vote", "sign", "--key", str(key), "--choice", "yes", "--rationale", "ok"]
    wrong = CliRunner().invoke(
        app, [*sign, "--proposal", str(proposal["id"] + 1), "--proposal-file", str(proposal_file)]
    )
    assert wrong.exit_code == 1
    assert "(field: proposal-file)" in " ".join(wrong.stderr.split())
    anonymous = CliRunner().invoke(
        app, [*sign, "--proposal", str(proposal["id"]), "--proposal-file", str(proposal_file)]
    )
    assert anonymous.exit_code == 1
    assert "--stakeholder AGENCY_ID (field: stakeholder)" in " ".join(anonymous.stderr.split())
    signed = CliRunner().invoke(
        app,
        [
            *sign,
            *("--proposal", str(proposal["id"]), "--proposal-file", str(proposal_file)),
            *("--stakeholder", str(gov.agencies["court"])),
        ],
    )
    assert signed.exit_code == 0, signed.output
    made = json.loads(signed.stdout)
    assert (made["format"], made["action"], made["stakeholder_id"]) == (
        "openpars-vote/v2",
        proposal["action"],
        gov.agencies["court"],
    )


def test_the_independent_verifier_agrees(
    export: Doc,
    published: dict[str, Doc],
    gov: Gov,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """openpars-verify (which never imports openpars) runs the same matrix on the same files."""
    pins = []
    for who, file in published.items():
        pins += ["--stakeholder-keys", str(tmp_path / f"{who}.json")]
        Path(pins[-1]).write_text(json.dumps(file), encoding="utf-8")
    attacker = signing.load_private_pem(signing.generate_private_pem())

    def run(document: Doc, keys: list[str]) -> tuple[int, str]:
        path = tmp_path / "export.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        code = independent.main(["votes", "--export", str(path), *keys])
        out, err = capsys.readouterr()
        return code, out + err

    assert run(export, pins) == (
        0,
        f"OK 3 vote(s) of proposal {export['proposal']['id']} verify with the pinned keys\n",
    )

    def action(d: Doc) -> None:
        d["proposal"]["action"] = "terminate"

    def swapped(d: Doc) -> None:
        resign(d, gov, "da", attacker)

    def missing(d: Doc) -> None:
        d["keys"] = [k for k in d["keys"] if k["agency_id"] != gov.agencies["da"]]

    def expiry(d: Doc) -> None:
        d["proposal"]["new_expires_at"] = "2030-01-01T00:00:00Z"

    def garbled(d: Doc) -> None:
        del d["votes"][0]["signed"]

    def stakeholder(d: Doc) -> None:
        d["votes"][2]["stakeholder_id"] = gov.agencies["city"]

    def bytes_swapped(d: Doc) -> None:
        d["votes"][0]["signed"] = d["votes"][1]["signed"]

    def reordered(d: Doc) -> None:
        lines = signing.decode_b64(d["votes"][2]["signed"], field="signed").split(b"\n")
        lines[1], lines[2] = lines[2], lines[1]
        signed = b"\n".join(lines)
        d["votes"][2]["signed"] = signing.encode_b64(signed)
        d["votes"][2]["signature"] = signing.encode_b64(gov.keys["court"].sign(signed))

    cases: dict[Callable[[Doc], None], str] = {
        stakeholder: "pinned for stakeholder",
        bytes_swapped: "the signature does not verify with the pinned key",
        reordered: "are not in their fixed order",
        action: "line 'action' says 'adopt', the export says 'terminate'",
        swapped: "in the export is not that stakeholder's pinned key",
        missing: "its key is not in the export",
        expiry: "line 'new-expires-at' says 'none'",
        garbled: "the export is malformed",
    }
    for change, message in cases.items():
        document = copy.deepcopy(export)
        change(document)
        code, said = run(document, pins)
        assert (code, said.count("\n")) == (1, 1), (change.__name__, said)
        assert said.startswith("openpars-verify: FAIL: ") and message in said, said
    # The DA's file left out: its votes' key is not pinned.
    code, said = run(export, pins[2:])
    assert code == 1 and "is not that stakeholder's pinned key" in said
    # A file claiming the DA's key for the court.
    forged = tmp_path / "forged.json"
    forged.write_text(
        json.dumps(published["da"] | {"stakeholder_id": gov.agencies["court"]}), encoding="utf-8"
    )
    code, said = run(export, ["--stakeholder-keys", str(forged), *pins[2:]])
    assert code == 1 and "is not that stakeholder's pinned key" in said
    revoked = tmp_path / "revoked.json"
    document = copy.deepcopy(published["court"])
    document["keys"][0]["revoked_at"] = "2000-01-01T00:00:00Z"
    revoked.write_text(json.dumps(document), encoding="utf-8")
    code, said = run(export, [*pins[:2], "--stakeholder-keys", str(revoked)])
    assert code == 1 and "outside its key's validity" in said
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    code, said = run(export, ["--stakeholder-keys", str(bad)])
    assert code == 2 and "not an openpars-stakeholder-keys/v1 file" in said
    # A stored v1 vote verifies on the lines it has, and is counted as such.
    document = copy.deepcopy(export)
    vote, proposal = document["votes"][2], document["proposal"]
    old = signing.VoteStatementV1(
        proposal_id=proposal["id"],
        agreement_id=proposal["agreement_id"],
        version_hash=proposal["content_hash"],
        choice=Choice(vote["choice"]),
        rationale_sha256=signing.rationale_digest(vote["rationale"]),
        at=signing.parse_at(vote["at"]),
    )
    vote["signed"] = signing.encode_b64(old.encode())
    vote["signature"] = signing.encode_b64(gov.keys["court"].sign(old.encode()))
    code, said = run(document, pins)
    assert code == 0 and "(1 in openpars-vote/v1, which binds no action or stakeholder)" in said
