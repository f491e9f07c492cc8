"""All SQL of the agreements feature."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import Exists, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from openpars.agreements.models import (
    Agreement,
    AgreementEvent,
    AgreementStatus,
    AgreementVersion,
    GovernanceGeneration,
    Resumption,
    SiteFloorVersion,
    Suspension,
    SuspensionTarget,
)
from openpars.identity.models import Agency, User
from openpars.prepared import AnySelect, Pending, Rows, param, prepared


def get_agreement(
    session: Session, agreement_id: int, *, for_update: bool = False
) -> Agreement | None:
    """One agreement by id; ``for_update`` locks the row on PostgreSQL for a status change
    (after the governance generation's row, ``hold_generation``)."""
    if for_update:
        hold_generation(session)
    return session.get(Agreement, agreement_id, with_for_update=for_update or None)


def hold_generation(session: Session) -> None:
    """PostgreSQL: lock the governance generation's row (``models.GovernanceGeneration``) for
    the rest of the transaction, before any agreement's or grantee's row. Every change of the
    governed tables locks it too, before its own rows (a BEFORE trigger), so governance writers
    take their locks in one order and never deadlock: one holding an agreement's row while
    waiting for the generation, the other the reverse. Reads never lock it. SQLite has one
    writer."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        select(GovernanceGeneration.id).where(GovernanceGeneration.id == 1).with_for_update()
    )


def get_agreement_by_name(session: Session, name: str) -> Agreement | None:
    """One agreement by its unique name."""
    return session.scalars(select(Agreement).where(Agreement.name == name)).one_or_none()


def get_version(session: Session, agreement_id: int, version: int) -> AgreementVersion | None:
    """One version of an agreement."""
    return session.scalars(
        select(AgreementVersion).where(
            AgreementVersion.agreement_id == agreement_id, AgreementVersion.version == version
        )
    ).one_or_none()


def list_versions(session: Session, agreement_id: int) -> Sequence[AgreementVersion]:
    """Every version of an agreement, oldest first."""
    return session.scalars(
        select(AgreementVersion)
        .where(AgreementVersion.agreement_id == agreement_id)
        .order_by(AgreementVersion.version)
    ).all()


def list_agreements(
    session: Session,
    *,
    offset: int,
    limit: int,
    status: AgreementStatus | None = None,
    grantee_agency_id: int | None = None,
) -> tuple[Sequence[Agreement], int]:
    """A page of agreements ordered by id, and the total matching."""
    query = select(Agreement)
    if status is not None:
        query = query.where(Agreement.status == status)
    if grantee_agency_id is not None:
        query = query.where(Agreement.grantee_agency_id == grantee_agency_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Agreement.id).offset(offset).limit(limit)).all()
    return rows, total


def _suspension_in_force(at: Any, agreement_id: Any, unit_ids: Any, user_id: Any) -> Exists:
    """EXISTS: a suspension of the agreement, a unit or the account, in force at ``at``."""
    targets = or_(
        and_(
            Suspension.target_kind == SuspensionTarget.AGREEMENT,
            Suspension.target_id == agreement_id,
        ),
        and_(Suspension.target_kind == SuspensionTarget.UNIT, Suspension.target_id.in_(unit_ids)),
        and_(Suspension.target_kind == SuspensionTarget.ACCOUNT, Suspension.target_id == user_id),
    )
    lifted = exists().where(Resumption.suspension_id == Suspension.id, Resumption.resumed_at <= at)
    return exists().where(Suspension.suspended_at <= at, targets, ~lifted)


class InForce(NamedTuple):
    """The in-force row the enforcement point needs, without loading the document."""

    agreement_id: int
    version: int
    content_hash: str
    in_force_from: datetime
    in_force_until: datetime
    mask_key: bytes


def active_versions(grantee: Any, *extra: Any) -> AnySelect:
    """A grantee's active agreements with their active version, the columns ``InForce`` holds
    (and ``extra`` after them): what the in-force lookup filters by instant and suspensions,
    and what ``agreements.in_force`` keeps."""
    return (
        select(
            Agreement.id,
            AgreementVersion.version,
            AgreementVersion.content_hash,
            Agreement.in_force_from,
            Agreement.in_force_until,
            AgreementVersion.mask_key,
            *(e for e in extra if e is not None),
        )
        .join(
            AgreementVersion,
            and_(
                AgreementVersion.agreement_id == Agreement.id,
                AgreementVersion.version == Agreement.active_version,
            ),
        )
        .where(Agreement.grantee_agency_id == grantee, Agreement.status == AgreementStatus.ACTIVE)
    )


def _in_force_stmt(units: int, with_floor: bool) -> AnySelect:
    """The in-force lookup for a caller whose unit path has `units` entries; `with_floor`: each
    row carries the newest floor's content hash too (``floor_hash``)."""
    at = param("at", Agreement.in_force_from)
    unit_ids = [param(f"unit_{n}", Suspension.target_id) for n in range(units)]
    floor = (
        select(SiteFloorVersion.content_hash)
        .order_by(SiteFloorVersion.version.desc())
        .limit(1)
        .scalar_subquery()
        .label("floor_hash")
    )
    return (
        active_versions(
            param("grantee", Agreement.grantee_agency_id), floor if with_floor else None
        )
        .where(
            Agreement.in_force_from <= at,
            Agreement.in_force_until > at,
            ~_suspension_in_force(
                at, Agreement.id, unit_ids, param("user_id", Suspension.target_id)
            ),
        )
        .order_by(Agreement.id)
        .limit(1)
    )


def share_lock_agreements_of(session: Session, grantee_agency_id: int) -> None:
    """Hold a share lock on the grantee's agreements until the transaction ends (PostgreSQL).

    A kill switch or any decision takes the row FOR UPDATE, so it waits for reads in flight,
    and a read that arrives while one is under way waits for it; the next statement then runs
    on a fresh snapshot (READ COMMITTED) and sees the change. SQLite's single writer already
    serialises the two. Sent at the driver level, its result never read: inside a pipeline it
    travels with the in-force lookup that follows it.
    """
    if session.get_bind().dialect.name == "sqlite":
        return
    # Through a function that runs as the tables' owner: FOR SHARE needs UPDATE privilege, which
    # the external database role an external read runs as must not have (access/rls.py).
    prepared(session, ("share_lock",), _share_lock_stmt).send(
        session, {"grantee": grantee_agency_id}
    )


def _share_lock_stmt() -> AnySelect:
    grantee = param("grantee", Agreement.grantee_agency_id)
    return select(func.openpars_share_lock_agreements(grantee).label("locked"))


def send_in_force(
    session: Session,
    *,
    grantee_agency_id: int,
    unit_ids: Sequence[int],
    user_id: int | None,
    at: datetime,
    with_floor: bool = False,
) -> Pending:
    """Send the in-force lookup (read it with ``in_force_of``); ``with_floor``: it carries the
    newest floor's content hash too (read it with ``floor_of``), one statement for both."""
    # Run on every external request: prepared once per length of the unit path.
    units = len(unit_ids)
    stmt = prepared(
        session, ("in_force_for", units, with_floor), partial(_in_force_stmt, units, with_floor)
    )
    values = {"grantee": grantee_agency_id, "at": at, "user_id": user_id}
    values |= {f"unit_{n}": unit for n, unit in enumerate(unit_ids)}
    return stmt.send(session, values)


def in_force_of(pending: Rows) -> InForce | None:
    """The row of a sent in-force lookup, if an agreement is in force."""
    rows = pending.rows()
    if not rows:
        return None
    row = tuple(rows[0].values())
    # The WHERE clause compares both bounds, so neither can be NULL in a returned row.
    agreement_id, version, content_hash, start, end, mask_key = row[:6]
    assert start is not None
    assert end is not None
    # bytes() also accepts the memoryview a driver may return for a binary column.
    return InForce(agreement_id, version, content_hash, start, end, bytes(mask_key))


def floor_of(pending: Rows) -> str | None:
    """The newest floor's content hash an in-force lookup sent ``with_floor`` carried (None:
    no floor set, the shipped defaults, or no agreement in force: then nothing is read)."""
    rows = pending.rows()
    return rows[0]["floor_hash"] if rows else None


def version_content(session: Session, agreement_id: int, version: int) -> dict[str, Any] | None:
    """The stored document of one version (only when the grant cache has not parsed it yet)."""
    return session.scalar(
        select(AgreementVersion.content).where(
            AgreementVersion.agreement_id == agreement_id, AgreementVersion.version == version
        )
    )


def lock_grantee(session: Session, agency_id: int) -> None:
    """Serialise agreement changes of one grantee (PostgreSQL row lock, after the governance
    generation's, ``hold_generation``; SQLite has one writer)."""
    hold_generation(session)
    session.execute(select(Agency.id).where(Agency.id == agency_id).with_for_update())


def windows_of_grantee(
    session: Session, *, grantee_agency_id: int, exclude_agreement_id: int | None
) -> Sequence[tuple[Agreement, AgreementVersion]]:
    """Current and active versions of the grantee's other non-terminated agreements."""
    query = (
        select(Agreement, AgreementVersion)
        .join(AgreementVersion, AgreementVersion.agreement_id == Agreement.id)
        .where(
            Agreement.grantee_agency_id == grantee_agency_id,
            Agreement.status != AgreementStatus.TERMINATED,
            or_(
                AgreementVersion.version == Agreement.current_version,
                AgreementVersion.version == Agreement.active_version,
            ),
        )
        .order_by(Agreement.id, AgreementVersion.version)
    )
    if exclude_agreement_id is not None:
        query = query.where(Agreement.id != exclude_agreement_id)
    return [(a, v) for a, v in session.execute(query).all()]


def list_events(session: Session, agreement_id: int) -> Sequence[AgreementEvent]:
    """An agreement's timeline, oldest first."""
    return session.scalars(
        select(AgreementEvent)
        .where(AgreementEvent.agreement_id == agreement_id)
        .order_by(AgreementEvent.at, AgreementEvent.id)
    ).all()


def list_suspensions(
    session: Session, agreement_id: int
) -> Sequence[tuple[Suspension, Resumption | None]]:
    """Kill-switch acts recorded under an agreement, each with its resumption if any."""
    rows = session.execute(
        select(Suspension, Resumption)
        .outerjoin(Resumption, Resumption.suspension_id == Suspension.id)
        .where(Suspension.agreement_id == agreement_id)
        .order_by(Suspension.suspended_at, Suspension.id)
    ).all()
    return [(s, r) for s, r in rows]


def get_suspension(session: Session, suspension_id: int) -> Suspension | None:
    """One suspension by id."""
    return session.get(Suspension, suspension_id)


def get_resumption(session: Session, suspension_id: int) -> Resumption | None:
    """The resumption of a suspension, if it was lifted."""
    return session.scalars(
        select(Resumption).where(Resumption.suspension_id == suspension_id)
    ).one_or_none()


def open_suspension(
    session: Session, *, target: SuspensionTarget, target_id: int
) -> Suspension | None:
    """A suspension of this target that has not been lifted."""
    lifted = exists().where(Resumption.suspension_id == Suspension.id)
    return session.scalars(
        select(Suspension)
        .where(Suspension.target_kind == target, Suspension.target_id == target_id, ~lifted)
        .order_by(Suspension.id)
        .limit(1)
    ).first()


def open_suspensions(session: Session, agreement_id: int) -> Sequence[Suspension]:
    """Every kill-switch act under an agreement that has not been lifted, oldest first."""
    lifted = exists().where(Resumption.suspension_id == Suspension.id)
    return session.scalars(
        select(Suspension)
        .where(Suspension.agreement_id == agreement_id, ~lifted)
        .order_by(Suspension.id)
    ).all()


def agreement_suspended_at(session: Session, *, agreement_id: int, at: datetime) -> bool:
    """Whether a kill-switch suspension of the whole agreement is in force at ``at``."""
    return bool(session.scalar(select(_suspension_in_force(at, agreement_id, [], None))))


def due_to_expire(session: Session, *, at: datetime) -> Sequence[Agreement]:
    """Active or suspended agreements whose in-force window has ended by ``at``."""
    return session.scalars(
        select(Agreement)
        .where(
            Agreement.status.in_((AgreementStatus.ACTIVE, AgreementStatus.SUSPENDED)),
            Agreement.in_force_until <= at,
        )
        .order_by(Agreement.id)
    ).all()


def latest_floor_hash(session: Session) -> str | None:
    """The content hash of the newest stored site floor (read on every external request)."""
    stmt = prepared(session, ("latest_floor_hash",), _latest_floor_hash_stmt)
    return stmt.scalar(session, {})  # type: ignore[no-any-return]


def _latest_floor_hash_stmt() -> AnySelect:
    return select(SiteFloorVersion.content_hash).order_by(SiteFloorVersion.version.desc()).limit(1)


def latest_floor(session: Session) -> SiteFloorVersion | None:
    """The newest stored site floor, or None when the shipped defaults apply."""
    return session.scalars(
        select(SiteFloorVersion).order_by(SiteFloorVersion.version.desc()).limit(1)
    ).first()


def get_agency(session: Session, agency_id: int) -> Agency | None:
    """One agency by id."""
    return session.get(Agency, agency_id)


def get_user(session: Session, user_id: int) -> User | None:
    """One user by id."""
    return session.get(User, user_id)


def agency_chain(session: Session, agency_id: int) -> list[int]:
    """The agency and its ancestors, from itself up to the top-level agency."""
    chain: list[int] = []
    current = session.get(Agency, agency_id)
    while current is not None and current.id not in chain:
        chain.append(current.id)
        current = session.get(Agency, current.parent_id) if current.parent_id else None
    return chain
