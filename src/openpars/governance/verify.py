"""Offline re-verification of an exported voting history (``openpars vote verify``).

Works without any database: every signature against the stakeholders' pinned keys (their
published key files, never the keys inside the export unless the caller accepts that), every
signed statement against the exported proposal and the vote it claims to be, and the recorded
outcome against the quorum rule recomputed from the votes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from openpars.errors import InvalidInput
from openpars.governance import signing
from openpars.governance.keyring import KEYRING_FORMAT
from openpars.governance.quorum import Ballot, Choice, ProposalAction, QuorumRule, outcome
from openpars.governance.signing import VoteStatement, VoteStatementV1, parse_at

# The recorded status each recomputed decision supports.
_EXPECTED = {
    "approved": {"Approved"},
    "applied": {"Approved"},
    "rejected": {"Rejected"},
    "failed": {"Failed", "Approved"},  # approved decisions can fail to apply
    "open": {"Pending", "Failed", "Rejected"},  # a tick may not have closed it yet
    "voided": {"Pending", "Approved", "Failed", "Rejected"},
}


@dataclass
class Verification:
    """What an offline check found: problems (empty when all is well) and the recount."""

    votes_checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    standing: dict[int, Choice] = field(default_factory=dict)
    decision: str = ""

    @property
    def ok(self) -> bool:
        """Whether every signature and the outcome checked out."""
        return not self.problems


@dataclass(frozen=True, slots=True)
class PinnedKey:
    """A key as its stakeholder published it."""

    stakeholder_id: int
    public_key: str
    valid_from: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Terms:
    """The exported proposal's terms, as a vote binds them."""

    id: int
    agreement_id: int | None
    content_hash: str
    action: ProposalAction
    effective_at: datetime | None
    new_expires_at: datetime | None


def _optional(text: str | None) -> datetime | None:
    return None if text is None else parse_at(text)


def pinned_keys(files: Sequence[dict[str, Any]]) -> dict[str, PinnedKey]:
    """Every key of the given published key files, by fingerprint (InvalidInput if malformed)."""
    pinned: dict[str, PinnedKey] = {}
    for document in files:
        if not isinstance(document, dict) or document.get("format") != KEYRING_FORMAT:
            raise InvalidInput(
                f"stakeholder-keys: not an {KEYRING_FORMAT} file ('openpars keys publish' writes "
                "one)",
                field="stakeholder-keys",
            )
        try:
            owner = int(document["stakeholder_id"])
            for key in document["keys"]:
                raw = signing.decode_b64(key["public_key"], field="public_key", length=32)
                if signing.fingerprint(raw) != key["fingerprint"]:
                    raise ValueError(f"key {key['fingerprint'][:16]}... does not match its bytes")
                pinned[key["fingerprint"]] = PinnedKey(
                    stakeholder_id=owner,
                    public_key=key["public_key"],
                    valid_from=parse_at(key["valid_from"]),
                    revoked_at=_optional(key.get("revoked_at")),
                )
        except (KeyError, TypeError, ValueError, InvalidInput) as exc:
            raise InvalidInput(
                f"stakeholder-keys: the file of stakeholder {document.get('stakeholder_id')} is "
                f"malformed ({exc})",
                field="stakeholder-keys",
            ) from None
    return pinned


def _export_keys(keys: dict[str, Any]) -> dict[str, PinnedKey]:
    """The export's own keys, for ``--trust-export-keys`` (self-consistency only)."""
    return {
        fp: PinnedKey(
            stakeholder_id=k["agency_id"],
            public_key=k["public_key"],
            valid_from=parse_at(k["created_at"]),
            revoked_at=_optional(k.get("revoked_at")),
        )
        for fp, k in keys.items()
    }


def _compare_keys(keys: dict[str, Any], pinned: dict[str, PinnedKey]) -> list[str]:
    """Every key the export carries must be a pinned key, byte for byte, of the same agency."""
    problems = []
    for fp, key in keys.items():
        pin = pinned.get(fp)
        if pin is None:
            problems.append(
                f"key {fp[:16]}... (agency {key.get('agency_id')}) in the export is not among "
                "the pinned keys"
            )
        elif key.get("agency_id") != pin.stakeholder_id:
            problems.append(
                f"key {fp[:16]}... is pinned for stakeholder {pin.stakeholder_id}, but the export "
                f"gives it to agency {key.get('agency_id')}"
            )
        elif key.get("public_key") != pin.public_key:
            problems.append(f"key {fp[:16]}... has other bytes in the export than pinned")
    return problems


def _check_key(vote: dict[str, Any], label: str, pin: PinnedKey | None) -> list[str]:
    if pin is None:
        return [
            f"{label}: key {vote['key_fingerprint'][:16]}... is not a pinned key; pass the "
            f"published keys of stakeholder {vote['stakeholder_id']} (--stakeholder-keys)"
        ]
    problems = []
    if pin.stakeholder_id != vote["stakeholder_id"]:
        problems.append(
            f"{label}: signed with a key of agency {pin.stakeholder_id}, but speaks for "
            f"stakeholder {vote['stakeholder_id']}"
        )
    recorded = parse_at(vote["recorded_at"])
    if pin.revoked_at is not None and pin.revoked_at <= recorded:
        problems.append(f"{label}: recorded after its key was revoked")
    if recorded < pin.valid_from:
        problems.append(f"{label}: recorded before its key was registered")
    return problems


def _check_statement(
    vote: dict[str, Any], label: str, terms: _Terms, message: bytes
) -> tuple[list[str], list[str]]:
    """(problems, notes): the signed lines against the exported proposal and vote."""
    signed = signing.decode_statement(message)
    digest = hashlib.sha256(vote["rationale"].encode("utf-8")).hexdigest()
    at = parse_at(vote["at"])
    choice = Choice(vote["choice"])
    if isinstance(signed, VoteStatementV1):
        old = VoteStatementV1(
            terms.id, terms.agreement_id or 0, terms.content_hash, choice, digest, at
        )
        note = (
            f"{label}: an {signing.VOTE_FORMAT_V1} vote; it does not bind the action, its times, "
            "the stakeholder or the key"
        )
        if signed != old:
            return [f"{label}: the signed statement differs from the recorded vote"], [note]
        return [], [note]
    expected: VoteStatement = signing.statement_for(
        terms,
        stakeholder_id=vote["stakeholder_id"],
        key_fingerprint=vote["key_fingerprint"],
        choice=choice,
        rationale=vote["rationale"],
        at=at,
    )
    assert expected.rationale_sha256 == digest
    return [
        f"{label}: the signed statement differs from the exported proposal or vote on line "
        f"'{line}' (signed '{mine}', exported '{theirs}')"
        for line, mine, theirs in signed.differences(expected)
    ], []


def _check_vote(
    vote: dict[str, Any], terms: _Terms, keys: dict[str, Any], pinned: dict[str, PinnedKey]
) -> tuple[list[str], list[str]]:
    label = f"vote {vote.get('id')}"
    problems = []
    if vote["key_fingerprint"] not in keys:
        problems.append(f"{label}: key {vote['key_fingerprint'][:16]}... is not in the export")
    pin = pinned.get(vote["key_fingerprint"])
    problems += _check_key(vote, label, pin)
    if pin is None:
        return problems, []
    message = signing.decode_b64(vote["signed"], field="signed")
    signature = signing.decode_b64(vote["signature"], field="signature", length=64)
    raw = signing.decode_b64(pin.public_key, field="public_key", length=32)
    if not signing.verify(raw, signature, message):
        return [*problems, f"{label}: the signature does not verify"], []
    found, notes = _check_statement(vote, label, terms, message)
    return problems + found, notes


def verify_export(
    document: dict[str, Any], pinned: dict[str, PinnedKey] | None = None
) -> Verification:
    """Re-verify every vote of an export and recount the outcome.

    With ``pinned`` (from ``pinned_keys``) the export's keys are only compared with the pinned
    ones; without it the export's own keys are trusted (the export is then only shown to be
    self-consistent).
    """
    result = Verification()
    try:
        proposal = document["proposal"]
        keys = {k["fingerprint"]: k for k in document["keys"]}
        votes = document["votes"]
        terms = _Terms(
            id=proposal["id"],
            agreement_id=proposal["agreement_id"],
            content_hash=proposal["content_hash"],
            action=ProposalAction(proposal["action"]),
            effective_at=_optional(proposal["effective_at"]),
            new_expires_at=_optional(proposal["new_expires_at"]),
        )
    except (KeyError, TypeError, ValueError, InvalidInput):
        raise InvalidInput("export: not an openpars vote export", field="export") from None
    if pinned is None:
        try:
            pinned = _export_keys(keys)
            result.problems += [
                f"key {fp[:16]}...: the key's fingerprint does not match its bytes"
                for fp, k in keys.items()
                if signing.fingerprint(
                    signing.decode_b64(k["public_key"], field="public_key", length=32)
                )
                != fp
            ]
        except (KeyError, TypeError, InvalidInput):
            raise InvalidInput("export: its keys are malformed", field="export") from None
    else:
        result.problems += _compare_keys(keys, pinned)
    ballots = []
    for vote in votes:
        try:
            problems, notes = _check_vote(vote, terms, keys, pinned)
        except (InvalidInput, KeyError, ValueError, TypeError) as exc:
            result.problems.append(f"vote {vote.get('id')}: malformed ({exc})")
            continue
        result.problems += problems
        result.notes += notes
        result.votes_checked += 1
        ballots.append(Ballot(vote["stakeholder_id"], Choice(vote["choice"]), parse_at(vote["at"])))
    _recount(result, proposal, ballots)
    return result


def _recount(result: Verification, proposal: dict[str, Any], ballots: list[Ballot]) -> None:
    rule = QuorumRule(
        required=proposal["required_yes"], members=frozenset(proposal["board_members"])
    )
    deadline = parse_at(proposal["deadline"])
    decision = outcome(rule, ballots, deadline, deadline)
    result.decision = type(decision).__name__
    tally = decision.tally
    result.standing = {s: Choice.YES for s in tally.yes}
    result.standing |= {s: Choice.NO for s in tally.no}
    result.standing |= {s: Choice.ABSTAIN for s in tally.abstain}
    if result.decision not in _EXPECTED.get(proposal["status"], set()):
        result.problems.append(
            f"the proposal is recorded as {proposal['status']}, but its votes give "
            f"{result.decision.lower()}"
        )
