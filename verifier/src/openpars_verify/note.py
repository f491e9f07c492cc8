"""C2SP signed notes, tlog checkpoints and Ed25519 cosignature/v1, for verification.

See https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint and
https://c2sp.org/tlog-cosignature. Only what a verifier and a small witness need: key strings,
parsing, signature checks, and producing one cosignature line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

NOTE_KEY = 0x01
COSIGNER_KEY = 0x04
MAX_SIGNATURES = 100
DASH = "— "


class NoteFailure(Exception):
    """A key string, note, checkpoint or signature is malformed or does not verify."""


def b64decode(text: str, what: str) -> bytes:
    """Decode canonical standard base64; raise NoteFailure naming `what` otherwise."""
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise NoteFailure(f"{what} is not base64") from exc
    # Reject spellings that differ only in the unused low bits of the last character.
    if base64.b64encode(raw).decode() != text:
        raise NoteFailure(f"{what} is not canonical base64")
    return raw


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def compute_key_id(name: str, key_type: int, public: bytes) -> bytes:
    """Return SHA-256(name || 0x0A || type || public key)[:4]."""
    h = hashlib.sha256()
    h.update(name.encode("utf-8"))
    h.update(b"\n")
    h.update(bytes((key_type,)))
    h.update(public)
    return h.digest()[:4]


@dataclass(frozen=True)
class PublicKey:
    """A verifier key: name, key type (0x01 note, 0x04 cosigner) and Ed25519 public key."""

    name: str
    key_type: int
    key: Ed25519PublicKey
    key_id: bytes


@dataclass(frozen=True)
class PrivateKey:
    """A signer key, as used by the witness to cosign."""

    name: str
    key_type: int
    key: Ed25519PrivateKey
    key_id: bytes


def _key_parts(name: str, hex_id: str, data: str) -> tuple[int, bytes, bytes]:
    if not _valid_name(name):
        raise NoteFailure(f"key name {name!r} is empty or has a space or '+'")
    if len(hex_id) != 8 or any(ch not in "0123456789abcdef" for ch in hex_id):
        raise NoteFailure(f"key ID {hex_id!r} is not 8 lowercase hex digits")
    raw = b64decode(data, "key data")
    if len(raw) != 33 or raw[0] not in (NOTE_KEY, COSIGNER_KEY):
        raise NoteFailure("key is not an Ed25519 note (0x01) or cosigner (0x04) key")
    return raw[0], bytes.fromhex(hex_id), raw[1:]


def parse_public_key(vkey: str) -> PublicKey:
    """Parse ``name+hex(key id)+base64(type || public key)``."""
    fields = vkey.strip().split("+", 2)
    if len(fields) != 3:
        raise NoteFailure("verifier key must look like name+keyid+keydata")
    key_type, key_id, public = _key_parts(*fields)
    if compute_key_id(fields[0], key_type, public) != key_id:
        raise NoteFailure(f"verifier key {fields[0]}: key ID does not match the key")
    return PublicKey(fields[0], key_type, Ed25519PublicKey.from_public_bytes(public), key_id)


def parse_private_key(skey: str) -> PrivateKey:
    """Parse ``PRIVATE+KEY+name+hex(key id)+base64(type || seed)``."""
    prefix = "PRIVATE+KEY+"
    fields = skey.strip().removeprefix(prefix).split("+", 2)
    if not skey.strip().startswith(prefix) or len(fields) != 3:
        raise NoteFailure("signer key must look like PRIVATE+KEY+name+keyid+keydata")
    key_type, key_id, seed = _key_parts(*fields)
    key = Ed25519PrivateKey.from_private_bytes(seed)
    if compute_key_id(fields[0], key_type, key.public_key().public_bytes_raw()) != key_id:
        raise NoteFailure(f"signer key {fields[0]}: key ID does not match the key")
    return PrivateKey(fields[0], key_type, key, key_id)


def generate(name: str, key_type: int) -> tuple[str, str]:
    """Return a new (signer key, verifier key) pair of strings."""
    if not _valid_name(name):
        raise NoteFailure(f"key name {name!r} is empty or has a space or '+'")
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    kid = compute_key_id(name, key_type, public).hex()
    tag = bytes((key_type,))
    skey = f"PRIVATE+KEY+{name}+{kid}+{base64.b64encode(tag + key.private_bytes_raw()).decode()}"
    return skey, f"{name}+{kid}+{base64.b64encode(tag + public).decode()}"


@dataclass(frozen=True)
class SignatureLine:
    """One parsed signature line."""

    name: str
    key_id: bytes
    sig: bytes


@dataclass(frozen=True)
class SignedNote:
    """A parsed (not yet verified) note."""

    text: str
    lines: tuple[SignatureLine, ...]


def parse_note(raw: bytes) -> SignedNote:
    """Split a signed note into its text and signature lines; check the syntax only."""
    try:
        msg = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteFailure("note is not UTF-8") from exc
    if any(ord(ch) < 0x20 and ch != "\n" for ch in msg):
        raise NoteFailure("note has a control character")
    cut = msg.rfind("\n\n")
    if cut < 0 or not msg.endswith("\n"):
        raise NoteFailure("note has no signature block")
    text, block = msg[: cut + 1], msg[cut + 2 : -1]
    if not block:
        raise NoteFailure("note has no signatures")
    rows = block.split("\n")
    if len(rows) > MAX_SIGNATURES:
        raise NoteFailure(f"note has more than {MAX_SIGNATURES} signatures")
    parsed = []
    for row in rows:
        fields = row.removeprefix(DASH).split(" ")
        if not row.startswith(DASH) or len(fields) != 2 or not _valid_name(fields[0]):
            raise NoteFailure(f"malformed signature line {row[:30]!r}")
        blob = b64decode(fields[1], f"signature of {fields[0]}")
        if len(blob) < 5:
            raise NoteFailure(f"signature of {fields[0]} is too short")
        parsed.append(SignatureLine(fields[0], blob[:4], blob[4:]))
    return SignedNote(text, tuple(parsed))


def cosigned_message(text: str, timestamp: int) -> bytes:
    """Return what an Ed25519 cosignature/v1 signs: header, time line, then the note text."""
    return b"cosignature/v1\ntime %d\n" % timestamp + text.encode("utf-8")


def _matches(line: SignatureLine, key: PublicKey) -> bool:
    # A key is identified by name and ID together; one alone is not a match.
    return line.name == key.name and line.key_id == key.key_id


def verify_log_signature(note: SignedNote, log_key: PublicKey) -> None:
    """Require a valid signature by the log key; any invalid one by it rejects the note."""
    if log_key.key_type != NOTE_KEY:
        raise NoteFailure("the log key must be a note key (type 0x01)")
    found = False
    for line in note.lines:
        if _matches(line, log_key):
            try:
                log_key.key.verify(line.sig, note.text.encode("utf-8"))
            except InvalidSignature as exc:
                raise NoteFailure(f"log signature by {log_key.name} is invalid") from exc
            found = True
    if not found:
        raise NoteFailure(f"no signature by the log key {log_key.name}")


def count_cosigners(note: SignedNote, witnesses: list[PublicKey]) -> int:
    """Return how many distinct witnesses validly cosigned; any invalid one rejects the note."""
    signed: set[bytes] = set()
    for witness in witnesses:
        if witness.key_type != COSIGNER_KEY:
            raise NoteFailure(f"witness key {witness.name} is not a cosigner key (type 0x04)")
        for line in note.lines:
            if not _matches(line, witness):
                continue
            if len(line.sig) != 72:
                raise NoteFailure(f"cosignature by {witness.name} is not 8+64 bytes")
            timestamp = int.from_bytes(line.sig[:8], "big")
            if timestamp >= 1 << 63:
                raise NoteFailure(f"cosignature by {witness.name} has an invalid timestamp")
            try:
                witness.key.verify(line.sig[8:], cosigned_message(note.text, timestamp))
            except InvalidSignature as exc:
                raise NoteFailure(f"cosignature by {witness.name} is invalid") from exc
            # Distinct keys, not distinct lines: one witness signing twice counts once.
            signed.add(witness.key.public_bytes_raw())
    return len(signed)


def cosignature_line(text: str, signer: PrivateKey, timestamp: int) -> str:
    """Return the note signature line of an Ed25519 cosignature/v1 over `text`."""
    sig = signer.key.sign(cosigned_message(text, timestamp))
    blob = signer.key_id + timestamp.to_bytes(8, "big") + sig
    return f"{DASH}{signer.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class Checkpoint:
    """The three mandatory lines of a tlog checkpoint, plus any extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...]


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text: origin, canonical decimal size, base64 32-byte root."""
    rows = text.split("\n")
    if len(rows) < 4 or rows[-1] != "":
        raise NoteFailure("checkpoint needs origin, size and root lines")
    origin, size, root, *extensions = rows[:-1]
    if not origin:
        raise NoteFailure("checkpoint origin is empty")
    canonical = size == "0" or (size[:1] in "123456789" and size.isdigit() and size.isascii())
    if not size or not canonical:
        raise NoteFailure(f"checkpoint size {size!r} is not a canonical decimal")
    digest = b64decode(root, "checkpoint root")
    if len(digest) != 32:
        raise NoteFailure(f"checkpoint root is {len(digest)} bytes, want 32")
    if "" in extensions:
        raise NoteFailure("checkpoint has an empty extension line")
    return Checkpoint(origin, int(size), digest, tuple(extensions))


def open_checkpoint(
    raw: bytes, log_key: PublicKey, witnesses: list[PublicKey], quorum: int
) -> tuple[SignedNote, Checkpoint, int]:
    """Verify a checkpoint note's log signature and witness quorum; return what was checked."""
    note = parse_note(raw)
    verify_log_signature(note, log_key)
    checkpoint = parse_checkpoint(note.text)
    cosigners = count_cosigners(note, witnesses)
    if cosigners < quorum:
        raise NoteFailure(f"{cosigners} witness cosignatures, quorum is {quorum}")
    return note, checkpoint, cosigners
