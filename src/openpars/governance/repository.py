"""All SQL of the governance feature (including its reads of agreements and accounts)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from openpars.agreements.models import (
    Agreement,
    AgreementEvent,
    AgreementStatus,
    AgreementVersion,
)
from openpars.governance.models import (
    BoardConfig,
    Proposal,
    ProposalStatus,
    RenewalNotice,
    StakeholderKey,
    Vote,
)
from openpars.identity.models import Agency, User, UserRole
from openpars.identity.roles import AgencyKind, Role
from openpars.pages import count_of

# ---- board ---------------------------------------------------------------------------------


def latest_board(session: Session, *, for_update: bool = False) -> BoardConfig | None:
    """The newest board configuration, or None if none was ever written."""
    query = select(BoardConfig).order_by(BoardConfig.version.desc()).limit(1)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def latest_board_id(session: Session) -> int | None:
    """The id of the newest board configuration, read afresh (not from the identity map)."""
    return session.scalar(select(BoardConfig.id).order_by(BoardConfig.version.desc()).limit(1))


def get_board(session: Session, board_id: int) -> BoardConfig | None:
    """One board configuration by id."""
    return session.get(BoardConfig, board_id)


def default_member_agencies(session: Session) -> Sequence[Agency]:
    """Top-level agencies of the default stakeholder kinds: DA, courts, city."""
    kinds = (AgencyKind.DA, AgencyKind.COURT, AgencyKind.CITY)
    return session.scalars(
        select(Agency).where(Agency.kind.in_(kinds), Agency.parent_id.is_(None)).order_by(Agency.id)
    ).all()


def agencies_by_id(session: Session, ids: Sequence[int]) -> dict[int, Agency]:
    """Agencies keyed by id (missing ids are absent)."""
    rows = session.scalars(select(Agency).where(Agency.id.in_(ids))).all()
    return {a.id: a for a in rows}


def voters_of(session: Session, agency_id: int) -> Sequence[User]:
    """Active users of an agency holding the voter role."""
    return session.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(User.agency_id == agency_id, User.is_active, UserRole.role == Role.VOTER)
        .order_by(User.username)
    ).all()


# ---- keys ----------------------------------------------------------------------------------


def get_key(session: Session, key_id: int) -> StakeholderKey | None:
    """One key by id."""
    return session.get(StakeholderKey, key_id)


def key_by_fingerprint(session: Session, fingerprint: str) -> StakeholderKey | None:
    """The key with this fingerprint."""
    return session.scalars(
        select(StakeholderKey).where(StakeholderKey.fingerprint == fingerprint)
    ).one_or_none()


def list_keys(session: Session, *, agency_id: int | None = None) -> Sequence[StakeholderKey]:
    """Keys (revoked included), optionally of one agency, oldest first."""
    query = select(StakeholderKey).order_by(StakeholderKey.id)
    if agency_id is not None:
        query = query.where(StakeholderKey.agency_id == agency_id)
    return session.scalars(query).all()


def keys_by_ids(session: Session, ids: Sequence[int]) -> dict[int, StakeholderKey]:
    """Keys keyed by id."""
    rows = session.scalars(select(StakeholderKey).where(StakeholderKey.id.in_(ids))).all()
    return {k.id: k for k in rows}


# ---- proposals and votes -------------------------------------------------------------------


def get_proposal(
    session: Session, proposal_id: int, *, for_update: bool = False
) -> Proposal | None:
    """One proposal by id; ``for_update`` locks it so concurrent votes are decided in order."""
    query = select(Proposal).where(Proposal.id == proposal_id)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def proposal_action(session: Session, proposal_id: int) -> str | None:
    """A proposal's action, read without loading or locking the proposal."""
    action = session.scalar(select(Proposal.action).where(Proposal.id == proposal_id))
    return action.value if action is not None else None


def list_proposals(
    session: Session,
    *,
    agreement_id: int | None,
    status: ProposalStatus | None,
    offset: int,
    limit: int,
) -> Sequence[Proposal]:
    """Proposals newest first, optionally of one agreement or status."""
    query = _proposals(agreement_id=agreement_id, status=status)
    return session.scalars(query.offset(offset).limit(limit)).all()


def count_proposals(
    session: Session, *, agreement_id: int | None, status: ProposalStatus | None
) -> int:
    """How many proposals ``list_proposals`` pages through."""
    return count_of(session, _proposals(agreement_id=agreement_id, status=status))


def _proposals(*, agreement_id: int | None, status: ProposalStatus | None) -> Select[Any]:
    query = select(Proposal).order_by(Proposal.id.desc())
    if agreement_id is not None:
        query = query.where(Proposal.agreement_id == agreement_id)
    if status is not None:
        query = query.where(Proposal.status == status)
    return query


def live_proposals(
    session: Session, *, agreement_id: int | None = None, floor: bool = False
) -> Sequence[Proposal]:
    """Open and approved-not-yet-applied proposals, oldest first, locked for the decision.

    With ``floor``, only the site floor proposals (those without an agreement).
    """
    query = (
        select(Proposal)
        .where(Proposal.status.in_((ProposalStatus.OPEN, ProposalStatus.APPROVED)))
        .order_by(Proposal.id)
        .with_for_update()
    )
    if agreement_id is not None:
        query = query.where(Proposal.agreement_id == agreement_id)
    if floor:
        query = query.where(Proposal.agreement_id.is_(None))
    return session.scalars(query).all()


def votes_of(session: Session, proposal_id: int) -> Sequence[Vote]:
    """Every cast and change on a proposal, in the order received."""
    return session.scalars(
        select(Vote).where(Vote.proposal_id == proposal_id).order_by(Vote.id)
    ).all()


def votes_of_agreement(session: Session, agreement_id: int) -> Sequence[Vote]:
    """Every vote on any proposal about an agreement."""
    return session.scalars(
        select(Vote)
        .join(Proposal, Proposal.id == Vote.proposal_id)
        .where(Proposal.agreement_id == agreement_id)
        .order_by(Vote.id)
    ).all()


def latest_vote(session: Session, *, proposal_id: int, stakeholder_id: int) -> Vote | None:
    """A stakeholder's latest vote (by signed instant) on a proposal."""
    return session.scalars(
        select(Vote)
        .where(Vote.proposal_id == proposal_id, Vote.stakeholder_id == stakeholder_id)
        .order_by(Vote.at.desc(), Vote.id.desc())
        .limit(1)
    ).first()


def vote_by_signed_hash(session: Session, signed_sha256: str) -> Vote | None:
    """The vote whose signed bytes hash to this value (a replay if found)."""
    return session.scalars(select(Vote).where(Vote.signed_sha256 == signed_sha256)).one_or_none()


# ---- agreements, as governance reads them --------------------------------------------------


def get_agreement(session: Session, agreement_id: int) -> Agreement | None:
    """One agreement by id."""
    return session.get(Agreement, agreement_id)


def current_version(session: Session, agreement: Agreement) -> AgreementVersion | None:
    """The latest version of an agreement: the one proposals bind to."""
    return session.scalars(
        select(AgreementVersion).where(
            AgreementVersion.agreement_id == agreement.id,
            AgreementVersion.version == agreement.current_version,
        )
    ).one_or_none()


def versions_of(session: Session, agreement_id: int) -> Sequence[AgreementVersion]:
    """All versions of an agreement, oldest first."""
    return session.scalars(
        select(AgreementVersion)
        .where(AgreementVersion.agreement_id == agreement_id)
        .order_by(AgreementVersion.version)
    ).all()


def agreement_events(session: Session, agreement_id: int) -> Sequence[AgreementEvent]:
    """Status events of an agreement, oldest first."""
    return session.scalars(
        select(AgreementEvent)
        .where(AgreementEvent.agreement_id == agreement_id)
        .order_by(AgreementEvent.at, AgreementEvent.id)
    ).all()


def expiring_between(session: Session, *, start: datetime, end: datetime) -> Sequence[Agreement]:
    """Agreements in force (active or suspended) whose window ends in [start, end)."""
    return session.scalars(
        select(Agreement)
        .where(
            Agreement.status.in_((AgreementStatus.ACTIVE, AgreementStatus.SUSPENDED)),
            Agreement.in_force_until.is_not(None),
            Agreement.in_force_until >= start,
            Agreement.in_force_until < end,
        )
        .order_by(Agreement.id)
    ).all()


def notice_exists(
    session: Session, *, agreement_id: int, stakeholder_id: int, expires_at: datetime
) -> bool:
    """Whether this stakeholder was already reminded of this expiry."""
    found = session.scalars(
        select(RenewalNotice.id).where(
            RenewalNotice.agreement_id == agreement_id,
            RenewalNotice.stakeholder_id == stakeholder_id,
            RenewalNotice.expires_at == expires_at,
        )
    ).first()
    return found is not None


def notices_of(session: Session, agreement_id: int) -> Sequence[RenewalNotice]:
    """Renewal notices of an agreement, oldest first."""
    return session.scalars(
        select(RenewalNotice)
        .where(RenewalNotice.agreement_id == agreement_id)
        .order_by(RenewalNotice.id)
    ).all()


def list_notices(
    session: Session, *, stakeholder_id: int | None, offset: int, limit: int
) -> Sequence[RenewalNotice]:
    """Renewal notices newest first, optionally for one stakeholder."""
    query = _notices(stakeholder_id)
    return session.scalars(query.offset(offset).limit(limit)).all()


def count_notices(session: Session, *, stakeholder_id: int | None) -> int:
    """How many renewal notices ``list_notices`` pages through."""
    return count_of(session, _notices(stakeholder_id))


def _notices(stakeholder_id: int | None) -> Select[Any]:
    query = select(RenewalNotice).order_by(RenewalNotice.id.desc())
    if stakeholder_id is not None:
        query = query.where(RenewalNotice.stakeholder_id == stakeholder_id)
    return query
