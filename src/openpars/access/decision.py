"""What an external decision reads besides the agreement: the places in the rate windows.

On PostgreSQL one statement (the places taken in the caller's rate windows, ``access.rate``, the
share lock on the grantee's agreements and the governance generation read once the lock is held,
``agreements.in_force``), sent together with the in-force lookup (a pipeline: one round trip for
all); on SQLite the windows are claimed once the agreement is read. The newest floor's hash
rides on the in-force lookup on both engines, answered from the process's copy of the governance
tables (``agreements.in_force``, whose generation the floor's changes move as the agreements'
do). The lock is taken in a statement before the in-force lookup, which therefore runs on a
snapshot taken once the lock is held (READ COMMITTED): a kill switch under way when the read
arrives is waited for and then seen. The rate windows need the agreement's limits, which are
only known once the agreement is read, so on PostgreSQL they are claimed with the limits this
grantee's agreement had at its previous request; if the agreement now says otherwise (a new
version), the places are given back and claimed again with the real limits before anything is
decided.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from openpars.access.rate import AGENCY, USER, Claim, Window, send_claims, send_claims_with
from openpars.agreements.in_force import Generation, generation_of_text
from openpars.prepared import GENERIC_PLANS_COLUMN, generic_plans_carried

# (per user, per agency) limits per minute, as last read for a grantee's agreement.
Limits = tuple[int | None, int | None]
_LAST_LIMITS: dict[int | None, Limits] = {}
_LAST_LIMITS_MAX = 4096


@dataclass(frozen=True, slots=True)
class DecisionReads:
    """The newest floor's content hash (None: the shipped defaults), and the places taken in
    the caller's rate windows (``access.rate``; none for a limit the caller does not have)."""

    floor_hash: str | None
    claims: tuple[Claim, ...]


@dataclass(frozen=True, slots=True)
class SentReads:
    """Decision reads sent for some limits; their rows are read on demand."""

    limits: Limits | None
    claims: Callable[[], list[Claim]]
    # Whether the statement also took the share lock on the grantee's agreements.
    locked: bool = False
    # Where it did: reads the governance generation it read once the lock was held.
    generation: Callable[[], Generation | None] | None = None

    def result(self, floor_hash: Callable[[], str | None]) -> DecisionReads:
        """The reads (waits for the server if they have not arrived yet), with the floor's
        hash ``floor_hash`` reads (the in-force lookup carries it)."""
        return DecisionReads(floor_hash(), tuple(self.claims()))


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
    at: datetime,
    limits: Limits | None,
    lock_grantee: int | None = None,
    generic_plans: bool = False,
) -> SentReads:
    """If ``limits`` are given, take a place in each rate window under them (on PostgreSQL one
    statement for all). The newest floor's hash is not read here: the in-force lookup carries
    it (``agreements.in_force``: from the process's copy while the generation holds).

    ``lock_grantee``: on PostgreSQL, where that one statement is sent, it also takes the share
    lock on this grantee's agreements (``agreements.repository.share_lock_agreements_of``),
    saying so in ``SentReads.locked``, and then reads the governance generation
    (``SentReads.generation``, for the in-force lookup); the caller sends both otherwise.

    Taking a place is a write: if the limits turn out other than those sent, the places are
    given back (``rate.give_back``) before they are taken under the real limits. ``None``:
    nothing sent, the places taken once the limits are known (SQLite, where sending ahead
    saves no round trip).

    ``generic_plans``: where that one statement is sent, it also turns generic plans on for the
    rest of the transaction (``prepared.GENERIC_PLANS_COLUMN``), for a read whose next
    statements would otherwise send the setting themselves (an external name page sent
    ahead: two statements fewer, the setting and its reset).
    """
    found = [] if limits is None else windows(user_id, agency_id, limits)
    if found and lock_grantee is not None and session.get_bind().dialect.name == "postgresql":
        # One statement: the share lock, and the generation read once it is held, ride on the
        # windows' claim.
        columns = _LOCK_AND_GENERATION
        if generic_plans:
            columns += ", " + GENERIC_PLANS_COLUMN
        claims, column = send_claims_with(session, found, at, columns, {"grantee": lock_grantee})
        if generic_plans:
            generic_plans_carried(session)
        return SentReads(
            limits, claims, locked=True, generation=lambda: generation_of_text(column())
        )
    return SentReads(limits, send_claims(session, found, at))


# The share lock, as ``agreements.repository.share_lock_agreements_of`` takes it, and then the
# governance generation (``agreements.in_force``), read in the function once the lock is held
# (a column of a statement without FROM: run once; access/rls.py).
_LOCK_AND_GENERATION = "openpars_share_lock_generation(%(grantee)s::integer)"


def windows(user_id: int | None, agency_id: int | None, limits: Limits) -> list[Window]:
    """The caller's rate windows under these limits (none for a limit it does not have)."""
    user_limit, agency_limit = limits
    out: list[Window] = []
    if user_limit is not None and user_id is not None:
        out.append(Window(USER, user_id, user_limit))
    if agency_limit is not None and agency_id is not None:
        out.append(Window(AGENCY, agency_id, agency_limit))
    return out
