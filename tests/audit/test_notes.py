"""Tests for C2SP signed notes, checkpoints and cosignatures in openpars.audit.notes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openpars.audit import notes
from openpars.audit.notes import NoteError

# The reference vector published with golang.org/x/mod/sumdb/note: Ed25519 is deterministic,
# so signing the same text with the same key must reproduce the signature byte for byte.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdng"
    "otpRZb6KE6RyyBwJnAM=\n"
)
GO_NOTE = GO_TEXT + "\n" + GO_SIG

ORIGIN = "openpars.example/audit"
ROOT = hashlib.sha256(b"root").digest()


def log_keys(name: str = ORIGIN) -> tuple[notes.Signer, notes.Verifier]:
    skey, vkey = notes.generate_keys(name)
    return notes.parse_signer_key(skey), notes.parse_verifier_key(vkey)


def witness_keys(name: str) -> tuple[notes.Signer, notes.Verifier]:
    skey, vkey = notes.generate_keys(name, algorithm=notes.ALG_COSIGNATURE_V1)
    return notes.parse_signer_key(skey), notes.parse_verifier_key(vkey)


def checkpoint_note(signer: notes.Signer, size: int = 5) -> str:
    return notes.sign_note(notes.Checkpoint(ORIGIN, size, ROOT).body(), [signer])


def test_go_reference_vector_signs_byte_for_byte() -> None:
    signer = notes.parse_signer_key(GO_SKEY)
    assert notes.encode_signer_key(signer) == GO_SKEY
    assert notes.encode_verifier_key(signer.verifier()) == GO_VKEY
    assert notes.sign_note(GO_TEXT, [signer]) == GO_NOTE


def test_go_reference_vector_verifies() -> None:
    verifier = notes.parse_verifier_key(GO_VKEY)
    note = notes.verify_note(GO_NOTE, [verifier])
    assert note.text == GO_TEXT
    assert [s.name for s in note.signatures] == ["PeterNeumann"]
    with pytest.raises(NoteError, match="does not verify"):
        notes.verify_note(GO_NOTE.replace("cryptography", "cryptographY"), [verifier])


def test_key_id_formula() -> None:
    public = bytes(range(32))
    want = hashlib.sha256(b"name\n\x01" + public).digest()[:4]
    assert notes.key_id("name", notes.ALG_ED25519, public) == want
    assert notes.key_id("name", notes.ALG_COSIGNATURE_V1, public) != want


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper hex
        "PeterNeumann+c74f20a3+AhpZ2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # type 0x02
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # short key
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space
        "PeterNeumann+c74f20a3",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_bad_verifier_keys(vkey: str) -> None:
    with pytest.raises(NoteError):
        notes.parse_verifier_key(vkey)


def test_bad_signer_keys() -> None:
    with pytest.raises(NoteError):
        notes.parse_signer_key(GO_VKEY)
    with pytest.raises(NoteError):
        notes.parse_signer_key(GO_SKEY.replace("c74f20a3", "00000000"))
    with pytest.raises(NoteError):
        notes.parse_signer_key("PRIVATE+KEY+a+b")


def test_cosigner_keys_use_type_four() -> None:
    signer, verifier = witness_keys("witness.example/w1")
    vkey = notes.encode_verifier_key(verifier)
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04
    assert signer.key_id == verifier.key_id


@pytest.mark.parametrize(
    "message",
    [
        "text\n",  # no signature block
        "text\n\n",  # no signatures
        "text\n\n— a AAAA\n",  # signature too short
        "text\n\n-- a AAAAAAAA\n",  # wrong prefix
        "text\n\n— a AAAA AAAA\n",  # extra field
        "text\n\n— a !!!!!!!!\n",  # not base64
        "text\n\n— a+b AAAAAAAA\n",  # bad name
        "text\n\n— a AAAAAAAA",  # no final newline
        "te\txt\n\n— a AAAAAAAA\n",  # control character
    ],
)
def test_malformed_notes(message: str) -> None:
    with pytest.raises(NoteError):
        notes.parse_note(message)


def test_parse_note_bytes_and_too_many_signatures() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        notes.parse_note(b"\xff\n\n")
    assert notes.parse_note(GO_NOTE.encode()).text == GO_TEXT
    many = GO_TEXT + "\n" + GO_SIG * (notes.MAX_SIGNATURES + 1)
    with pytest.raises(NoteError, match="more than"):
        notes.parse_note(many)


def test_text_may_contain_blank_lines() -> None:
    signer, verifier = log_keys()
    text = "a\n\nb\n"
    note = notes.verify_note(notes.sign_note(text, [signer]), [verifier])
    assert note.text == text


def test_unknown_keys_are_ignored_but_one_known_is_required() -> None:
    signer, verifier = log_keys()
    other_signer, other_verifier = log_keys()
    both = notes.sign_note(GO_TEXT, [other_signer, signer])
    assert len(notes.verify_note(both, [verifier]).signatures) == 1
    with pytest.raises(NoteError, match="no signature from a known key"):
        notes.verify_note(notes.sign_note(GO_TEXT, [other_signer]), [verifier])
    # Same name, different key: still unknown, still ignored.
    same_name_signer, _ = log_keys(ORIGIN)
    with pytest.raises(NoteError, match="no signature from a known key"):
        notes.verify_note(notes.sign_note(GO_TEXT, [same_name_signer]), [verifier])
    assert other_verifier.name == verifier.name


def test_a_bad_signature_from_a_known_key_rejects_the_note() -> None:
    signer, verifier = log_keys()
    good = notes.parse_note(notes.sign_note(GO_TEXT, [signer]))
    forged = notes.NoteSignature(signer.name, signer.key_id, bytes(64))
    note = notes.Note(GO_TEXT, (*good.signatures, forged))
    with pytest.raises(NoteError, match="does not verify"):
        notes.verify_note(note.format(), [verifier])


def test_sign_note_rejects_bad_input() -> None:
    signer, _ = log_keys()
    witness, _ = witness_keys("w")
    with pytest.raises(NoteError, match="newline"):
        notes.sign_note("no newline", [signer])
    with pytest.raises(NoteError, match="at least one"):
        notes.sign_note("x\n", [])
    with pytest.raises(NoteError, match="add_cosignature"):
        notes.sign_note("x\n", [witness])


def test_checkpoint_round_trip() -> None:
    checkpoint = notes.Checkpoint(ORIGIN, 20852163, ROOT, ("ext one",))
    body = checkpoint.body()
    assert body == f"{ORIGIN}\n20852163\n{base64.b64encode(ROOT).decode()}\next one\n"
    assert notes.parse_checkpoint(body) == checkpoint


@pytest.mark.parametrize(
    "body",
    [
        "origin\n5\n",
        "\n5\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n05\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n-5\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n５\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n5\n" + base64.b64encode(ROOT[:31]).decode() + "\n",
        "origin\n5\nnot base64\n",
        "origin\n5\n" + base64.b64encode(ROOT).decode() + "\n\n",
    ],
)
def test_malformed_checkpoints(body: str) -> None:
    with pytest.raises(NoteError):
        notes.parse_checkpoint(body)


def test_checkpoint_body_validation() -> None:
    with pytest.raises(NoteError):
        notes.Checkpoint("", 1, ROOT).body()
    with pytest.raises(NoteError):
        notes.Checkpoint(ORIGIN, 1, ROOT[:5]).body()
    with pytest.raises(NoteError):
        notes.Checkpoint(ORIGIN, 1, ROOT, ("",)).body()
    assert notes.parse_checkpoint(notes.Checkpoint(ORIGIN, 0, ROOT).body()).size == 0


def test_cosignature_wire_format() -> None:
    log, _ = log_keys()
    witness, witness_verifier = witness_keys("witness.example/w1")
    message = checkpoint_note(log)
    cosigned = notes.add_cosignature(message, witness, 1679315147)
    line = cosigned.splitlines()[-1]
    name, encoded = line.removeprefix("— ").split(" ")
    raw = base64.b64decode(encoded)
    assert name == "witness.example/w1"
    assert raw[:4] == witness.key_id
    assert int.from_bytes(raw[4:12], "big") == 1679315147
    signed = b"cosignature/v1\ntime 1679315147\n" + notes.parse_note(message).text.encode()
    witness_verifier.public_key.verify(raw[12:], signed)
    assert len(raw) == 4 + 8 + 64


def test_cosignatures_counted_per_distinct_witness() -> None:
    log, log_verifier = log_keys()
    w1, v1 = witness_keys("w1.example")
    w2, v2 = witness_keys("w2.example")
    _, v3 = witness_keys("w3.example")
    message = checkpoint_note(log)
    for signer, ts in ((w1, 10), (w1, 11), (w2, 12)):
        message = notes.add_cosignature(message, signer, ts)
    assert notes.count_witness_cosignatures(message, [v1, v2, v3]) == 2
    cosigs = notes.verify_cosignatures(message, [v1, v2, v3, log_verifier])
    assert sorted((c.name, c.timestamp) for c in cosigs) == [
        ("w1.example", 10),
        ("w1.example", 11),
        ("w2.example", 12),
    ]
    checkpoint = notes.verify_checkpoint(message, log_verifier, witnesses=[v1, v2, v3], quorum=2)
    assert checkpoint.size == 5
    with pytest.raises(NoteError, match="quorum is 3"):
        notes.verify_checkpoint(message, log_verifier, witnesses=[v1, v2, v3], quorum=3)


def test_cosignature_is_not_a_log_signature() -> None:
    # The same Ed25519 key as a note key and as a cosigner has different key IDs, so a
    # cosignature can never be mistaken for the log's own signature, nor the reverse.
    log, log_verifier = log_keys()
    as_witness = notes.Signer(log.name, notes.ALG_COSIGNATURE_V1, log.private_key)
    cosigned_only = notes.Note(
        notes.parse_note(checkpoint_note(log)).text,
        (notes.cosign(checkpoint_note(log), as_witness, 1),),
    ).format()
    with pytest.raises(NoteError, match="no signature from a known key"):
        notes.verify_note(cosigned_only, [log_verifier])
    assert notes.count_witness_cosignatures(checkpoint_note(log), [as_witness.verifier()]) == 0


def test_cosignature_checks() -> None:
    log, log_verifier = log_keys()
    witness, witness_verifier = witness_keys("w")
    message = checkpoint_note(log)
    with pytest.raises(NoteError, match="0x04"):
        notes.cosign(message, log, 1)
    with pytest.raises(NoteError, match="out of range"):
        notes.add_cosignature(message, witness, 2**63)
    with pytest.raises(NoteError, match="0x01"):
        notes.verify_checkpoint(message, witness_verifier)
    note = notes.parse_note(notes.add_cosignature(message, witness, 7))
    short = notes.NoteSignature("w", witness.key_id, note.signatures[-1].signature[:-1])
    with pytest.raises(NoteError, match="want 72"):
        notes.count_witness_cosignatures(
            notes.Note(note.text, (note.signatures[0], short)), [witness_verifier]
        )
    # A cosignature whose timestamp was edited no longer verifies.
    sig = note.signatures[-1].signature
    moved = notes.NoteSignature("w", witness.key_id, (8).to_bytes(8, "big") + sig[8:])
    with pytest.raises(NoteError, match="does not verify"):
        notes.count_witness_cosignatures(
            notes.Note(note.text, (note.signatures[0], moved)), [witness_verifier]
        )
    assert notes.verify_checkpoint(message, log_verifier).root_hash == ROOT


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_flipped_bit_in_a_signed_checkpoint_is_caught(data: st.DataObject) -> None:
    log, log_verifier = log_keys()
    witness, witness_verifier = witness_keys("w")
    message = notes.add_cosignature(checkpoint_note(log), witness, 99).encode()
    position = data.draw(st.integers(min_value=0, max_value=len(message) * 8 - 1))
    mutated = bytearray(message)
    mutated[position // 8] ^= 1 << (position % 8)
    with pytest.raises(NoteError):
        notes.verify_checkpoint(
            bytes(mutated), log_verifier, witnesses=[witness_verifier], quorum=1
        )
