"""Issue 11, receipts: an outside agency learns the id of the audit entry of each of its reads
(header and body) and checks, alone, with `openpars-verify receipt`, that the entry is in the
signed log. Nobody else gets that agency's receipts, not even a hint that the id exists."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from openpars_verify import cli as verify_cli
from typer.testing import CliRunner

from openpars.audit import checkpoints, log, witness
from openpars.audit.cli import app as audit_cli
from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.models import AuditEntry
from openpars.audit.service import append
from openpars.config import Settings
from openpars.db import Database
from openpars.identity.roles import Role
from tests.access.test_external_reads import PURPOSE, seed
from tests.audit.test_log import ORIGIN, cosignature_line, witness_keys
from tests.factories import World, add_user
from tests.records.factories import arrest_payload

HEADER = "OpenPARS-Audit-Entry"
RECEIPTS = "/api/v1/audit/receipts"


def entry_ids(response: Response) -> list[int]:
    """The ids the header names."""
    value = response.headers[HEADER]
    assert re.fullmatch(r"[0-9]+(,[0-9]+)*", value), value
    return [int(i) for i in value.split(",")]


def entry(db: Database, entry_id: int) -> AuditEntry:
    with db.session() as session:
        found = session.get(AuditEntry, entry_id)
    assert found is not None
    return found


def publish(db: Database, settings: Settings) -> str:
    """Integrate and sign as the background publisher would; the log's vkey."""
    log.integrate_all(db)
    with db.session() as session:
        checkpoints.publish(session, settings=settings)
        return checkpoints.public_key(settings, session)


def verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], receipt: Any, *trust: str
) -> tuple[int, str, str]:
    """Run the independent verifier on a receipt written to a file, as the agency would."""
    path = tmp_path / "receipt.json"
    path.write_text(receipt if isinstance(receipt, str) else json.dumps(receipt))
    capsys.readouterr()
    code = verify_cli.main(["receipt", str(path), *trust])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_agency_reads_gets_its_entry_ids_and_verifies_its_receipts(
    client: TestClient,
    db: Database,
    world: World,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = seed(db, world)
    ice = world.auth("ice")
    search = client.get("/api/v1/persons", params={"name": "alvarez", **PURPOSE}, headers=ice)
    read = client.get(f"/api/v1/persons/{ids['ana']}", params=PURPOSE, headers=ice)
    for response, action in ((search, "persons.search"), (read, "persons.get")):
        assert response.status_code == 200, response.text
        [named] = entry_ids(response)
        assert response.json()["audit_entry"] == named
        recorded = entry(db, named)
        assert recorded.user_id == world.users["ice"], action
        assert recorded.outcome == Outcome.OK
    search_id = search.json()["audit_entry"]

    vkey = publish(db, settings)
    fetched = client.get(f"{RECEIPTS}/{search_id}", headers=ice)
    assert fetched.status_code == 200, fetched.text
    receipt = fetched.json()
    # The body is exactly the receipt; the read of it is audited, and named in the header only.
    assert "audit_entry" not in receipt
    [receipt_read] = entry_ids(fetched)
    assert receipt_read not in (search_id, read.json()["audit_entry"])
    assert entry(db, receipt_read).action == "audit.receipt"
    assert receipt["format"] == "openpars-receipt/v1" and receipt["entry_id"] == search_id
    content = json.loads(base64.b64decode(receipt["content"]))
    assert content["params"]["purpose"] == "warrant-service"

    code, out, err = verify(tmp_path, capsys, receipt, "--log-key", vkey, "--allow-unwitnessed")
    assert code == 0, err
    assert '"purpose": "warrant-service"' in out
    assert f"OK receipt: entry {search_id} is leaf {receipt['leaf_index']}" in out
    # The same receipt with its content changed fails at the agency's end.
    forged = dict(content, params={**content["params"], "name": "someone else"})
    canonical = json.dumps(forged, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    tampered = dict(receipt, content=base64.b64encode(canonical.encode()).decode())
    code, _, err = verify(tmp_path, capsys, tampered, "--log-key", vkey, "--allow-unwitnessed")
    assert code == 1
    assert "the content or the salt was altered" in err
    # Without --allow-unwitnessed a receipt nobody cosigned is NOT WITNESSED (exit 1).
    assert verify(tmp_path, capsys, receipt, "--log-key", vkey)[0] == 1


def _normalised(response: Response, entry_id: int) -> tuple[int, dict[str, Any]]:
    error = dict(response.json()["error"])
    refusal = error.pop("audit_entry")
    assert entry_ids(response) == [refusal]
    error["message"] = error["message"].replace(str(entry_id), "N")
    return response.status_code, error


def test_nobody_else_learns_of_an_agencys_entry(
    client: TestClient, db: Database, world: World, settings: Settings
) -> None:
    """Another agency, and a colleague of the same agency, get the 404 of a missing id."""
    seed(db, world)
    search = client.get(
        "/api/v1/persons", params={"name": "alvarez", **PURPOSE}, headers=world.auth("ice")
    )
    own = search.json()["audit_entry"]
    with db.session() as session:
        add_user(
            session, world, "ice-2", "Immigration and Customs Enforcement", [Role.EXTERNAL_QUERY]
        )
    publish(db, settings)
    missing = own + 10_000
    for user in ("fbi", "ice-2", "reader", "admin"):
        theirs = client.get(f"{RECEIPTS}/{own}", headers=world.auth(user))
        absent = client.get(f"{RECEIPTS}/{missing}", headers=world.auth(user))
        assert _normalised(theirs, own) == _normalised(absent, missing), user
        assert theirs.status_code == 404
        assert set(theirs.headers) == set(absent.headers)
    # Every refusal is itself on the record, and the owner still gets its receipt.
    with db.session() as session:
        refused = session.query(AuditEntry).filter(
            AuditEntry.action == f"GET {RECEIPTS}/{own}", AuditEntry.outcome == Outcome.REFUSED
        )
        assert refused.count() == 4
    assert client.get(f"{RECEIPTS}/{own}", headers=world.auth("ice")).status_code == 200


def test_receipt_waits_for_a_checkpoint_and_names_when_to_retry(
    client: TestClient, db: Database, world: World, settings: Settings
) -> None:
    response = client.get("/api/v1/users/me", headers=world.auth("fbi"))
    [own] = entry_ids(response)
    assert response.json()["audit_entry"] == own
    early = client.get(f"{RECEIPTS}/{own}", headers=world.auth("fbi"))
    assert early.status_code == 409
    error = early.json()["error"]
    assert error["code"] == "not_yet_checkpointed" and error["field"] == "entry_id"
    assert error["details"]["retry_after_s"] >= 1
    assert f"retry in {error['details']['retry_after_s']} seconds" in error["message"]
    assert entry_ids(early) == [error["audit_entry"]]


def test_receipt_prefers_the_newest_checkpoint_the_witnesses_cosigned(
    client: TestClient,
    db: Database,
    world: World,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = [witness_keys(f"witness-{n}.example") for n in ("da", "court")]
    # Witnesses join by a board decision (tests/governance/test_witness_proposals.py); here
    # they are installed as that decision would.
    with db.session() as session:
        for _, vkey in keys:
            witness.install(session, vkey=vkey)
    own = client.get("/api/v1/users/me", headers=world.auth("fbi")).json()["audit_entry"]
    log_vkey = publish(db, settings)
    note = client.get("/api/v1/audit/checkpoint").text
    size = int(note.split("\n")[1])
    for signer, _ in keys:
        line = cosignature_line(note, signer)
        url = f"/api/v1/audit/checkpoints/{size}/cosignatures"
        assert client.post(url, json={"cosignature": line}).status_code == 201
    # A newer checkpoint, not yet cosigned: the receipt still proves against the witnessed one.
    client.get("/api/v1/users/me", headers=world.auth("fbi"))
    publish(db, settings)
    receipt = client.get(f"{RECEIPTS}/{own}", headers=world.auth("fbi")).json()
    assert receipt["tree_size"] == size
    trust = ["--log-key", log_vkey, "--quorum", "2"]
    for _, vkey in keys:
        trust += ["--witness-key", vkey]
    code, out, err = verify(tmp_path, capsys, receipt, *trust)
    assert code == 0, err
    assert out.rstrip().endswith("2 witness cosignatures")


def test_refusals_and_batches_name_their_entries(
    client: TestClient, db: Database, world: World
) -> None:
    refused = client.get("/api/v1/audit/entries", headers=world.auth("ice"))
    assert refused.status_code == 403
    [named] = entry_ids(refused)
    assert refused.json()["error"]["audit_entry"] == named
    assert entry(db, named).outcome == Outcome.REFUSED

    good, bad = arrest_payload(), arrest_payload()
    bad["ori"] = "DCICE0000"  # not the police's ORI: refused, nothing written
    batch = client.post("/api/v1/arrests/batch", json=[good, bad], headers=world.auth("intake"))
    assert batch.status_code == 200, batch.text
    # The results come in an object that names the first entry; the header names them all.
    results = batch.json()["items"]
    assert results[1]["refused"] is True
    first, second = entry_ids(batch)
    assert batch.json()["audit_entry"] == first
    assert entry(db, first).outcome == Outcome.OK
    assert entry(db, second).outcome == Outcome.REFUSED
    assert (
        entry(db, first).agency_id
        == entry(db, second).agency_id
        == world.agencies["Philadelphia Police Department"]
    )


def test_public_answers_name_no_entry(client: TestClient, db: Database, world: World) -> None:
    """The log's public face is not audited (it would feed itself), so it names nothing."""
    assert HEADER not in client.get("/healthz").headers
    assert "audit_entry" not in client.get("/healthz").json()


def test_shredded_entry_receipt_proves_the_commitment_only(
    client: TestClient,
    db: Database,
    world: World,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.audit import records

    with db.session() as session:
        records.arrest(session, 702, order="MC-702", person_ids=[802])
        read = append(
            session,
            AuditEvent(
                kind=AuditKind.READ, action="arrests.get", user_id=world.users["fbi"],
                agency_id=world.agencies["Federal Bureau of Investigation"], arrest_ids=[702],
            ),
        ).id  # fmt: skip
    shred = client.post(
        "/api/v1/audit/shred",
        json={"order_reference": "MC-702", "arrest_id": 702},
        headers=world.auth("clerk"),
    )
    assert shred.json()["entry_ids"] == [read]
    vkey = publish(db, settings)
    receipt = client.get(f"{RECEIPTS}/{read}", headers=world.auth("fbi")).json()
    assert receipt["shredded"] is True
    assert receipt["content"] is None and receipt["salt"] is None
    code, out, err = verify(tmp_path, capsys, receipt, "--log-key", vkey, "--allow-unwitnessed")
    assert code == 0, err
    assert f"entry {read}: SHREDDED" in out


def test_cli_receipt_is_audited_and_verifies(
    fresh_db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENPARS_LOG_KEY_PATH", str(tmp_path / "log.key"))
    monkeypatch.setenv("OPENPARS_LOG_ORIGIN", ORIGIN)
    with fresh_db.session() as session:
        own = append(
            session, AuditEvent(kind=AuditKind.SEARCH, action="persons.search", params={"n": 1})
        ).id
    runner = CliRunner()
    db_option = ["--db", fresh_db.bind.engine.url.render_as_string(hide_password=False)]
    path = tmp_path / "r.json"
    early = runner.invoke(audit_cli, ["receipt", str(own), "--out", str(path), *db_option])
    assert early.exit_code == 1
    assert "not yet covered by a signed checkpoint" in early.output
    assert runner.invoke(audit_cli, ["checkpoint", *db_option]).exit_code == 0
    done = runner.invoke(audit_cli, ["receipt", str(own), "--out", str(path), *db_option])
    assert done.exit_code == 0, done.output
    assert f"wrote the receipt of audit entry {own}" in done.output
    key = runner.invoke(audit_cli, ["key", *db_option]).output.strip()
    code, out, err = verify(tmp_path, capsys, path.read_text(), "--log-key", key,
                            "--allow-unwitnessed")  # fmt: skip
    assert code == 0, err
    assert '"n": 1' in out
    missing = runner.invoke(audit_cli, ["receipt", str(own + 1000), *db_option])
    assert missing.exit_code == 1
    # One entry for the one receipt written (the refused early and missing reads write none),
    # made by the read the API and the /audit page use: its params name the leaf and checkpoint
    # size the written receipt carries, and the console as the channel.
    with fresh_db.session() as session:
        reads = session.query(AuditEntry).filter(AuditEntry.action == "audit.receipt").all()
        assert len(reads) == 1
        [read] = reads
        content = session.get(AuditEntry, read.id)
        assert content is not None
        recorded = json.loads(bytes(content.content))
        params = recorded["params"]
    written = json.loads(path.read_text())
    assert params == {
        "via": "cli",
        "entry_id": own,
        "leaf_index": written["leaf_index"],
        "tree_size": written["tree_size"],
    }
    assert (read.kind, read.outcome, recorded["username"]) == (
        AuditKind.AUDIT_READ,
        Outcome.OK,
        "system",
    )


def test_openapi_documents_the_header_and_the_body_field(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    person = paths["/api/v1/persons/{person_id}"]["get"]["responses"]
    assert HEADER in person["200"]["headers"] and HEADER in person["404"]["headers"]
    parts = person["200"]["content"]["application/json"]["schema"]["allOf"]
    assert parts[1]["properties"]["audit_entry"]["type"] == "integer"
    batch = paths["/api/v1/arrests/batch"]["post"]["responses"]["200"]
    assert HEADER in batch["headers"]
    parts = batch["content"]["application/json"]["schema"]["allOf"]
    assert parts[1]["properties"]["audit_entry"]["type"] == "integer"
    receipt = paths["/api/v1/audit/receipts/{entry_id}"]["get"]["responses"]["200"]
    assert (
        HEADER in receipt["headers"]
        and "allOf" not in receipt["content"]["application/json"]["schema"]
    )
    # The log's public face answers without an entry; only its refusals are audited.
    checkpoint = paths["/api/v1/audit/checkpoint"]["get"]["responses"]
    assert HEADER not in checkpoint["200"].get("headers", {})
    assert HEADER in checkpoint["404"]["headers"]
    assert "audit_entry" in spec["components"]["schemas"]["ErrorBody"]["properties"]


def test_receipt_service_edges(db: Database, world: World, settings: Settings) -> None:
    """Integrated but not yet signed: 409; no witness quorum asked: the newest checkpoint."""
    from openpars.audit import receipts
    from openpars.errors import Conflict

    fbi = world.principals["fbi"]
    with db.session() as session:
        publish_first = append(
            session, AuditEvent(kind=AuditKind.READ, action="a", user_id=fbi.user_id)
        ).id
    publish(db, settings)
    with db.session() as session:
        own = append(session, AuditEvent(kind=AuditKind.READ, action="b", user_id=fbi.user_id)).id
    log.integrate_all(db)
    with db.session() as session, pytest.raises(Conflict) as refused:
        receipts.receipt(session, principal=fbi, entry_id=own, quorum=0, retry_after_s=2)
    assert refused.value.details == {"retry_after_s": 2}
    publish(db, settings)
    with db.session() as session:
        found = receipts.receipt(
            session, principal=fbi, entry_id=publish_first, quorum=0, retry_after_s=2
        )
        newest = checkpoints.latest(session).size
    assert found.tree_size == newest
    assert found.document()["format"] == receipts.FORMAT
