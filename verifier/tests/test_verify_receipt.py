"""`openpars-verify receipt`: a genuine receipt passes, every tampered one fails with one line."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from exportgen import Key, checkpoint_note, inclusion_path, log_key, mth, witness_key
from hypothesis import given, settings
from hypothesis import strategies as st

from openpars_verify import cli
from openpars_verify import note as notes
from openpars_verify import receipt as receipt_module

CONTENT = {"action": "persons.search", "kind": "search", "params": {"name": "alvarez"}}
INDEX, SIZE = 5, 11
LOG = log_key()


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_receipt(log: Key, witnesses: list[Key], *, shredded: bool = False) -> dict[str, Any]:
    """A receipt built from the RFC definitions, independently of the code under test."""
    content = json.dumps(CONTENT, sort_keys=True, separators=(",", ":")).encode()
    salt = bytes(range(32))
    commitment = sha(salt + content)
    leaves = [sha(b"\x00" + sha(bytes([i]))) for i in range(SIZE)]
    leaves[INDEX] = sha(b"\x00" + commitment)
    return {
        "format": "openpars-receipt/v1",
        "entry_id": 42,
        "leaf_index": INDEX,
        "tree_size": SIZE,
        "shredded": shredded,
        "content": None if shredded else b64(content),
        "salt": None if shredded else salt.hex(),
        "commitment": commitment.hex(),
        "leaf_hash": leaves[INDEX].hex(),
        "proof": [b64(h) for h in inclusion_path(INDEX, leaves)],
        "checkpoint": checkpoint_note(SIZE, mth(leaves), log, witnesses),
    }


@pytest.fixture
def keys() -> tuple[Key, Key]:
    return log_key(), witness_key("witness.da.example")


def run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    receipt: dict[str, Any] | str,
    argv: list[str],
) -> tuple[int, str, str]:
    path = tmp_path / "receipt.json"
    path.write_text(receipt if isinstance(receipt, str) else json.dumps(receipt))
    code = cli.main(["receipt", str(path), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def trust(log: Key, witness: Key) -> list[str]:
    return ["--log-key", log.vkey, "--witness-key", witness.vkey, "--quorum", "1"]


def test_a_genuine_receipt_prints_the_entry_and_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: tuple[Key, Key]
) -> None:
    log, witness = keys
    code, out, err = run(tmp_path, capsys, make_receipt(log, [witness]), trust(log, witness))
    assert (code, err) == (0, "")
    assert out.startswith("entry 42:\n{\n")
    assert '"name": "alvarez"' in out
    last = out.splitlines()[-1]
    assert last == (
        "OK receipt: entry 42 is leaf 5 of openpars.example/audit at size 11; "
        "1 witness cosignatures"
    )


def test_a_shredded_entry_proves_its_commitment_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: tuple[Key, Key]
) -> None:
    log, witness = keys
    receipt = make_receipt(log, [witness], shredded=True)
    code, out, _ = run(tmp_path, capsys, receipt, trust(log, witness))
    assert code == 0
    assert "entry 42: SHREDDED" in out
    assert "alvarez" not in out
    receipt["content"] = make_receipt(log, [witness])["content"]
    code, _, err = run(tmp_path, capsys, receipt, trust(log, witness))
    assert code == 1
    assert "no content and no salt" in err


def _flip(text: str) -> str:
    """The same hex or base64 string with one character changed."""
    return ("1" if text[0] != "1" else "2") + text[1:]


def _other_content(r: dict[str, Any]) -> None:
    forged = dict(CONTENT, params={"name": "someone-else"})
    r["content"] = b64(json.dumps(forged, sort_keys=True, separators=(",", ":")).encode())


def _other_proof(r: dict[str, Any]) -> None:
    r["proof"][1] = b64(sha(b"elsewhere"))


def _other_root(r: dict[str, Any]) -> None:
    root = r["checkpoint"].split("\n")[2]
    r["checkpoint"] = r["checkpoint"].replace(root, b64(sha(b"forged root")))


TAMPERS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "content": (_other_content, "the content or the salt was altered"),
    "salt": (lambda r: r.update(salt=_flip(r["salt"])), "the content or the salt was altered"),
    "commitment": (
        lambda r: r.update(commitment=_flip(r["commitment"])),
        "the content or the salt was altered",
    ),
    "leaf hash": (lambda r: r.update(leaf_hash=_flip(r["leaf_hash"])), "leaf hash"),
    "proof": (_other_proof, "leaf 5 is not in the checkpoint of size 11"),
    "short proof": (lambda r: r["proof"].pop(), "proof has 3 hashes, want 4"),
    "index": (lambda r: r.update(leaf_index=4), "leaf 4 is not in the checkpoint"),
    "checkpoint root": (_other_root, "log signature by openpars.example/audit is invalid"),
    "tree size": (lambda r: r.update(tree_size=12), "tree_size 12 is not its checkpoint's size"),
    "format": (lambda r: r.update(format="openpars-receipt/v2"), "not an openpars-receipt/v1"),
    "entry id type": (lambda r: r.update(entry_id="42"), "'entry_id'"),
    "shredded flag": (lambda r: r.update(shredded=True), "no content and no salt"),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampered_receipts_fail_with_one_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: tuple[Key, Key]
) -> None:
    log, witness = keys
    receipt = make_receipt(log, [witness])
    tamper, reason = TAMPERS[name]
    tamper(receipt)
    code, out, err = run(tmp_path, capsys, receipt, trust(log, witness))
    assert code == 1, (name, out)
    assert out == ""
    assert err.startswith("openpars-verify: FAIL: ")
    assert err.count("\n") == 1
    assert reason in err, err


def test_a_checkpoint_re_signed_with_another_key_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: tuple[Key, Key]
) -> None:
    """The operator's own key re-signs a forged tree: the pinned log key does not match."""
    log, witness = keys
    thief = log_key()
    receipt = make_receipt(thief, [witness])
    code, _, err = run(tmp_path, capsys, receipt, trust(log, witness))
    assert code == 1
    assert "no signature by the log key" in err
    # Checked against the thief's key it still fails: the pinned witness never cosigned it.
    code, _, err = run(tmp_path, capsys, make_receipt(thief, []), trust(thief, witness))
    assert code == 1
    assert "0 witness cosignatures, quorum is 1" in err


def test_unwitnessed_receipt_fails_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: tuple[Key, Key]
) -> None:
    log, _ = keys
    receipt = make_receipt(log, [])
    code, out, err = run(tmp_path, capsys, receipt, ["--log-key", log.vkey])
    assert code == 1
    assert out == ""
    assert "NOT WITNESSED" in err
    assert err.count("\n") == 1
    code, out, _ = run(tmp_path, capsys, receipt, ["--log-key", log.vkey, "--allow-unwitnessed"])
    assert code == 0
    assert out.rstrip().endswith(
        "NOT WITNESSED (--allow-unwitnessed): only the log key vouches for it"
    )


def test_not_json_and_wrong_types_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: tuple[Key, Key]
) -> None:
    log, witness = keys
    assert run(tmp_path, capsys, "{not json", trust(log, witness))[0] == 1
    receipt = make_receipt(log, [witness])
    receipt["proof"] = [1, 2]
    code, _, err = run(tmp_path, capsys, receipt, trust(log, witness))
    assert code == 1
    assert "list of base64 hashes" in err
    receipt = make_receipt(log, [witness])
    receipt["salt"] = "zz" * 32
    code, _, err = run(tmp_path, capsys, receipt, trust(log, witness))
    assert code == 1
    assert "'salt' is not 64 hex digits" in err
    receipt = make_receipt(log, [witness])
    receipt["content"] = b64(b"[1]")
    receipt["commitment"] = sha(bytes.fromhex(receipt["salt"]) + b"[1]").hex()
    code, _, err = run(tmp_path, capsys, receipt, trust(log, witness))
    assert code == 1
    assert "not a JSON object" in err


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    size=st.integers(1, 40),
    data=st.data(),
    salt=st.binary(min_size=32, max_size=32),
    flip=st.sampled_from(["content", "salt", "proof", "none"]),
)
def test_any_receipt_verifies_and_any_flipped_byte_fails(
    size: int, data: st.DataObject, salt: bytes, flip: str
) -> None:
    """Every leaf of every small tree: the genuine receipt passes, one changed byte fails."""
    log = LOG
    index = data.draw(st.integers(0, size - 1))
    content = json.dumps({"action": "a", "n": index}).encode()
    commitment = sha(salt + content)
    leaves = [sha(b"\x00" + sha(bytes([i]))) for i in range(size)]
    leaves[index] = sha(b"\x00" + commitment)
    proof = inclusion_path(index, leaves)
    if flip == "content":
        content = content.replace(b'"a"', b'"b"')
    elif flip == "salt":
        salt = bytes([salt[0] ^ 1]) + salt[1:]
    elif flip == "proof" and proof:
        proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    receipt = {
        "format": "openpars-receipt/v1", "entry_id": 1, "leaf_index": index, "tree_size": size,
        "shredded": False, "content": b64(content), "salt": salt.hex(),
        "commitment": commitment.hex(), "leaf_hash": leaves[index].hex(),
        "proof": [b64(h) for h in proof], "checkpoint": checkpoint_note(size, mth(leaves), log, []),
    }  # fmt: skip
    raw = json.dumps(receipt).encode()
    public = notes.parse_public_key(log.vkey)
    if flip == "none" or (flip == "proof" and not proof):
        assert receipt_module.verify_receipt(raw, public, [], 0).leaf_index == index
    else:
        with pytest.raises(receipt_module.ReceiptFailure):
            receipt_module.verify_receipt(raw, public, [], 0)
