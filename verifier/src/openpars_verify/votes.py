"""Signed board votes (``openpars-vote/v2``) checked against the stakeholders' pinned keys.

Written from docs/governance.md alone, without openpars: each vote's key must be a key its
stakeholder published (``openpars-stakeholder-keys/v1``), valid when the vote was recorded;
every key the export carries must be such a key, byte for byte; the Ed25519 signature must
verify over the signed bytes; and every signed line must say what the exported proposal and
vote say. Votes of the first format (``openpars-vote/v1``) are checked on the lines they have.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

KEYRING = "openpars-stakeholder-keys/v1"
V2 = "openpars-vote/v2"
V1 = "openpars-vote/v1"
V2_LINES = (
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
V1_LINES = ("proposal", "agreement", "version-hash", "choice", "rationale-sha256", "at")


class VoteFailure(Exception):
    """A vote, a key or the export does not verify against the pinned keys."""


@dataclass(frozen=True)
class Pinned:
    """A published key: whose it is, its raw bytes, and when it may sign."""

    stakeholder: int
    raw: bytes
    valid_from: datetime
    revoked_at: datetime | None


def instant(text: str) -> datetime:
    """An RFC 3339 instant with a zone, as aware UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text} has no time zone")
    return moment.astimezone(UTC)


def spell(text: str | None) -> str:
    """The one spelling the signed lines use: six fractional digits and Z, or ``none``."""
    if text is None:
        return "none"
    utc = instant(text)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"


def _raw_key(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return raw


def load_keyring(document: Any) -> dict[str, Pinned]:
    """The keys of one published key file, by fingerprint (ValueError if malformed)."""
    if not isinstance(document, dict) or document.get("format") != KEYRING:
        raise ValueError(f"not an {KEYRING} file")
    try:
        owner = int(document["stakeholder_id"])
        keys: dict[str, Pinned] = {}
        for key in document["keys"]:
            raw = _raw_key(key["public_key"])
            if hashlib.sha256(raw).hexdigest() != key["fingerprint"]:
                raise ValueError(f"key {key['fingerprint'][:16]}... does not match its bytes")
            revoked = key.get("revoked_at")
            keys[key["fingerprint"]] = Pinned(
                owner,
                raw,
                instant(key["valid_from"]),
                None if revoked is None else instant(revoked),
            )
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ValueError(f"malformed key file ({exc})") from None
    return keys


def _lines(signed: bytes, names: tuple[str, ...], form: str) -> dict[str, str]:
    lines = signed.decode("utf-8").split("\n")
    if len(lines) != len(names) + 2 or lines[0] != form or lines[-1] != "":
        raise VoteFailure(f"the signed bytes are not the {len(names) + 1} lines of {form}")
    pairs = [line.split(" ", 1) for line in lines[1:-1]]
    if [p[0] for p in pairs] != list(names) or any(len(p) != 2 for p in pairs):
        raise VoteFailure(f"the signed lines of {form} are not in their fixed order")
    return {p[0]: p[1] for p in pairs}


def expected_lines(proposal: dict[str, Any], vote: dict[str, Any]) -> dict[str, str]:
    """What a v2 vote must have signed, from the exported proposal and vote."""
    return {
        "proposal": str(proposal["id"]),
        "agreement": str(proposal["agreement_id"] or 0),
        "version-hash": proposal["content_hash"],
        "action": proposal["action"],
        "effective-at": spell(proposal["effective_at"]),
        "new-expires-at": spell(proposal["new_expires_at"]),
        "stakeholder": str(vote["stakeholder_id"]),
        "key": vote["key_fingerprint"],
        "choice": vote["choice"],
        "rationale-sha256": hashlib.sha256(vote["rationale"].encode("utf-8")).hexdigest(),
        "at": spell(vote["at"]),
    }


def _check_key(vote: dict[str, Any], pinned: dict[str, Pinned]) -> Pinned:
    pin = pinned.get(vote["key_fingerprint"])
    if pin is None:
        raise VoteFailure(
            f"key {vote['key_fingerprint'][:16]}... is not a pinned key of stakeholder "
            f"{vote['stakeholder_id']}"
        )
    if pin.stakeholder != vote["stakeholder_id"]:
        raise VoteFailure(
            f"signed with a key pinned for stakeholder {pin.stakeholder}, but speaks for "
            f"stakeholder {vote['stakeholder_id']}"
        )
    recorded = instant(vote["recorded_at"])
    if recorded < pin.valid_from or (pin.revoked_at is not None and pin.revoked_at <= recorded):
        raise VoteFailure("recorded outside its key's validity (before it or after revocation)")
    return pin


def check_vote(proposal: dict[str, Any], vote: dict[str, Any], pinned: dict[str, Pinned]) -> str:
    """Verify one vote; return its format, or raise VoteFailure saying what is wrong."""
    pin = _check_key(vote, pinned)
    signed = base64.b64decode(vote["signed"], validate=True)
    try:
        Ed25519PublicKey.from_public_bytes(pin.raw).verify(
            base64.b64decode(vote["signature"], validate=True), signed
        )
    except InvalidSignature:
        raise VoteFailure("the signature does not verify with the pinned key") from None
    want = expected_lines(proposal, vote)
    if signed.startswith(V1.encode() + b"\n"):
        got, form = _lines(signed, V1_LINES, V1), V1
    else:
        got, form = _lines(signed, V2_LINES, V2), V2
    for name, value in got.items():
        if value != want[name]:
            raise VoteFailure(f"line '{name}' says '{value}', the export says '{want[name]}'")
    return form


def verify_votes(document: Any, pinned: dict[str, Pinned]) -> str:
    """Check a whole vote export; return the OK summary or raise VoteFailure (first problem)."""
    try:
        proposal, keys, votes = document["proposal"], document["keys"], document["votes"]
    except (KeyError, TypeError):
        raise VoteFailure("not an openpars vote export") from None
    try:
        return _verify(proposal, keys, votes, pinned)
    except (KeyError, TypeError, ValueError) as exc:
        raise VoteFailure(f"the export is malformed ({type(exc).__name__}: {exc})") from None


def _verify(
    proposal: dict[str, Any], keys: list[Any], votes: list[Any], pinned: dict[str, Pinned]
) -> str:
    exported = {k["fingerprint"]: k for k in keys}
    for fp, key in exported.items():
        pin = pinned.get(fp)
        if (
            pin is None
            or pin.stakeholder != key["agency_id"]
            or pin.raw != _raw_key(key["public_key"])
        ):
            raise VoteFailure(
                f"key {fp[:16]}... of agency {key['agency_id']} in the export is not that "
                "stakeholder's pinned key"
            )
    old = 0
    for vote in votes:
        if vote["key_fingerprint"] not in exported:
            raise VoteFailure(f"vote {vote['id']}: its key is not in the export")
        try:
            old += check_vote(proposal, vote, pinned) == V1
        except VoteFailure as exc:
            raise VoteFailure(f"vote {vote['id']} of proposal {proposal['id']}: {exc}") from None
    summary = f"OK {len(votes)} vote(s) of proposal {proposal['id']} verify with the pinned keys"
    return summary + (f" ({old} in {V1}, which binds no action or stakeholder)" if old else "")
