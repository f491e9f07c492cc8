"""The in-force lookup, answered from rows this process read while the governance generation
has not moved since.

Agreements, their versions, suspensions, resumptions and the site floor change a few times a
year; the in-force lookup that reads them ran on every external request. The database keeps a
generation (``models.GovernanceGeneration``): its own triggers move it, in the writing
transaction, at every change of those tables, whoever writes. A request reads the generation
in its own transaction (one primary-key read, where the lookup was sent; on PostgreSQL after
the share lock, as the lookup was: where the rate claim's statement takes the lock, by the
function that takes it, ``access.decision``) and, if this process holds the lookup's raw rows
for the caller under that very generation, decides from them; otherwise it reads them again
(and keeps them if the generation did not move while they were read).

What is kept are rows, never a verdict: each request decides, at its own instant, which
agreement is in force (its window) and which suspensions hold (their instants and lifts), as
the lookup's SQL did (``repository._in_force_stmt``; the same answer, tested side by side).

A generation is the pair (number, random token): the token is new at every change, so two
databases, or a transaction rolled back and the one after it, never name the same rows with
the same pair. The number only goes up and its row cannot be deleted (the database refuses),
so an earlier pair cannot be written back to bring back a grant a suspension ended. What no
trigger can stop: an operator who can drop triggers (or edit the database file) can change the
tables unseen, as they could drop the history tables' append-only triggers; a process restart
drops every copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from openpars.agreements.models import (
    Agreement,
    GovernanceGeneration,
    Resumption,
    SiteFloorVersion,
    Suspension,
    SuspensionTarget,
)
from openpars.agreements.repository import InForce, active_versions
from openpars.prepared import AnySelect, Pending, connection_of, driver_errors, prepared

# (grantee agency, the caller's unit path, user): what the lookup is asked with, besides `at`.
Key = tuple[int, tuple[int, ...], int | None]
Generation = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class _Suspension:
    kind: str
    target_id: int
    suspended_at: datetime
    resumed_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Copy:
    """The lookup's raw rows for one key, as of one generation."""

    generation: Generation
    # The grantee's active agreements with their active version, by agreement id.
    agreements: tuple[InForce, ...]
    # Suspensions of those agreements, of the units on the path and of the user.
    suspensions: tuple[_Suspension, ...]
    floor_hash: str | None


# Per process, bounded: a full map is emptied (every entry is read again at its next use).
_COPIES: dict[Key, _Copy] = {}
_COPIES_MAX = 1024


def _generation_stmt() -> AnySelect:
    return select(GovernanceGeneration.generation, GovernanceGeneration.token).where(
        GovernanceGeneration.id == 1
    )


_GENERATION_SQL = "SELECT generation, token FROM governance_generation WHERE id = 1"


def _send_generation(session: Session) -> Callable[[], Generation | None]:
    """Send the generation's read (SQLite: run it); the callable reads it (None: no row, a
    schema made by hand: nothing is kept, every lookup is read)."""
    connection = connection_of(session)
    if connection.dialect.name == "sqlite":
        # The driver's cursor, no statement object: the statement is a constant and SQLite
        # answers at once (the least client work on the request's path).
        with driver_errors(connection, _GENERATION_SQL):
            row = connection.connection.cursor().execute(_GENERATION_SQL).fetchone()
        found = None if row is None else (int(row[0]), bytes(row[1]))
        return lambda: found
    pending = prepared(session, ("governance_generation",), _generation_stmt).send(session, {})
    return partial(_generation_of, pending)


def _generation_of(pending: Pending) -> Generation | None:
    rows = pending.rows()
    if not rows:
        return None
    return int(rows[0]["generation"]), bytes(rows[0]["token"])


class KeptInForce:
    """A sent in-force lookup answered from this process's copy when the generation allows;
    ``rows()`` answers as the lookup statement's rows would (``repository.in_force_of``,
    ``repository.floor_of``)."""

    __slots__ = ("_at", "_key", "_rows", "_sent", "_session", "_with_floor")

    def __init__(
        self,
        session: Session,
        sent: Callable[[], Generation | None],
        key: Key,
        at: datetime,
        with_floor: bool,
    ) -> None:
        self._session = session
        self._sent = sent
        self._key = key
        self._at = at
        self._with_floor = with_floor
        self._rows: list[dict[str, Any]] | None = None

    def rows(self) -> list[dict[str, Any]]:
        """The lookup's rows at this request's instant (read once, then kept)."""
        if self._rows is None:
            generation = self._sent()
            copy = _COPIES.get(self._key)
            if generation is None or copy is None or copy.generation != generation:
                copy = _read(self._session, self._key, generation)
            self._rows = _answer(copy, self._key, self._at, self._with_floor)
        return self._rows


def send_in_force(
    session: Session,
    *,
    grantee_agency_id: int,
    unit_ids: Sequence[int],
    user_id: int | None,
    at: datetime,
    with_floor: bool = False,
    generation: Callable[[], Generation | None] | None = None,
) -> KeptInForce:
    """``repository.send_in_force``, answered from this process's copy while the governance
    generation read now (the one statement sent) is the copy's.

    ``generation``: reads the generation a statement already sent read once the share lock
    was held (``access.decision``: the rate claim's ``openpars_share_lock_generation``); then
    nothing is sent here.
    """
    key = (grantee_agency_id, tuple(unit_ids), user_id)
    sent = generation if generation is not None else _send_generation(session)
    return KeptInForce(session, sent, key, at, with_floor)


def generation_of_text(text: str | None) -> Generation | None:
    """The generation as ``openpars_share_lock_generation`` returns it: "number hex-token"
    (None: no generation row, nothing is kept)."""
    if text is None:
        return None
    number, token = text.split(" ")
    return int(number), bytes.fromhex(token)


def _read(session: Session, key: Key, generation: Generation | None) -> _Copy:
    """The key's raw rows read in this transaction; kept if the generation read after them is
    the one read before (no change committed in between: on PostgreSQL each statement has its
    own snapshot)."""
    grantee, units, user_id = key
    connection = connection_of(session)
    found = connection.execute(active_versions(grantee).order_by(Agreement.id)).all()
    agreements = tuple(
        InForce(a, v, h, start, end, bytes(key_))
        for a, v, h, start, end, key_ in found
        # The lookup compares both bounds: a row without one is never in force.
        if start is not None and end is not None
    )
    targets = [
        and_(
            Suspension.target_kind == SuspensionTarget.AGREEMENT,
            Suspension.target_id.in_([row.agreement_id for row in agreements]),
        ),
        and_(Suspension.target_kind == SuspensionTarget.UNIT, Suspension.target_id.in_(units)),
    ]
    if user_id is not None:
        targets.append(
            and_(
                Suspension.target_kind == SuspensionTarget.ACCOUNT, Suspension.target_id == user_id
            )
        )
    suspended = connection.execute(
        select(
            Suspension.target_kind,
            Suspension.target_id,
            Suspension.suspended_at,
            Resumption.resumed_at,
        )
        .outerjoin(Resumption, Resumption.suspension_id == Suspension.id)
        .where(or_(*targets))
        .order_by(Suspension.id)
    ).all()
    floor = connection.execute(
        select(SiteFloorVersion.content_hash).order_by(SiteFloorVersion.version.desc()).limit(1)
    ).scalar()
    copy = _Copy(
        generation or (0, b""),
        agreements,
        tuple(_Suspension(str(k), t, s, r) for k, t, s, r in suspended),
        floor,
    )
    if generation is not None and _send_generation(session)() == generation:
        if len(_COPIES) >= _COPIES_MAX:
            _COPIES.clear()
        _COPIES[key] = copy
    return copy


def _answer(copy: _Copy, key: Key, at: datetime, with_floor: bool) -> list[dict[str, Any]]:
    """The lookup's rows at ``at``: the first active agreement (by id) whose window holds
    ``at`` and that no suspension in force at ``at`` cuts off (none: no rows)."""
    _, units, user_id = key
    for row in copy.agreements:
        if not row.in_force_from <= at < row.in_force_until:
            continue
        if any(_cuts_off(s, row.agreement_id, units, user_id, at) for s in copy.suspensions):
            continue
        found = {
            "id": row.agreement_id,
            "version": row.version,
            "content_hash": row.content_hash,
            "in_force_from": row.in_force_from,
            "in_force_until": row.in_force_until,
            "mask_key": row.mask_key,
        }
        if with_floor:
            found["floor_hash"] = copy.floor_hash
        return [found]
    return []


def _cuts_off(
    suspension: _Suspension,
    agreement_id: int,
    units: tuple[int, ...],
    user_id: int | None,
    at: datetime,
) -> bool:
    """Whether the suspension is in force at ``at`` against this agreement, unit path or user
    (``repository._suspension_in_force``)."""
    if suspension.suspended_at > at:
        return False
    if suspension.resumed_at is not None and suspension.resumed_at <= at:
        return False
    kind, target = suspension.kind, suspension.target_id
    return (
        (kind == SuspensionTarget.AGREEMENT and target == agreement_id)
        or (kind == SuspensionTarget.UNIT and target in units)
        or (kind == SuspensionTarget.ACCOUNT and target == user_id)
    )
