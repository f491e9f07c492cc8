"""The explanation of every (external access, person returned) pair, as one SQL statement.

Everything here is set-based: the caller's selection (an agreement or an agency, a period, or
a cycle's agreements) filters the access facts, and the flags are made of sets built once per
statement and joined to the pairs: the cited references with their arrests, the persons'
charge states at each access, each entry's sweep count. An engine hashes them over a whole
period (PostgreSQL) or probes them by their indexes for a day's few facts, never a subquery
per pair; the follow-up rule is a window over the pairs. No row is looked at in Python. The
rules, their precedence and the reason codes are documented in docs/oversight.md;
``explain.py`` validates input and audits, this module only builds statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Interval,
    Select,
    String,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.sql.selectable import CTE, CompoundSelect, FromClause

from openpars.audit import by_actor
from openpars.audit.events import AuditKind
from openpars.audit.models import AuditEntry
from openpars.oversight.facts import AccessFact, ChargeTimeline, kept_entry
from openpars.records.enums import InvolvementRole
from openpars.records.models import Arrest, Involvement


class Reason(StrEnum):
    """Why a pair is unexplained, in order of precedence (the first that holds is given)."""

    PURPOSE_OUTSIDE_AGREEMENT = "purpose_outside_agreement"
    BULK_OR_ENUMERATING = "bulk_or_enumerating"
    NEVER_CHARGED = "never_charged"
    CHARGES_DECLINED_OR_WITHDRAWN = "charges_declined_or_withdrawn"
    NO_CASE_CITED = "no_case_cited"
    CASE_NOT_FOUND = "case_not_found"
    CASE_NOT_INVOLVING_PERSON = "case_not_involving_person"


class Rule(StrEnum):
    """Which rule explains a pair."""

    CASE_ARRESTEE = "case_arrestee"
    PURPOSE_RULE = "purpose_rule"
    FOLLOW_UP = "follow_up"


@dataclass(frozen=True, slots=True)
class Rules:
    """The thresholds of the explanation, from Settings (docs/oversight.md)."""

    follow_up_window: timedelta = timedelta(hours=72)
    bulk_results: int = 10
    sweep_queries: int = 20
    sweep_window: timedelta = timedelta(minutes=30)
    # Purposes that need no case: explained by an exact-identifier lookup of one charged person.
    caseless_purposes: frozenset[str] = frozenset({"warrant-check", "warrant-service"})


@dataclass(frozen=True, slots=True)
class Selection:
    """Which accesses: of one agreement or one agency, in [start, end)."""

    start: datetime
    end: datetime
    agreement_id: int | None = None
    agency_id: int | None = None
    # Several agreements at once, each explained as on its own (a cycle's one statement).
    agreement_ids: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class PurposeGrant:
    """One purpose of one agreement version, and whether it needs a case reference."""

    agreement_id: int
    version: int
    purpose: str
    case_required: bool


def _shift(moment: Any, delta: timedelta, dialect: str) -> ColumnElement[Any]:
    """``moment + delta`` in SQL on either dialect (SQLite keeps instants as sortable text)."""
    if dialect == "sqlite":
        seconds = int(delta.total_seconds())
        return func.strftime("%Y-%m-%d %H:%M:%f", moment, f"{seconds:+d} seconds")
    # An interval literal, not a bound one: PostgreSQL's literal rendering of a bound interval
    # (``make_interval(secs => ...)``) is a function DuckDB lacks; this spelling is both's.
    # An int from Rules, not input.
    micros = delta // timedelta(microseconds=1)
    return moment + literal_column(  # type: ignore[no-any-return]
        f"INTERVAL '{micros} microseconds'", Interval()
    )


def _as_of(arrest_id: Any, at: Any) -> list[ColumnElement[bool]]:
    """The arrest's charge timeline row in force at ``at`` (facts.ChargeTimeline)."""
    t = ChargeTimeline
    return [
        t.arrest_id == arrest_id,
        t.start_at <= at,
        or_(t.end_at.is_(None), t.end_at > at),
    ]


def _filed(arrest_id: Any, at: Any) -> ColumnElement[bool]:
    """The arrest had a DA-approved charge at ``at`` and was not declined by then."""
    return exists(
        select(ChargeTimeline.arrest_id)
        .where(*_as_of(arrest_id, at), ChargeTimeline.filed)
        # The instant and the arrest come from the enclosing statements, levels up.
        .correlate_except(ChargeTimeline)
    )


def _declined(arrest_id: Any, at: Any) -> ColumnElement[bool]:
    """The DA's latest decision on the arrest at ``at`` was to decline (or withdraw) it."""
    return exists(
        select(ChargeTimeline.arrest_id)
        .where(*_as_of(arrest_id, at), ChargeTimeline.declined)
        .correlate_except(ChargeTimeline)
    )


# The bits of a charge state (``charge_states``): some arrest filed, some arrest declined
# (either, both or none).
FILED, DECLINED = 2, 1


def _purpose_ok(f: Any, grants: Sequence[PurposeGrant]) -> ColumnElement[bool]:
    """The stated purpose is one of the agreement version's, with a case where it needs one.

    A few purposes per version: an OR of small conjunctions (SQLite has no named VALUES list).
    """
    terms = [
        and_(
            f.agreement_id == g.agreement_id,
            f.agreement_version == g.version,
            f.purpose == g.purpose,
            *([f.case_reference.is_not(None)] if g.case_required else []),
        )
        for g in grants
    ]
    return or_(false(), *terms)


def _since(selection: Selection, rules: Rules) -> datetime:
    """The earliest instant of a fact the selection reads: ``follow_up_window`` before its
    start (the anchors of follow-ups), or the calendar's first instant."""
    earliest = datetime.min.replace(tzinfo=selection.start.tzinfo)
    # A period from the first day of the calendar has no window before it.
    return max(earliest + rules.follow_up_window, selection.start) - rules.follow_up_window


def facts_select(
    selection: Selection, rules: Rules, dialect: str = "", *, shredded_indexed: bool = False
) -> CompoundSelect[Any]:
    """The facts of the selection, from ``follow_up_window`` before its start (the anchors of
    follow-ups), without shredded entries (on ``dialect`` duckdb, those of the entries kept as
    one semi-join; with ``shredded_indexed``, tested against the shredded entries' index:
    ``facts.kept_entry``)."""
    f = AccessFact.__table__
    since = _since(selection, rules)
    later = f.alias("later")

    def chosen(t: Any) -> list[ColumnElement[bool]]:
        return [
            *(
                [t.c.agreement_id == selection.agreement_id]
                if selection.agreement_id is not None
                else []
            ),
            *(
                [t.c.agreement_id.in_(sorted(selection.agreement_ids))]
                if selection.agreement_ids is not None
                else []
            ),
            *([t.c.agency_id == selection.agency_id] if selection.agency_id is not None else []),
        ]

    # A fact before the period matters only as the anchor of a follow-up: by the same user,
    # citing the same case, as a fact of the period. The others are left out (an incremental
    # day would otherwise test the whole window before it: three days for one).
    # The (user, case) pairs of the period, once (not probed again for every earlier fact:
    # each probe would read all of the agreement's facts of the period by its index).
    anchors = tuple_(f.c.user_id, f.c.case_reference).in_(
        select(later.c.user_id, later.c.case_reference).where(
            later.c.case_reference.is_not(None),
            later.c.at >= selection.start,
            later.c.at < selection.end,
            *chosen(later),
        )
    )
    entry = AuditEntry.__table__.alias("kept")
    kept = kept_entry(f.c.entry_id, shredded_indexed)
    if dialect == "duckdb":
        # DuckDB decorrelates the EXISTS into a join over the distinct entries of the facts,
        # then joins it back (at 10M about 30 s of CPU, EXPLAIN ANALYZE); the kept entries'
        # ids as one semi-join is a hash of them, probed once per fact.
        kept = f.c.entry_id.in_(select(entry.c.id).where(entry.c.content.is_not(None)))
    # The period's facts, then the anchors before it: two branches, so that the list of
    # (user, case) pairs is a semi-join an engine hashes (or batches), never a test under an
    # OR, which PostgreSQL hashes only while the list fits in work_mem and otherwise scans
    # once per fact (a whole year's facts against a whole year's list: hours).
    # Read by every set below: materialised once (PostgreSQL does so for a CTE read twice).
    return union_all(
        select(f).where(f.c.at >= selection.start, f.c.at < selection.end, *chosen(f), kept),
        select(f).where(f.c.at >= since, f.c.at < selection.start, anchors, *chosen(f), kept),
    )


def found_refs(facts: FromClause) -> CTE:
    """The case references the facts cite that name an arrest: its OTN, incident or docket
    number, as given or upper-cased. Each distinct reference probes the arrests' index on each
    number for both spellings (a scalar subquery, ``LIMIT 1``, per reference and number, the
    next number only when the one before found nothing): a day's few thousand references are
    a few thousand index descents, whatever the planner expects of them. Joined instead, the
    references were hashed against every arrest (three sequential scans of the arrests, 2.3 s
    at 10M for a day) as soon as the planner expected more than a few of them. One row per
    reference, no DISTINCT over the probes: the planner's estimate of the set is that of the
    distinct references (a DISTINCT over a filtered subquery it puts at 200, and at 1M a whole
    year's facts were then hashed to be joined to it, 42 s)."""
    f = facts.c
    # In the order of the references (sorted, not hashed, to be made distinct), so that the
    # probes walk the arrests' OTN index in its order and read each of its pages once (a day's
    # 17,000 references at 10M hashed: 22,000 pages read from outside the buffer cache).
    refs = (
        select(f.case_reference.label("ref"))
        .where(f.case_reference.is_not(None))
        .distinct()
        .order_by(f.case_reference)
        .subquery("cited_refs")
    )
    ref = refs.c.ref

    def names(column_: Any, spelling: ColumnElement[Any]) -> ColumnElement[bool]:
        # LIMIT 1: an expression subquery, which PostgreSQL runs per row (an EXISTS it may
        # turn into a hashed subplan over the whole table). One equality per probe, not
        # ``IN (ref, upper(ref))``: a columnar engine (DuckDB) turns a correlated equality
        # into a hash join, but an IN list of two into a nested loop of every reference
        # against every arrest (at 1M, over 400 s for this set alone).
        # The constant, not the arrest's id: PostgreSQL answers from the number's index alone
        # (an index-only scan), not a page of the arrests' table per reference.
        probe = select(literal(1)).where(column_ == spelling).limit(1).scalar_subquery()
        return probe.is_not(None)

    named = or_(
        *(
            names(c, spelling)
            for c in (Arrest.otn, Arrest.incident_number, Arrest.docket_number)
            for spelling in (ref, func.upper(ref))
        )
    )
    return select(ref).where(named).cte("found_refs")


def _cites(reference: Any) -> ColumnElement[bool]:
    """The joined arrest is one the case reference names: its OTN, incident or docket number,
    as given or upper-cased (as ``found_refs`` finds them), tested on the arrest's row."""
    return or_(
        *(
            column_.in_((reference, func.upper(reference)))
            for column_ in (Arrest.otn, Arrest.incident_number, Arrest.docket_number)
        )
    )


def charge_states(
    facts: FromClause,
    *,
    cited: bool = False,
    carry: Sequence[str] = (),
    every: bool = False,
    by_person: bool = False,
) -> Select[Any]:
    """Per fact (``fact_id``, the facts' ``id``) whose person was an arrestee: the charge state
    of the person's arrests at the access (``person_state``): ``FILED`` when one of them had
    a filed charge, plus ``DECLINED`` when one was declined; and, with ``cited``, of those of
    them the fact's case reference cites (``case_state``, tested on the arrest's own row,
    read by its key). With ``every``, every fact has its row (state 0 for a person never an
    arrestee), with the facts' columns named in ``carry``.

    One join of the facts to the persons' involvements, their arrests and the timeline rows in
    force, grouped once: sets an engine can hash over a whole period, or probe by their
    indexes for a day's facts. Never a join of the facts to another set of the statement: a
    day's facts written in the same transaction are unknown to the planner, which then takes
    each such set for a row or two and joins them by a nested loop, scanning one once per row
    of the other (at 10M the day's 27,398 facts against 17,000 cited arrests: 376 million
    rows, 70 s).

    ``by_person`` (PostgreSQL, a day's facts, not with ``every``): the facts in the order of
    their person, each probing its person's arrestee involvements by their index (a LATERAL
    subquery the planner keeps as such, ``OFFSET 0``), not every arrestee involvement hashed
    against them (at 10M 900,000 rows for a day's 27,000 facts: 215 ms against 104 ms,
    docs/benchmarks.md, branch h13day3)."""
    f, t = facts.c, ChargeTimeline
    source: FromClause = facts
    arrest_id: Any = Involvement.arrest_id
    if by_person:
        assert not every, "by person: the facts with a state only (no outer join)"
        source = select(facts).order_by(f.person_id).subquery("facts_by_person")
        f = source.c
        arrestee = (
            select(Involvement.arrest_id)
            .where(
                Involvement.person_id == f.person_id,
                Involvement.role == InvolvementRole.ARRESTEE,
            )
            .offset(0)
            .lateral("arrestee")
        )
        arrest_id = arrestee.c.arrest_id
    key, *in_force = _as_of(arrest_id, f.at)
    # With ``every`` (outer joins) the timeline is joined by its arrest alone and the rows in
    # force at the access are told apart in the aggregates (the same states: a row not in force
    # counts as none): an outer join on a range and an OR is a nested loop on DuckDB (at 1M
    # never_charged's 265 s, docs/benchmarks.md, branch h13duck2), on the key a hash join.
    timeline_on = and_(key) if every else and_(key, *in_force)
    counted = in_force if every else []

    def state(*also: ColumnElement[bool]) -> ColumnElement[int]:
        return func.max(case((and_(*counted, *also, t.filed), FILED), else_=0)) + func.max(
            case((and_(*counted, *also, t.declined), DECLINED), else_=0)
        )

    person = state()
    columns = [
        f.id.label("fact_id"),
        # Grouped by the fact alone, its other columns carried as their (single) maximum: a
        # sort or hash by one key, not by every carried column.
        *(func.max(f[name]).label(name) for name in carry),
        (func.coalesce(person, 0) if every else person).label("person_state"),
    ]
    if by_person:
        joined = source.join(arrestee, literal(True)).join(t, timeline_on)
    else:
        i = Involvement
        joined = facts.join(
            i, and_(i.person_id == f.person_id, i.role == InvolvementRole.ARRESTEE), isouter=every
        ).join(t, timeline_on, isouter=every)
    if cited:
        named = state(_cites(f.case_reference))
        columns.append((func.coalesce(named, 0) if every else named).label("case_state"))
        joined = joined.join(Arrest, Arrest.id == arrest_id, isouter=every)
    return select(*columns).select_from(joined).group_by(f.id)


def _sweeps(
    facts: FromClause, selection: Selection, rules: Rules, dialect: str, indexed: bool = False
) -> tuple[ColumnElement[int], CTE | None]:
    """Each fact's sweep count: the external searches and reads of its user within
    ``sweep_window`` of its entry, either side, bounds included (any agreement, any outcome);
    and the set to join to the facts by ``entry_id`` for it, if any.

    PostgreSQL: one window over the facts' users' entries of the period (widened by the sweep
    window), read by user and instant (``audit.by_actor``: the integrator's index and the tail
    not integrated yet), sorted once and counted with a moving frame. SQLite has no interval
    frame over its text instants: a count per fact by user and instant, as before (per entry
    instead cost it more: a DISTINCT and an automatic index to join it back). ``indexed``: the
    count per fact on PostgreSQL too (facts scattered over the whole store, as those a refresh
    explains again: a window over their users' entries of the whole span would read most of
    the log)."""
    e, f = AuditEntry, facts.c
    external = [e.agreement_id.is_not(None), e.kind.in_((AuditKind.SEARCH, AuditKind.READ))]
    if dialect == "sqlite" or indexed:
        near = by_actor.entries_by(
            dialect,
            "user_id",
            f.user_id,
            start=_shift(f.at, -rules.sweep_window, dialect),
            end=_shift(f.at, rules.sweep_window, dialect),
            end_inclusive=True,
        )
        count = (
            select(func.count()).select_from(e).where(e.id.in_(near), *external).scalar_subquery()
        )
        return count, None
    w = rules.sweep_window
    lo, hi = datetime.min.replace(tzinfo=UTC) + w, datetime.max.replace(tzinfo=UTC) - w
    since = _since(selection, rules)
    micros = w // timedelta(microseconds=1)
    first = since - w if since >= lo else since
    last = selection.end + w if selection.end <= hi else selection.end
    # An interval offset SQLAlchemy's frame does not take; an int from Rules, not input.
    moving: ColumnElement[int] = literal_column(
        f"COUNT(*) OVER (PARTITION BY audit_entries.user_id ORDER BY audit_entries.at "
        f"RANGE BETWEEN INTERVAL '{micros} microseconds' PRECEDING "
        f"AND INTERVAL '{micros} microseconds' FOLLOWING)"
    )
    # DuckDB reading a store (oversight.duck) scans its columnar copy of the entries by user:
    # the per-user index (``audit.by_actor``) is PostgreSQL's way to them, read there through
    # the scanner, row by row.
    # Every fact's user's entries from one sweep window before the period's start, and only the
    # anchors' users' (facts before the start) from one before the anchors': a fact of the
    # period counts no entry before ``start - w``. A day's facts reach back a follow-up window
    # (three days) for their anchors, and all their users' entries of the four days were read
    # from the log's rows (at 10M 80,000 probed for a 27,000-fact day; 2,040 against 8,043 at
    # 1M now).
    middle = selection.start - w if selection.start >= lo else selection.start
    near_period = by_actor.entries_by(
        dialect, "user_id", select(f.user_id), start=middle, end=last, end_inclusive=True
    )
    anchors = select(f.user_id).where(f.at < selection.start)
    near_anchors = by_actor.entries_by(dialect, "user_id", anchors, start=first, end=middle)
    users: ColumnElement[bool] = (
        e.user_id.in_(select(f.user_id))
        if dialect == "duckdb"
        else e.id.in_(union_all(near_period, near_anchors))
    )
    sweeps = (
        select(e.id.label("entry_id"), moving.label("sweep"))
        .where(
            users,
            e.at >= first,
            e.at <= last,
            *external,
        )
        .cte("sweeps")
    )
    return func.coalesce(sweeps.c.sweep, 0), sweeps


def _flags(
    facts: FromClause,
    selection: Selection,
    rules: Rules,
    grants: Sequence[PurposeGrant],
    dialect: str,
    indexed_sweeps: bool = False,
    by_person: bool = False,
) -> CTE:
    """Each fact with the flags the rules and the reasons are made of (``by_person``: the
    charge states probed by person, ``charge_states``)."""
    f = facts.c
    purpose_ok = _purpose_ok(f, grants)
    states = charge_states(facts, cited=True, by_person=by_person).cte("charge_states")
    sweep, sweeps = _sweeps(facts, selection, rules, dialect, indexed_sweeps)
    # The references that name an arrest, once each: joined, not an IN list (PostgreSQL hashes
    # an IN list only while it fits in work_mem, and otherwise scans it once per fact).
    found = found_refs(facts)
    joined = facts.outerjoin(states, states.c.fact_id == f.id).outerjoin(
        found, found.c.ref == f.case_reference
    )
    if sweeps is not None:
        joined = joined.outerjoin(sweeps, sweeps.c.entry_id == f.entry_id)

    # The sets above are joined to the facts, each once; the flags made of them are plain
    # expressions over the columns of this materialised CTE.
    base = (
        select(
            facts,
            purpose_ok.label("purpose_ok"),
            sweep.label("sweep"),
            found.c.ref.is_not(None).label("case_found"),
            func.coalesce(states.c.case_state, 0).label("case_state"),
            func.coalesce(states.c.person_state, 0).label("person_state"),
        )
        .select_from(joined)
        .cte("facts_tested")
        .prefix_with("MATERIALIZED")
    )
    b = base.c
    case_explained = b.case_state.in_((FILED, FILED + DECLINED))
    person_filed = b.person_state.in_((FILED, FILED + DECLINED))
    bulk = or_(b.result_count >= rules.bulk_results, b.sweep >= rules.sweep_queries)
    purpose_rule = and_(
        b.purpose.in_(sorted(rules.caseless_purposes)),
        b.identifier_given,
        not_(b.name_given),
        b.result_count == 1,
        person_filed,
    )
    return select(
        *(b[c.name] for c in facts.c),
        b.purpose_ok,
        bulk.label("bulk"),
        b.case_found,
        case_explained.label("case_explained"),
        b.case_state.in_((DECLINED, FILED + DECLINED)).label("declined_in_case"),
        person_filed.label("person_filed"),
        b.person_state.in_((DECLINED, FILED + DECLINED)).label("person_declined"),
        purpose_rule.label("purpose_rule"),
        and_(b.purpose_ok, not_(bulk), or_(case_explained, purpose_rule)).label("direct"),
    ).cte("flags")


def explanations(
    selection: Selection,
    rules: Rules,
    grants: Sequence[PurposeGrant],
    dialect: str,
    facts: FromClause | None = None,
    *,
    indexed_sweeps: bool = False,
    by_person: bool = False,
) -> Select[Any]:
    """Every pair of the selection with its code: the rule that explains it, or one reason.
    ``indexed_sweeps``: each fact's sweep count by an index probe (``_sweeps``); ``by_person``
    (PostgreSQL, a day's facts): the charge states probed by person (``charge_states``)."""
    if selection.agreement_id is not None:
        # The other agreements' purposes can match none of this agreement's facts: left out,
        # the statement tests two or three purposes per pair, not every agreement's.
        grants = [g for g in grants if g.agreement_id == selection.agreement_id]
    if selection.agreement_ids is not None:
        grants = [g for g in grants if g.agreement_id in selection.agreement_ids]
    # The selection's facts (``facts_select``): as a CTE, or the table a caller filled with
    # them and analysed (``explain.materialise``), whose row count the planner then knows.
    source = facts if facts is not None else facts_select(selection, rules, dialect).cte("facts")
    flags = _flags(source, selection, rules, grants, dialect, indexed_sweeps, by_person)
    f = flags.c
    # The follow-up rule, as a window: the latest directly explained access by the same user
    # citing the same case strictly before this one. There is an anchor in the window exactly
    # when that latest one is in it. A correlated EXISTS over the flags instead probes an
    # unindexed CTE once per pair. Several agreements at once are each explained as on their
    # own (their own anchors). A pair citing no case is no follow-up: each is a partition of
    # its own (its id), not one of all its user's uncited pairs.
    # "Strictly before" without excluding the peers at the same instant (``EXCLUDE GROUP``
    # makes an engine aggregate each row's frame afresh: one partition of n rows costs n^2 / 2,
    # at 10M on DuckDB about 40% of the explanation): a running maximum over the rows before
    # this one, the pairs of one instant ordered with the direct ones last. A pair not
    # explained directly then has before it, of its own instant, only other such pairs (no
    # instant to give): its maximum is that of the earlier instants. A direct pair's maximum
    # may include its own instant, but it is never read: a direct pair is explained by the case
    # or the purpose rule, which the code tests before the follow-up.
    alone = case((f.case_reference.is_(None), f.id))
    partition = (
        (f.agreement_id, f.user_id, f.case_reference, alone)
        if selection.agreement_ids is not None
        else (f.user_id, f.case_reference, alone)
    )
    # Direct last: 1 sorts after 0 on every engine (a NULL ``direct``, as from a NULL purpose,
    # would sort last on PostgreSQL and DuckDB but first on SQLite).
    direct_last = case((f.direct, 1), else_=0)
    last_direct = (
        func.max(case((f.direct, f.at)))
        .over(partition_by=partition, order_by=(f.at, direct_last), rows=(None, -1))
        .label("last_direct_at")
    )
    windowed = select(flags, last_direct).subquery("windowed")
    p = windowed.c
    follow_up = and_(
        p.case_reference.is_not(None),
        p.last_direct_at.is_not(None),
        p.last_direct_at >= _shift(p.at, -rules.follow_up_window, dialect),
    )
    never_charged = and_(not_(p.person_filed), not_(p.person_declined))
    code = case(
        (not_(p.purpose_ok), Reason.PURPOSE_OUTSIDE_AGREEMENT.value),
        (p.bulk, Reason.BULK_OR_ENUMERATING.value),
        (p.case_explained, Rule.CASE_ARRESTEE.value),
        (p.purpose_rule, Rule.PURPOSE_RULE.value),
        (follow_up, Rule.FOLLOW_UP.value),
        (never_charged, Reason.NEVER_CHARGED.value),
        (or_(not_(p.person_filed), p.declined_in_case), Reason.CHARGES_DECLINED_OR_WITHDRAWN.value),
        (p.case_reference.is_(None), Reason.NO_CASE_CITED.value),
        (not_(p.case_found), Reason.CASE_NOT_FOUND.value),
        else_=Reason.CASE_NOT_INVOLVING_PERSON.value,
    )
    return select(
        p.entry_id,
        p.person_id,
        p.at,
        p.user_id,
        p.agency_id,
        p.agreement_id,
        p.agreement_version,
        p.purpose,
        p.case_reference,
        p.on_behalf_of,
        p.action,
        p.criteria,
        p.name_given,
        p.identifier_given,
        p.result_count,
        code.label("code"),
        never_charged.label("never_charged"),
    ).where(p.at >= selection.start)


class Dimension(StrEnum):
    """What coverage is grouped by."""

    AGENCY = "agency"
    USER = "user"
    PURPOSE = "purpose"
    WEEK = "week"


def _grouped(rows: Any, by: Dimension, dialect: str) -> ColumnElement[Any]:
    """The value the pairs are grouped by: the column itself, or the first instant of the
    week (SQLite: its day, as text)."""
    if by is Dimension.WEEK:
        if dialect == "sqlite":
            return func.date(rows.c.at, "weekday 0", "-6 days")
        if dialect == "duckdb":
            # DuckDB reading a store (oversight.duck): instants are naive UTC already.
            return func.date_trunc("week", rows.c.at)
        utc = rows.c.at.op("AT TIME ZONE")(literal("UTC"))
        return func.date_trunc("week", utc)
    column_: ColumnElement[Any] = {
        Dimension.AGENCY: rows.c.agency_id,
        Dimension.USER: rows.c.user_id,
        Dimension.PURPOSE: rows.c.purpose,
    }[by]
    return column_


def _key(group: Any, by: Dimension, dialect: str) -> ColumnElement[Any]:
    """The key shown for a group's value (``_grouped``): a week as its first day, an id as
    text, none as ``(none)``."""
    if by is Dimension.WEEK:
        if dialect == "sqlite":
            return group  # type: ignore[no-any-return]
        if dialect == "duckdb":
            return func.strftime(group, "%Y-%m-%d")
        return func.to_char(group, "YYYY-MM-DD")
    return func.coalesce(func.cast(group, String), "(none)")


def coverage(pairs: Select[Any], by: Dimension | None, dialect: str) -> Select[Any]:
    """Pairs, explained pairs, never-charged pairs and each reason's count (``reason_`` and
    the code), per value of ``by`` (or in all)."""
    rows = pairs.subquery("explained_pairs")
    explained = [r.value for r in Rule]
    counts = [
        func.count().label("pairs"),
        func.sum(case((rows.c.code.in_(explained), 1), else_=0)).label("explained"),
        func.sum(case((rows.c.never_charged, 1), else_=0)).label("never_charged"),
        # Not labelled by the code alone: ``never_charged`` is a column above too.
        *(
            func.sum(case((rows.c.code == r.value, 1), else_=0)).label(f"reason_{r.value}")
            for r in Reason
        ),
    ]
    if by is None:
        return select(literal("all").label("key"), *counts)
    # Grouped by the value itself, then each group's key made (not each pair's: at 10M pairs
    # that was a cast or a date format per pair). The purposes keep their coalesced key: a
    # purpose spelt "(none)" is one group with the pairs stating none, as it always was.
    value = _grouped(rows, by, dialect)
    if by is Dimension.PURPOSE:
        value = func.coalesce(value, "(none)")
    groups = select(value.label("value"), *counts).group_by(value).subquery("groups")
    key = _key(groups.c.value, by, dialect).label("key")
    return select(key, *(groups.c[c.name] for c in counts)).order_by(key)


def resolved(stored: FromClause, where: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """The kept explanations ``stored`` (``oversight_explained_pairs``, ``maintained``) that
    match ``where``, without shredded entries, each reference's "names an arrest" decided now:
    the one part of an explanation the refresh does not keep (an arrest created or renumbered
    later changes it). A pair kept as ``case_not_found`` or ``case_not_involving_person`` (the
    last two codes: nothing before them depends on it) is the first when its reference names
    no arrest now, else the second. The columns of ``explanations``, in its order. Read by the
    renewal report, the daily run's cycle (``explain.materialise``) and coverage."""
    entry = AuditEntry.__table__.alias("alive")
    rows = (
        select(stored)
        .where(
            *where,
            exists(
                select(entry.c.id).where(
                    entry.c.id == stored.c.entry_id, entry.c.content.is_not(None)
                )
            ),
        )
        .cte("kept_rows")
    )
    codes = (Reason.CASE_NOT_FOUND.value, Reason.CASE_NOT_INVOLVING_PERSON.value)
    open_ = rows.c.code.in_(codes)
    # Materialised: the kept rows of a day just written lie past the table's statistics, and
    # the planner, taking them for a row, otherwise joined them to the references by a nested
    # loop that probed the arrests again for every kept row (at 1M, 2,713 rows: 3.3 s).
    found = found_refs(select(rows.c.case_reference).where(open_).subquery("open")).prefix_with(
        "MATERIALIZED"
    )
    code = case(
        (
            open_,
            case(
                (found.c.ref.is_(None), Reason.CASE_NOT_FOUND.value),
                else_=Reason.CASE_NOT_INVOLVING_PERSON.value,
            ),
        ),
        else_=rows.c.code,
    )
    return select(
        *(code.label("code") if c.name == "code" else rows.c[c.name] for c in stored.c)
    ).select_from(rows.outerjoin(found, found.c.ref == rows.c.case_reference))
