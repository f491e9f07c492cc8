"""What an external decision reads besides the agreement: the floor in force and the rate limits.

One statement, sent together with the agreement's share lock and in-force lookup (a pipeline on
PostgreSQL: one round trip for all three). The rate reads need the agreement's limits, which
are only known once the agreement is read, so they are sent with the limits this grantee's
agreement had at its previous request; if the agreement now says otherwise (a new version),
the statement runs again with the real limits before anything is decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import BindParameter, Integer, Select, select
from sqlalchemy.orm import Session

from openpars.agreements.models import SiteFloorVersion
from openpars.audit.models import AuditEntry
from openpars.prepared import Pending, param, prepared

# (per user, per agency) limits per minute, as last read for a grantee's agreement.
Limits = tuple[int | None, int | None]
_LAST_LIMITS: dict[int | None, Limits] = {}
_LAST_LIMITS_MAX = 4096


@dataclass(frozen=True, slots=True)
class DecisionReads:
    """The newest floor's content hash (None: the shipped defaults), and for each rate limit
    the time of the limit-th most recent audited access in the window (None: fewer, or no
    limit)."""

    floor_hash: str | None
    user_nth: datetime | None
    agency_nth: datetime | None


@dataclass(frozen=True, slots=True)
class SentReads:
    """Decision reads sent for some limits; their rows are read on demand."""

    limits: Limits
    pending: Pending

    def result(self) -> DecisionReads:
        """The reads (waits for the server if they have not arrived yet)."""
        row = self.pending.rows()[0]
        return DecisionReads(row["floor_hash"], row.get("user_nth"), row.get("agency_nth"))


def last_limits(agency_id: int | None) -> Limits:
    """The limits the agency's agreement had at its last decision in this process."""
    return _LAST_LIMITS.get(agency_id, (None, None))


def remember_limits(agency_id: int | None, limits: Limits) -> None:
    """Keep the limits for the agency's next decision (a guess only: always checked)."""
    if len(_LAST_LIMITS) >= _LAST_LIMITS_MAX:
        _LAST_LIMITS.clear()
    _LAST_LIMITS[agency_id] = limits


def send_decision_reads(
    session: Session,
    *,
    user_id: int | None,
    agency_id: int | None,
    since: datetime,
    limits: Limits,
) -> SentReads:
    """Send the newest floor's hash and both rate reads as one statement.

    Each rate read is one walk down the (caller, at) index, stopping at the limit-th access.
    """
    user_limit, agency_limit = limits
    by_user = user_limit is not None and user_id is not None
    by_agency = agency_limit is not None and agency_id is not None
    stmt = prepared(
        session, ("decision_reads", by_user, by_agency), partial(_statement, by_user, by_agency)
    )
    values: dict[str, Any] = {"since": since}
    if user_limit is not None and by_user:
        values |= {"user": user_id, "user_skip": user_limit - 1}
    if agency_limit is not None and by_agency:
        values |= {"agency": agency_id, "agency_skip": agency_limit - 1}
    return SentReads(limits, stmt.send(session, values))


def _statement(by_user: bool, by_agency: bool) -> Select[Any]:
    floors = SiteFloorVersion.__table__.c
    newest = select(floors.content_hash).order_by(floors.version.desc()).limit(1)
    columns: list[Any] = [newest.scalar_subquery().label("floor_hash")]
    if by_user:
        columns.append(_nth_recent("user_id", "user").scalar_subquery().label("user_nth"))
    if by_agency:
        columns.append(_nth_recent("agency_id", "agency").scalar_subquery().label("agency_nth"))
    return select(*columns)


def _nth_recent(by: str, prefix: str) -> Select[Any]:
    t = AuditEntry.__table__.c
    return (
        select(t.at)
        .where(t[by] == param(prefix, t[by]), t.at >= param("since", t.at))
        .order_by(t.at.desc())
        .offset(BindParameter(f"{prefix}_skip", None, type_=Integer(), required=False))
        .limit(1)
    )
