"""The audit log through the real app: public checkpoint and proofs, audited reads, witnesses."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openpars.audit import checkpoints, log, merkle, notes, service, witness
from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.models import AuditEntry
from openpars.audit.service import append
from openpars.config import Settings
from openpars.db import Database
from openpars.identity import service as identity
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import Role
from openpars.identity.schemas import UserCreate
from tests.audit.test_log import add_entries, cosignature_line, leaf_hashes, witness_keys
from tests.factories import World

API = "/api/v1/audit"


@pytest.fixture
def auditor(db: Database, world: World) -> dict[str, str]:
    """Headers of an oversight auditor (the standard world has none)."""
    with db.session() as session:
        user = identity.create_user(
            session,
            actor=SYSTEM,
            data=UserCreate(
                username="auditor",
                display_name="Auditor",
                agency_id=world.agencies["City of Philadelphia"],
                roles=[Role.AUDITOR],
            ),
        )
        _, secret = identity.issue_token(
            session, actor=SYSTEM, user_id=user.id, name="t", lifetime=timedelta(days=1)
        )
    return {"Authorization": f"Bearer {secret}"}


def publish(db: Database, settings: Settings) -> None:
    """Integrate and sign, as the background publisher would."""
    log.integrate_all(db)
    with db.session() as session:
        checkpoints.publish(session, settings=settings)


def entries_with_action(db: Database, action: str) -> int:
    with db.session() as session:
        return (
            session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
            )
            or 0
        )


def test_checkpoint_is_public_plain_text_and_verifies(
    client: TestClient, db: Database, settings: Settings
) -> None:
    assert client.get(f"{API}/checkpoint").status_code == 404
    add_entries(db, 3)
    publish(db, settings)
    response = client.get(f"{API}/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    key = checkpoints.check_key(settings, db).signer.verifier()
    checkpoint = notes.verify_checkpoint(response.text, key)
    with db.session() as session:
        assert checkpoint.size == repo.tree_size(session)
        assert checkpoint.root_hash == merkle.root_from_leaf_hashes(leaf_hashes(session))


def test_proof_endpoints_return_proofs_that_verify(
    client: TestClient, db: Database, settings: Settings
) -> None:
    add_entries(db, 11)
    publish(db, settings)
    with db.session() as session:
        hashes = leaf_hashes(session)
    size = len(hashes)
    root = merkle.root_from_leaf_hashes(hashes)
    body = client.get(f"{API}/proof/inclusion", params={"index": 4, "size": size}).json()
    proof = [base64.b64decode(p) for p in body["proof"]]
    merkle.verify_inclusion(hashes[4], 4, size, proof, root)
    body = client.get(f"{API}/proof/consistency", params={"first": 3, "second": size}).json()
    proof = [base64.b64decode(p) for p in body["proof"]]
    merkle.verify_consistency(3, size, proof, merkle.root_from_leaf_hashes(hashes[:3]), root)
    too_big = client.get(f"{API}/proof/inclusion", params={"index": 0, "size": size + 5})
    assert too_big.status_code == 422 and too_big.json()["error"]["field"] == "size"


def test_entries_need_audit_read_and_are_themselves_audited(
    client: TestClient, db: Database, world: World, auditor: dict[str, str]
) -> None:
    add_entries(db, 3, arrest_id=9)
    refused = client.get(f"{API}/entries", headers=world.auth("reader"))
    assert refused.status_code == 403
    before = entries_with_action(db, "audit.entries.list")
    response = client.get(f"{API}/entries", params={"limit": 2}, headers=auditor)
    assert response.status_code == 200
    page = response.json()
    assert len(page["entries"]) == 2 and page["next_after_id"] == page["entries"][-1]["id"]
    assert page["entries"][0]["content"]["action"] in {"arrest.read"} | {
        e["action"] for e in page["entries"]
    }
    assert entries_with_action(db, "audit.entries.list") == before + 1
    rest = client.get(
        f"{API}/entries", params={"after_id": page["next_after_id"]}, headers=auditor
    ).json()
    assert rest["entries"][0]["id"] > page["next_after_id"]


def test_a_failed_audit_append_returns_no_data(
    client: TestClient, db: Database, auditor: dict[str, str]
) -> None:
    add_entries(db, 3)
    # A real database constraint, not an application hook: refuse this one kind of entry.
    with db.session() as session:
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER test_refuse_list BEFORE INSERT ON audit_entries "
                "WHEN NEW.action = 'audit.entries.list' "
                "BEGIN SELECT RAISE(ABORT, 'disk full (simulated by a constraint)'); END"
            )
        else:
            connection.exec_driver_sql(
                "ALTER TABLE audit_entries ADD CONSTRAINT test_refuse_list "
                "CHECK (action <> 'audit.entries.list')"
            )
    response = client.get(f"{API}/entries", headers=auditor)
    assert response.status_code == 503
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["code"] == "audit_unavailable"
    assert "arrest.read" not in response.text
    # The refusal itself was recorded in its own transaction.
    assert entries_with_action(db, "GET /api/v1/audit/entries") == 1


def test_export_is_for_auditors_audited_and_verifiable_shape(
    client: TestClient, db: Database, world: World, auditor: dict[str, str], settings: Settings
) -> None:
    add_entries(db, 4)
    publish(db, settings)
    assert client.get(f"{API}/export", headers=world.auth("admin")).status_code == 403
    response = client.get(f"{API}/export", headers=auditor)
    assert response.status_code == 200
    lines = response.text.splitlines()
    with db.session() as session:
        size = checkpoints.latest(session).size
    assert lines[0].startswith("openpars-audit-export/v1 0 ")
    assert lines[-1] == f"end {size}" and lines[-2].startswith("checkpoint ")
    assert sum(line.startswith("entry ") for line in lines) == size
    assert entries_with_action(db, "audit.export") == 1


def test_receipts_for_the_entrys_own_user_or_auditors_only(
    client: TestClient, db: Database, world: World, auditor: dict[str, str], settings: Settings
) -> None:
    fbi = world.principals["fbi"]
    with db.session() as session:
        entry = append(
            session,
            AuditEvent(
                kind=AuditKind.SEARCH,
                action="external.search",
                user_id=fbi.user_id,
                agency_id=fbi.agency_id,
                params={"purpose": "fugitive"},
            ),
        )
    early = client.get(f"{API}/receipts/{entry.id}", headers=world.auth("fbi"))
    assert early.status_code == 409
    publish(db, settings)
    response = client.get(f"{API}/receipts/{entry.id}", headers=world.auth("fbi"))
    assert response.status_code == 200
    body = response.json()
    key = checkpoints.check_key(settings, db).signer.verifier()
    checkpoint = notes.verify_checkpoint(body["checkpoint"], key)
    proof = [base64.b64decode(p) for p in body["proof"]]
    salt, content = bytes.fromhex(body["salt"]), base64.b64decode(body["content"])
    assert service.commitment_of(salt, content).hex() == body["commitment"]
    leaf = merkle.leaf_hash(bytes.fromhex(body["commitment"]))
    assert leaf.hex() == body["leaf_hash"]
    merkle.verify_inclusion(leaf, body["leaf_index"], checkpoint.size, proof, checkpoint.root_hash)
    assert json.loads(content)["params"] == {"purpose": "fugitive"}
    assert client.get(f"{API}/receipts/{entry.id}", headers=world.auth("ice")).status_code == 404
    assert client.get(f"{API}/receipts/{entry.id}", headers=auditor).status_code == 200


def test_witness_administration_and_cosignature_quorum(
    client: TestClient, db: Database, world: World, settings: Settings
) -> None:
    keys = [witness_keys(f"witness-{n}.example") for n in ("da", "court", "city")]
    # No one registers a witness directly any more (a board decision does, see
    # tests/governance/test_witness_proposals.py): the old endpoints are gone.
    direct = client.post(f"{API}/witnesses", json={"vkey": keys[0][1]}, headers=world.auth("admin"))
    assert direct.status_code == 405
    assert client.delete(f"{API}/witnesses/1", headers=world.auth("admin")).status_code in (
        404,
        405,
    )
    with db.session() as session:
        for _, vkey in keys:
            witness.install(session, vkey=vkey)
    assert client.get(f"{API}/witnesses", headers=world.auth("reader")).status_code == 403
    listed = client.get(f"{API}/witnesses", headers=world.auth("admin")).json()["items"]
    assert [w["name"] for w in listed] == [f"witness-{n}.example" for n in ("da", "court", "city")]
    publish(db, settings)
    note = client.get(f"{API}/checkpoint").text
    size = notes.parse_checkpoint(notes.parse_note(note).text).size
    url = f"{API}/checkpoints/{size}/cosignatures"
    bad = cosignature_line(note, keys[0][0])[:-6] + "AAAA=\n"
    assert client.post(url, json={"cosignature": bad}).status_code == 422
    first = client.post(url, json={"cosignature": cosignature_line(note, keys[0][0])})
    assert first.status_code == 201 and first.json()["final"] is False
    second = client.post(url, json={"cosignature": cosignature_line(note, keys[1][0])})
    assert second.json() | {"timestamp": 0} == {
        "size": size, "witness": "witness-court.example", "timestamp": 0, "cosigners": 2,
        "quorum": 2, "final": True,
    }  # fmt: skip
    cosigned = client.get(f"{API}/checkpoint").text
    verifiers = [notes.parse_verifier_key(v) for _, v in keys]
    key = checkpoints.check_key(settings, db).signer.verifier()
    notes.verify_checkpoint(cosigned, key, witnesses=verifiers, quorum=2)
    missing = client.post(
        f"{API}/checkpoints/{size + 99}/cosignatures", json={"cosignature": "x" * 20}
    )
    assert missing.status_code == 404
    with db.session() as session:
        witness.retire(session, name="witness-da.example")
    relisted = client.get(f"{API}/witnesses", headers=world.auth("admin")).json()["items"]
    assert relisted[0]["name"] == "witness-da.example" and relisted[0]["removed_at"] is not None
