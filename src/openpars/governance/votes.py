"""Signed votes: checking, recording, deciding, and exporting them for offline re-verification.

Every check runs before anything is written, so a refused vote leaves no row (the web layer
still audits the refusal). Each call leaves exactly one audit entry.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from openpars.audit.events import AuditKind
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput
from openpars.governance import repository as repo
from openpars.governance import signing
from openpars.governance.board import audit_act, require_reader, stakeholder_of
from openpars.governance.decisions import evaluate, void_if_stale
from openpars.governance.models import Proposal, ProposalStatus, StakeholderKey, Vote
from openpars.governance.quorum import ProposalAction
from openpars.governance.schemas import (
    RATIONALE_MAX,
    KeyRead,
    SignedVote,
    VoteExport,
    VoteRead,
    VoteReceipt,
)
from openpars.governance.service import get_proposal, proposal_read
from openpars.identity.principal import Principal

# How far ahead of openpars's clock a signed vote time may be (clock drift at the signer).
CLOCK_SKEW = timedelta(minutes=5)


def vote_read(vote: Vote, key: StakeholderKey) -> VoteRead:
    """A stored vote with its signed bytes and signature in base64."""
    return VoteRead(
        id=vote.id,
        proposal_id=vote.proposal_id,
        stakeholder_id=vote.stakeholder_id,
        voter=vote.voter_username,
        choice=vote.choice,
        rationale=vote.rationale,
        at=vote.at,
        recorded_at=vote.recorded_at,
        key_fingerprint=key.fingerprint,
        signed=signing.encode_b64(vote.signed),
        signature=signing.encode_b64(vote.signature),
    )


def _parse_vote(data: SignedVote) -> tuple[signing.VoteStatement, bytes]:
    """Payload checks that need no database: sizes, encodings, the statement to verify."""
    if len(data.rationale) > RATIONALE_MAX:
        raise InvalidInput(
            f"rationale: {len(data.rationale)} characters; the limit is {RATIONALE_MAX}",
            field="rationale",
        )
    if not data.rationale.strip():
        raise InvalidInput("rationale: say why you vote this way", field="rationale")
    signature = signing.decode_b64(
        data.signature, field="signature", length=signing.SIGNATURE_BYTES
    )
    statement = signing.VoteStatement(
        proposal_id=data.proposal_id,
        agreement_id=data.agreement_id,
        version_hash=signing.check_hex64(data.version_hash, field="version_hash"),
        action=data.action,
        effective_at=_optional_at(data.effective_at, field="effective_at"),
        new_expires_at=_optional_at(data.new_expires_at, field="new_expires_at"),
        stakeholder_id=data.stakeholder_id,
        key_fingerprint=signing.check_hex64(data.key_fingerprint, field="key_fingerprint"),
        choice=data.choice,
        rationale_sha256=signing.rationale_digest(data.rationale),
        at=signing.parse_at(data.at),
    )
    return statement, signature


def _optional_at(text: str | None, *, field: str) -> datetime | None:
    return None if text is None else signing.parse_at(text, field=field)


# The lines checked against the proposal and the voter, and the document field of each.
_TERMS = {
    "action": "action",
    "effective-at": "effective_at",
    "new-expires-at": "new_expires_at",
    "stakeholder": "stakeholder_id",
}


def _check_terms(proposal: Proposal, statement: signing.VoteStatement, stakeholder: int) -> None:
    """The action, its times and the stakeholder signed must be the proposal's and the voter's."""
    expected = signing.statement_for(
        proposal,
        stakeholder_id=stakeholder,
        key_fingerprint=statement.key_fingerprint,
        choice=statement.choice,
        rationale="",
        at=statement.at,
    )
    for line, signed, actual in statement.differences(expected):
        if line not in _TERMS:
            continue  # the subject and version are checked by _check_binding
        whose = "you vote for" if line == "stakeholder" else f"proposal {proposal.id} has"
        raise Conflict(
            f"{_TERMS[line]}: the vote was signed with '{line} {signed}', but {whose} "
            f"'{line} {actual}'; sign what the proposal says with 'openpars vote sign'",
            code="statement_mismatch",
            field=_TERMS[line],
        )


def _check_binding(proposal: Proposal, statement: signing.VoteStatement, *, now: datetime) -> None:
    """The vote must be for this proposal's exact version, within its voting window."""
    if proposal.status is not ProposalStatus.OPEN:
        raise Conflict(
            f"proposal {proposal.id} is {proposal.status.value}; votes are accepted only while "
            "it is open" + (f" ({proposal.closed_reason})" if proposal.closed_reason else ""),
            code="voting_closed",
            field="proposal_id",
        )
    # The signed statement names agreement 0 for a floor or board proposal (no agreement has id
    # 0); the version hash then names the proposed floor or board.
    subject = proposal.agreement_id or 0
    if statement.agreement_id != subject:
        about = (
            f"agreement {subject}"
            if subject
            else f"the site's {proposal.action.value} (agreement 0)"
        )
        raise Conflict(
            f"agreement_id: the vote is for agreement {statement.agreement_id}; proposal "
            f"{proposal.id} is about {about}",
            code="version_mismatch",
            field="agreement_id",
        )
    if statement.version_hash != proposal.content_hash:
        raise Conflict(
            f"version_hash: the vote was signed over version hash "
            f"{statement.version_hash[:12]}..., but proposal {proposal.id} is about "
            f"{proposal.content_hash[:12]}...; sign the proposal's version",
            code="version_mismatch",
            field="version_hash",
        )
    if now > proposal.deadline or statement.at > proposal.deadline:
        raise Conflict(
            f"the voting deadline {proposal.deadline.isoformat()} has passed",
            code="voting_closed",
            field="deadline",
        )
    if statement.at < proposal.opened_at:
        raise InvalidInput(
            f"at: {signing.format_at(statement.at)} is before the proposal opened "
            f"({signing.format_at(proposal.opened_at)})",
            field="at",
        )
    if statement.at > now + CLOCK_SKEW:
        raise InvalidInput(
            f"at: {signing.format_at(statement.at)} is in the future; sign with the current time",
            field="at",
        )


def _check_key(
    session: Session, data: SignedVote, stakeholder: int, message: bytes, signature: bytes
) -> StakeholderKey:
    """The signing key must be registered to the voter's stakeholder, unrevoked, and verify."""
    key = repo.key_by_fingerprint(session, data.key_fingerprint)
    if key is None or key.agency_id != stakeholder:
        raise Forbidden(
            f"key_fingerprint: {data.key_fingerprint[:16]}... is not a registered key of "
            f"stakeholder {stakeholder}; register it with 'openpars keys register' first",
            code="key_not_registered",
            field="key_fingerprint",
        )
    if key.revoked_at is not None:
        raise Forbidden(
            f"key_fingerprint: key {key.id} was revoked at {key.revoked_at.isoformat()}",
            code="key_revoked",
            field="key_fingerprint",
        )
    if not signing.verify(
        signing.decode_b64(key.public_key, field="public_key"), signature, message
    ):
        raise Forbidden(
            "signature: it does not verify over the vote's canonical bytes with key "
            f"{key.fingerprint[:16]}...; re-sign the vote exactly as submitted",
            code="signature_invalid",
            field="signature",
        )
    return key


def _check_replay(
    session: Session,
    proposal: Proposal,
    stakeholder: int,
    statement: signing.VoteStatement,
    digest: str,
) -> None:
    if repo.vote_by_signed_hash(session, digest) is not None:
        raise Conflict(
            "this exact signed vote was already submitted; to change your vote, sign a new one",
            code="replayed_vote",
            field="signature",
        )
    previous = repo.latest_vote(session, proposal_id=proposal.id, stakeholder_id=stakeholder)
    if previous is not None and statement.at <= previous.at:
        raise Conflict(
            f"at: {signing.format_at(statement.at)} is not later than stakeholder "
            f"{stakeholder}'s previous vote ({signing.format_at(previous.at)}); a changed vote "
            "must be signed later",
            code="replayed_vote",
            field="at",
        )


def submit_vote(
    session: Session, *, actor: Principal, data: SignedVote, now: datetime | None = None
) -> VoteReceipt:
    """Record a signed vote (a cast or a change) and decide the proposal if it now can."""
    moment = now or utcnow()
    actor.require_fresh()
    statement, signature = _parse_vote(data)
    if repo.proposal_action(session, data.proposal_id) == ProposalAction.BOARD.value:
        # Locks in one order everywhere (the board in force, then proposals), so that two board
        # decisions at once, or one and a tick, serialize instead of deadlocking.
        repo.latest_board(session, for_update=True)
    proposal = get_proposal(session, data.proposal_id, for_update=True)
    board = repo.get_board(session, proposal.board_config_id)
    assert board is not None
    stakeholder = stakeholder_of(actor, board)
    assert actor.user_id is not None
    # A proposal whose agreement changed is void even if no tick has run since.
    if proposal.status is ProposalStatus.OPEN:
        void_if_stale(session, proposal, now=moment)
    _check_binding(proposal, statement, now=moment)
    _check_terms(proposal, statement, stakeholder)
    message = statement.encode()
    key = _check_key(session, data, stakeholder, message, signature)
    digest = hashlib.sha256(message).hexdigest()
    _check_replay(session, proposal, stakeholder, statement, digest)
    vote = Vote(
        proposal_id=proposal.id,
        stakeholder_id=stakeholder,
        voter_user_id=actor.user_id,
        voter_username=actor.username,
        choice=statement.choice,
        rationale=data.rationale,
        at=statement.at,
        recorded_at=moment,
        key_id=key.id,
        signed=message,
        signature=signature,
        signed_sha256=digest,
    )
    session.add(vote)
    session.flush()
    events = evaluate(session, proposal, now=moment)
    audit_act(
        session,
        kind=AuditKind.VOTE,
        action="vote.cast",
        actor=actor,
        agreement_id=proposal.agreement_id,
        proposal_id=proposal.id,
        vote_id=vote.id,
        stakeholder=stakeholder,
        choice=statement.choice.value,
        signed_sha256=digest,
        key=key.fingerprint,
        events=[e.model_dump(mode="json") for e in events],
    )
    return VoteReceipt(
        vote=vote_read(vote, key), proposal=proposal_read(session, proposal, now=moment)
    )


def export_votes(
    session: Session, *, actor: Principal, proposal_id: int, now: datetime | None = None
) -> VoteExport:
    """The whole voting history of a proposal with the keys to re-verify it offline."""
    require_reader(actor)
    proposal = get_proposal(session, proposal_id)
    votes = repo.votes_of(session, proposal.id)
    keys = repo.keys_by_ids(session, sorted({v.key_id for v in votes}))
    audit_act(
        session,
        kind=AuditKind.VOTE,
        action="vote.export",
        actor=actor,
        agreement_id=proposal.agreement_id,
        proposal_id=proposal.id,
        returned=len(votes),
    )
    return VoteExport(
        proposal=proposal_read(session, proposal, now=now or utcnow()),
        keys=[KeyRead.model_validate(k) for k in keys.values()],
        votes=[vote_read(v, keys[v.key_id]) for v in votes],
    )
