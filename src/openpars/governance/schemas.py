"""Pydantic shapes of governance: the board, keys, proposals, signed votes, the timeline."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from openpars.governance.models import ProposalStatus
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.signing import VOTE_FORMAT, VOTE_FORMAT_V1
from openpars.ranges import INT32_MAX, RowId
from openpars.text import Document, Line, Prose

EXPORT_FORMAT = "openpars-vote-export/v1"
RATIONALE_MAX = 4000


class StakeholderRead(BaseModel):
    """One stakeholder of the board: its agency, designated voters and usable keys."""

    agency_id: int
    name: str
    kind: str
    voters: list[str]
    key_fingerprints: list[str]


class BoardRead(BaseModel):
    """The board configuration in force."""

    version: int
    quorum: int
    size: int
    members: list[StakeholderRead]
    solo_actions: list[ProposalAction]
    reminder_lead_days: int
    created_at: datetime
    created_by: str
    note: str | None


class BoardUpdate(BaseModel):
    """A board configuration: the first (bootstrap) or the one a board proposal puts in force."""

    model_config = ConfigDict(extra="forbid")

    members: list[RowId] = Field(min_length=1, max_length=50, description="Agency ids.")
    quorum: int = Field(ge=1, le=50, description="k: distinct stakeholders whose yes approves.")
    solo_actions: list[ProposalAction] = Field(default=[ProposalAction.SUSPEND])
    reminder_lead_days: int = Field(default=60, ge=0, le=366)
    note: Prose | None = Field(default=None, max_length=500)


class WitnessChange(BaseModel):
    """One change to the audit-log witnesses: add a key, or remove a witness by name."""

    model_config = ConfigDict(extra="forbid")

    add: Line | None = Field(
        default=None, max_length=300, description="A C2SP cosignature/v1 verifier key to add."
    )
    remove: Line | None = Field(
        default=None, max_length=200, description="The name of an active witness to remove."
    )


class WitnessProposalCreate(WitnessChange):
    """A proposal to add or remove one witness (``POST /audit/witnesses/proposals``)."""

    summary: Prose = Field(min_length=1, max_length=RATIONALE_MAX)
    deadline: AwareDatetime
    effective_at: AwareDatetime | None = Field(
        default=None, description="When the change is made; default: once approved."
    )
    content_hash: Line | None = Field(
        default=None, description="The change you reviewed; refused if it hashes otherwise."
    )

    def proposal(self) -> ProposalCreate:
        """The general proposal this stands for."""
        return ProposalCreate(
            action=ProposalAction.WITNESS,
            witness=WitnessChange(add=self.add, remove=self.remove),
            summary=self.summary,
            deadline=self.deadline,
            effective_at=self.effective_at,
            content_hash=self.content_hash,
        )


class KeyCreate(BaseModel):
    """A stakeholder public key to register (PEM or base64 of the raw 32 bytes)."""

    model_config = ConfigDict(extra="forbid")

    public_key: Prose = Field(min_length=40, max_length=1000)
    label: Line = Field(min_length=1, max_length=100)
    agency_id: RowId | None = Field(default=None, description="Defaults to your own agency.")


class KeyRevoke(BaseModel):
    """Why a key is revoked."""

    model_config = ConfigDict(extra="forbid")

    reason: Prose = Field(min_length=1, max_length=500)


class KeyRead(BaseModel):
    """A registered public key; revoked keys stay listed so old votes stay verifiable."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    agency_id: int
    fingerprint: str
    public_key: str
    label: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None


class ProposalCreate(BaseModel):
    """A request to the board about one agreement version, or (action ``floor``) the site floor."""

    model_config = ConfigDict(extra="forbid")

    agreement_id: RowId | None = Field(default=None, description="Every action but 'floor'.")
    floor: Document | None = Field(
        default=None, description="Action 'floor' only: the whole proposed site floor document."
    )
    board: BoardUpdate | None = Field(
        default=None, description="Action 'board' only: the whole proposed board."
    )
    witness: WitnessChange | None = Field(
        default=None, description="Action 'witness' only: the one witness to add or remove."
    )
    action: ProposalAction
    summary: Prose = Field(min_length=1, max_length=RATIONALE_MAX)
    deadline: AwareDatetime
    content_hash: Line | None = Field(
        default=None, description="The version you reviewed; refused if it is no longer current."
    )
    effective_at: AwareDatetime | None = Field(
        default=None, description="When the action takes effect; default: once approved."
    )
    new_expires_at: AwareDatetime | None = Field(default=None, description="Renewals only.")


class ProposalReportRef(BaseModel):
    """The oversight renewal report attached to a renewal proposal when it opened."""

    sha256: str = Field(
        description="SHA-256 of the report's canonical JSON, recorded when the proposal opened "
        "(also in the proposal.open audit entry): compare it with what you read"
    )
    start: date = Field(description="first day of the period reported (the current term)")
    end: date = Field(description="last day: the day the proposal opened (UTC)")
    path: str = Field(description="GET this (?format=html|pdf|json) to read the report")


class TallyRead(BaseModel):
    """Stakeholder agency ids by their standing vote, and yes votes still needed."""

    yes: list[int]
    no: list[int]
    abstain: list[int]
    needed: int


class ProposalRead(BaseModel):
    """A proposal, the rule it is decided by, the standing tally and what to sign."""

    id: int
    agreement_id: int | None
    agreement_version: int | None
    content_hash: str
    floor: dict[str, Any] | None = Field(
        default=None, description="A floor proposal's proposed floor (its content_hash)."
    )
    board: dict[str, Any] | None = Field(
        default=None, description="A board proposal's proposed board (its content_hash)."
    )
    witness: dict[str, Any] | None = Field(
        default=None, description="A witness proposal's change (its content_hash)."
    )
    floor_base_hash: str | None = Field(
        default=None,
        description="The floor (or, for a board or witness proposal, the board or the witness "
        "set) in force when it opened; if that changes it is void.",
    )
    action: ProposalAction
    summary: str
    deadline: datetime
    effective_at: datetime | None
    new_expires_at: datetime | None
    status: ProposalStatus
    opened_at: datetime
    opened_by: str
    decided_at: datetime | None
    effective_instant: datetime | None
    applied_at: datetime | None
    closed_reason: str | None
    board_version: int
    board_members: list[int]
    required_yes: int
    tally: TallyRead
    what_if: str | None = Field(
        default=None,
        description="An agreement proposal's what-if replay, kept with it (computed when it "
        "opened, or when last replayed again): the external queries of the last months run "
        "again under the proposed version (oversight role and voters; docs/oversight.md).",
    )
    report: ProposalReportRef | None = Field(
        default=None,
        description="renewals: the oversight report of the agreement's current term, as voters "
        "see it (docs/oversight.md, Renewal report)",
    )


class SignedVote(BaseModel):
    """A vote as the stakeholder signed it offline (``openpars vote sign`` writes this).

    Every field but ``rationale`` and ``signature`` is a line of the signed ``openpars-vote/v2``
    statement (see docs/governance.md); ``effective_at`` and ``new_expires_at`` are null where
    the proposal has none (``none`` in the signed bytes).
    """

    model_config = ConfigDict(extra="forbid")

    format: Line = Field(default=VOTE_FORMAT, max_length=40)
    proposal_id: RowId
    agreement_id: Annotated[int, Ge(0), Le(INT32_MAX)] = Field(
        description="The proposal's agreement; 0 for a site floor or board proposal."
    )
    version_hash: Line = Field(max_length=200)
    action: ProposalAction
    effective_at: Line | None = Field(max_length=64)
    new_expires_at: Line | None = Field(max_length=64)
    stakeholder_id: RowId = Field(description="The stakeholder (agency id) the vote speaks for.")
    key_fingerprint: Line = Field(max_length=200)
    choice: Choice
    # The limit is checked by the service, so the CLI and the API refuse it the same way.
    rationale: Prose = Field(max_length=100_000)
    at: Line = Field(max_length=64)
    signature: Line = Field(max_length=400)

    @field_validator("format")
    @classmethod
    def _current_format(cls, value: str) -> str:
        if value == VOTE_FORMAT_V1:
            raise ValueError(
                f"{VOTE_FORMAT_V1} votes are no longer accepted: they do not bind the action, "
                "its times, the stakeholder or the key; re-sign with the current "
                f"'openpars vote sign', which writes {VOTE_FORMAT}"
            )
        if value != VOTE_FORMAT:
            raise ValueError(f"'{value}' is not a vote format; sign with 'openpars vote sign'")
        return value


class VoteRead(BaseModel):
    """One cast or change of a vote with the exact signed bytes and signature (base64)."""

    id: int
    proposal_id: int
    stakeholder_id: int
    voter: str
    choice: Choice
    rationale: str
    at: datetime
    recorded_at: datetime
    key_fingerprint: str
    signed: str
    signature: str


class VoteReceipt(BaseModel):
    """What a vote submission returns: the recorded vote and where the proposal now stands."""

    vote: VoteRead
    proposal: ProposalRead


class VoteExport(BaseModel):
    """Everything needed to re-verify a proposal's voting history offline."""

    format: Literal["openpars-vote-export/v1"] = "openpars-vote-export/v1"
    proposal: ProposalRead
    keys: list[KeyRead]
    votes: list[VoteRead]


class TimelineEntry(BaseModel):
    """One moment in an agreement's governance history."""

    at: datetime
    kind: str
    summary: str
    version: int | None = None
    content_hash: str | None = None
    proposal_id: int | None = None
    stakeholder_id: int | None = None
    by: str | None = None
    choice: Choice | None = None
    rationale: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class RenewalNoticeRead(BaseModel):
    """A reminder to one stakeholder that an agreement expires soon."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    agreement_id: int
    stakeholder_id: int
    expires_at: datetime
    opened_at: datetime
    evidence_url: str


class KeyNoticeRead(BaseModel):
    """A notice to one stakeholder that another registered or revoked a voting key."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    stakeholder_id: int
    key_id: int
    key_stakeholder_id: int
    action: str
    fingerprint: str
    opened_at: datetime
    opened_by: str


class GovernanceEvent(BaseModel):
    """Something a governance step did (decided, applied, voided, reminded)."""

    kind: str
    at: datetime
    # None for a site floor proposal.
    agreement_id: int | None
    proposal_id: int | None = None
    detail: str = ""
