"""Two stakeholders' witnesses (the verifier's `witness` command) against the real API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from openpars.audit import checkpoints, notes
from openpars.audit import witness as registry
from openpars.config import Settings
from openpars.db import Database
from tests.audit.test_api_log import API, publish
from tests.audit.test_log import add_entries
from tests.factories import World


def verify_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the independent verifier as a separate program."""
    command = [sys.executable, "-m", "openpars_verify", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


class Witness:
    """A stakeholder's witness: a key made by the verifier and a state directory."""

    def __init__(self, name: str, home: Path) -> None:
        skey, vkey = verify_cli("keygen", name, "--cosigner").stdout.split()
        self.name, self.vkey, self.home = name, vkey, home
        home.mkdir()
        (home / "key").write_text(skey + "\n")

    def cosign(
        self, log_vkey: str, note: str, proof: list[str]
    ) -> subprocess.CompletedProcess[str]:
        """Ask the witness to cosign `note`, given the consistency proof from its last one."""
        (self.home / "note").write_text(note)
        (self.home / "proof").write_text(json.dumps(proof))
        return verify_cli(
            "witness", "--state", str(self.home / "state"), "--log-key", log_vkey,
            "--witness-name", self.name, "--witness-key-file", str(self.home / "key"),
            "--checkpoint", str(self.home / "note"), "--proof", str(self.home / "proof"),
        )  # fmt: skip


def size_of(note: str) -> int:
    return notes.parse_checkpoint(notes.parse_note(note).text).size


def test_witnesses_follow_the_log_and_make_checkpoints_final(
    client: TestClient, db: Database, world: World, settings: Settings, tmp_path: Path
) -> None:
    witnesses = [Witness(f"{who}.witness.example", tmp_path / who) for who in ("da", "court")]
    with db.session() as session:
        for witness in witnesses:
            registry.install(session, vkey=witness.vkey)
    log_vkey = checkpoints.check_key(settings, db).vkey
    add_entries(db, 3)
    publish(db, settings)
    first = client.get(f"{API}/checkpoint").text
    for witness in witnesses:
        line = witness.cosign(log_vkey, first, [])
        assert line.returncode == 0, line.stderr
        url = f"{API}/checkpoints/{size_of(first)}/cosignatures"
        assert client.post(url, json={"cosignature": line.stdout.strip()}).status_code == 201
    assert (
        notes.count_witness_cosignatures(
            client.get(f"{API}/checkpoint").text,
            [notes.parse_verifier_key(w.vkey) for w in witnesses],
        )
        == 2
    )

    add_entries(db, 5)
    publish(db, settings)
    second = client.get(f"{API}/checkpoint").text
    old, new = size_of(first), size_of(second)
    proof = client.get(f"{API}/proof/consistency", params={"first": old, "second": new}).json()
    statuses = []
    for witness in witnesses:
        line = witness.cosign(log_vkey, second, proof["proof"])
        assert line.returncode == 0, line.stderr
        response = client.post(
            f"{API}/checkpoints/{new}/cosignatures", json={"cosignature": line.stdout.strip()}
        )
        statuses.append(response.json()["final"])
    assert statuses == [False, True]

    # A log served rolled back to the first checkpoint is refused by every witness.
    for witness in witnesses:
        refused = witness.cosign(log_vkey, first, [])
        assert refused.returncode == 1 and "rollback" in refused.stderr
