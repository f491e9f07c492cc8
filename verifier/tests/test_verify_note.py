"""The verifier's signed-note, checkpoint and cosignature code."""

from __future__ import annotations

import base64

import pytest
from exportgen import ORIGIN, Key, checkpoint_note, log_key, sha, witness_key

from openpars_verify import note

# The published example of golang.org/x/mod/sumdb/note.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdng"
    "otpRZb6KE6RyyBwJnAM=\n"
)
ROOT = sha(b"root")


def test_go_vector() -> None:
    key = note.parse_public_key(GO_VKEY)
    signed = note.parse_note(GO_NOTE.encode())
    note.verify_log_signature(signed, key)
    assert note.parse_private_key(GO_SKEY).key_id == key.key_id
    tampered = note.parse_note(GO_NOTE.replace("problem,", "problem;").encode())
    with pytest.raises(note.NoteFailure, match="invalid"):
        note.verify_log_signature(tampered, key)


@pytest.mark.parametrize(
    "vkey",
    [
        GO_VKEY.replace("c74f20a3", "c74f20a4"),
        GO_VKEY.replace("c74f20a3", "C74F20A3"),
        GO_VKEY[:-4],
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
    ],
)
def test_bad_public_keys(vkey: str) -> None:
    with pytest.raises(note.NoteFailure):
        note.parse_public_key(vkey)


def test_bad_private_keys() -> None:
    with pytest.raises(note.NoteFailure):
        note.parse_private_key(GO_VKEY)
    with pytest.raises(note.NoteFailure, match="does not match"):
        note.parse_private_key(GO_SKEY.replace("c74f20a3", "c74f20a4"))


def test_generate_round_trip() -> None:
    skey, vkey = note.generate("w.example", note.COSIGNER_KEY)
    assert note.parse_private_key(skey).key_id == note.parse_public_key(vkey).key_id
    with pytest.raises(note.NoteFailure):
        note.generate("bad name", note.NOTE_KEY)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\n\n",
        b"text\n",
        b"text\n\n",
        b"text\n\n\xe2\x80\x94 a AAAA\n",
        b"text\n\n-- a AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94 a AAAAAAAA",
        b"te\x01xt\n\n\xe2\x80\x94 a AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94 a AAAAAAB=\n",  # non-canonical final character
    ],
)
def test_malformed_notes(raw: bytes) -> None:
    with pytest.raises(note.NoteFailure):
        note.parse_note(raw)


def test_checkpoint_parsing() -> None:
    cp = note.parse_checkpoint(f"{ORIGIN}\n10\n{base64.b64encode(ROOT).decode()}\next\n")
    assert (cp.origin, cp.size, cp.root, cp.extensions) == (ORIGIN, 10, ROOT, ("ext",))
    for bad in ["o\n01\n", "o\n1\nAAAA\n", "\n1\n" + base64.b64encode(ROOT).decode() + "\n"]:
        with pytest.raises(note.NoteFailure):
            note.parse_checkpoint(bad)


def test_cosigners_are_counted_once_each() -> None:
    log, w1, w2 = log_key(), witness_key("w1"), witness_key("w2")
    text = checkpoint_note(5, ROOT, log, [w1, w1, w2])
    signed = note.parse_note(text.encode())
    keys = [note.parse_public_key(w.vkey) for w in (w1, w2, witness_key("w3"))]
    assert note.count_cosigners(signed, keys) == 2
    with pytest.raises(note.NoteFailure, match="not a cosigner key"):
        note.count_cosigners(signed, [note.parse_public_key(log.vkey)])
    with pytest.raises(note.NoteFailure, match="quorum is 3"):
        note.open_checkpoint(text.encode(), note.parse_public_key(log.vkey), keys, 3)


def test_log_key_must_be_note_type() -> None:
    w = witness_key("w")
    text = checkpoint_note(5, ROOT, log_key(), [w])
    with pytest.raises(note.NoteFailure, match="0x01"):
        note.verify_log_signature(note.parse_note(text.encode()), note.parse_public_key(w.vkey))


def test_a_cosignature_is_not_a_log_signature() -> None:
    # Same Ed25519 key as log key and as witness: different key IDs keep them apart.
    log = log_key()
    as_witness = Key(log.name, 0x04, log.private)
    text = f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\n"
    only_cosigned = text + "\n" + as_witness.line(text)
    with pytest.raises(note.NoteFailure, match="no signature by the log key"):
        note.verify_log_signature(
            note.parse_note(only_cosigned.encode()), note.parse_public_key(log.vkey)
        )


def test_cosignature_line_verifies() -> None:
    log, w = log_key(), witness_key("w.example")
    text = checkpoint_note(5, ROOT, log, [])
    signer = note.parse_private_key(w.skey)
    line = note.cosignature_line(note.parse_note(text.encode()).text, signer, 1234)
    signed = note.parse_note((text + line).encode())
    assert note.count_cosigners(signed, [note.parse_public_key(w.vkey)]) == 1
    # Moving the timestamp breaks the signature: the time is part of what is signed.
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[11] ^= 1
    forged = f"— w.example {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(note.NoteFailure, match="invalid"):
        note.count_cosigners(
            note.parse_note((text + forged).encode()), [note.parse_public_key(w.vkey)]
        )
