"""Governance tables: board configurations, stakeholder keys, proposals, votes, renewal notices.

Board configurations and votes are append-only: a reconfiguration is a new row, a changed
vote is a new row, so the history an auditor re-verifies is exactly what was decided on.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from openpars.db import Base, JSONDoc, UTCDateTime, append_only_ddl, register_schema_ddl, str_enum
from openpars.governance.quorum import Choice, ProposalAction


class ProposalStatus(StrEnum):
    """Where a proposal stands; only ``open`` accepts votes."""

    OPEN = "open"
    # Quorum reached; waiting for its effective instant.
    APPROVED = "approved"
    # Quorum reached and the decision was applied to the agreement.
    APPLIED = "applied"
    # Deadline passed with a blocking set of no votes.
    REJECTED = "rejected"
    # Deadline passed without quorum, or the approved decision could not be applied.
    FAILED = "failed"
    # The agreement changed (new version) while the proposal was open; votes are kept.
    VOIDED = "voided"


CLOSED_STATUSES = frozenset(
    {
        ProposalStatus.APPLIED,
        ProposalStatus.REJECTED,
        ProposalStatus.FAILED,
        ProposalStatus.VOIDED,
    }
)


class BoardConfig(Base):
    """One version of the board: its stakeholders, the quorum and the solo actions."""

    __tablename__ = "governance_board_configs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    # Agency ids of the stakeholders (n = len(members)).
    members: Mapped[list[int]] = mapped_column(JSONDoc)
    # k: the number of distinct stakeholders whose yes approves a proposal.
    quorum: Mapped[int] = mapped_column(Integer)
    # Actions any single stakeholder may take alone (ProposalAction values).
    solo_actions: Mapped[list[str]] = mapped_column(JSONDoc)
    reminder_lead_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(500))


class StakeholderKey(Base):
    """A registered Ed25519 public key of a stakeholder; the private key never reaches us."""

    __tablename__ = "governance_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    # Base64 of the raw 32-byte key.
    public_key: Mapped[str] = mapped_column(String(44))
    # SHA-256 hex of the raw key.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    revoke_reason: Mapped[str | None] = mapped_column(String(500))


class Proposal(Base):
    """A request to the board about one exact agreement version or site floor, under its board.

    A site proposal (action ``floor``, ``board`` or ``witness``) has no agreement:
    ``content_hash`` names the proposed floor, board or witness change, ``floor_content`` holds
    that document and ``floor_base_hash`` the hash of the floor, board or witness set in force
    when it opened (the columns keep their first use's name).
    """

    __tablename__ = "governance_proposals"
    __table_args__ = (
        Index("ix_governance_proposals_status_deadline", "status", "deadline"),
        # A floor, board or witness proposal has no agreement and every other proposal has one.
        CheckConstraint(
            "(action IN ('floor', 'board', 'witness')) = (agreement_id IS NULL)", name="subject"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"), index=True)
    agreement_version: Mapped[int | None] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    floor_content: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    floor_base_hash: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[ProposalAction] = mapped_column(str_enum(ProposalAction, 20))
    summary: Mapped[str] = mapped_column(Text)
    new_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the action should take effect; None means as soon as the quorum is reached.
    effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    board_config_id: Mapped[int] = mapped_column(ForeignKey("governance_board_configs.id"))
    status: Mapped[ProposalStatus] = mapped_column(str_enum(ProposalStatus, 20))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_by: Mapped[str] = mapped_column(String(100))
    opened_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # When the quorum was reached (the deciding vote's signed instant) or the deadline passed.
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The instant the action takes (or took) effect: max(effective_at, decided_at).
    effective_instant: Mapped[datetime | None] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When it stopped being live: applied, rejected, failed or voided.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_reason: Mapped[str | None] = mapped_column(String(500))
    # The tally when the proposal was decided: {"yes": [...], "no": [...], "abstain": [...]}.
    final_tally: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)


class Vote(Base):
    """One cast or change of a stakeholder's vote, with the exact bytes it signed. Never updated."""

    __tablename__ = "governance_votes"
    __table_args__ = (
        Index("ix_governance_votes_proposal_stakeholder", "proposal_id", "stakeholder_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id"))
    stakeholder_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    voter_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    voter_username: Mapped[str] = mapped_column(String(100))
    choice: Mapped[Choice] = mapped_column(str_enum(Choice, 10))
    rationale: Mapped[str] = mapped_column(Text)
    # The signed instant (from the vote) and when openpars received it.
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[int] = mapped_column(ForeignKey("governance_keys.id"))
    signed: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    # SHA-256 of the signed bytes: the same signed vote is accepted once (replay).
    signed_sha256: Mapped[str] = mapped_column(String(64), unique=True)


class RenewalNotice(Base):
    """A notice to one stakeholder that an agreement expires soon, with the evidence link."""

    __tablename__ = "governance_renewal_notices"
    __table_args__ = (UniqueConstraint("agreement_id", "stakeholder_id", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    stakeholder_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    evidence_url: Mapped[str] = mapped_column(String(200))


class KeyNotice(Base):
    """A notice to one stakeholder that another stakeholder registered or revoked a voting key."""

    __tablename__ = "governance_key_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The stakeholder told (every board member other than the key's own).
    stakeholder_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("governance_keys.id"))
    key_stakeholder_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    action: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_by: Mapped[str] = mapped_column(String(100))


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change a vote or a board version after it was written."""


def _refuse_change(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    raise AppendOnlyError(
        f"{type(target).__tablename__} rows are append-only; write a new row instead"
    )


class ProposalReport(Base):
    """The oversight renewal report attached to a renewal proposal when it opened.

    ``content`` is the report's canonical JSON exactly as hashed (``sha256``): what every voter
    is shown, however the log or the review queue move on afterwards. Never changed.
    """

    __tablename__ = "governance_proposal_reports"

    proposal_id: Mapped[int] = mapped_column(
        ForeignKey("governance_proposals.id"), primary_key=True, autoincrement=False
    )
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProposalReplay(Base):
    """A what-if replay of an agreement proposal's version (oversight.whatif), kept with it.

    Computed when the proposal opens and again whenever an oversight user or voter asks
    ("replay again"): each run is a new row, the latest is the one shown, the earlier ones stay.
    ``status`` is ``done`` (``summary`` holds the report without its per-query rows, which are
    in ``governance_proposal_replay_queries``) or ``failed`` (``error`` says why). ``sha256``
    hashes the canonical JSON of the whole replay (every row); never changed.
    """

    __tablename__ = "governance_proposal_replays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id"), index=True)
    months: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    computed_by: Mapped[str] = mapped_column(String(100))
    computed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    sha256: Mapped[str | None] = mapped_column(String(64))


class ProposalReplayQuery(Base):
    """One replayed query of a stored replay, in the replay's order (``position`` from 0)."""

    __tablename__ = "governance_proposal_replay_queries"

    replay_id: Mapped[int] = mapped_column(
        ForeignKey("governance_proposal_replays.id"), primary_key=True, autoincrement=False
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    content: Mapped[dict[str, Any]] = mapped_column(JSONDoc)


for _model in (Vote, BoardConfig, KeyNotice, ProposalReport, ProposalReplay, ProposalReplayQuery):
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)
# A proposal only moves through its statuses (see proposal_guard_ddl); it is never deleted.
event.listen(Proposal, "before_delete", _refuse_change)

# The database refuses it too, whatever code runs.
register_schema_ddl(
    lambda dialect: append_only_ddl(
        dialect,
        {
            table: ("UPDATE", "DELETE")
            for table in (
                Vote.__tablename__,
                BoardConfig.__tablename__,
                KeyNotice.__tablename__,
                ProposalReport.__tablename__,
                ProposalReplay.__tablename__,
                ProposalReplayQuery.__tablename__,
            )
        },
        function="openpars_refuse_governance_change",
    )
)

# What a vote binds, and everything else a proposal was opened with: never changed.
PROPOSAL_FIXED_COLUMNS = (
    "id",
    "agreement_id",
    "agreement_version",
    "content_hash",
    "floor_content",
    "floor_base_hash",
    "action",
    "summary",
    "new_expires_at",
    "effective_at",
    "deadline",
    "board_config_id",
    "opened_at",
    "opened_by",
    "opened_by_user_id",
)
# What an approval fixed: an approved proposal may still be applied, fail or be voided, but its
# decision instant, effective instant and tally stay.
PROPOSAL_DECIDED_COLUMNS = ("decided_at", "effective_instant", "final_tally")


def _proposal_refusal(differs: str) -> str:
    """The condition under which an UPDATE of a proposal is refused (NEW and OLD rows)."""
    fixed = " OR ".join(f"NEW.{c} {differs} OLD.{c}" for c in PROPOSAL_FIXED_COLUMNS)
    decided = " OR ".join(f"NEW.{c} {differs} OLD.{c}" for c in PROPOSAL_DECIDED_COLUMNS)
    return (
        f"({fixed}) OR OLD.status NOT IN ('open', 'approved') OR NEW.status = OLD.status "
        f"OR NEW.status = 'open' OR (OLD.status = 'approved' AND ({decided}))"
    )


def proposal_guard_ddl(dialect: str) -> list[str]:
    """Triggers: a proposal is never deleted, and only moves from open or approved onwards.

    The columns a signed vote binds (and the rest of what the proposal was opened with) never
    change; only the status and its bookkeeping columns do, once per transition.
    """
    table = Proposal.__tablename__
    message = f"{table} is append-only: only a status transition from open or approved is allowed"
    statements = append_only_ddl(
        dialect, {table: ("DELETE",)}, function="openpars_refuse_proposal_delete"
    )
    if dialect == "sqlite":
        return [
            *statements,
            f"CREATE TRIGGER IF NOT EXISTS {table}_guard_update BEFORE UPDATE ON {table} "
            f"WHEN {_proposal_refusal('IS NOT')} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
        ]
    return [
        *statements,
        "CREATE OR REPLACE FUNCTION openpars_guard_proposal_update() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN IF {_proposal_refusal('IS DISTINCT FROM')} THEN "
        f"RAISE EXCEPTION USING MESSAGE = '{message}'; END IF; RETURN NEW; END $$",
        f"CREATE OR REPLACE TRIGGER {table}_guard_update BEFORE UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION openpars_guard_proposal_update()",
    ]


register_schema_ddl(proposal_guard_ddl)
