"""C2SP signed notes, tlog checkpoints and tlog cosignatures, with Ed25519.

Formats, from the specifications at c2sp.org:

* signed-note: the text (ending in a newline), a blank line, then one line per signature,
  ``"— <key name> <base64(4-byte key id || signature)>"``. Key ID = SHA-256(name || 0x0A ||
  type || public key)[:4]; verifier key ``name+hex(key id)+base64(type || public key)``.
* tlog-checkpoint: the text is the origin, the decimal tree size, the base64 root hash, then
  optional non-empty extension lines.
* tlog-cosignature (cosignature/v1, type 0x04): the signature bytes are an 8-byte big-endian
  POSIX timestamp then an Ed25519 signature over ``"cosignature/v1\\ntime <t>\\n" || body``.

Verification follows the signed-note rules: signatures from unknown keys are ignored, a known
key whose signature fails rejects the whole note, and at least one known key must verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
# The spec requires accepting at least 16; 100 is the Go reference implementation's cap.
MAX_SIGNATURES = 100
MAX_TIMESTAMP = 2**63 - 1
SIGNATURE_PREFIX = "— "
COSIGNATURE_HEADER = "cosignature/v1\n"
HASH_SIZE = 32
_SKEY_PREFIX = "PRIVATE+KEY+"
_ALGORITHMS = (ALG_ED25519, ALG_COSIGNATURE_V1)


class NoteError(ValueError):
    """A key, note, checkpoint or cosignature is malformed or does not verify."""


def _check_name(name: str) -> None:
    # '+' separates the fields of a key string and spaces separate a signature line.
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"invalid key name {name!r}")


def _b64decode(value: str, what: str) -> bytes:
    try:
        decoded = binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    # Strict mode still ignores the unused low bits of the last character; requiring the
    # canonical spelling means every changed character is a detectable change.
    if _b64encode(decoded) != value:
        raise NoteError(f"{what} is not canonical base64")
    return decoded


def _b64encode(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def key_id(name: str, algorithm: int, public_key: bytes) -> bytes:
    """Return the 4-byte key ID SHA-256(name || 0x0A || algorithm || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([algorithm]) + public_key).digest()[:4]


def cosignature_message(body: str, timestamp: int) -> bytes:
    """Return the bytes an Ed25519 cosignature/v1 signs for a checkpoint body."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is out of range")
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{body}".encode()


@dataclass(frozen=True, slots=True)
class Signer:
    """A named Ed25519 private key that signs notes (0x01) or cosignatures (0x04)."""

    name: str
    algorithm: int
    private_key: Ed25519PrivateKey

    @property
    def public_bytes(self) -> bytes:
        """Return the raw 32-byte public key."""
        return self.private_key.public_key().public_bytes_raw()

    @property
    def key_id(self) -> bytes:
        """Return the 4-byte key ID."""
        return key_id(self.name, self.algorithm, self.public_bytes)

    def verifier(self) -> Verifier:
        """Return the matching verifier."""
        return Verifier(self.name, self.algorithm, self.private_key.public_key())


@dataclass(frozen=True, slots=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures or cosignatures."""

    name: str
    algorithm: int
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        """Return the 4-byte key ID."""
        return key_id(self.name, self.algorithm, self.public_key.public_bytes_raw())

    def verify(self, text: str, signature: bytes) -> int | None:
        """Check a signature (bytes after the key ID) over note text; return its timestamp."""
        timestamp: int | None = None
        message = text.encode()
        if self.algorithm == ALG_COSIGNATURE_V1:
            if len(signature) != 8 + 64:
                raise NoteError(f"cosignature by {self.name} is {len(signature)} bytes, want 72")
            timestamp = int.from_bytes(signature[:8], "big")
            message = cosignature_message(text, timestamp)
            signature = signature[8:]
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature as exc:
            raise NoteError(f"signature by known key {self.name} does not verify") from exc
        return timestamp


def generate_keys(name: str, *, algorithm: int = ALG_ED25519) -> tuple[str, str]:
    """Return a fresh (signer key, verifier key) pair of strings for `name`."""
    signer = Signer(name, algorithm, Ed25519PrivateKey.generate())
    return encode_signer_key(signer), encode_verifier_key(signer.verifier())


def encode_signer_key(signer: Signer) -> str:
    """Return ``PRIVATE+KEY+name+hex(key id)+base64(type || seed)`` for a signer."""
    _check_name(signer.name)
    seed = signer.private_key.private_bytes_raw()
    data = _b64encode(bytes([signer.algorithm]) + seed)
    return f"{_SKEY_PREFIX}{signer.name}+{signer.key_id.hex()}+{data}"


def encode_verifier_key(verifier: Verifier) -> str:
    """Return the vkey string ``name+hex(key id)+base64(type || public key)``."""
    _check_name(verifier.name)
    data = _b64encode(bytes([verifier.algorithm]) + verifier.public_key.public_bytes_raw())
    return f"{verifier.name}+{verifier.key_id.hex()}+{data}"


def _split_key(fields: list[str], what: str) -> tuple[str, bytes, int, bytes]:
    """Validate name, hex key id and base64 key data; return (name, id, algorithm, key)."""
    name, hex_id, data_b64 = fields
    _check_name(name)
    if len(hex_id) != 8 or hex_id != hex_id.lower():
        raise NoteError(f"{what} key ID must be 8 lowercase hex digits")
    data = _b64decode(data_b64, f"{what} key data")
    if len(data) != 33 or data[0] not in _ALGORITHMS:
        raise NoteError(f"{what} key is not an Ed25519 (0x01) or cosignature (0x04) key")
    return name, bytes.fromhex(hex_id), data[0], data[1:]


def parse_signer_key(skey: str) -> Signer:
    """Parse a signer key string; its key ID must match the key."""
    if not skey.startswith(_SKEY_PREFIX):
        raise NoteError("signer key must start with PRIVATE+KEY+")
    # Names and IDs have no '+', but base64 key data may, so split at most twice.
    fields = skey.strip()[len(_SKEY_PREFIX) :].split("+", 2)
    if len(fields) != 3:
        raise NoteError("signer key must have the form PRIVATE+KEY+name+id+data")
    name, wanted_id, algorithm, seed = _split_key(fields, "signer")
    signer = Signer(name, algorithm, Ed25519PrivateKey.from_private_bytes(seed))
    if signer.key_id != wanted_id:
        raise NoteError("signer key ID does not match its key")
    return signer


def parse_verifier_key(vkey: str) -> Verifier:
    """Parse a vkey string; its key ID must match the key."""
    fields = vkey.strip().split("+", 2)
    if len(fields) != 3:
        raise NoteError("verifier key must have the form name+id+data")
    name, wanted_id, algorithm, public = _split_key(fields, "verifier")
    verifier = Verifier(name, algorithm, Ed25519PublicKey.from_public_bytes(public))
    if verifier.key_id != wanted_id:
        raise NoteError("verifier key ID does not match its key")
    return verifier


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, key ID and the signature bytes after the key ID."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """Return the signature line, newline included."""
        return f"{SIGNATURE_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A note's text (ending in a newline) and its signatures, verified or not."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def format(self) -> str:
        """Return the wire form: text, blank line, signature lines."""
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(c < " " and c != "\n" for c in text):
        raise NoteError("note contains a control character")


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign `text` with each Ed25519 note key and return the signed note."""
    _check_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    if any(s.algorithm != ALG_ED25519 for s in signers):
        # A cosignature carries a timestamp and a statement; add it with add_cosignature.
        raise NoteError("sign_note takes note (0x01) keys; use add_cosignature for witnesses")
    note = Note(text, ())
    for signer in signers:
        note = Note(text, (*note.signatures, _signature(text, signer, 0)))
    return note.format()


def _signature(text: str, signer: Signer, timestamp: int) -> NoteSignature:
    _check_name(signer.name)
    if signer.algorithm == ALG_COSIGNATURE_V1:
        message = cosignature_message(text, timestamp)
        raw = timestamp.to_bytes(8, "big") + signer.private_key.sign(message)
    else:
        raw = signer.private_key.sign(text.encode())
    return NoteSignature(signer.name, signer.key_id, raw)


def parse_note(message: str | bytes) -> Note:
    """Parse a signed note without verifying it; raise NoteError if malformed."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not valid UTF-8") from exc
    _check_text(message)
    # The text is separated from the signatures by the last blank line.
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no signature block")
    text, block = message[: split + 1], message[split + 2 :]
    lines = block.split("\n")[:-1]
    if not lines:
        raise NoteError("note has no signatures")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(_parse_signature_line(line) for line in lines))


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"malformed signature line {line[:40]!r}")
    name, sep, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    _check_name(name)
    if not sep or " " in encoded:
        raise NoteError(f"malformed signature line for {name}")
    raw = _b64decode(encoded, f"signature by {name}")
    if len(raw) < 5:
        raise NoteError(f"signature by {name} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def _verified(note: Note, verifiers: Iterable[Verifier]) -> list[tuple[Verifier, int | None]]:
    """Return (verifier, timestamp) for each known key's signature; raise if any fails."""
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[tuple[Verifier, int | None]] = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        # Unknown keys are ignored, even if they share a name or an ID with a known key.
        if verifier is not None:
            verified.append((verifier, verifier.verify(note.text, sig.signature)))
    return verified


def verify_note(message: str | bytes | Note, verifiers: Iterable[Verifier]) -> Note:
    """Verify a note against known keys; return it with only the verified signatures."""
    note = message if isinstance(message, Note) else parse_note(message)
    verified = _verified(note, verifiers)
    if not verified:
        raise NoteError("note has no signature from a known key")
    keep = {(v.name, v.key_id) for v, _ in verified}
    return Note(note.text, tuple(s for s in note.signatures if (s.name, s.key_id) in keep))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog checkpoint: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """Return the checkpoint note text."""
        if not self.origin or "\n" in self.origin or self.size < 0:
            raise NoteError("checkpoint needs a one-line origin and a non-negative size")
        if len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"checkpoint root is {len(self.root_hash)} bytes, want {HASH_SIZE}")
        if any(not line or "\n" in line for line in self.extensions):
            raise NoteError("checkpoint extension lines must be non-empty single lines")
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text (not a whole signed note)."""
    _check_text(text)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint has fewer than three lines")
    origin, size, root, *extensions = lines
    if not origin:
        raise NoteError("checkpoint origin is empty")
    # ASCII digits only, no sign and no leading zero, so each size has exactly one spelling.
    if not (size.isascii() and size.isdigit()) or (size != "0" and size.startswith("0")):
        raise NoteError(f"checkpoint size {size!r} is not a canonical decimal")
    root_hash = _b64decode(root, "checkpoint root hash")
    if len(root_hash) != HASH_SIZE:
        raise NoteError(f"checkpoint root is {len(root_hash)} bytes, want {HASH_SIZE}")
    if any(not line for line in extensions):
        raise NoteError("checkpoint has an empty extension line")
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


def cosign(message: str | bytes | Note, signer: Signer, timestamp: int) -> NoteSignature:
    """Return a cosignature/v1 signature by a witness over a checkpoint note's text."""
    if signer.algorithm != ALG_COSIGNATURE_V1:
        raise NoteError("cosigning needs a cosignature (0x04) key")
    note = message if isinstance(message, Note) else parse_note(message)
    return _signature(note.text, signer, timestamp)


def add_cosignature(message: str | bytes, signer: Signer, timestamp: int) -> str:
    """Return the signed note with a witness cosignature line appended."""
    note = parse_note(message)
    return Note(note.text, (*note.signatures, cosign(note, signer, timestamp))).format()


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified witness cosignature: who and when."""

    name: str
    key_id: bytes
    timestamp: int


def verify_cosignatures(
    message: str | bytes | Note, witnesses: Iterable[Verifier]
) -> list[Cosignature]:
    """Return the valid cosignatures by known witnesses; raise if a known one fails."""
    note = message if isinstance(message, Note) else parse_note(message)
    cosigners = [w for w in witnesses if w.algorithm == ALG_COSIGNATURE_V1]
    return [
        Cosignature(v.name, v.key_id, ts) for v, ts in _verified(note, cosigners) if ts is not None
    ]


def count_witness_cosignatures(message: str | bytes | Note, witnesses: Iterable[Verifier]) -> int:
    """Return how many distinct known witnesses validly cosigned the note."""
    # A witness that signs twice is still one witness towards a quorum.
    return len({(c.name, c.key_id) for c in verify_cosignatures(message, witnesses)})


def verify_checkpoint(
    message: str | bytes,
    log_key: Verifier,
    *,
    witnesses: Sequence[Verifier] = (),
    quorum: int = 0,
) -> Checkpoint:
    """Verify the log's signature and a witness quorum; return the parsed checkpoint."""
    if log_key.algorithm != ALG_ED25519:
        raise NoteError("the log key must be an Ed25519 (0x01) note key")
    note = parse_note(message)
    verify_note(note, [log_key])
    checkpoint = parse_checkpoint(note.text)
    count = count_witness_cosignatures(note, witnesses)
    if count < quorum:
        raise NoteError(f"checkpoint has {count} witness cosignatures, quorum is {quorum}")
    return checkpoint
