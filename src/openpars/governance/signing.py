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
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from openpars.errors import InvalidInput
from openpars.governance.quorum import Choice, ProposalAction

VOTE_FORMAT = "openpars-vote/v2"
VOTE_FORMAT_V1 = "openpars-vote/v1"
# The line names of each format, in their fixed order (after the format line).
V2_KEYS = (
    "proposal",
    "agreement",
    "version-hash",
    "action",
    "effective-at",
    "new-expires-at",
    "stakeholder",
    "key",
    "choice",
    "rationale-sha256",
    "at",
)
V1_KEYS = ("proposal", "agreement", "version-hash", "choice", "rationale-sha256", "at")
# The one spelling of a time the proposal does not have (no effective time, no new expiry).
NONE = "none"
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


class ProposalTerms(Protocol):
    """What a vote binds of a proposal (a stored proposal or its API reading)."""

    @property
    def id(self) -> int: ...
    @property
    def agreement_id(self) -> int | None: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def action(self) -> ProposalAction: ...
    @property
    def effective_at(self) -> datetime | None: ...
    @property
    def new_expires_at(self) -> datetime | None: ...


def format_optional_at(moment: datetime | None) -> str:
    """An instant, or ``none`` (the one spelling of "no such time")."""
    return NONE if moment is None else format_at(moment)


def parse_optional_at(text: str, *, field: str) -> datetime | None:
    """The inverse of ``format_optional_at``."""
    return None if text == NONE else parse_at(text, field=field)


def _fields(data: bytes, form: str, keys: tuple[str, ...]) -> dict[str, str]:
    """The ``key value`` lines of a statement, in exactly the order of ``keys``."""
    lines = data.decode("utf-8").split("\n")
    if len(lines) != len(keys) + 2 or lines[0] != form or lines[-1] != "":
        raise ValueError(f"not the {len(keys) + 1} lines of {form}")
    pairs = [tuple(line.split(" ", 1)) for line in lines[1:-1]]
    if [pair[0] for pair in pairs] != list(keys) or any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"the lines must be, in order: {', '.join(keys)}")
    return {pair[0]: pair[1] for pair in pairs}


def _refuse_malformed(exc: Exception) -> InvalidInput:
    return InvalidInput(f"the signed vote bytes are malformed: {exc}", field="signed")


def _canonical(statement: VoteStatement | VoteStatementV1, data: bytes) -> None:
    if statement.encode() != data:
        raise InvalidInput("the signed vote bytes are not in canonical form", field="signed")


@dataclass(frozen=True, slots=True)
class VoteStatement:
    """What a stakeholder signs (openpars-vote/v2): everything the vote decides, and who says it.

    ``agreement_id`` is 0 for a site proposal (floor or board): no agreement has id 0.
    """

    proposal_id: int
    agreement_id: int
    version_hash: str
    action: ProposalAction
    effective_at: datetime | None
    new_expires_at: datetime | None
    stakeholder_id: int
    key_fingerprint: str
    choice: Choice
    rationale_sha256: str
    at: datetime

    def lines(self) -> dict[str, str]:
        """Each line's name and value, in the fixed order."""
        values = (
            str(self.proposal_id),
            str(self.agreement_id),
            self.version_hash,
            self.action.value,
            format_optional_at(self.effective_at),
            format_optional_at(self.new_expires_at),
            str(self.stakeholder_id),
            self.key_fingerprint,
            self.choice.value,
            self.rationale_sha256,
            format_at(self.at),
        )
        return dict(zip(V2_KEYS, values, strict=True))

    def encode(self) -> bytes:
        """The canonical bytes: UTF-8 lines, each ending in a single LF, fixed order."""
        lines = [VOTE_FORMAT, *(f"{k} {v}" for k, v in self.lines().items())]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> VoteStatement:
        """Parse canonical bytes; anything that would not re-encode to the same bytes is refused."""
        try:
            f = _fields(data, VOTE_FORMAT, V2_KEYS)
            statement = cls(
                proposal_id=int(f["proposal"]),
                agreement_id=int(f["agreement"]),
                version_hash=check_hex64(f["version-hash"], field="version-hash"),
                action=ProposalAction(f["action"]),
                effective_at=parse_optional_at(f["effective-at"], field="effective-at"),
                new_expires_at=parse_optional_at(f["new-expires-at"], field="new-expires-at"),
                stakeholder_id=int(f["stakeholder"]),
                key_fingerprint=check_hex64(f["key"], field="key"),
                choice=Choice(f["choice"]),
                rationale_sha256=check_hex64(f["rationale-sha256"], field="rationale-sha256"),
                at=parse_at(f["at"]),
            )
        except (ValueError, KeyError, InvalidInput) as exc:
            raise _refuse_malformed(exc) from None
        _canonical(statement, data)
        return statement

    def differences(self, other: VoteStatement) -> list[tuple[str, str, str]]:
        """Each line on which two statements differ: (name, this value, the other value)."""
        theirs = other.lines()
        return [(k, v, theirs[k]) for k, v in self.lines().items() if v != theirs[k]]


@dataclass(frozen=True, slots=True)
class VoteStatementV1:
    """The first statement (openpars-vote/v1): no longer accepted, still verifiable offline.

    It does not bind the action, the effective time, the new expiry, the stakeholder or the key.
    """

    proposal_id: int
    agreement_id: int
    version_hash: str
    choice: Choice
    rationale_sha256: str
    at: datetime

    def encode(self) -> bytes:
        """The canonical v1 bytes."""
        values = (
            str(self.proposal_id),
            str(self.agreement_id),
            self.version_hash,
            self.choice.value,
            self.rationale_sha256,
            format_at(self.at),
        )
        lines = [VOTE_FORMAT_V1, *(f"{k} {v}" for k, v in zip(V1_KEYS, values, strict=True))]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> VoteStatementV1:
        """Parse canonical v1 bytes (refusing anything else)."""
        try:
            f = _fields(data, VOTE_FORMAT_V1, V1_KEYS)
            statement = cls(
                proposal_id=int(f["proposal"]),
                agreement_id=int(f["agreement"]),
                version_hash=f["version-hash"],
                choice=Choice(f["choice"]),
                rationale_sha256=f["rationale-sha256"],
                at=parse_at(f["at"]),
            )
        except (ValueError, KeyError, InvalidInput) as exc:
            raise _refuse_malformed(exc) from None
        _canonical(statement, data)
        return statement


def decode_statement(data: bytes) -> VoteStatement | VoteStatementV1:
    """Decode signed bytes by their first line (``openpars-vote/v2`` or ``/v1``)."""
    if data.startswith(VOTE_FORMAT_V1.encode() + b"\n"):
        return VoteStatementV1.decode(data)
    return VoteStatement.decode(data)


def statement_for(
    proposal: ProposalTerms,
    *,
    stakeholder_id: int,
    key_fingerprint: str,
    choice: Choice,
    rationale: str,
    at: datetime,
) -> VoteStatement:
    """The v2 statement a stakeholder signs for a proposal (``agreement 0``: a site proposal)."""
    return VoteStatement(
        proposal_id=proposal.id,
        agreement_id=proposal.agreement_id or 0,
        version_hash=proposal.content_hash,
        action=proposal.action,
        effective_at=proposal.effective_at,
        new_expires_at=proposal.new_expires_at,
        stakeholder_id=stakeholder_id,
        key_fingerprint=key_fingerprint,
        choice=choice,
        rationale_sha256=rationale_digest(rationale),
        at=at,
    )


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
    if fingerprint(public_raw(private)) != statement.key_fingerprint:
        raise InvalidInput(
            "the statement names another key than the one signing it", field="key_fingerprint"
        )
    return {
        "format": VOTE_FORMAT,
        "proposal_id": statement.proposal_id,
        "agreement_id": statement.agreement_id,
        "version_hash": statement.version_hash,
        "action": statement.action.value,
        "effective_at": None
        if statement.effective_at is None
        else format_at(statement.effective_at),
        "new_expires_at": (
            None if statement.new_expires_at is None else format_at(statement.new_expires_at)
        ),
        "stakeholder_id": statement.stakeholder_id,
        "key_fingerprint": statement.key_fingerprint,
        "choice": statement.choice.value,
        "rationale": rationale,
        "at": format_at(statement.at),
        "signature": encode_b64(private.sign(statement.encode())),
    }
