"""Ed25519 vote signatures over a canonical, line-based encoding (see docs/governance.md).

The encoding is deliberately plain text so that a stakeholder can read what it signs and a
verifier can be written in a few lines with nothing but ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from openpars.errors import InvalidInput
from openpars.governance.quorum import Choice

VOTE_FORMAT = "openpars-vote/v1"
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def format_at(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits and a ``Z``: one spelling per instant."""
    if moment.tzinfo is None:
        raise InvalidInput("the vote time has no time zone; give it in UTC", field="at")
    utc = moment.astimezone(UTC)
    # strftime's %Y drops leading zeros before year 1000 on some platforms; spell it out.
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"


def parse_at(text: str, *, field: str = "at") -> datetime:
    """Parse an RFC 3339 instant with a zone (``Z`` or an offset) into aware UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{field} '{text}' is not an RFC 3339 time such as 2026-08-01T12:00:00Z", field=field
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{field} '{text}' has no time zone; end it with Z", field=field)
    return moment.astimezone(UTC)


def rationale_digest(rationale: str) -> str:
    """SHA-256 hex of the rationale's UTF-8 bytes; the signature covers the text through it."""
    return hashlib.sha256(rationale.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class VoteStatement:
    """What a stakeholder signs: proposal, agreement version, choice, rationale digest, time."""

    proposal_id: int
    agreement_id: int
    version_hash: str
    choice: Choice
    rationale_sha256: str
    at: datetime

    def encode(self) -> bytes:
        """The canonical bytes: UTF-8 lines, each ending in a single LF, fixed order."""
        lines = [
            VOTE_FORMAT,
            f"proposal {self.proposal_id}",
            f"agreement {self.agreement_id}",
            f"version-hash {self.version_hash}",
            f"choice {self.choice.value}",
            f"rationale-sha256 {self.rationale_sha256}",
            f"at {format_at(self.at)}",
        ]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> VoteStatement:
        """Parse canonical bytes; anything that would not re-encode to the same bytes is refused."""
        try:
            text = data.decode("utf-8")
            lines = text.split("\n")
            if len(lines) != 8 or lines[0] != VOTE_FORMAT or lines[7] != "":
                raise ValueError("not the seven lines of openpars-vote/v1")
            fields = dict(line.split(" ", 1) for line in lines[1:7])
            statement = cls(
                proposal_id=int(fields["proposal"]),
                agreement_id=int(fields["agreement"]),
                version_hash=fields["version-hash"],
                choice=Choice(fields["choice"]),
                rationale_sha256=fields["rationale-sha256"],
                at=parse_at(fields["at"]),
            )
        except (ValueError, KeyError, InvalidInput) as exc:
            raise InvalidInput(
                f"the signed vote bytes are malformed: {exc}", field="signed"
            ) from None
        if statement.encode() != data:
            raise InvalidInput("the signed vote bytes are not in canonical form", field="signed")
        return statement


def check_hex64(value: str, *, field: str) -> str:
    """Refuse anything but 64 lowercase hex digits (a SHA-256)."""
    if not _HEX64.match(value):
        raise InvalidInput(f"{field} must be 64 lowercase hex digits (a SHA-256)", field=field)
    return value


def decode_b64(value: str, *, field: str, length: int | None = None) -> bytes:
    """Strict standard base64; with ``length``, the decoded size must match exactly."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{field} is not valid base64", field=field) from None
    if length is not None and len(raw) != length:
        raise InvalidInput(
            f"{field} decodes to {len(raw)} bytes; an Ed25519 {field} is {length} bytes",
            field=field,
        )
    return raw


def encode_b64(raw: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(raw).decode("ascii")


def fingerprint(public_raw: bytes) -> str:
    """SHA-256 hex of the raw 32-byte public key: the key's name everywhere."""
    return hashlib.sha256(public_raw).hexdigest()


def parse_public_key(text: str) -> bytes:
    """Accept a PEM ``PUBLIC KEY`` or base64 of the raw 32 bytes; return the raw bytes."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise InvalidInput(
                "public_key is not a readable PEM public key", field="public_key"
            ) from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInput("public_key must be an Ed25519 key", field="public_key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return decode_b64(stripped, field="public_key", length=PUBLIC_KEY_BYTES)


def verify(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` under the key."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def generate_private_pem() -> bytes:
    """A fresh Ed25519 private key as unencrypted PKCS#8 PEM (the stakeholder keeps it)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_pem(pem: bytes) -> Ed25519PrivateKey:
    """Read a private key written by ``generate_private_pem``."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("the key file does not hold an Ed25519 private key", field="key")
    return key


def public_pem(private: Ed25519PrivateKey) -> bytes:
    """The PEM ``PUBLIC KEY`` of a private key, for registration."""
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_raw(private: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key of a private key."""
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def sign_vote(
    private: Ed25519PrivateKey, statement: VoteStatement, rationale: str
) -> dict[str, Any]:
    """The signed-vote document a stakeholder submits: the statement's fields and a signature."""
    if rationale_digest(rationale) != statement.rationale_sha256:
        raise InvalidInput("the rationale does not match the signed digest", field="rationale")
    return {
        "format": VOTE_FORMAT,
        "proposal_id": statement.proposal_id,
        "agreement_id": statement.agreement_id,
        "version_hash": statement.version_hash,
        "choice": statement.choice.value,
        "rationale": rationale,
        "at": format_at(statement.at),
        "key_fingerprint": fingerprint(public_raw(private)),
        "signature": encode_b64(private.sign(statement.encode())),
    }
