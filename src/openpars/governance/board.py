"""The board of stakeholders: its versioned configuration, designated voters and public keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.agreements.schemas import sha256_hex
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput, NotFound
from openpars.governance import key_notices, signing
from openpars.governance import repository as repo
from openpars.governance.models import BoardConfig, StakeholderKey
from openpars.governance.quorum import NEVER_SOLO, ProposalAction, QuorumRule
from openpars.governance.schemas import (
    BoardRead,
    BoardUpdate,
    KeyCreate,
    KeyRead,
    StakeholderRead,
)
from openpars.identity import duties
from openpars.identity.principal import SYSTEM, Principal
from openpars.identity.roles import AgencyKind, Permission, Role

DEFAULT_QUORUM = 2
DEFAULT_SOLO = (ProposalAction.SUSPEND,)
DEFAULT_LEAD_DAYS = 60

# Who may read governance records: managers, stakeholders' voters, auditors.
READ_PERMISSIONS = (
    Permission.AGREEMENT_MANAGE,
    Permission.AGREEMENT_SUSPEND,
    Permission.VOTE,
    Permission.AUDIT_READ,
    Permission.KEY_MANAGE,
)


def audit_act(
    session: Session,
    *,
    kind: AuditKind,
    action: str,
    actor: Principal,
    agreement_id: int | None = None,
    **params: Any,
) -> None:
    """The one audit entry of a governance act or read."""
    append(
        session,
        AuditEvent(
            kind=kind,
            action=action,
            user_id=actor.user_id,
            username=actor.username,
            agency_id=actor.agency_id,
            source_ip=actor.source_ip,
            agreement_id=agreement_id,
            params=params,
        ),
    )


def require_reader(actor: Principal) -> None:
    """Internal managers, voters and auditors may read governance records; no one else."""
    if actor.is_external or not any(actor.can(p) for p in READ_PERMISSIONS):
        raise Forbidden(
            f"your account ({actor.username}) may not read governance records; it needs one of "
            + ", ".join(p.value for p in READ_PERMISSIONS),
            code="permission_denied",
        )


# ---- configuration -------------------------------------------------------------------------


def current_board(session: Session, *, now: datetime | None = None) -> BoardConfig:
    """The board in force; the first call sets the default (DA, courts, city; 2 of n), logged."""
    board = repo.latest_board(session)
    if board is not None:
        return board
    members = [a.id for a in repo.default_member_agencies(session)]
    if not members:
        raise Conflict(
            "no board is configured and there are no DA, court or city agencies to form the "
            "default one; register them or set the first board with 'openpars board init'",
            field="members",
        )
    document = board_document(
        members=members,
        quorum=min(DEFAULT_QUORUM, len(members)),
        solo_actions=[a.value for a in DEFAULT_SOLO],
        reminder_lead_days=DEFAULT_LEAD_DAYS,
    )
    return _install(
        session,
        document,
        actor=SYSTEM,
        created_by="default",
        note="default board: the DA, the courts and the city",
        action="board.bootstrap",
        at=now or utcnow(),
    )


def board_document(
    *, members: list[int], quorum: int, solo_actions: list[str], reminder_lead_days: int
) -> dict[str, Any]:
    """The part of a board that decides (what a board proposal's voters sign the hash of)."""
    return {
        "members": list(members),
        "quorum": quorum,
        "solo_actions": sorted(set(solo_actions)),
        "reminder_lead_days": reminder_lead_days,
    }


def document_of(board: BoardConfig) -> dict[str, Any]:
    """A stored board version's deciding document."""
    return board_document(
        members=list(board.members),
        quorum=board.quorum,
        solo_actions=list(board.solo_actions),
        reminder_lead_days=board.reminder_lead_days,
    )


def board_hash(document: dict[str, Any]) -> str:
    """The content hash of a board document, as a board proposal names it."""
    return sha256_hex(document)


def validated_document(session: Session, data: BoardUpdate) -> dict[str, Any]:
    """A board update checked (members, solo actions, quorum), as its deciding document."""
    if len(set(data.members)) != len(data.members):
        raise InvalidInput("members: an agency is listed twice", field="members")
    agencies = repo.agencies_by_id(session, data.members)
    for agency_id in data.members:
        agency = agencies.get(agency_id)
        if agency is None or agency.kind is AgencyKind.EXTERNAL or agency.parent_id is not None:
            raise InvalidInput(
                f"members: agency {agency_id} is not a top-level data owner of this site "
                "(external agencies and sub-units cannot sit on the board)",
                field="members",
            )
    never = sorted(a.value for a in set(data.solo_actions) & NEVER_SOLO)
    if never:
        raise InvalidInput(
            f"solo_actions: '{never[0]}' always needs the board's quorum; a change to the site "
            "floor or to the board, or lifting a suspension another stakeholder imposed, is never "
            "one stakeholder's alone",
            field="solo_actions",
        )
    if data.quorum > len(data.members):
        raise InvalidInput(
            f"quorum: {data.quorum} of {len(data.members)} stakeholders is impossible; "
            f"it must be between 1 and {len(data.members)}",
            field="quorum",
        )
    return board_document(
        members=list(data.members),
        quorum=data.quorum,
        solo_actions=[a.value for a in data.solo_actions],
        reminder_lead_days=data.reminder_lead_days,
    )


def _install(
    session: Session,
    document: dict[str, Any],
    *,
    actor: Principal,
    created_by: str,
    note: str | None,
    action: str,
    at: datetime,
) -> BoardConfig:
    previous = repo.latest_board(session)
    board = BoardConfig(
        version=previous.version + 1 if previous is not None else 1,
        members=list(document["members"]),
        quorum=document["quorum"],
        solo_actions=list(document["solo_actions"]),
        reminder_lead_days=document["reminder_lead_days"],
        created_at=at,
        created_by=created_by,
        note=note,
    )
    session.add(board)
    session.flush()
    audit_act(
        session,
        kind=AuditKind.CONFIG,
        action=action,
        actor=actor,
        version=board.version,
        previous_version=previous.version if previous is not None else None,
        created_by=created_by,
        board_hash=board_hash(document),
        **document,
    )
    return board


def bootstrap(
    session: Session, *, actor: Principal, data: BoardUpdate, now: datetime | None = None
) -> BoardConfig:
    """Set the first board, once, recorded in the log; after that only the board changes it."""
    actor.require(Permission.AGREEMENT_MANAGE)
    existing = repo.latest_board(session)
    if existing is not None:
        raise Conflict(
            f"board version {existing.version} is in force; only the board itself can change "
            "it: open a proposal with action 'board' ('openpars board propose' or POST "
            "/api/v1/proposals) and let its quorum decide",
            code="board_in_force",
            field="members",
        )
    document = validated_document(session, data)
    return _install(
        session,
        document,
        actor=actor,
        created_by=actor.username,
        note=data.note,
        action="board.bootstrap",
        at=now or utcnow(),
    )


def install_decided(
    session: Session,
    document: dict[str, Any],
    *,
    proposal_id: int,
    board_id: int,
    summary: str,
    at: datetime,
) -> BoardConfig:
    """Put an approved board proposal's board in force (its audit entry names the proposal)."""
    # Two board proposals approved at once must not both apply: the first to lock the board in
    # force wins; the other then sees a newer board (a fresh read after the lock) and fails.
    repo.latest_board(session, for_update=True)
    if repo.latest_board_id(session) != board_id:
        raise Conflict(
            f"proposal {proposal_id} was decided under a board that is no longer in force",
            code="board_changed",
            field="board",
        )
    return _install(
        session,
        document,
        actor=SYSTEM,
        created_by=f"proposal {proposal_id}",
        note=f"board decision, proposal {proposal_id}: {summary}"[:500],
        action="board.change",
        at=at,
    )


def rule_of(board: BoardConfig) -> QuorumRule:
    """The quorum rule a board configuration states."""
    return QuorumRule(
        required=board.quorum,
        members=frozenset(board.members),
        solo=frozenset(ProposalAction(a) for a in board.solo_actions),
    )


def board_read(session: Session, board: BoardConfig) -> BoardRead:
    """A board configuration with each stakeholder's voters and unrevoked keys."""
    agencies = repo.agencies_by_id(session, board.members)
    members = []
    for agency_id in board.members:
        agency = agencies[agency_id]
        keys = repo.list_keys(session, agency_id=agency_id)
        members.append(
            StakeholderRead(
                agency_id=agency_id,
                name=agency.name,
                kind=agency.kind.value,
                voters=[u.username for u in repo.voters_of(session, agency_id)],
                key_fingerprints=[k.fingerprint for k in keys if k.revoked_at is None],
            )
        )
    return BoardRead(
        version=board.version,
        quorum=board.quorum,
        size=len(board.members),
        members=members,
        solo_actions=[ProposalAction(a) for a in board.solo_actions],
        reminder_lead_days=board.reminder_lead_days,
        created_at=board.created_at,
        created_by=board.created_by,
        note=board.note,
    )


def show_board(session: Session, *, actor: Principal) -> BoardRead:
    """The board in force, audited as a configuration read."""
    require_reader(actor)
    board = current_board(session)
    audit_act(
        session,
        kind=AuditKind.CONFIG,
        action="board.read",
        actor=actor,
        board_version=board.version,
    )
    return board_read(session, board)


def stakeholder_of(actor: Principal, board: BoardConfig) -> int:
    """The stakeholder a designated voter votes for, or Forbidden naming what is missing."""
    if actor.user_id is None or Role.VOTER not in actor.roles:
        raise Forbidden(
            f"{actor.username} is not a designated voter: the account needs the role 'voter'",
            code="not_designated_voter",
            field="voter",
        )
    if actor.agency_id not in board.members:
        raise Forbidden(
            f"{actor.username} is a voter of agency {actor.agency_id}, which is not a "
            f"stakeholder on board version {board.version} (members {board.members})",
            code="not_designated_voter",
            field="voter",
        )
    return actor.agency_id


# ---- keys ----------------------------------------------------------------------------------


def _require_key_manager(session: Session, actor: Principal, agency_id: int) -> None:
    agency = repo.agencies_by_id(session, [agency_id]).get(agency_id)
    if agency is None or agency.kind is AgencyKind.EXTERNAL:
        raise InvalidInput(
            f"agency_id: agency {agency_id} is not a data owner of this site", field="agency_id"
        )
    # Separation of duties: a key is bound to one stakeholder and only its own administrator
    # registers or revokes it; site administrators and voters never can.
    duties.require_key_authority(session, actor, agency_id)


def register_key(
    session: Session, *, actor: Principal, data: KeyCreate, now: datetime | None = None
) -> StakeholderKey:
    """Register a stakeholder's Ed25519 public key (the private key stays with the stakeholder)."""
    agency_id = data.agency_id if data.agency_id is not None else actor.agency_id
    if agency_id is None:
        raise InvalidInput("agency_id: say whose key this is", field="agency_id")
    _require_key_manager(session, actor, agency_id)
    actor.require_fresh()
    raw = signing.parse_public_key(data.public_key)
    fingerprint = signing.fingerprint(raw)
    if repo.key_by_fingerprint(session, fingerprint) is not None:
        raise Conflict(
            f"public_key: key {fingerprint[:16]}... is already registered", field="public_key"
        )
    key = StakeholderKey(
        agency_id=agency_id,
        public_key=signing.encode_b64(raw),
        fingerprint=fingerprint,
        label=data.label,
        created_at=now or utcnow(),
        created_by=actor.username,
    )
    session.add(key)
    session.flush()
    audit_act(
        session,
        kind=AuditKind.KEY,
        action="key.register",
        actor=actor,
        key_id=key.id,
        stakeholder=agency_id,
        fingerprint=fingerprint,
        label=data.label,
    )
    key_notices.notify_others(session, key=key, action="key.register", actor=actor)
    return key


def revoke_key(
    session: Session, *, actor: Principal, key_id: int, reason: str, now: datetime | None = None
) -> StakeholderKey:
    """Revoke a key at once: later votes signed with it are refused; earlier ones stay valid."""
    key = repo.get_key(session, key_id)
    if key is None:
        raise NotFound(f"key {key_id} does not exist", field="key_id")
    _require_key_manager(session, actor, key.agency_id)
    actor.require_fresh()
    if key.revoked_at is not None:
        raise Conflict(
            f"key {key_id} was already revoked at {key.revoked_at.isoformat()}", field="key_id"
        )
    key.revoked_at = now or utcnow()
    key.revoked_by = actor.username
    key.revoke_reason = reason
    session.flush()
    audit_act(
        session,
        kind=AuditKind.KEY,
        action="key.revoke",
        actor=actor,
        key_id=key.id,
        stakeholder=key.agency_id,
        fingerprint=key.fingerprint,
        reason=reason,
    )
    key_notices.notify_others(session, key=key, action="key.revoke", actor=actor)
    return key


def list_keys(session: Session, *, actor: Principal, agency_id: int | None = None) -> list[KeyRead]:
    """Registered keys, revoked ones included, audited as a key read."""
    require_reader(actor)
    keys = [KeyRead.model_validate(k) for k in repo.list_keys(session, agency_id=agency_id)]
    audit_act(
        session,
        kind=AuditKind.KEY,
        action="key.list",
        actor=actor,
        of_agency=agency_id,
        returned=len(keys),
    )
    return keys
