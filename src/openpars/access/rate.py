"""Rate windows: at most ``limit`` external accesses per user and per agency in any minute.

A window is a set of places (``rate_slots``), at most ``limit`` of them: an admitted access
takes the place whose last use is oldest, if that use is more than a minute ago, and writes
its own instant there. A window with every place used within the last minute admits nothing
until its oldest place is a minute old: exactly the rule "the limit-th most recent access is
less than a minute old" that the audit log was read for before, without reading the log.

Taking a place is one statement per request on PostgreSQL (both windows together, sent in
the decision's round trip) and one per window on SQLite, in the request's own transaction,
which also appends the audit entry: if the request is refused or its entry cannot be
written, the place is given back by the rollback. Concurrent requests cannot share a place:
on PostgreSQL a place is taken ``FOR UPDATE SKIP LOCKED``, so each request locks a
different row (nobody waits for another request's commit) and a place another request holds
counts as taken; a row updated by a transaction that committed meanwhile is checked again
against the window before it is taken. On SQLite the transaction holds the only write lock
(BEGIN IMMEDIATE).

A window grows by ``GROWTH`` places when all its places are taken and it has fewer than its
limit, so a window holds as many places as its busiest minute needed.

On PostgreSQL a claim takes the free place whose last use is oldest, walking the window's
index in order of use from a hint: the last use of the place this process took last in that
window (``_HINTS``), below which lie only the index entries of places taken since (every
taken place moves to the end of the order). An update leaves its old index entry behind until
vacuum or a later scan removes it, and while any transaction of the cluster is older than the
update (a long report, a backup's snapshot) none is removed: a walk from the start of the
window, or down from a minute ago in a window with places to spare (after any burst), met
the entries of the places taken since, one more per request (0.17 -> 0.72 ms of server CPU
over 6,000 claims; docs/benchmarks.md, Search, h12pg3). The hint is a guess only: if no free
place lies above it, the same statement walks the window from the start, so a stale or wrong
hint never refuses a request that has a free place. A new place holds its own number as its
last use (an instant long past, distinct for each), so the walk never wades through a run of
equal values either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from openpars.prepared import connection_of, driver_errors

WINDOW_US = 60_000_000
USER, AGENCY = 0, 1
GROWTH = 64
# PostgreSQL: per window (kind, owner), the last use of the place this process took there last:
# where the next claim's walk starts (a guess; see the module's docstring).
_HINTS: dict[tuple[int, int], int] = {}
_HINTS_MAX = 4096
# Growing a window races only with the same window's other growers; a request that lost
# this many times in a row is refused as if the window were full (it never admits more).
_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Window:
    """A user's (``USER``) or an agency's (``AGENCY``) window of ``limit`` places."""

    kind: int
    owner_id: int
    limit: int


@dataclass(frozen=True, slots=True)
class Claim:
    """What taking a place in one window found: whether a place was taken (``taken``), and
    which and its previous use where they are read back (PostgreSQL: the place is given back
    if the limits were guessed wrong; SQLite takes its places with the real limits only and
    reads neither back), or, if none was free, the oldest use of the window's places and its
    highest place number."""

    window: Window
    slot: int | None
    previous: int | None
    oldest: int | None
    top: int | None
    taken: bool = False


def micros(at: datetime) -> int:
    """An instant in microseconds since the epoch (what a place records)."""
    return round(at.timestamp() * 1_000_000)


def send_claims(
    session: Session, windows: Sequence[Window], at: datetime
) -> Callable[[], list[Claim]]:
    """Take a place in each window; the claims are read later (inside ``prepared.pipeline``
    on PostgreSQL the statement travels with the others). SQLite runs at once."""
    connection = connection_of(session)
    if not windows:
        return list
    if connection.dialect.name == "sqlite":
        claims = _sqlite_claims(connection, windows, micros(at))
        return lambda: claims
    return _send_pg(connection, windows, at, None)[0]


def send_claims_with(
    session: Session,
    windows: Sequence[Window],
    at: datetime,
    column: str,
    extra: Mapping[str, Any] | None = None,
) -> tuple[Callable[[], list[Claim]], Callable[[], Any]]:
    """PostgreSQL: ``send_claims`` with more columns in the same statement (constant scalar
    expressions of the caller's, with their own named parameters ``extra``), the first of
    them read by the second callable. Needs a window."""
    assert windows
    return _send_pg(connection_of(session), windows, at, column, extra)


def _send_pg(
    connection: Connection,
    windows: Sequence[Window],
    at: datetime,
    column: str | None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[Callable[[], list[Claim]], Callable[[], Any]]:
    now = micros(at)
    sql = _pg_claim_sql(len(windows))
    if column is not None:
        sql += ", " + column
    # The type looked up once for the statement's ten or more values (an import statement in
    # each conversion cost 2.7 us a value).
    int8 = _int8_type()
    values: dict[str, Any] = {"now": int8(now), "since": int8(now - WINDOW_US)}
    values |= {name: int8(value) for name, value in (extra or {}).items()}
    for n, window in enumerate(windows):
        values |= {
            f"k{n}": int8(window.kind),
            f"o{n}": int8(window.owner_id),
            f"l{n}": int8(window.limit),
            f"h{n}": int8(_HINTS.get((window.kind, window.owner_id), 0)),
        }
    with driver_errors(connection, sql):
        cursor = connection.connection.cursor()
        cursor.execute(sql, values)
    fetched: list[Any] = []

    def row() -> Any:
        if not fetched:
            with driver_errors(connection, sql):
                fetched.append(cursor.fetchone())
            assert fetched[0] is not None  # the statement's SELECT always answers one row
            _remember(windows, fetched[0])
        return fetched[0]

    def claims() -> list[Claim]:
        got = row()
        out: list[Claim] = []
        for n, window in enumerate(windows):
            slot, previous, oldest, top = (
                None if v is None else int(v) for v in got[4 * n : 4 * n + 4]
            )
            out.append(Claim(window, slot, previous, oldest, top, taken=slot is not None))
        return out

    return claims, lambda: row()[4 * len(windows)]


def _remember(windows: Sequence[Window], row: Any) -> None:
    """Keep, per window, the last use of the place just taken: the next claim's walk starts
    there (nothing below it but places taken since, as far as this process knows)."""
    if len(_HINTS) >= _HINTS_MAX:
        _HINTS.clear()
    for n, window in enumerate(windows):
        slot, previous = row[4 * n], row[4 * n + 1]
        if slot is not None and previous is not None:
            _HINTS[(window.kind, window.owner_id)] = int(previous)


def settle(session: Session, claims: Sequence[Claim], at: datetime) -> list[float | None]:
    """For each claim, None if a place is taken, else the seconds until one frees.

    A window with no free place and fewer places than its limit grows and is claimed again.
    """
    out: list[float | None] = []
    now = micros(at)
    for claim in claims:
        current = claim
        for _ in range(_ATTEMPTS):
            if current.taken or not _can_grow(current):
                break
            _grow(connection_of(session), current)
            current = send_claims(session, [current.window], at)()[0]
        if current.taken:
            out.append(None)
        else:
            oldest = current.oldest if current.oldest is not None else now
            out.append(max(0.01, (oldest + WINDOW_US - now) / 1_000_000))
    return out


def give_back(session: Session, claims: Sequence[Claim]) -> None:
    """Undo claims taken for the wrong limits (still locked by this transaction; PostgreSQL,
    the only engine that takes places before the limits are known)."""
    connection = connection_of(session)
    sqlite = connection.dialect.name == "sqlite"
    sql = _SQLITE_SET if sqlite else _PG_SET
    for claim in claims:
        if claim.slot is None or claim.previous is None:
            continue
        values = (claim.previous, claim.window.kind, claim.window.owner_id, claim.slot)
        with driver_errors(connection, sql):
            connection.connection.cursor().execute(
                sql, values if sqlite else tuple(_int8(v) for v in values)
            )


def claim_if_free(session: Session, windows: Sequence[Window], at: datetime) -> None:
    """Take a place in each window that has one (growing it if it may): a refused attempt
    counts like an admitted one while there is room, and is refused no further."""
    settle(session, send_claims(session, windows, at)(), at)


def _can_grow(claim: Claim) -> bool:
    return claim.top is None or claim.top + 1 < claim.window.limit


def _grow(connection: Connection, claim: Claim) -> None:
    window = claim.window
    first = 0 if claim.top is None else claim.top + 1
    last = min(first + GROWTH, window.limit) - 1
    cursor = connection.connection.cursor()
    if connection.dialect.name == "sqlite":
        rows = [(window.kind, window.owner_id, slot) for slot in range(first, last + 1)]
        with driver_errors(connection, _SQLITE_GROW):
            cursor.executemany(_SQLITE_GROW, rows)
        return
    values = tuple(_int8(v) for v in (window.kind, window.owner_id, first, last))
    with driver_errors(connection, _PG_GROW):
        cursor.execute(_PG_GROW, values)
    # The new places' last uses are their numbers, all from ``first`` on: the claim that
    # follows starts there, past the places taken before the window grew.
    _HINTS[(window.kind, window.owner_id)] = first


def _sqlite_claims(connection: Connection, windows: Sequence[Window], now: int) -> list[Claim]:
    """One UPDATE per window, taking its newest free place; whether it took one is its row
    count (neither the place nor its previous use is read back: SQLite takes its places with
    the real limits only, so nothing is given back). Then, for each full window, one statement
    for its oldest use and highest place.

    Two plain UPDATEs cost less than one statement for both windows: the single UPDATE ...
    FROM a UNION of the picks, RETURNING the places, took 65-71 µs of CPU against 32-36 µs
    for these two (docs/benchmarks.md, Audit log, 2026-12-07, branch h12lite): its
    materialised picks, its join and its RETURNING (9 µs a statement) cost more than a second
    statement does."""
    cursor = connection.connection.cursor()
    since = now - WINDOW_US
    claims: list[Claim] = []
    with driver_errors(connection, _SQLITE_CLAIM):
        for window in windows:
            key = (window.kind, window.owner_id)
            cursor.execute(_SQLITE_CLAIM, (now, *key, window.limit, since))
            if cursor.rowcount == 1:
                claims.append(Claim(window, None, None, None, None, taken=True))
                continue
            cursor.execute(_SQLITE_FULL, (*key, window.limit, *key))
            oldest, top = cursor.fetchone() or (None, None)
            claims.append(Claim(window, None, None, oldest, top))
    return claims


def _int8(value: int) -> Any:
    """psycopg keys its prepared statements by the parameters' types: one type for every int
    (as ``prepared._int_type``)."""
    return _int8_type()(value)


@lru_cache(maxsize=1)
def _int8_type() -> Callable[[int], Any]:
    # Imported on first use: a SQLite deployment never loads psycopg's types.
    from psycopg.types.numeric import Int8

    return Int8


@lru_cache(maxsize=8)
def _pg_claim_sql(count: int) -> str:
    """One statement taking a place in each of ``count`` windows; per window four columns:
    the place taken, its previous use, and (only if none was free) the window's oldest use
    and highest place. Window n's parameters are kn, on and ln (kind, owner, limit)."""
    ctes = ", ".join(_PG_CLAIM_CTE.replace("@n@", str(n)) for n in range(count))
    columns = ", ".join(_PG_CLAIM_COLUMNS.replace("@n@", str(n)) for n in range(count))
    return "WITH " + ctes + " SELECT " + columns


# The oldest free place from the hint h on, else (the second branch runs only if the first
# found none: an Append under LIMIT 1) the oldest free place of the whole window.
_PG_CLAIM_CTE = (
    "f@n@ AS (SELECT * FROM (SELECT ctid, slot, at_us FROM rate_slots "
    "WHERE kind = %(k@n@)s::smallint AND owner_id = %(o@n@)s::integer "
    "AND slot < %(l@n@)s::integer AND at_us < %(since)s::bigint "
    "AND at_us >= %(h@n@)s::bigint "
    "ORDER BY at_us LIMIT 1 FOR UPDATE SKIP LOCKED) AS h UNION ALL "
    "SELECT * FROM (SELECT ctid, slot, at_us FROM rate_slots "
    "WHERE kind = %(k@n@)s::smallint AND owner_id = %(o@n@)s::integer "
    "AND slot < %(l@n@)s::integer AND at_us < %(since)s::bigint "
    "ORDER BY at_us LIMIT 1 FOR UPDATE SKIP LOCKED) AS w LIMIT 1), "
    # The locked row by its tuple id: a join on the key may walk every place of the window
    # (the planner's estimate of a small, fast-changing table is often stale).
    "c@n@ AS (UPDATE rate_slots SET at_us = %(now)s::bigint "
    "WHERE ctid = (SELECT ctid FROM f@n@) RETURNING slot)"
)
# The scalar sub-selects of a CASE branch not taken are never run.
_PG_CLAIM_COLUMNS = (
    "(SELECT slot FROM c@n@), (SELECT at_us FROM f@n@), "
    "CASE WHEN NOT EXISTS (SELECT 1 FROM c@n@) THEN (SELECT min(at_us) FROM rate_slots "
    "WHERE kind = %(k@n@)s::smallint AND owner_id = %(o@n@)s::integer "
    "AND slot < %(l@n@)s::integer) END, "
    "CASE WHEN NOT EXISTS (SELECT 1 FROM c@n@) THEN (SELECT max(slot) FROM rate_slots "
    "WHERE kind = %(k@n@)s::smallint AND owner_id = %(o@n@)s::integer) END"
)
_PG_SET = (
    "UPDATE rate_slots SET at_us = %s::bigint "
    "WHERE kind = %s::smallint AND owner_id = %s::integer AND slot = %s::integer"
)
_PG_GROW = (
    "INSERT INTO rate_slots (kind, owner_id, slot, at_us) "
    "SELECT k, o, g, g FROM (SELECT %s::smallint AS k, %s::integer AS o) AS w, "
    "generate_series(%s::integer, %s::integer) AS g ON CONFLICT DO NOTHING"
)
# The window's newest free place, picked by a scalar subquery (run once, before the update
# moves the row in the B-tree, whose key includes its instant), then updated by its whole key.
# No free place: the subquery is NULL, nothing is updated (row count 0).
_SQLITE_CLAIM = (
    "UPDATE rate_slots SET at_us = ? WHERE (kind, owner_id, at_us, slot) = "
    "(SELECT kind, owner_id, at_us, slot FROM rate_slots WHERE kind = ? AND owner_id = ? "
    "AND slot < ? AND at_us < ? ORDER BY at_us DESC LIMIT 1)"
)
_SQLITE_SET = "UPDATE rate_slots SET at_us = ? WHERE kind = ? AND owner_id = ? AND slot = ?"
_SQLITE_FULL = (
    "SELECT (SELECT min(at_us) FROM rate_slots WHERE kind = ? AND owner_id = ? AND slot < ?), "
    "(SELECT max(slot) FROM rate_slots WHERE kind = ? AND owner_id = ?)"
)
_SQLITE_GROW = "INSERT OR IGNORE INTO rate_slots (kind, owner_id, slot, at_us) VALUES (?, ?, ?, 0)"
