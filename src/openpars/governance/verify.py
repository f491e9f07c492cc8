"""Offline re-verification of an exported voting history (``openpars vote verify``).

Works from the export document alone: every signature against the exported public keys, every
signed statement against the vote it claims to be, and the recorded outcome against the quorum
rule recomputed from the votes. Nothing is read from a database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from openpars.errors import InvalidInput
from openpars.governance import signing
from openpars.governance.quorum import Ballot, Choice, QuorumRule, outcome
from openpars.governance.signing import VoteStatement, parse_at

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
    standing: dict[int, Choice] = field(default_factory=dict)
    decision: str = ""

    @property
    def ok(self) -> bool:
        """Whether every signature and the outcome checked out."""
        return not self.problems


def _check_vote(vote: dict[str, Any], proposal: dict[str, Any], keys: dict[str, Any]) -> list[str]:
    label = f"vote {vote.get('id')}"
    key = keys.get(vote["key_fingerprint"])
    if key is None:
        return [f"{label}: key {vote['key_fingerprint'][:16]}... is not in the export"]
    raw = signing.decode_b64(key["public_key"], field="public_key", length=32)
    problems = []
    if signing.fingerprint(raw) != key["fingerprint"]:
        problems.append(f"{label}: the key's fingerprint does not match its bytes")
    if key["agency_id"] != vote["stakeholder_id"]:
        problems.append(f"{label}: signed with a key of agency {key['agency_id']}")
    if key.get("revoked_at") and parse_at(key["revoked_at"]) <= parse_at(vote["recorded_at"]):
        problems.append(f"{label}: recorded after its key was revoked")
    message = signing.decode_b64(vote["signed"], field="signed")
    signature = signing.decode_b64(vote["signature"], field="signature", length=64)
    if not signing.verify(raw, signature, message):
        return [*problems, f"{label}: the signature does not verify"]
    statement = VoteStatement.decode(message)
    expected = VoteStatement(
        proposal_id=proposal["id"],
        agreement_id=proposal["agreement_id"] or 0,  # 0: a site floor or board proposal
        version_hash=proposal["content_hash"],
        choice=Choice(vote["choice"]),
        rationale_sha256=hashlib.sha256(vote["rationale"].encode("utf-8")).hexdigest(),
        at=parse_at(vote["at"]),
    )
    if statement != expected:
        problems.append(f"{label}: the signed statement differs from the recorded vote")
    return problems


def verify_export(document: dict[str, Any]) -> Verification:
    """Re-verify every vote of an export and recount the outcome."""
    result = Verification()
    try:
        proposal = document["proposal"]
        keys = {k["fingerprint"]: k for k in document["keys"]}
        votes = document["votes"]
    except (KeyError, TypeError):
        raise InvalidInput("export: not an openpars vote export", field="export") from None
    ballots = []
    for vote in votes:
        try:
            result.problems += _check_vote(vote, proposal, keys)
        except (InvalidInput, KeyError, ValueError) as exc:
            result.problems.append(f"vote {vote.get('id')}: malformed ({exc})")
            continue
        result.votes_checked += 1
        ballots.append(Ballot(vote["stakeholder_id"], Choice(vote["choice"]), parse_at(vote["at"])))
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
    return result
