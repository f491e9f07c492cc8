"""The misuse detectors of issue 13, each one set-based SQL over the log and the access facts.

Every detector reads ``audit_entries`` (external reads: made under an agreement, answered) or
``oversight_access_facts`` (one row per external read and person returned) for the period it
judges, plus the history its baseline needs, aggregates in the database, and looks at per-user
or per-agency aggregates in Python (never one row per entry). Each returns ``FlagDraft``s with
its rule in words, its threshold and the entries that fired it; the dedupe key names the
finding by fixed calendar buckets (a UTC day, a fixed window) or by the period for period-wide
findings, so running the same period again stores nothing new. Rules, thresholds and why:
docs/oversight.md, "Detectors".
"""

from __future__ import annotations

import bisect
import hashlib
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby, islice
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    bindparam,
    case,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.schema import SchemaItem
from sqlalchemy.sql.elements import TextClause

from openpars.audit import by_actor
from openpars.db import UTCDateTime
from openpars.identity.models import Agency
from openpars.identity.roles import AgencyKind
from openpars.oversight.detection import (
    EVERYTHING,
    DetectionPeriod,
    FlagDraft,
    Thresholds,
)
from openpars.oversight.explain_sql import charge_states
from openpars.oversight.facts import (
    ARRESTEE_DAYS,
    ARRESTEES_INVOLVEMENTS,
    SKEW_ATTRIBUTES,
    WATERMARK,
    AccessFact,
    FactsWatermark,
    arrestees_named_sql,
    kept_entry,
    kept_entry_sql,
    named_sql,
    shredded_indexed,
    write_documents_sql,
)

# Entries named by one period-wide flag (skew, never charged): the oldest this many. The rule
# text gives the full count; the facts behind the rest are in the explanations of the period.
MAX_ENTRIES_PER_FLAG = 1000
# Keys (users, agencies) named in one statement: far below every engine's bound parameters.
_KEYS_PER_STATEMENT = 500

BURST = "volume_burst"
WILDCARD = "enumeration_wildcard"
SEQUENTIAL = "enumeration_sequential"
ZERO_HITS = "enumeration_zero_hits"
DATE_SWEEP = "enumeration_date_sweep"
SHARED_CASE = "shared_case_reference"
MANY_USERS = "person_many_users"
OWN_NAME = "own_surname_or_address"
SKEW = "population_skew"
NEVER_CHARGED = "never_charged"
OFF_HOURS = "off_hours"
DORMANT = "dormant_account"

# An external read in the log: made under an agreement, a search or a read, answered.
# A period is read by agency and instant (audit.by_actor: the integrator's index and the tail
# not integrated yet; there is no index on the instant alone), one range per outside agency.
_OUTSIDE = "(SELECT id FROM agencies WHERE kind = 'external')"


def _external(e: str) -> str:
    """An external read, the entry aliased ``e``."""
    return (
        f"{e}.agency_id IN {_OUTSIDE} AND {e}.agreement_id IS NOT NULL AND {e}.outcome = 'ok' "
        f"AND {e}.kind IN ('search', 'read') AND {e}.user_id IS NOT NULL"
    )


_EXTERNAL = _external("e")


def _outside_in(e: str, dialect: str, lo: str = "start", hi: str = "end") -> str:
    """The entry ``e`` is an outside agency's with ``:lo`` <= at < ``:hi``, found by agency and
    instant (``by_actor``), not by a scan of the log."""
    if dialect == DUCKDB:
        # A column store scans the instants: no index by agency to go through.
        return f"{e}.agency_id IN {_OUTSIDE} AND {e}.at >= :{lo} AND {e}.at < :{hi}"
    period = by_actor.entries_by_sql(dialect, "agency_id", _OUTSIDE, lo, hi)
    return f"{e}.id IN ({period}) AND {e}.at >= :{lo} AND {e}.at < :{hi}"


def _kept(session: Session) -> str:
    """The fact ``f`` is an outside agency's and its entry was not shredded (against the
    shredded entries' index where the store has it: ``facts.kept_entry_sql``)."""
    kept = kept_entry_sql("f.entry_id", shredded_indexed(session))
    return f"f.agency_id IN {_OUTSIDE} AND {kept}"


# ---------------------------------------------------------------------------------------------
# Dialect fragments
# ---------------------------------------------------------------------------------------------


# DuckDB reading the store (``oversight.duck``): its instants are naive UTC timestamps.
DUCKDB = "duckdb"


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _locked(statement: Any, dialect: str) -> Any:
    """``statement`` share-locked until the transaction ends where the engine has row locks
    (PostgreSQL; SQLite's reader sees one snapshot); DuckDB has none: it reads what the store
    had committed."""
    return statement if dialect == DUCKDB else statement.with_for_update(read=True)


def _day(column: str, dialect: str) -> str:
    """The UTC day of an instant as 'YYYY-MM-DD' (SQLite keeps naive UTC text)."""
    if dialect == "sqlite":
        return f"substr({column}, 1, 10)"
    if dialect == DUCKDB:
        return f"strftime({column}, '%Y-%m-%d')"
    return f"to_char(timezone('UTC', {column}), 'YYYY-MM-DD')"


def _hour(column: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"CAST(substr({column}, 12, 2) AS INTEGER)"
    if dialect == DUCKDB:
        return f"CAST(hour({column}) AS INTEGER)"
    return f"CAST(extract(hour FROM timezone('UTC', {column})) AS INTEGER)"


def _epoch(column: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"CAST(strftime('%s', {column}) AS INTEGER)"
    if dialect == DUCKDB:
        return f"CAST(floor(epoch({column})) AS BIGINT)"
    return f"CAST(floor(extract(epoch FROM {column})) AS BIGINT)"


def _param(column: str, path: Sequence[str], dialect: str) -> str:
    """A scalar of an entry's canonical content (joined as ``c``) as text."""
    if dialect == "sqlite":
        return f"json_extract(CAST({column} AS TEXT), '$.{'.'.join(path)}')"
    if dialect == DUCKDB:
        return f"json_extract_string(decode({column}), '$.{'.'.join(path)}')"
    return f"(convert_from({column}, 'UTF8')::jsonb #>> '{{{','.join(path)}}}')"


def _sql(statement: str, *instants: str) -> TextClause:
    """A statement whose named instants are bound as UTC timestamps on either dialect (those
    of ``instants`` it names: a fragment may leave one out)."""
    named = (n for n in instants if f":{n}" in statement)
    return text(statement).bindparams(*(bindparam(n, type_=UTCDateTime()) for n in named))


def _parse_day(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)


def _utc(value: Any) -> datetime:
    """An instant read through ``text()``: text on SQLite, aware on PostgreSQL."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Entry:
    id: int
    user_id: int | None
    agency_id: int | None
    agreement_id: int | None
    at: datetime


def _entries(session: Session, where: str, params: dict[str, Any], *instants: str) -> list[_Entry]:
    """External reads matching ``where`` (over ``e``), oldest first."""
    rows = session.execute(
        _sql(
            "SELECT e.id, e.user_id, e.agency_id, e.agreement_id, e.at FROM audit_entries e "  # noqa: S608 - fixed fragments
            f"WHERE {_EXTERNAL} AND {where} ORDER BY e.at, e.id",
            *instants,
        ),
        params,
    ).all()
    return [_Entry(int(r[0]), r[1], r[2], r[3], _utc(r[4])) for r in rows]


def _draft(
    detector: str,
    key: str,
    rule: str,
    threshold: float,
    entries: Sequence[_Entry],
    *,
    user_id: int | None = None,
    agency_id: int | None = None,
) -> FlagDraft:
    """A flag about the entries' one user (and agency, agreement) where they share one."""
    users = {e.user_id for e in entries}
    agencies = {e.agency_id for e in entries}
    agreements = {e.agreement_id for e in entries}
    return FlagDraft(
        detector=detector,
        dedupe_key=key,
        rule=rule,
        threshold=threshold,
        subject_user_id=user_id
        if user_id is not None
        else (users.pop() if len(users) == 1 else None),
        subject_agency_id=agency_id
        if agency_id is not None
        else (agencies.pop() if len(agencies) == 1 else None),
        subject_agreement_id=agreements.pop() if len(agreements) == 1 else None,
        entry_ids=tuple(e.id for e in entries[:MAX_ENTRIES_PER_FLAG]),
        raised_at=max(e.at for e in entries),
    )


def _day_entries(session: Session, user_id: int, day: str, extra: str = "TRUE") -> list[_Entry]:
    start = _parse_day(day)
    dialect = _dialect(session)
    # By user and instant (``by_actor``); a column store scans the instants.
    by_user = (
        "TRUE"
        if dialect == DUCKDB
        else f"e.id IN ({by_actor.entries_by_sql(dialect, 'user_id', '(:u)', 'd0', 'd1')})"
    )
    return _entries(
        session,
        f"{by_user} AND e.user_id = :u AND e.at >= :d0 AND e.at < :d1 AND {extra}",
        {"u": user_id, "d0": start, "d1": start + timedelta(days=1)},
        "d0",
        "d1",
    )


def _bounds(period: DetectionPeriod | None) -> DetectionPeriod:
    return period or EVERYTHING


def _since(moment: datetime, delta: timedelta) -> datetime:
    return (
        max(EVERYTHING.start, moment - delta)
        if moment > EVERYTHING.start + delta
        else EVERYTHING.start
    )


# ---------------------------------------------------------------------------------------------
# Volume bursts and off-hours use, against the user's own history
# ---------------------------------------------------------------------------------------------


def _robust_z(value: float, history: Sequence[float]) -> float:
    """(value - median) / (1.4826 MAD), the scale floored at one query."""
    median = statistics.median(history)
    mad = statistics.median(abs(h - median) for h in history)
    return (value - median) / max(1.4826 * mad, 1.0)


def _midnight(moment: datetime) -> bool:
    return moment == datetime.combine(moment.date(), datetime.min.time(), moment.tzinfo)


def _not_in_user_days(dialect: str) -> str:
    """FROM-clause item ``x`` (column entry_id): the entries the per-day rows do not count,
    those not integrated yet and those integrated past the facts' watermark ``:wm``. Few (the
    log's tail), and disjoint: an entry leaves the queue in the transaction that gives it its
    leaf."""
    past = "SELECT entry_id FROM audit_leaves WHERE leaf_index >= :wm"
    if dialect == "sqlite":
        # Its single writer integrates in id order: the pending entries are above the last leaf.
        pending = (
            "SELECT id FROM audit_entries WHERE id > coalesce((SELECT entry_id FROM "
            "audit_leaves ORDER BY leaf_index DESC LIMIT 1), 0)"
        )
    else:
        pending = "SELECT entry_id FROM audit_pending"
    return f"({past} UNION ALL {pending}) AS x"


def _history_sql(
    session: Session,
    dialect: str,
    period: DetectionPeriod | None,
    since: datetime,
    least: int,
    busy: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The statement (columns user_id, day, reads, hours) and its parameters of the busy users'
    (``_busy_users``) external reads per UTC day in [since, period start): rows of (user, day,
    reads, mask of hours worked), more than one row for a day where the sources overlap. Whole
    days are read from the per-day rows the facts refresh keeps, plus the few entries those rows
    do not count yet, in one statement (one snapshot); a window that does not start and end at
    midnight is read from the entries. ``busy``: the busy users' condition on ``e`` when the
    caller read them already (``_busy_ids``)."""
    p = _bounds(period)
    day, hour = _day("e.at", dialect), _hour("e.at", dialect)
    busy = _busy_users(dialect, period) if busy is None else busy
    params: dict[str, Any] = {"h": since, "start": p.start, "end": p.end, "least": least}
    if _midnight(since) and _midnight(p.start):
        # The watermark share-locked (PostgreSQL) until the transaction ends: no refresh can add
        # to the rows past it meanwhile (a refresh claims it FOR UPDATE before writing). Read
        # apart and bound, so that the planner knows the tail is short (a subquery's value is
        # unknown at planning: it hashed the whole window's entries).
        read = session.execute(
            _locked(select(FactsWatermark.size).where(FactsWatermark.name == WATERMARK), dialect)
        ).scalar()
        params["wm"] = int(read or 0)
        statement = (
            "SELECT u.user_id AS user_id, u.day AS day, u.reads AS reads, u.hours AS hours "  # noqa: S608
            f"FROM oversight_user_days u WHERE u.agency_id IN {_OUTSIDE} "
            f"AND u.day >= :dh AND u.day < :ds AND {busy.replace('e.user_id', 'u.user_id', 1)} "
            f"UNION ALL SELECT e.user_id, {day}, COUNT(*), SUM(DISTINCT 1 << {hour}) "
            f"FROM {_not_in_user_days(dialect)} JOIN audit_entries e ON e.id = x.entry_id "
            f"WHERE {_EXTERNAL} AND e.at >= :h AND e.at < :start AND {busy} "
            f"GROUP BY e.user_id, {day}"
        )
        params |= {"dh": f"{since:%Y-%m-%d}", "ds": f"{p.start:%Y-%m-%d}"}
    else:
        statement = (
            f"SELECT e.user_id AS user_id, {day} AS day, COUNT(*) AS reads, "  # noqa: S608
            f"SUM(DISTINCT 1 << {hour}) AS hours FROM audit_entries e "
            f"WHERE {_outside_in('e', dialect, 'h', 'start')} "
            f"AND {_EXTERNAL} AND {busy} GROUP BY e.user_id, {day}"
        )
    return statement, params


def _history_days(
    session: Session,
    dialect: str,
    period: DetectionPeriod | None,
    since: datetime,
    least: int,
    busy: str | None = None,
) -> dict[int, dict[str, tuple[int, int]]]:
    """Per busy user and UTC day in [since, period start) (``_history_sql``): (external reads,
    mask of hours worked)."""
    statement, params = _history_sql(session, dialect, period, since, least, busy)
    days: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for user_id, d, n, mask in session.execute(_sql(statement, "h", "start", "end"), params).all():
        reads, hours = days[int(user_id)].get(str(d), (0, 0))
        days[int(user_id)][str(d)] = (reads + int(n), hours | int(mask))
    return days


def _busy_select(dialect: str) -> str:
    """The users (column user_id) with at least ``:least`` external reads on some UTC day of
    ``:start`` to ``:end``, a user once a day."""
    day = _day("b.at", dialect)
    return (
        "SELECT b.user_id FROM audit_entries b WHERE "  # noqa: S608 - constants
        + _outside_in("b", dialect)
        + " AND "
        + _external("b")
        + f" GROUP BY b.user_id, {day} HAVING COUNT(*) >= :least"
    )


def _busy_ids(session: Session, period: DetectionPeriod, least: int) -> str | None:
    """``_busy_users``'s condition on ``e`` as a list of the users, read once by one statement
    (None: no user is busy): a statement that names the condition in several places evaluated
    the day's aggregate once each (``off_hours``: four times, each probing the day's entries)."""
    busy = _busy_select(_dialect(session))
    users = session.execute(
        _sql(f"SELECT DISTINCT x.user_id FROM ({busy}) AS x", "start", "end"),  # noqa: S608
        {"start": period.start, "end": period.end, "least": least},
    ).scalars()
    ids = sorted(int(u) for u in users)
    return f"e.user_id IN ({', '.join(map(str, ids))})" if ids else None


def _busy_users(dialect: str, period: DetectionPeriod | None) -> str:
    """SQL condition on ``e``: the user made at least ``:least`` external reads on some UTC
    day of the period (``:start``, ``:end``). Only such a user can fire a per-day detector
    that needs that many reads a day, so only their history is read: a daily run reads the
    history of that day's busy users, not of every user (all of them for a whole-store run)."""
    if period is None:
        return "TRUE"
    busy = _busy_select(dialect)
    if dialect == "postgresql":
        # Read once (an InitPlan). As IN (subquery), a day past the statistics (the day just
        # appended) was estimated at one row, and the planner ran the aggregate again for each
        # of the day's entries: 0.76 s instead of 14 ms at 1M (docs/benchmarks.md, h12lite4).
        return f"e.user_id = ANY(ARRAY({busy}))"
    return f"e.user_id IN ({busy})"


def _busy(
    session: Session,
    dialect: str,
    period: DetectionPeriod | None,
    p: DetectionPeriod,
    minimum: int,
) -> str | None:
    """The users a detector judges: over the whole store ``_busy_users``' condition, over a
    period the period's busy users read once as a list (``_busy_ids``; None: none)."""
    return _busy_users(dialect, period) if period is None else _busy_ids(session, p, minimum)


def volume_burst(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """A user's UTC day of external reads far above their own active days before it."""
    t, p, dialect = limits or Thresholds(), _bounds(period), _dialect(session)
    day = _day("e.at", dialect)
    # A period's busy users read once (``_busy_ids``; three statements' conditions). None: no
    # day can fire.
    busy = _busy(session, dialect, period, p, t.burst_min_queries)
    if busy is None:
        return []
    earlier = _history_days(
        session, dialect, period, _since(p.start, t.burst_history), t.burst_min_queries, busy
    )
    rows = session.execute(
        _sql(
            f"SELECT e.user_id, {day} AS d, COUNT(*) FROM audit_entries e "  # noqa: S608
            f"WHERE {_outside_in('e', dialect)} AND {_EXTERNAL} "
            f"AND {busy} GROUP BY e.user_id, {day}",
            "start",
            "end",
        ),
        {"start": p.start, "end": p.end, "least": t.burst_min_queries},
    ).all()
    per_user: dict[int, dict[str, int]] = defaultdict(dict)
    for user_id, days_before in earlier.items():
        for d, (n, _hours) in days_before.items():
            per_user[user_id][d] = n
    for user_id, d, n in rows:
        per_user[int(user_id)][str(d)] = per_user[int(user_id)].get(str(d), 0) + int(n)
    first = f"{p.start:%Y-%m-%d}"
    drafts: list[FlagDraft] = []
    for user_id, days in sorted(per_user.items()):
        # The user's days in order: a day's history is a slice found by bisection, not a
        # scan of every day of the user (quadratic in the days of a year-long run).
        keys = sorted(days)
        for at, d in enumerate(keys):
            n = days[d]
            if d < first or n < t.burst_min_queries:
                continue
            lo = f"{_parse_day(d) - t.burst_history:%Y-%m-%d}"
            history = [float(days[k]) for k in keys[bisect.bisect_left(keys, lo) : at]]
            if len(history) < t.burst_min_history_days:
                continue
            z = _robust_z(n, history)
            if z < t.burst_z:
                continue
            median = statistics.median(history)
            rule = (
                f"a user made {n} external reads on {d} (UTC), a robust z of {z:.1f} against the "
                f"median {median:g} of their {len(history)} active days in the "
                f"{t.burst_history.days} days before (fires at z >= {t.burst_z:g}, at least "
                f"{t.burst_min_queries} reads, at least {t.burst_min_history_days} days of history)"
            )
            entries = _day_entries(session, user_id, d)
            drafts.append(_draft(BURST, f"user:{user_id}:day:{d}", rule, t.burst_z, entries))
    return drafts


def _day_number(day: str, dialect: str) -> str:
    """The UTC day 'YYYY-MM-DD' ``day`` as a count of days (SQL): consecutive days differ by one."""
    if dialect == "sqlite":
        return f"CAST(julianday({day}) AS INTEGER)"
    return f"(CAST({day} AS DATE) - DATE '1970-01-01')"


def _near(hour: int) -> int:
    """The mask of the hours within an hour of ``hour`` (bit h for hour h; wraps at midnight)."""
    return sum(1 << ((hour + k) % 24) for k in (-1, 0, 1))


def _day_key(column: str, dialect: str) -> str:
    """The UTC day of an instant as cheap to group by as the engine has (``_day_text`` makes it
    the 'YYYY-MM-DD' of ``_day``): formatting every entry's day cost DuckDB seconds at 10M."""
    if dialect == "sqlite":
        return _day(column, dialect)
    if dialect == DUCKDB:
        return f"CAST({column} AS DATE)"
    return f"CAST(timezone('UTC', {column}) AS date)"


def _day_text(key: str, dialect: str) -> str:
    if dialect == "sqlite":
        return key
    if dialect == DUCKDB:
        return f"strftime({key}, '%Y-%m-%d')"
    return f"to_char({key}, 'YYYY-MM-DD')"


def _bit_or(mask: str, dialect: str) -> str:
    """The aggregate OR of a column of hour masks (SQLite has no bit_or: each bit's MAX)."""
    if dialect == "sqlite":
        return " + ".join(f"MAX({mask} & {1 << h})" for h in range(24))
    return f"bit_or({mask})"


def _packed(window: int) -> tuple[int, int]:
    """(bits a count takes, counts a BIGINT holds): a count of days in a window of ``window``
    days, 24 of them (one per hour) packed into as few integers as they fit in."""
    bits = max(1, int(window).bit_length())
    return bits, 62 // bits


def _off_hours_sql(dialect: str, busy: str, history: str, window: int, listed: bool = False) -> str:
    """The days that fire: (user, day, the user's active days in the ``window`` days before,
    the mask of the day's unusual hours, its reads at those hours).

    A day with at least ``:least`` reads is judged against the user's active days in the
    ``window`` days before it, at least ``:min_days`` of them: an hour it worked is unusual
    where under ``:share`` of those days had a read within an hour of it, and the day fires
    where its unusual hours hold at least ``:least`` reads. Per (user, day), never per hour
    (at 10M entries on DuckDB a row per (user, day, hour) was 7.3M rows; 24 window aggregates,
    one per hour, took 21 s): the period's days as masks of hours worked (``p``), each day's
    history by window frames over the user's days (``b``: the period's and the history's,
    columns user_id, day, hours; a day the history gives twice, the per-day rows and the tail
    not in them, is one day), its 24 counts of days with a read within an hour of each hour
    packed into a few integers summed by the frame. Only the days with an unusual hour worked
    (``c``) have their reads at those hours counted, from the entries again. The share compares
    as Python compares it, a double quotient.

    ``listed``: ``busy`` lists the period's busy users (``_busy_ids``), who are the users of a
    day with at least ``:least`` reads (``j``), so their rows are not tested against ``j`` again
    (a nested loop of the day's users against ``j``: 1460 x 730 rows at 10M, 0.4 s on a loaded
    machine); and the days with an unusual hour worked are returned (user, day, days before,
    mask), their reads at those hours not counted (the caller counts them from the entries it
    reads for the flag)."""
    member = "TRUE" if listed else "p.u IN (SELECT u FROM j)"
    history_member = "TRUE" if listed else "y.user_id IN (SELECT u FROM j)"
    key, hour = _day_key("e.at", dialect), _hour("e.at", dialect)
    entries = (
        f"SELECT e.user_id AS u, {key} AS k, {hour} AS h FROM audit_entries e "  # noqa: S608
        f"WHERE {_outside_in('e', dialect)} AND {_EXTERNAL} AND {busy}"
    )
    bits, per = _packed(window)
    words = range((24 + per - 1) // per)
    packed = ", ".join(
        " + ".join(
            f"(CASE WHEN (b.hours & {_near(h)}) <> 0 THEN {1 << bits * (h - i * per)} ELSE 0 END)"
            for h in range(i * per, min(24, (i + 1) * per))
        )
        + f" AS p{i}"
        for i in words
    )
    sums = ", ".join(f"CAST(SUM(b.p{i}) OVER x AS BIGINT) AS s{i}" for i in words)
    odd = " + ".join(
        f"(CASE WHEN (p.hours & {1 << h}) <> 0 AND CAST((w.s{h // per} >> {bits * (h % per)}) "
        f"& {(1 << bits) - 1} AS DOUBLE PRECISION) / w.days < :share THEN {1 << h} ELSE 0 END)"
        for h in range(24)
    )
    return (
        f"WITH g AS (SELECT r.u AS u, r.k AS k, COUNT(*) AS total, "  # noqa: S608
        f"{_bit_or('(1 << r.h)', dialect)} AS hours FROM ({entries}) AS r GROUP BY r.u, r.k), "
        f"p AS (SELECT g.u AS u, g.k AS k, {_day_text('g.k', dialect)} AS d, g.total AS total, "
        "g.hours AS hours FROM g), "
        "j AS (SELECT DISTINCT p.u AS u FROM p WHERE p.total >= :least), "
        f"a AS (SELECT p.u AS u, p.d AS d, p.hours AS hours FROM p WHERE {member} "
        f"UNION ALL SELECT y.user_id, y.day, y.hours FROM ({history}) AS y "
        f"WHERE {history_member}), "
        f"b AS (SELECT a.u AS u, a.d AS d, {_day_number('a.d', dialect)} AS dn, "
        f"{_bit_or('a.hours', dialect)} AS hours FROM a GROUP BY a.u, a.d), "
        f"q AS (SELECT b.u AS u, b.d AS d, b.dn AS dn, {packed} FROM b), "
        f"w AS (SELECT b.u AS u, b.d AS d, COUNT(*) OVER x AS days, {sums} "
        f"FROM q AS b WINDOW x AS (PARTITION BY b.u ORDER BY b.dn RANGE BETWEEN {int(window)} "
        "PRECEDING AND 1 PRECEDING)), "
        f"c AS (SELECT p.u AS u, p.k AS k, p.d AS d, w.days AS days, {odd} AS odd "
        "FROM p JOIN w ON w.u = p.u AND w.d = p.d "
        "WHERE p.total >= :least AND w.days >= :min_days) "
        + (
            f"SELECT c.u, c.d, c.days, c.odd, COUNT(*) FROM c JOIN ({entries}) AS r "  # noqa: S608
            f"ON r.u = c.u AND r.k = c.k WHERE c.odd <> 0 AND ((c.odd >> r.h) & 1) = 1 "
            "GROUP BY c.u, c.d, c.days, c.odd HAVING COUNT(*) >= :least"
            if not listed
            else "SELECT c.u, c.d, c.days, c.odd FROM c WHERE c.odd <> 0"
        )
    )


def off_hours(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """A user's reads at hours they almost never work, by their own history.

    The history counts active days, not reads: an hour (plus or minus one) the user worked in on
    under ``off_hours_share`` of their active days in the window before is unusual for them. One
    earlier night does not make nights usual (it is one day), as it would counting reads.
    """
    t, p, dialect = limits or Thresholds(), _bounds(period), _dialect(session)
    since = _since(p.start, t.off_hours_history)
    # The window in whole days as a day string's: the days from (day - history)'s date on.
    window = math.ceil(t.off_hours_history / timedelta(days=1))
    # A period's busy users read once, as a list (``_busy_ids``): the statement names them four
    # times. None busy: no day can fire.
    busy = _busy(session, dialect, period, p, t.off_hours_min_queries)
    if busy is None:
        return []
    history, params = _history_sql(session, dialect, period, since, t.off_hours_min_queries, busy)
    # Each day's history is counted in the database (at 10M on DuckDB sending every user's
    # day to Python took 51 s): only the days that fire come back. A period's days with an
    # unusual hour worked have their reads at those hours counted from their entries here,
    # read for the flag anyway: joined to the period's entries again in the statement, the
    # planner (the day past its statistics, every set taken for a row) sorted the users' days
    # against all the day's entries before the few days with an unusual hour (at 10M 280,000
    # rows spilled to disk, 1.8 s of a 2.8 s statement).
    rows = session.execute(
        _sql(
            _off_hours_sql(dialect, busy, history, window, listed=period is not None),
            "h",
            "start",
            "end",
        ),
        params | {"min_days": t.off_hours_min_days, "share": float(t.off_hours_share)},
    ).all()
    drafts: list[FlagDraft] = []
    for user_id, d, before, mask, *count in sorted(rows, key=lambda r: (int(r[0]), str(r[1]))):
        odd = {h for h in range(24) if int(mask) >> h & 1}
        entries = [e for e in _day_entries(session, int(user_id), d) if e.at.hour in odd]
        n = int(count[0]) if count else sum(p.start <= e.at < p.end for e in entries)
        if n < t.off_hours_min_queries:
            continue
        rule = (
            f"a user made {n} external reads on {d} at UTC hours {sorted(odd)}, hours "
            f"(plus or minus one) they worked in on under {t.off_hours_share:.0%} of their "
            f"{int(before)} active days in the {t.off_hours_history.days} days before "
            f"(fires at {t.off_hours_min_queries} such reads a day, with at least "
            f"{t.off_hours_min_days} active days of history)"
        )
        drafts.append(
            _draft(OFF_HOURS, f"user:{user_id}:day:{d}", rule, t.off_hours_share, entries)
        )
    return drafts


# ---------------------------------------------------------------------------------------------
# Enumeration
# ---------------------------------------------------------------------------------------------


def enumeration_wildcard(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """Name searches that are a prefix or a pattern, not a name: one short word, or * % ?."""
    t, p, dialect = limits or Thresholds(), _bounds(period), _dialect(session)
    name = "n.name"
    pattern = (
        f"(length({name}) <= :letters AND length(replace({name}, ' ', '')) = length({name})) "
        f"OR replace(replace(replace({name}, '*', ''), '%', ''), '?', '') <> {name}"
    )
    # The name read from the content once per entry: on PostgreSQL "OFFSET 0" keeps the
    # planner from pulling the subquery up, which would parse the document again for each of
    # the pattern's six uses of the name (10 s of 1M entries' 13 detectors, 2026-12-06).
    fence = "OFFSET 0" if dialect == "postgresql" else ""
    read = (
        f"SELECT trim({_param('e.content', ('params', 'query', 'name'), dialect)}) AS name {fence}"
    )
    entries = _entries(
        session,
        f"{_outside_in('e', dialect)} AND e.action = 'person.search' AND EXISTS (SELECT 1 "  # noqa: S608 - fixed fragments
        f"FROM ({read}) AS n WHERE {name} IS NOT NULL AND ({pattern}))",
        {"start": p.start, "end": p.end, "letters": t.wildcard_letters},
        "start",
        "end",
    )
    rule = (
        "a name search that is a pattern, not a name: one word of at most "
        f"{t.wildcard_letters} letters (a prefix matches everyone it begins), or *, % or ?"
    )
    return [
        _draft(WILDCARD, f"entry:{e.id}", rule, float(t.wildcard_letters), [e]) for e in entries
    ]


def enumeration_sequential(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """A user fetching runs of consecutive person ids in one UTC day (gaps and islands)."""
    t, p, dialect = limits or Thresholds(), _bounds(period), _dialect(session)
    day = _day("f.at", dialect)
    rows = session.execute(
        _sql(
            f"""
            WITH g AS (
                SELECT f.user_id, {day} AS d, f.person_id, MIN(f.entry_id) AS entry_id
                FROM oversight_access_facts f
                WHERE f.action = 'person.get' AND f.at >= :start AND f.at < :end
                  AND f.user_id IS NOT NULL AND {_kept(session)}
                GROUP BY f.user_id, {day}, f.person_id
            ), r AS (
                SELECT g.*, g.person_id - ROW_NUMBER() OVER (
                    PARTITION BY g.user_id, g.d ORDER BY g.person_id) AS island FROM g
            ), s AS (
                SELECT r.*, COUNT(*) OVER (PARTITION BY r.user_id, r.d, r.island) AS run FROM r
            )
            SELECT user_id, d, island, entry_id FROM s WHERE run >= :run
            ORDER BY user_id, d, island, person_id
            """,  # noqa: S608 - fixed fragments
            "start",
            "end",
        ),
        {"start": p.start, "end": p.end, "run": t.sequential_run},
    ).all()
    runs: dict[tuple[int, str, int], list[int]] = defaultdict(list)
    for user_id, d, island, entry_id in rows:
        runs[(int(user_id), str(d), int(island))].append(int(entry_id))
    drafts = []
    for (user_id, d, _island), ids in sorted(runs.items()):
        entries = _by_ids(session, ids)
        rule = (
            f"a user fetched {len(ids)} persons with consecutive ids on {d} (UTC): walking the "
            f"identifiers, not looking someone up (fires at a run of {t.sequential_run})"
        )
        key = f"user:{user_id}:day:{d}:from:{min(ids)}"
        drafts.append(_draft(SEQUENTIAL, key, rule, float(t.sequential_run), entries))
    return drafts


def _by_ids(session: Session, ids: Iterable[int]) -> list[_Entry]:
    wanted = sorted(set(ids))
    found: list[_Entry] = []
    if _dialect(session) == DUCKDB:
        # One statement, the ids one list literal (integers: ours, not input): each statement
        # scans the entries (no index to probe), so not one per 500 ids (at 1M never_charged's
        # flags' entries took 566 s in 500s); not a bound list, which DuckDB's Python client
        # converts element by element (150,000 ids: 20 s, the literal 0.1 s).
        if not wanted:
            return []
        listed = ",".join(str(int(i)) for i in wanted)
        found = _entries(session, f"e.id IN (SELECT unnest(CAST('[{listed}]' AS BIGINT[])))", {})
        return sorted(found, key=lambda e: (e.at, e.id))
    for start in range(0, len(wanted), 500):
        chunk = ",".join(str(int(i)) for i in wanted[start : start + 500])
        found += _entries(session, f"e.id IN ({chunk})", {})
    return sorted(found, key=lambda e: (e.at, e.id))


def enumeration_zero_hits(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """A user's UTC day of searches mostly returning nobody: fishing for who exists."""
    t, p, dialect = limits or Thresholds(), _bounds(period), _dialect(session)
    day = _day("e.at", dialect)
    # Returned nobody: no access fact (facts are keyed by entry). Facts exist only for
    # integrated entries, so only those are judged.
    empty = "NOT EXISTS (SELECT 1 FROM oversight_access_facts f WHERE f.entry_id = e.id)"
    leaf = "EXISTS (SELECT 1 FROM audit_leaves l WHERE l.entry_id = e.id)"
    rows = session.execute(
        _sql(
            f"SELECT e.user_id, {day} AS d, COUNT(*), SUM(CASE WHEN {empty} THEN 1 ELSE 0 END) "  # noqa: S608
            f"FROM audit_entries e WHERE {_outside_in('e', dialect)} AND {_EXTERNAL} "
            f"AND e.kind = 'search' AND {leaf} GROUP BY e.user_id, {day} "
            "HAVING COUNT(*) >= :n",
            "start",
            "end",
        ),
        {"start": p.start, "end": p.end, "n": t.zero_hit_min_queries},
    ).all()
    drafts = []
    for user_id, d, n, zero in sorted(rows, key=lambda r: (r[0], r[1])):
        share = int(zero) / int(n)
        if share < t.zero_hit_share:
            continue
        entries = _day_entries(
            session, int(user_id), str(d), f"e.kind = 'search' AND {leaf} AND {empty}"
        )
        rule = (
            f"{zero} of a user's {n} external searches on {d} (UTC) returned nobody "
            f"({share:.0%}): fishing for who is in the records (fires at "
            f"{t.zero_hit_share:.0%} of at least {t.zero_hit_min_queries} searches a day)"
        )
        drafts.append(_draft(ZERO_HITS, f"user:{user_id}:day:{d}", rule, t.zero_hit_share, entries))
    return drafts


def enumeration_date_sweep(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """A user's UTC day of arrest searches by date range alone: reading the records by date.

    The read service refuses an outside agency's search without an OTN, incident or docket
    number, so the attempts are mostly refusals (``GET /api/v1/arrests`` refused, its query in
    the entry); an answered one would be an external read. Both count.
    """
    t, p, dialect = limits or Thresholds(), _bounds(period), _dialect(session)
    day = _day("e.at", dialect)

    def given(*path: str) -> str:
        return f"{_param('e.content', path, dialect)} IS NOT NULL"

    def by_date(*prefix: str) -> str:
        ranged = f"({given(*prefix, 'arrested_from')} OR {given(*prefix, 'arrested_to')})"
        named = " OR ".join(
            given(*prefix, n) for n in ("otn", "incident_number", "docket_number", "statute")
        )
        return f"{ranged} AND NOT ({named})"

    outside_users = (
        "(SELECT u.id FROM users u JOIN agencies a ON a.id = u.agency_id WHERE a.kind = 'external')"
    )
    answered = f"({_EXTERNAL} AND e.action = 'arrest.search')"
    refused = (
        f"(e.kind = 'refused' AND e.action LIKE 'GET %/arrests' AND e.user_id IN {outside_users})"
    )
    if dialect == DUCKDB:
        # A column store scans the instants: no index by agency or user to go through.
        within = "e.at >= :start AND e.at < :end"
    else:
        # The period's entries of outside agencies (answered) and of outside agencies' users
        # (refused), by agency or user and instant (``by_actor``): there is no index on the
        # instant alone, so ``e.at`` alone scanned the whole log (3.5 s of the 10M daily run,
        # 2026-12-07).
        agencies = by_actor.entries_by_sql(dialect, "agency_id", _OUTSIDE, "start", "end")
        users = by_actor.entries_by_sql(dialect, "user_id", outside_users, "start", "end")
        within = f"e.id IN ({agencies} UNION {users}) AND e.at >= :start AND e.at < :end"
    # The arrest searches first, their content parsed after (fenced on PostgreSQL: its planner
    # put the six content tests before the cheap ones and parsed every external read's).
    fence = "OFFSET 0" if dialect == "postgresql" else ""
    rows = session.execute(
        _sql(
            f"SELECT e.user_id, {day} AS d, e.id, e.agency_id, e.at FROM ("  # noqa: S608 - fixed fragments
            "SELECT e.user_id, e.id, e.agency_id, e.at, e.content FROM audit_entries e "
            f"WHERE {within} AND ({answered} OR {refused}) {fence}) e "
            f"WHERE {by_date('params', 'query')} ORDER BY e.user_id, e.at, e.id",
            "start",
            "end",
        ),
        {"start": p.start, "end": p.end},
    ).all()
    days: dict[tuple[int, str], list[_Entry]] = defaultdict(list)
    for user_id, d, entry_id, agency_id, at in rows:
        days[(int(user_id), str(d))].append(
            _Entry(int(entry_id), user_id, agency_id, None, _utc(at))
        )
    drafts = []
    for (user_id, d), entries in sorted(days.items()):
        if len(entries) < t.date_sweep_queries:
            continue
        rule = (
            f"a user made {len(entries)} arrest searches (answered or refused) on {d} (UTC) "
            "by date range with no case identifier or statute: reading the records by date "
            f"(fires at {t.date_sweep_queries} a day)"
        )
        key = f"user:{user_id}:day:{d}"
        drafts.append(_draft(DATE_SWEEP, key, rule, float(t.date_sweep_queries), entries))
    return drafts


# ---------------------------------------------------------------------------------------------
# One case for many people; one person for many users
# ---------------------------------------------------------------------------------------------


def _in_case(column: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM arrests a JOIN involvements i ON i.arrest_id = a.id WHERE "  # noqa: S608
        f"i.person_id = f.person_id AND a.{column} IN (f.case_reference, "
        "upper(f.case_reference)))"
    )


def _case_key(agency_id: int, ref: str) -> str:
    """The finding's key; a long reference by its digest (keys hold 200 characters)."""
    name = ref if len(ref) <= 120 else "sha256:" + hashlib.sha256(ref.encode()).hexdigest()
    return f"agency:{agency_id}:case:{name}"


def shared_case_reference(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """One case reference cited by an agency for many persons who are not in that case."""
    t, p = limits or Thresholds(), _bounds(period)
    unrelated = " AND ".join(
        f"NOT {_in_case(c)}" for c in ("otn", "incident_number", "docket_number")
    )
    # One pass over the window's facts: each (agency, reference) counts its distinct persons
    # by window functions (ascending plus descending dense rank, less one), so no self-join
    # probes the facts once per candidate; relatedness is probed only for the facts of a
    # reference over the threshold (nearly every reference is cited for its own one or two).
    window = (
        f"f.agency_id IN {_OUTSIDE} AND f.case_reference IS NOT NULL AND f.at >= :since "
        "AND f.at < :end"
    )
    source = "oversight_access_facts f"
    if period is not None:
        # Only a reference cited in the period can fire (its last citation is in it): the
        # window reads those references' citations by their index (references first: CROSS
        # JOIN keeps SQLite's order), not every citation of the window (a daily run would
        # otherwise sort 30 days of facts for one day's).
        source = (
            "(SELECT DISTINCT g.case_reference AS ref FROM oversight_access_facts g "  # noqa: S608
            f"WHERE g.agency_id IN {_OUTSIDE} AND g.at >= :start AND g.at < :end "
            "AND g.case_reference IS NOT NULL) r CROSS JOIN oversight_access_facts f"
        )
        window += " AND f.case_reference = r.ref"
    ref = "PARTITION BY f.agency_id, f.case_reference"
    # Each unrelated person once, by the first fact citing the reference for them (the window
    # keeps one row per person, so a reference cited for millions never reaches Python whole),
    # streamed in order of (agency, reference): one reference's rows in memory at a time. The
    # entry's user, agency, agreement and instant are the fact's own (copied from the entry).
    result = session.execute(
        _sql(
            f"""
            SELECT d.agency_id, d.case_reference, d.person_id, d.entry_id, d.user_id,
                   d.agreement_id, d.at
            FROM (
                SELECT f.agency_id, f.case_reference, f.person_id, f.entry_id, f.user_id,
                       f.agreement_id, f.at,
                       ROW_NUMBER() OVER (PARTITION BY f.agency_id, f.case_reference, f.person_id
                                          ORDER BY f.at, f.entry_id) AS nth
                FROM (
                    SELECT f.agency_id, f.case_reference, f.person_id, f.entry_id, f.user_id,
                    f.agreement_id, f.at,
                    DENSE_RANK() OVER ({ref} ORDER BY f.person_id)
                    + DENSE_RANK() OVER ({ref} ORDER BY f.person_id DESC) - 1 AS persons,
                    MAX(f.at) OVER ({ref}) AS last
                    FROM {source} WHERE {window}
                ) f
                WHERE f.persons >= :k AND f.last >= :start AND {_kept(session)} AND {unrelated}
            ) d
            WHERE d.nth = 1
            ORDER BY d.agency_id, d.case_reference, d.at, d.entry_id
            """,  # noqa: S608 - fixed fragments
            "since",
            "start",
            "end",
        ),
        {
            "since": _since(p.start, t.shared_case_window),
            "start": p.start,
            "end": p.end,
            "k": t.shared_case_persons,
        },
        execution_options={"yield_per": 10_000},
    )
    found: list[tuple[int, str, FlagDraft]] = []
    # Each reference's rows come in order of (instant, entry), one a person: its persons are
    # its rows, its entries in the flag's order are their first rows (an entry's rows are
    # adjacent), the last row's instant the latest; no entry object per row (at 10M 1.1M rows,
    # 99,998 flags: building and sorting them cost more than their statement's fetch).
    for (agency_key, reference_key), group in groupby(result, key=itemgetter(0, 1)):
        agency_id, reference = int(agency_key), str(reference_key)
        count = 0
        ids: dict[int, None] = {}
        users: set[Any] = set()
        agreements: set[Any] = set()
        last: Any = None
        for row in group:
            count += 1
            entry_id = int(row[3])
            if entry_id not in ids:
                ids[entry_id] = None
                users.add(row[4])
                agreements.add(row[5])
            last = row[6]
        if count < t.shared_case_persons:
            continue
        # The window ends with the flag's last entry: the finding is the same at every run.
        rule = (
            f"case reference {reference!r} was cited for {count} persons who are not in "
            f"that case, within {t.shared_case_window.days} days (fires at "
            f"{t.shared_case_persons} persons)"
        )
        draft = FlagDraft(
            detector=SHARED_CASE,
            dedupe_key=_case_key(agency_id, reference),
            rule=rule,
            threshold=float(t.shared_case_persons),
            subject_user_id=users.pop() if len(users) == 1 else None,
            subject_agency_id=agency_id,
            subject_agreement_id=agreements.pop() if len(agreements) == 1 else None,
            entry_ids=tuple(islice(ids, MAX_ENTRIES_PER_FLAG)),
            raised_at=_utc(last),
        )
        found.append((agency_id, reference, draft))
    return [draft for _, _, draft in sorted(found, key=lambda f: (f[0], f[1]))]


def person_many_users(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """One person looked up by many distinct users in one fixed window."""
    t, p, dialect = limits or Thresholds(), _bounds(period), _dialect(session)
    width = int(t.person_window.total_seconds())
    # Integer division ("/" divides exactly on DuckDB).
    bucket = f"({_epoch('f.at', dialect)} {'//' if dialect == DUCKDB else '/'} {width})"
    # Whole windows: start at the window that holds the period's start.
    first = int(p.start.timestamp()) // width * width
    rows = session.execute(
        _sql(
            f"""
            WITH w AS (
                SELECT f.person_id, {bucket} AS b, f.user_id, f.entry_id FROM
                oversight_access_facts f WHERE f.at >= :since AND f.at < :end AND {_kept(session)}
            ), hot AS (
                SELECT person_id, b FROM w GROUP BY person_id, b
                HAVING COUNT(DISTINCT user_id) >= :k
            )
            SELECT w.person_id, w.b, w.entry_id FROM w JOIN hot ON hot.person_id = w.person_id
            AND hot.b = w.b ORDER BY w.person_id, w.b, w.entry_id
            """,  # noqa: S608 - fixed fragments
            "since",
            "end",
        ),
        {"since": datetime.fromtimestamp(first, UTC), "end": p.end, "k": t.person_many_users},
    ).all()
    hits: dict[tuple[int, int], list[int]] = defaultdict(list)
    for person_id, b, entry_id in rows:
        hits[(int(person_id), int(b))].append(int(entry_id))
    drafts = []
    for (person_id, b), ids in sorted(hits.items()):
        entries = _by_ids(session, ids)
        users = len({e.user_id for e in entries})
        opened = datetime.fromtimestamp(b * width, UTC)
        rule = (
            f"person {person_id} was looked up by {users} users within {width // 3600} hours "
            f"(the window from {opened:%Y-%m-%d %H:%M} UTC; fires at {t.person_many_users} users)"
        )
        key = f"person:{person_id}:window:{opened:%Y-%m-%dT%H}"
        drafts.append(_draft(MANY_USERS, key, rule, float(t.person_many_users), entries))
    return drafts


# ---------------------------------------------------------------------------------------------
# Own surname or address
# ---------------------------------------------------------------------------------------------


def own_surname_or_address(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """A user's read returning a person of the user's own surname or at the user's address."""
    p, kept = _bounds(period), _kept(session)
    surname = "u.family_name IS NOT NULL AND lower(p.family_name) = lower(trim(u.family_name))"
    address = (
        "u.address IS NOT NULL AND p.address IS NOT NULL "
        "AND lower(trim(p.address)) = lower(trim(u.address))"
    )
    rows = session.execute(
        _sql(
            f"SELECT f.entry_id, f.person_id, CASE WHEN {surname} THEN 1 ELSE 0 END "  # noqa: S608
            "FROM oversight_access_facts f JOIN users u ON u.id = f.user_id "
            "JOIN persons p ON p.id = f.person_id "
            f"WHERE f.at >= :start AND f.at < :end AND {kept} AND (({surname}) OR ({address})) "
            # Only the few users with a surname or address on file: their facts by index.
            "AND f.user_id IN (SELECT id FROM users WHERE family_name IS NOT NULL "
            "OR address IS NOT NULL) "
            "ORDER BY f.entry_id, f.person_id",
            "start",
            "end",
        ),
        {"start": p.start, "end": p.end},
    ).all()
    entries = {e.id: e for e in _by_ids(session, {int(r[0]) for r in rows})}
    drafts = []
    for entry_id, person_id, by_surname in rows:
        what = "the user's own surname" if by_surname else "the user's own address"
        rule = (
            f"a read returned person {person_id}, who has {what}: looking up oneself, "
            "family or neighbours (any one read fires)"
        )
        key = f"entry:{entry_id}:person:{person_id}"
        drafts.append(_draft(OWN_NAME, key, rule, 1.0, [entries[int(entry_id)]]))
    return drafts


# ---------------------------------------------------------------------------------------------
# Skew against the arrestee population; never charged
# ---------------------------------------------------------------------------------------------

_ATTRIBUTES = SKEW_ATTRIBUTES


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> float:
    """z of the difference of two proportions (pooled); 0 when undefined."""
    if n1 == 0 or n2 == 0:
        return 0.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 0.0 if se == 0 else (x1 / n1 - x2 / n2) / se


def _category_counts(
    session: Session, source: str, params: dict[str, Any], *instants: str
) -> dict[str, dict[tuple[int, str], int]]:
    """Per attribute, the persons of ``source`` by (key, value): its rows and their persons
    read once and grouped once by all the attributes together, each attribute's counts summed
    from those groups here (one grouping of the persons, not one per attribute)."""
    read = ", ".join(f"CAST(p.{a} AS TEXT)" for a in _ATTRIBUTES)
    rows = session.execute(
        _sql(
            f"SELECT s.k, {read}, COUNT(*) FROM ({source}) s JOIN persons p "  # noqa: S608
            f"ON p.id = s.person_id GROUP BY s.k, {read}",
            *instants,
        ),
        params,
    ).all()
    return _by_attribute(rows)


def _by_attribute(rows: Iterable[Sequence[Any]]) -> dict[str, dict[tuple[int, str], int]]:
    """Rows (key, each attribute's value, persons) summed per attribute by (key, value).
    Rows of one person each (a period's pairs: a day's 27,000 at 10M) are counted column by
    column by ``Counter`` (its counting loop is C), not by a Python loop per value (0.2 s)."""
    listed = list(rows)
    found: dict[str, dict[tuple[int, str], int]] = {a: {} for a in _ATTRIBUTES}
    if not listed:
        return found
    columns = list(zip(*listed, strict=True))
    if len(columns) != len(_ATTRIBUTES) + 2:
        raise ValueError("rows of (key, each attribute's value, persons)")
    keys, persons = [int(k) for k in columns[0]], columns[-1]
    ones = all(n == 1 for n in persons)
    for attribute, values in zip(_ATTRIBUTES, columns[1:-1], strict=True):
        counted: Iterable[tuple[tuple[int, Any], int]] = (
            Counter(zip(keys, values, strict=True)).items()
            if ones
            else (((k, v), int(n)) for k, v, n in zip(keys, values, persons, strict=True))
        )
        totals = found[attribute]
        for (k, v), n in counted:
            if v is not None:
                totals[(k, str(v))] = totals.get((k, str(v)), 0) + n
    return found


# The arrestees of [since, end) from the records themselves (key 0), each person once.
ARRESTED = (
    "SELECT DISTINCT 0 AS k, i.person_id FROM involvements i JOIN arrests a ON "
    "a.id = i.arrest_id WHERE i.role = 'arrestee' AND a.arrested_at >= :since "
    "AND a.arrested_at < :end"
)


def arrestees_live(
    session: Session, since: datetime, end: datetime
) -> dict[str, dict[tuple[int, str], int]]:
    """The arrestees of [since, end) by attribute, counted from the records alone."""
    return _category_counts(session, ARRESTED, {"since": since, "end": end}, "since", "end")


def arrestee_counts(
    session: Session, since: datetime, end: datetime
) -> dict[str, dict[tuple[int, str], int]]:
    """The arrestees of [since, end) by attribute (key 0): from the arrestee rows the facts
    refresh keeps (``facts.ArresteeArrest``: each person once, by its first arrest in the
    window, read from the rows' index), except the persons the log's tail may have changed
    (records' writes past the facts' watermark or not integrated yet, arrestee involvements
    past the rows' own), counted live from the records in the same statement. Before the rows
    are first built, everything is counted live (``arrestees_live``)."""
    dialect = _dialect(session)
    # Both watermarks share-locked (PostgreSQL) until the transaction ends: no refresh moves
    # them meanwhile. Read apart and bound, so that the planner knows the tail is short.
    marks = dict(
        session.execute(
            _locked(
                select(FactsWatermark.name, FactsWatermark.size).where(
                    FactsWatermark.name.in_((WATERMARK, ARRESTEES_INVOLVEMENTS, ARRESTEE_DAYS))
                ),
                dialect,
            )
        ).all()
    )
    if ARRESTEES_INVOLVEMENTS not in marks or WATERMARK not in marks:
        return arrestees_live(session, since, end)
    kept = ", ".join(f"r.{a}" for a in _ATTRIBUTES)
    read = ", ".join(f"CAST(p.{a} AS TEXT)" for a in _ATTRIBUTES)
    tail = named_sql(dialect, write_documents_sql(dialect, _not_in_user_days(dialect)))
    named = arrestees_named_sql(f"({tail})")
    if ARRESTEE_DAYS in marks and dialect != DUCKDB and _utc_midnight(since) and _utc_midnight(end):
        return _arrestee_days(session, named, marks, since, end)
    statement = f"""
        WITH stale AS ({named})
        SELECT 0, {", ".join(_ATTRIBUTES)}, COUNT(*) FROM (
            SELECT {kept} FROM oversight_arrestee_arrests r
            WHERE r.at >= :since AND r.at < :end AND (r.prev_at IS NULL OR r.prev_at < :since)
              AND r.person_id NOT IN (SELECT person_id FROM stale)
            UNION ALL
            SELECT {read} FROM persons p
            WHERE p.id IN (SELECT person_id FROM stale) AND EXISTS (
                SELECT 1 FROM involvements i JOIN arrests a ON a.id = i.arrest_id
                WHERE i.person_id = p.id AND i.role = 'arrestee'
                  AND a.arrested_at >= :since AND a.arrested_at < :end)
        ) AS u
        GROUP BY {", ".join(_ATTRIBUTES)}
    """  # noqa: S608 - fixed fragments
    params = {
        "since": since,
        "end": end,
        "wm": int(marks[WATERMARK]),
        "inv": int(marks[ARRESTEES_INVOLVEMENTS]),
    }
    return _by_attribute(session.execute(_sql(statement, "since", "end"), params).all())


def _utc_midnight(moment: datetime) -> bool:
    """A midnight in UTC (the day counts' days are UTC days)."""
    return moment.astimezone(UTC).time() == time(0)


def _arrestee_days(
    session: Session, named: str, marks: dict[str, int], since: datetime, end: datetime
) -> dict[str, dict[tuple[int, str], int]]:
    """``arrestee_counts`` for a window bounded by midnights, from the refresh's day counts
    (``facts.ArresteeDay``: exact for such a window, as the rows' instants and their previous
    arrests' are before, in or after it by their day), less the rows of the persons the log's
    tail may have changed (read by person, from the rows' key), plus those persons counted
    live from the records, in one statement."""
    kept = ", ".join(f"r.{a}" for a in _ATTRIBUTES)
    read = ", ".join(f"CAST(p.{a} AS TEXT)" for a in _ATTRIBUTES)
    statement = f"""
        WITH stale AS ({named})
        SELECT 0, {", ".join(_ATTRIBUTES)}, SUM(n) FROM (
            SELECT {", ".join(f"d.{a}" for a in _ATTRIBUTES)}, d.n FROM oversight_arrestee_days d
            WHERE d.day >= :since_day AND d.day < :end_day
              AND (d.prev_day IS NULL OR d.prev_day < :since_day)
            UNION ALL
            SELECT {kept}, -1 FROM oversight_arrestee_arrests r
            WHERE r.person_id IN (SELECT person_id FROM stale)
              AND r.at >= :since AND r.at < :end AND (r.prev_at IS NULL OR r.prev_at < :since)
            UNION ALL
            SELECT {read}, 1 FROM persons p
            WHERE p.id IN (SELECT person_id FROM stale) AND EXISTS (
                SELECT 1 FROM involvements i JOIN arrests a ON a.id = i.arrest_id
                WHERE i.person_id = p.id AND i.role = 'arrestee'
                  AND a.arrested_at >= :since AND a.arrested_at < :end)
        ) AS u
        GROUP BY {", ".join(_ATTRIBUTES)}
        HAVING SUM(n) <> 0
    """  # noqa: S608 - fixed fragments
    params = {
        "since": since,
        "end": end,
        "since_day": since.astimezone(UTC).date().isoformat(),
        "end_day": end.astimezone(UTC).date().isoformat(),
        "wm": int(marks[WATERMARK]),
        "inv": int(marks[ARRESTEES_INVOLVEMENTS]),
    }
    return _by_attribute(session.execute(_sql(statement, "since", "end"), params).all())


def population_skew(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """Whom an agency looks at, against the arrestees of the same time (two-proportion z)."""
    t, p, kept = limits or Thresholds(), _bounds(period), _kept(session)
    looked = (
        "SELECT DISTINCT f.agency_id AS k, f.person_id FROM oversight_access_facts f "  # noqa: S608 - fixed fragments
        f"WHERE f.at >= :start AND f.at < :end AND f.agency_id IS NOT NULL AND {kept}"
    )
    window = {"start": p.start, "end": p.end}
    since = _since(p.start, t.skew_population)
    found: list[tuple[str, str, int, str, set[str]]] = []
    # A period's pairs are read once, with their first entry and attributes, and both the
    # counts and the findings' entries come from them (rows in proportion to the period; one
    # join of the period's facts to the persons, not two). The whole store's are counted in
    # SQL, its findings' entries read apart (``_skew_entries``).
    pairs = None if period is None else _skew_pairs(session, p)
    grouped: Table | None = None
    if pairs is None and _dialect(session) == DUCKDB:
        # The whole store's (agency, person) pairs with their first entry grouped once into a
        # table of DuckDB's file, then counted and read for the findings' entries from it: not
        # the facts grouped twice (at 10M the findings' entries' grouping was half the time).
        grouped = _temporary(
            session,
            "oversight_skew_grouped",
            Column("agency_id", Integer),
            Column("person_id", Integer),
            Column("entry_id", BigInteger),
        )
        session.execute(
            _sql(
                f"INSERT INTO {grouped.name} SELECT f.agency_id, f.person_id, MIN(f.entry_id) "  # noqa: S608 - fixed fragments
                "FROM oversight_access_facts f WHERE f.at >= :start AND f.at < :end "
                f"AND f.agency_id IS NOT NULL AND {kept} GROUP BY f.agency_id, f.person_id",
                "start",
                "end",
            ),
            window,
        )
        looked = f"SELECT g.agency_id AS k, g.person_id FROM {grouped.name} g"  # noqa: S608
    seen_by = (
        _category_counts(session, looked, window, "start", "end")
        if pairs is None
        else _by_attribute((a, *values, 1) for a, _e, *values in pairs)
    )
    base_by = arrestee_counts(session, since, p.end)
    for attribute in _ATTRIBUTES:
        seen, base = seen_by[attribute], base_by[attribute]
        population = {v: n for (_k, v), n in base.items()}
        categories: dict[int, dict[str, int]] = defaultdict(dict)
        for (agency_id, v), n in seen.items():
            categories[agency_id][v] = n
        for agency_id, values in sorted(categories.items()):
            tests = {v: ({v}, n) for v, n in values.items()}
            if attribute == "citizenship":
                others = {v for v in set(values) | set(population) if v != t.home_citizenship}
                tests[f"not {t.home_citizenship}"] = (
                    others,
                    sum(n for v, n in values.items() if v in others),
                )
            n1, n2 = sum(values.values()), sum(population.values())
            if n1 < t.skew_min_persons:
                continue
            for label, (members, x1) in sorted(tests.items()):
                x2 = sum(n for v, n in population.items() if v in members)
                z = two_proportion_z(x1, n1, x2, n2)
                share1, share2 = x1 / n1, (x2 / n2 if n2 else 0.0)
                if x1 < t.skew_min_count or z < t.skew_z or share1 < t.skew_ratio * share2:
                    continue
                rule = (
                    f"{attribute} {label}: {x1} of the {n1} persons the agency looked up "
                    f"({share1:.0%}) against {x2} of {n2} arrestees arrested in the "
                    f"{t.skew_population.days} days to the period's end ({share2:.0%}); "
                    f"two-proportion z {z:.1f} (fires at z >= {t.skew_z:g}, a share at least "
                    f"{t.skew_ratio:g} times the arrestees', at least {t.skew_min_count} "
                    f"persons of {t.skew_min_persons} looked up)"
                )
                key = f"agency:{agency_id}:{attribute}:{label}:{p.label()}"
                found.append((key, rule, agency_id, attribute, members))
    # Every finding's entries in one statement, not one per finding (a period's from its pairs).
    wanted = [(a, attr, m) for _k, _r, a, attr, m in found]
    entries = (
        _skew_entries(session, wanted, p, None if grouped is None else grouped.name)
        if pairs is None
        else _skew_entries_of(session, wanted, pairs)
    )
    if grouped is not None:
        grouped.drop(session.connection())
    return [
        _draft(SKEW, key, rule, t.skew_z, entries[n], agency_id=agency_id)
        for n, (key, rule, agency_id, _attr, _members) in enumerate(found)
    ]


def _skew_pairs(session: Session, p: DetectionPeriod) -> list[tuple[Any, ...]]:
    """The period's (agency, person) pairs as ``population_skew`` reads them (kept facts of an
    outside agency), each as (agency, first entry, each attribute's value as text). Grouped by
    person first, so that the persons are read in the order of their key (a day's 27,000 at
    10M, scattered over a million persons' pages: in key order each page is read once)."""
    read, kept = ", ".join(f"CAST(p.{a} AS TEXT)" for a in _ATTRIBUTES), _kept(session)
    rows = session.execute(
        _sql(
            f"""
            SELECT m.agency_id, m.entry_id, {read} FROM (
                SELECT f.agency_id, f.person_id, MIN(f.entry_id) AS entry_id
                FROM oversight_access_facts f
                WHERE f.at >= :start AND f.at < :end AND f.agency_id IS NOT NULL AND {kept}
                GROUP BY f.person_id, f.agency_id
            ) m JOIN persons p ON p.id = m.person_id
            """,  # noqa: S608 - fixed fragments
            "start",
            "end",
        ),
        {"start": p.start, "end": p.end},
    ).all()
    return [tuple(r) for r in rows]


def _skew_entries_of(
    session: Session,
    findings: Sequence[tuple[int, str, set[str]]],
    pairs: Sequence[tuple[Any, ...]],
) -> list[list[_Entry]]:
    """The entries of each finding from the period's pairs (``_skew_pairs``), as
    ``_skew_entries`` reads them: for every person of the finding's values the agency looked
    up, its first entry; the ``MAX_ENTRIES_PER_FLAG`` lowest of those (a repeated entry, first
    for two persons, counted twice as there)."""
    position = {a: n for n, a in enumerate(_ATTRIBUTES)}
    by_agency: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for r in pairs:
        by_agency[int(r[0])].append(r)
    ids: list[list[int]] = []
    for agency_id, attribute, members in findings:
        at = position[attribute] + 2
        ids.append(
            sorted(
                int(r[1])
                for r in by_agency[agency_id]
                if r[at] is not None and str(r[at]) in members
            )[:MAX_ENTRIES_PER_FLAG]
        )
    found = {e.id: e for e in _by_ids(session, (i for group in ids for i in group))}
    return [sorted((found[i] for i in group), key=lambda e: (e.at, e.id)) for group in ids]


def _skew_entries(
    session: Session,
    findings: Sequence[tuple[int, str, set[str]]],
    p: DetectionPeriod,
    grouped: str | None = None,
) -> list[list[_Entry]]:
    """The entries of each finding (agency, attribute, values): for every person of those
    values the agency looked up, its first entry of the period; the oldest
    ``MAX_ENTRIES_PER_FLAG`` of them. One statement for all the findings: the agencies' persons
    are grouped once and matched to the findings by a small union of constants. ``grouped``:
    a table of those pairs already grouped over the period (``population_skew`` on DuckDB)."""
    if not findings:
        return []
    params: dict[str, Any] = {"start": p.start, "end": p.end}
    tests = []
    for n, (agency_id, attribute, members) in enumerate(findings):
        assert attribute in _ATTRIBUTES
        for m, value in enumerate(sorted(members)):
            params[f"a{n}_{m}"], params[f"v{n}_{m}"] = agency_id, value
            tests.append(
                f"SELECT {n} AS n, CAST(:a{n}_{m} AS INTEGER) AS a, "
                f"CAST('{attribute}' AS TEXT) AS attr, CAST(:v{n}_{m} AS TEXT) AS v"
            )
    agencies = ", ".join(str(int(a)) for a in sorted({a for a, _attr, _m in findings}))
    matches = " OR ".join(f"(t.attr = '{a}' AND CAST(p.{a} AS TEXT) = t.v)" for a in _ATTRIBUTES)
    pairs = (
        f"""SELECT f.agency_id, f.person_id, MIN(f.entry_id) AS entry_id
                FROM oversight_access_facts f
                WHERE f.agency_id IN ({agencies}) AND f.at >= :start AND f.at < :end
                  AND {_kept(session)}
                GROUP BY f.agency_id, f.person_id"""  # noqa: S608 - fixed fragments
        if grouped is None
        else f"SELECT * FROM {grouped} g WHERE g.agency_id IN ({agencies})"  # noqa: S608
    )
    rows = session.execute(
        _sql(
            f"""
            WITH t AS ({" UNION ALL ".join(tests)}),
            m AS ({pairs}), j AS (
                SELECT t.n, m.entry_id, ROW_NUMBER() OVER (
                    PARTITION BY t.n ORDER BY m.entry_id) AS r
                FROM m JOIN persons p ON p.id = m.person_id
                JOIN t ON t.a = m.agency_id AND ({matches})
            )
            SELECT n, entry_id FROM j WHERE r <= {MAX_ENTRIES_PER_FLAG} ORDER BY n, entry_id
            """,  # noqa: S608 - fixed fragments; values bound
            "start",
            "end",
        ),
        params,
    ).all()
    ids: list[list[int]] = [[] for _ in findings]
    for n, entry_id in rows:
        ids[int(n)].append(int(entry_id))
    found = {e.id: e for e in _by_ids(session, (i for group in ids for i in group))}
    return [sorted((found[i] for i in group), key=lambda e: (e.at, e.id)) for group in ids]


def _temporary(session: Session, name: str, *items: SchemaItem) -> Table:
    """A temporary table of this connection, created afresh (dropped first if a previous run
    in the same connection left it). On DuckDB a table of its own database file instead (the
    reader's, removed with it: ``oversight.duck``): DuckDB keeps temporary tables in memory,
    and at 10M entries never_charged's 10M rows did not fit under its memory limit."""
    duck = _dialect(session) == DUCKDB
    table = Table(name, MetaData(), *items, prefixes=[] if duck else ["TEMPORARY"])
    connection = session.connection()
    connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
    table.create(connection)
    return table


def never_charged(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """Users and agencies looking up many persons nobody ever charged (as of each access).

    Each fact of the period is tested once into a temporary table: the facts joined to their
    persons' arrests as arrestee and the charge timeline rows in force at each access
    (``explain_sql.charge_states``, the explanation's ``never_charged``: state 0), sets an
    engine hashes over a whole period, not a probe per fact. The per-user and per-agency
    counts and each flag's entries read that table, not the facts tested again per flag.
    """
    t, p = limits or Thresholds(), _bounds(period)
    f = AccessFact.__table__.alias("f")
    kept = kept_entry(f.c.entry_id, shredded_indexed(session))
    outside = select(Agency.id).where(Agency.kind == AgencyKind.EXTERNAL)
    chosen_facts = select(
        f.c.id, f.c.entry_id, f.c.agency_id, f.c.user_id, f.c.person_id, f.c.at
    ).where(
        f.c.agency_id.in_(outside),
        f.c.at >= p.start,
        f.c.at < p.end,
        kept,
        f.c.agency_id.is_not(None),
    )
    if period is not None and _dialect(session) == "postgresql":
        # A period's facts (a day's 27,000 at 10M) are probed one by one into their persons'
        # involvements and the timeline (a nested loop): in the order of the persons' key, so
        # that each index page is read once, not once per fact in the order of the agencies'
        # instants (at 10M 35,000 pages from outside the buffer cache, 2.2 s of 2.6 loaded).
        chosen_facts = chosen_facts.order_by(f.c.person_id)
    chosen: Any = chosen_facts.cte("chosen")
    picked: Table | None = None
    if _dialect(session) == DUCKDB:
        # Chosen apart first: the semi-join to the entries (a hash of every kept entry) is done
        # and freed before the states' aggregate; in one statement the two did not fit in
        # DuckDB's memory limit at 10M entries (out of memory at 1.3 GiB).
        picked = _temporary(
            session,
            "oversight_never_charged_chosen",
            Column("id", BigInteger),
            Column("entry_id", BigInteger),
            Column("agency_id", Integer),
            Column("user_id", Integer),
            Column("person_id", Integer),
            Column("at", UTCDateTime(), quote=True),  # a keyword to DuckDB
        )
        session.execute(
            picked.insert().from_select(
                ["id", "entry_id", "agency_id", "user_id", "person_id", "at"], chosen_facts
            )
        )
    # Every chosen fact with its state, grouped once: not the facts joined to their states, a
    # join the planner takes for one of a row by a row when the day's facts were written in
    # this transaction (a nested loop: at 10M 361 million rows compared, 78 s).
    tested = _temporary(
        session,
        "oversight_never_charged_tested",
        Column("entry_id", BigInteger),
        Column("agency_id", Integer),
        Column("user_id", Integer),
        Column("person_id", Integer),
        Column("never", Integer),
    )

    def test(facts: Any) -> None:
        states = charge_states(
            facts, carry=("entry_id", "agency_id", "user_id", "person_id"), every=True
        ).subquery("states")
        session.execute(
            tested.insert().from_select(
                ["entry_id", "agency_id", "user_id", "person_id", "never"],
                select(
                    states.c.entry_id,
                    states.c.agency_id,
                    states.c.user_id,
                    states.c.person_id,
                    case((states.c.person_state == 0, 1), else_=0),
                ),
            )
        )

    if picked is None:
        test(chosen)
    else:
        # Never charged at the access (state 0) is: no timeline row of an arrest of the person
        # as arrestee, filed or declined, in force at the access. On DuckDB that is an anti
        # join of the facts (and its complement a semi join) to those rows, hashed by person
        # with the instants' range tested in the join: no aggregate of the facts (the states'
        # aggregate of every fact at once, 10M groups, ran out of DuckDB's memory limit at 10M
        # entries; one agency's facts at a time, 34 statements each hashing the involvements
        # and the timeline again, cost 19 s).
        # The charged rows apart first, into a table of their own (some 800,000 at 10M): with
        # their number known, DuckDB hashes them, not the facts (in one statement with the two
        # joins it ran out of its memory limit in the whole pass at 10M); each join its own.
        charged = _temporary(
            session,
            "oversight_never_charged_charged",
            Column("person_id", Integer),
            Column("start_at", UTCDateTime()),
            Column("end_at", UTCDateTime()),
        )
        session.execute(
            text(
                f"INSERT INTO {charged.name} SELECT i.person_id, t.start_at, t.end_at "  # noqa: S608 - fixed fragments
                "FROM involvements i JOIN oversight_charge_timeline t ON t.arrest_id = i.arrest_id "
                "WHERE i.role = 'arrestee' AND (t.filed OR t.declined)"
            )
        )
        in_force = (
            's.person_id = c.person_id AND s.start_at <= c."at" '
            "AND COALESCE(s.end_at, CAST('infinity' AS TIMESTAMP)) > c.\"at\""
        )
        for join, never in (("ANTI", 1), ("SEMI", 0)):
            session.execute(
                text(
                    f"INSERT INTO {tested.name} (entry_id, agency_id, user_id, person_id, never) "  # noqa: S608 - fixed fragments
                    f"SELECT c.entry_id, c.agency_id, c.user_id, c.person_id, {never} "
                    f"FROM {picked.name} c {join} JOIN {charged.name} s ON {in_force}"
                )
            )
        charged.drop(session.connection())
    # The flags' entries are read by user or agency: indexed once the rows are in (built from
    # them sorted, not kept row by row: a whole year's million rows through two indexes cost
    # 14 s of local buffer traffic at 1M, 8 MB of temp_buffers).
    connection = session.connection()
    for column_ in ("user_id", "agency_id"):
        Index(
            f"ix_oversight_never_charged_tested_{column_.removesuffix('_id')}",
            tested.c[column_],
            tested.c.never,
            tested.c.entry_id,
        ).create(connection)
    x = tested.c
    # One row per (agency, user, person): looked up while never charged at least once.
    persons = (
        select(x.agency_id, x.user_id, x.person_id, func.max(x.never).label("never"))
        .where(x.user_id.is_not(None))
        .group_by(x.agency_id, x.user_id, x.person_id)
        .cte("looked_up")
    )
    per_user = select(
        persons.c.agency_id,
        persons.c.user_id,
        func.count(),
        func.sum(persons.c.never),
    ).group_by(persons.c.agency_id, persons.c.user_id)
    per_agency = select(
        persons.c.agency_id,
        literal(None).label("user_id"),
        func.count(persons.c.person_id.distinct()),
        func.count(case((persons.c.never == 1, persons.c.person_id)).distinct()),
    ).group_by(persons.c.agency_id)
    found: list[tuple[int, int | None, str, str]] = []
    for agency_id, user_id, looked, nc in session.execute(union_all(per_user, per_agency)).all():
        looked, nc = int(looked), int(nc or 0)
        share = nc / looked if looked else 0.0
        if user_id is not None:
            if nc < t.never_charged_user_min or share < t.never_charged_user_share:
                continue
            who, least, portion = "a user", t.never_charged_user_min, t.never_charged_user_share
            key = f"user:{user_id}:{p.label()}"
        else:
            if nc < t.never_charged_agency_min or share < t.never_charged_agency_share:
                continue
            who = "the agency's users"
            least, portion = t.never_charged_agency_min, t.never_charged_agency_share
            key = f"agency:{agency_id}:{p.label()}"
        rule = (
            f"{who} looked up {nc} persons never charged (as of each access) among the "
            f"{looked} persons looked up ({share:.0%}) in {p.label()}"
            + (", however thinly spread over users and weeks" if user_id is None else "")
            + f" (fires at {least} persons and {portion:.0%})"
        )
        found.append((int(agency_id), None if user_id is None else int(user_id), key, rule))
    # Every flag's entries in a few statements, not two per flag (a day at 10M raised some 400
    # of them: 800 statements): the lowest MAX_ENTRIES_PER_FLAG of each subject's entries that
    # looked up a person never charged, by subject, then the entries read by id at once.
    by_user = _never_entries(session, x.user_id, [u for _a, u, _k, _r in found if u is not None])
    by_agency = _never_entries(session, x.agency_id, [a for a, u, _k, _r in found if u is None])
    read = {
        e.id: e
        for e in _by_ids(
            session, (i for ids in (*by_user.values(), *by_agency.values()) for i in ids)
        )
    }
    drafts: list[FlagDraft] = []
    for agency_id, user_id, key, rule in found:
        ids = by_user[user_id] if user_id is not None else by_agency[agency_id]
        drafts.append(
            _draft(
                NEVER_CHARGED,
                key,
                rule,
                t.never_charged_user_share if user_id is not None else t.never_charged_agency_share,
                sorted((read[i] for i in ids), key=lambda e: (e.at, e.id)),
                agency_id=agency_id if user_id is None else None,
            )
        )
    tested.drop(session.connection())
    if picked is not None:
        picked.drop(session.connection())
    return sorted(drafts, key=lambda draft: draft.dedupe_key)


def _never_entries(session: Session, subject: Any, keys: Sequence[int]) -> dict[int, list[int]]:
    """Per key of ``subject`` (a column of never_charged's tested table), the lowest
    ``MAX_ENTRIES_PER_FLAG`` distinct entries that looked up a person never charged; the keys
    a few hundred to a statement."""
    table = subject.table
    found: dict[int, list[int]] = {k: [] for k in keys}
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), _KEYS_PER_STATEMENT):
        chunk = wanted[start : start + _KEYS_PER_STATEMENT]
        distinct = (
            select(subject.label("k"), table.c.entry_id)
            .where(subject.in_(chunk), table.c.never == 1)
            .distinct()
            .subquery("d")
        )
        rank = func.row_number().over(partition_by=distinct.c.k, order_by=distinct.c.entry_id)
        ranked = select(distinct.c.k, distinct.c.entry_id, rank.label("r")).subquery("ranked")
        rows = session.execute(
            select(ranked.c.k, ranked.c.entry_id)
            .where(ranked.c.r <= MAX_ENTRIES_PER_FLAG)
            .order_by(ranked.c.k, ranked.c.entry_id)
        )
        for k, entry_id in rows:
            found[int(k)].append(int(entry_id))
    return found


# ---------------------------------------------------------------------------------------------
# Dormant or departed accounts
# ---------------------------------------------------------------------------------------------


def _minus(column: str, dialect: str) -> str:
    """``column`` minus ``:gap`` seconds, comparable with the column on either dialect."""
    if dialect == "sqlite":
        return f"strftime('%Y-%m-%d %H:%M:%f', {column}, '-' || :gap || ' seconds')"
    if dialect == DUCKDB:
        return f"({column} - to_seconds(CAST(:gap AS BIGINT)))"
    return f"({column} - make_interval(secs => :gap))"


def dormant_account(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """Reads by a disabled (departed) account, and the first read after a long silence."""
    t, p, dialect = limits or Thresholds(), _bounds(period), _dialect(session)
    drafts: list[FlagDraft] = []
    departed = _entries(
        session,
        f"{_outside_in('e', dialect)} AND EXISTS (SELECT 1 FROM users u WHERE u.id = "  # noqa: S608 - fixed fragments
        "e.user_id AND u.disabled_at IS NOT NULL AND e.at >= u.disabled_at)",
        {"start": p.start, "end": p.end},
        "start",
        "end",
    )
    by_day: dict[tuple[int, str], list[_Entry]] = defaultdict(list)
    for e in departed:
        by_day[(int(e.user_id or 0), f"{e.at:%Y-%m-%d}")].append(e)
    for (user_id, d), entries in sorted(by_day.items()):
        rule = (
            f"a disabled (departed) account made {len(entries)} external reads on {d} (UTC), "
            "after it was disabled (any one read fires)"
        )
        drafts.append(_draft(DORMANT, f"disabled:user:{user_id}:day:{d}", rule, 0.0, entries))
    # The first read of a user after at least ``dormant`` without one: LAG over the period's
    # reads; a user's first read in the period looks back by index (one probe per user).
    rows = session.execute(
        _sql(
            f"""
            SELECT w.id, w.user_id, w.at, w.prev FROM (
                SELECT e.id, e.user_id, e.at, LAG(e.at) OVER (
                    PARTITION BY e.user_id ORDER BY e.at, e.id) AS prev
                FROM audit_entries e WHERE {_outside_in("e", dialect)} AND {_EXTERNAL}
            ) w WHERE w.prev IS NULL OR w.prev <= {_minus("w.at", dialect)}
            """,  # noqa: S608 - fixed fragments
            "start",
            "end",
        ),
        {"start": p.start, "end": p.end, "gap": int(t.dormant.total_seconds())},
    ).all()
    # The users whose first read of the period has no read before it in the period: their last
    # read before the period (else their account's creation), for all of them at once.
    firsts = {int(user_id) for _i, user_id, _at, prev in rows if prev is None}
    earlier = _last_before(session, firsts, p.start)
    candidates = []
    for entry_id, user_id, at, prev in rows:
        moment = _utc(at)
        before = _utc(prev) if prev is not None else earlier.get(int(user_id))
        if before is not None and moment - before >= t.dormant:
            candidates.append((int(entry_id), moment, before))
    found = {e.id: e for e in _by_ids(session, [c[0] for c in candidates])}
    for entry_id, moment, prev_at in candidates:
        silent = (moment - prev_at).days
        rule = (
            f"an account's first external read after {silent} days without one (or since it "
            f"was created) (fires at {t.dormant.days} days)"
        )
        drafts.append(
            _draft(
                DORMANT,
                f"dormant:entry:{entry_id}",
                rule,
                float(t.dormant.days),
                [found[entry_id]],
            )
        )
    return drafts


def _last_before(session: Session, users: set[int], moment: datetime) -> dict[int, datetime]:
    """Each user's last external read before ``moment``, else their account's creation if that
    was before it (a new account's first read is not a dormant one's); users with neither are
    left out. One statement per 500 users, each user's latest integrated read one probe of
    the index by user and instant (``by_actor``) from its end, and the latest of the entries
    not integrated yet (few); not one statement (and one ORM load) per user. On DuckDB one
    statement for every user, over the entries' copy (every entry, integrated or not)."""
    found: dict[int, datetime] = {}
    wanted = sorted(users)
    dialect = _dialect(session)
    # DuckDB: every user at once, the latest read by a scan of the entries' copy before
    # ``moment`` (the instants' zone maps skip the rest; the index and the queue are the
    # store's tables, read through the scanner: 10M rows of the index for a whole-store run).
    size = len(wanted) if dialect == DUCKDB else 500
    for start in range(0, len(wanted), size or 1):
        chunk = ",".join(str(int(u)) for u in wanted[start : start + size])
        if dialect == DUCKDB:
            statement = (
                "SELECT u.id, m.last, NULL, u.created_at FROM users u LEFT JOIN (SELECT "  # noqa: S608
                f"e.user_id, MAX(e.at) AS last FROM audit_entries e WHERE e.user_id IN ({chunk}) "
                f"AND e.at < :m AND {_EXTERNAL} GROUP BY e.user_id) m ON m.user_id = u.id "
                f"WHERE u.id IN ({chunk})"
            )
        else:
            statement = (
                "SELECT u.id, (SELECT e.at FROM audit_user_entries x JOIN audit_entries e "  # noqa: S608
                "ON e.id = x.entry_id WHERE x.user_id = u.id AND x.at < :m AND "
                f"{_EXTERNAL} ORDER BY x.at DESC LIMIT 1), (SELECT MAX(e.at) FROM "
                f"audit_entries e WHERE e.id IN ({by_actor.pending_sql(dialect)}) AND "
                f"e.user_id = u.id AND e.at < :m AND {_EXTERNAL}), u.created_at FROM users u "
                f"WHERE u.id IN ({chunk})"
            )
        rows = session.execute(_sql(statement, "m"), {"m": moment}).all()
        for user_id, indexed, tail, created in rows:
            reads = [_utc(r) for r in (indexed, tail) if r is not None]
            if reads:
                found[int(user_id)] = max(reads)
            elif created is not None and _utc(created) < moment:
                found[int(user_id)] = _utc(created)
    return found


ALL: tuple[Any, ...] = (
    volume_burst,
    enumeration_wildcard,
    enumeration_sequential,
    enumeration_zero_hits,
    enumeration_date_sweep,
    shared_case_reference,
    person_many_users,
    own_surname_or_address,
    population_skew,
    never_charged,
    off_hours,
    dormant_account,
)
