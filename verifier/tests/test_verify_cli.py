"""The command line: exit codes, one-line reasons, and the witness's state machine."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from exportgen import (
    ORIGIN,
    Key,
    build_export,
    checkpoint_note,
    consistency_path,
    inclusion_path,
    log_key,
    mth,
    witness_key,
)

from openpars_verify import cli, witness

LEAVES = [bytes([i]) * 32 for i in range(20)]


def verify(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_inclusion_hex_lines_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proof = inclusion_path(7, LEAVES)
    args = ["inclusion", "--leaf-hash", LEAVES[7].hex(), "--index", "7", "--size", "20"]
    args += ["--root", b64(mth(LEAVES))]
    lines = write(tmp_path, "p.txt", "\n".join(p.hex() for p in proof) + "\n")
    assert verify([*args, "--proof", lines], capsys)[0] == 0
    as_json = write(tmp_path, "p.json", json.dumps([b64(p) for p in proof]))
    assert verify([*args, "--proof", as_json], capsys)[0] == 0
    bad = write(tmp_path, "bad.txt", "\n".join(p.hex() for p in proof[:-1]))
    code, _, err = verify([*args, "--proof", bad], capsys)
    assert code == 1
    assert err.startswith("openpars-verify: FAIL: inclusion of index 7 in size 20")
    assert err.count("\n") == 1


def test_inclusion_by_commitment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commitment = bytes(range(32))
    leaves = [*LEAVES[:3], hashlib.sha256(b"\x00" + commitment).digest()]
    proof = write(tmp_path, "p", "\n".join(p.hex() for p in inclusion_path(3, leaves)))
    argv = ["inclusion", "--commitment", commitment.hex(), "--index", "3", "--size", "4"]
    assert verify([*argv, "--root", b64(mth(leaves)), "--proof", proof], capsys)[0] == 0


def test_proof_item_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proof = write(tmp_path, "p", "00\n")
    argv = ["inclusion", "--leaf-hash", LEAVES[0].hex(), "--index", "0", "--size", "2"]
    code, _, err = verify([*argv, "--root", b64(mth(LEAVES[:2])), "--proof", proof], capsys)
    assert code == 1
    assert "proof[0]" in err


def test_consistency(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proof = write(tmp_path, "p", "\n".join(p.hex() for p in consistency_path(7, LEAVES)))
    argv = ["consistency", "--old-size", "7", "--old-root", b64(mth(LEAVES[:7]))]
    argv += ["--new-size", "20", "--proof", proof, "--new-root"]
    assert verify([*argv, b64(mth(LEAVES))], capsys)[0] == 0
    code, _, err = verify([*argv, b64(mth(LEAVES[:19]))], capsys)
    assert code == 1
    assert "consistency 7 -> 20" in err


def test_checkpoint_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log, w1, w2 = log_key(), witness_key("w1"), witness_key("w2")
    path = write(tmp_path, "cp", checkpoint_note(3, mth(LEAVES[:3]), log, [w1]))
    base = ["checkpoint", path, "--log-key", log.vkey, "--witness-key", w1.vkey]
    code, out, _ = verify(base, capsys)
    assert code == 0
    assert out.startswith(f"OK checkpoint {ORIGIN} size 3")
    code, _, err = verify([*base, "--witness-key", w2.vkey, "--quorum", "2"], capsys)
    assert code == 1
    assert "quorum is 2" in err
    assert verify([*base, "--quorum", "2"], capsys)[0] == 2
    assert verify(["checkpoint", path, "--log-key", w1.vkey], capsys)[0] == 2
    assert verify(["checkpoint", path, "--log-key", "junk"], capsys)[0] == 2
    assert verify(["checkpoint", str(tmp_path / "missing"), "--log-key", log.vkey], capsys)[0] == 2
    other = log_key()
    assert verify(["checkpoint", path, "--log-key", other.vkey], capsys)[0] == 1


def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ex = build_export(30, [10, 30], shredded={4}, witnesses=1)
    path = write(tmp_path, "audit.export", ex.text())
    base = ["export", path, "--log-key", ex.log.vkey, "--witness-key", ex.witnesses[0].vkey]
    code, out, _ = verify(base, capsys)
    assert code == 0
    assert "entries [0, 30), 2 checkpoints, 1 shredded" in out
    latest = write(
        tmp_path, "latest", checkpoint_note(30, mth([e.leaf for e in ex.entries]), ex.log, [])
    )
    assert verify([*base, "--quorum", "0", "--checkpoint", latest], capsys)[0] == 1
    allowed = [*base, "--quorum", "0", "--allow-unwitnessed", "--checkpoint", latest]
    assert verify(allowed, capsys)[0] == 0
    ex.lines = [*ex.lines[:12], "end 10"]
    write(tmp_path, "audit.export", ex.text())
    code, _, err = verify([*base, "--quorum", "0", "--checkpoint", latest], capsys)
    assert code == 1
    assert err.startswith("openpars-verify: FAIL: index 10: rollback")
    assert verify([*base, "--jobs", "0"], capsys)[0] == 2
    assert verify(["export", str(tmp_path / "nope"), "--log-key", ex.log.vkey], capsys)[0] == 2


def test_an_unwitnessed_log_is_said_plainly_and_fails_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ex = build_export(20, [10, 20], witnesses=0)
    path = write(tmp_path, "audit.export", ex.text())
    code, out, err = verify(["export", path, "--log-key", ex.log.vkey], capsys)
    assert (code, out) == (1, "")
    assert err.startswith("openpars-verify: FAIL: export")
    assert "the log is NOT WITNESSED" in err
    assert "--allow-unwitnessed" in err
    assert err.count("\n") == 1
    code, out, _ = verify(["export", path, "--log-key", ex.log.vkey, "--allow-unwitnessed"], capsys)
    assert code == 0
    assert out.startswith("OK export")
    assert "NOT WITNESSED" in out
    # The same for a single checkpoint, and --quorum 0 with witnesses named is no way around it.
    note = write(tmp_path, "cp", checkpoint_note(3, mth(LEAVES[:3]), ex.log, []))
    code, _, err = verify(["checkpoint", note, "--log-key", ex.log.vkey], capsys)
    assert code == 1
    assert "NOT WITNESSED" in err
    w = witness_key("w1")
    zero = ["checkpoint", note, "--log-key", ex.log.vkey, "--witness-key", w.vkey, "--quorum", "0"]
    assert verify(zero, capsys)[0] == 1
    assert verify([*zero, "--allow-unwitnessed"], capsys)[0] == 0


def test_an_export_re_signed_with_a_new_key_fails_against_the_published_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = build_export(20, [10, 20], witnesses=1)
    # Whoever holds the database writes the log again under a key of its own.
    forged = build_export(20, [10, 20], witnesses=0)
    path = write(tmp_path, "audit.export", forged.text())
    trust = ["--log-key", published.log.vkey, "--allow-unwitnessed"]
    code, _, err = verify(["export", path, *trust], capsys)
    assert code == 1
    assert "no signature by the log key" in err
    # With its own key, the stakeholders' witness never cosigned it.
    trust = ["--log-key", forged.log.vkey, "--witness-key", published.witnesses[0].vkey]
    code, _, err = verify(["export", path, *trust], capsys)
    assert code == 1
    assert "no checkpoint in the export has 1 cosignatures" in err


def test_export_trusted_fork(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ex = build_export(4, [4], witnesses=0)
    path = write(tmp_path, "audit.export", ex.text())
    a = write(tmp_path, "a", checkpoint_note(2, LEAVES[0], ex.log, []))
    b = write(tmp_path, "b", checkpoint_note(2, LEAVES[1], ex.log, []))
    argv = ["export", path, "--log-key", ex.log.vkey, "--checkpoint", a, "--checkpoint", b]
    code, _, err = verify(argv, capsys)
    assert code == 1
    assert "fork" in err


def test_keygen(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = verify(["keygen", "w.example", "--cosigner"], capsys)
    skey, vkey = out.splitlines()
    assert code == 0
    assert skey.startswith("PRIVATE+KEY+w.example+")
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04
    assert verify(["keygen", "bad name"], capsys)[0] == 2


class Witness:
    """Drives the witness command against a growing log."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.capsys = tmp_path, capsys
        self.log = log_key()
        self.key = witness_key("witness.example")
        self.key_file = write(tmp_path, "witness.key", self.key.skey + "\n")

    def submit(self, size: int, leaves: list[bytes], proof: list[bytes]) -> tuple[int, str, str]:
        note = checkpoint_note(size, mth(leaves[:size]), self.log, [])
        argv = ["witness", "--state", str(self.tmp / "state"), "--log-key", self.log.vkey]
        argv += ["--witness-name", "witness.example", "--witness-key-file", self.key_file]
        argv += ["--checkpoint", write(self.tmp, "cp", note)]
        argv += ["--proof", write(self.tmp, "proof", "\n".join(p.hex() for p in proof))]
        return verify(argv, self.capsys)

    def stored_size(self) -> int:
        text = witness.state_path(self.tmp / "state", ORIGIN).read_text()
        return int(text.split("\n")[1])


def test_witness_cosigns_extensions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = Witness(tmp_path, capsys)
    code, out, _ = w.submit(5, LEAVES, [])
    assert code == 0
    assert out.startswith("— witness.example ")
    assert w.stored_size() == 5
    code, out, _ = w.submit(12, LEAVES, consistency_path(5, LEAVES[:12]))
    assert code == 0
    assert w.stored_size() == 12
    # The line is a valid cosignature of that checkpoint.
    note_text = checkpoint_note(12, mth(LEAVES[:12]), w.log, [])
    full = note_text + out
    check = write(tmp_path, "full", full)
    argv = ["checkpoint", check, "--log-key", w.log.vkey, "--witness-key", w.key.vkey]
    assert verify(argv, capsys)[0] == 0
    assert w.submit(12, LEAVES, [])[0] == 0


def test_witness_refuses_rollback_fork_and_bad_proof(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = Witness(tmp_path, capsys)
    assert w.submit(10, LEAVES, [])[0] == 0
    code, out, err = w.submit(8, LEAVES, [])
    assert (code, out) == (1, "")
    assert "rollback" in err
    forked = [*LEAVES[:9], bytes(32), *LEAVES[10:]]
    code, out, err = w.submit(10, forked, [])
    assert (code, out) == (1, "")
    assert "fork" in err
    code, out, err = w.submit(15, forked, consistency_path(10, forked[:15]))
    assert (code, out) == (1, "")
    assert "consistency proof from size 10 to 15" in err
    assert w.stored_size() == 10


def test_witness_key_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = Witness(tmp_path, capsys)
    w.key_file = write(tmp_path, "wrong.key", Key("witness.example", 0x01).skey)
    assert w.submit(3, LEAVES, [])[0] == 1
    w.key_file = write(tmp_path, "other.key", witness_key("someone.else").skey)
    assert w.submit(3, LEAVES, [])[0] == 2


def test_console_entry_point(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "openpars_verify", "keygen", "x.example"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 2
