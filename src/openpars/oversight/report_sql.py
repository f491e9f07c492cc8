"""The set-based statements behind the renewal report (``report.py``).

Every figure of the report is one aggregate over one of three row sets, and every drill-down
("which audit entries are behind this number") is a DISTINCT over the same row set with the same
filter, so a figure and the entries it links to can never disagree:

* ``queries``: the agreement's answered external reads (audit entries of kind ``search`` or
  ``read`` made under the agreement), with the stated purpose read from the entry's canonical
  content in the database;
* ``pairs``: every (external access, person returned) pair with its explanation code
  (``explain_sql.explanations``);
* ``refusals``: refused requests by the accounts of the grantee agency and its units (a refused
  request names no agreement: it was refused before one applied), with the error code from
  the content.

Each row set keeps only entries integrated into the log below ``size`` (a leaf index), so every
number is provable with an inclusion proof and a report regenerated for the same size gives the
same figures. Nothing is looked at row by row in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    Text,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.selectable import CTE, FromClause, Subquery

from openpars.audit.events import AuditKind
from openpars.audit.models import AuditEntry, AuditLeaf
from openpars.identity.models import Agency
from openpars.oversight import explain_sql
from openpars.oversight.explain_sql import PurposeGrant, Rule, Rules, Selection
from openpars.oversight.facts import AccessQuery, AccessRefusal
from openpars.oversight.models import Case, Flag, FlagEntry

NONE = "(none)"
SHREDDED = "(shredded)"


@dataclass(frozen=True, slots=True)
class Scope:
    """One report's rows: the agreement, its grantee, the period [start, end), the log size."""

    selection: Selection
    grantee_agency_id: int
    size: int
    rules: Rules
    grants: tuple[PurposeGrant, ...]
    dialect: str

    @property
    def agreement_id(self) -> int:
        assert self.selection.agreement_id is not None
        return self.selection.agreement_id


def content_path(dialect: str, *path: str) -> ColumnElement[Any]:
    """The scalar at ``path`` in an entry's canonical content, as text (NULL once shredded)."""
    if dialect == "sqlite":
        return func.json_extract(
            cast(AuditEntry.content, Text), "$." + ".".join(path), type_=String
        )
    if dialect == "duckdb":
        # DuckDB reading a store (oversight.duck): its JSON functions over the decoded bytes.
        return func.json_extract_string(
            func.decode(AuditEntry.content), "$." + ".".join(path), type_=String
        )
    doc = cast(func.convert_from(AuditEntry.content, literal("UTF8")), JSONB)
    # A constant path (never caller input), typed text[] as the operator wants.
    return doc.op("#>>", return_type=String)(literal_column("'{" + ",".join(path) + "}'::text[]"))


def week_of(at: Any, dialect: str) -> ColumnElement[Any]:
    """The Monday (UTC) of the ISO week of ``at``, as YYYY-MM-DD text."""
    if dialect == "sqlite":
        return func.date(at, "weekday 0", "-6 days")
    if dialect == "duckdb":
        # DuckDB reading a store (oversight.duck): instants are naive UTC already.
        return func.strftime(func.date_trunc("week", at), "%Y-%m-%d")
    utc = at.op("AT TIME ZONE")(literal("UTC"))
    return func.to_char(func.date_trunc("week", utc), "YYYY-MM-DD")


def grantee_units(scope: Scope) -> Select[Any]:
    """The grantee agency and every unit under it (an agreement covers its sub-units' users):
    a recursive walk of the small agencies table. Entries are found by these agencies through
    ``audit.by_actor`` (the index by agency and instant) rather than by a scan of the log."""
    units = (
        select(Agency.id.label("id"))
        .where(Agency.id == scope.grantee_agency_id)
        .cte("grantee_units", recursive=True)
    )
    units = units.union_all(select(Agency.id).where(Agency.parent_id == units.c.id))
    return select(units.c.id)


def queries(scope: Scope) -> Subquery:
    """The agreement's answered external reads in the period (one row per audit entry), from
    the refresh's per-entry table (its purpose read once from the content; NULL once
    shredded), by its (agreement, instant) index, without reading the log or its JSON."""
    s = scope.selection
    return (
        select(
            AccessQuery.entry_id.label("entry_id"),
            AccessQuery.at.label("at"),
            AccessQuery.agency_id.label("agency_id"),
            func.coalesce(AccessQuery.purpose, NONE).label("purpose"),
        )
        .where(
            AccessQuery.agreement_id == scope.agreement_id,
            AccessQuery.agency_id.in_(grantee_units(scope)),
            AccessQuery.at >= s.start,
            AccessQuery.at < s.end,
            AccessQuery.leaf_index < scope.size,
        )
        .subquery("queries")
    )


def _in_period(scope: Scope, stored: FromClause) -> list[ColumnElement[bool]]:
    """Stored explanations of the report's agreement and period (their (agreement, instant)
    index)."""
    s = scope.selection
    return [
        stored.c.agreement_id == scope.agreement_id,
        stored.c.at >= s.start,
        stored.c.at < s.end,
    ]


def _resolved(scope: Scope, stored: FromClause) -> Subquery:
    """The kept explanations of the agreement's period (``maintained``), resolved as every
    reader of them resolves them (``explain_sql.resolved``)."""
    return explain_sql.resolved(stored, _in_period(scope, stored)).subquery("explained")


def pairs(scope: Scope, stored: FromClause | None = None, *, kept: bool = False) -> Subquery:
    """Every (access, person) pair of the period with its code, from proven entries only.

    ``stored``: the pairs already explained in this cycle (``explain.Explained``'s table, the
    columns of ``explain_sql.explanations`` under the same rules), read by its (agreement,
    instant) index instead of explaining them again; with ``kept``, the explanations the
    refresh keeps (``_resolved``)."""
    s = scope.selection
    if stored is not None and kept:
        explained = _resolved(scope, stored)
    elif stored is None:
        explained = explain_sql.explanations(s, scope.rules, scope.grants, scope.dialect).subquery(
            "explained"
        )
    else:
        explained = select(stored).where(*_in_period(scope, stored)).subquery("explained")
    # Each pair's leaf probed by the leaves' entry index (a scalar subquery, per pair of the
    # agreement's period: NULL, and left out, for an entry without a leaf): an IN over the
    # leaves below the size was a hash of every leaf of the log for each report (at 1M
    # entries 0.9 s of a report's 2.3 s pairs statement; ten times that at 10M).
    leaf = (
        select(AuditLeaf.leaf_index)
        .where(AuditLeaf.entry_id == explained.c.entry_id)
        .correlate(explained)
        .scalar_subquery()
    )
    return (
        select(
            explained.c.entry_id,
            explained.c.person_id,
            explained.c.at,
            func.coalesce(cast(explained.c.agency_id, String), NONE).label("agency"),
            func.coalesce(explained.c.purpose, NONE).label("purpose"),
            explained.c.code,
            explained.c.code.in_([r.value for r in Rule]).label("explained"),
            explained.c.never_charged,
        )
        .where(leaf < scope.size)
        .subquery("pairs")
    )


def refusals(scope: Scope, read: int) -> Subquery:
    """Refused requests of the grantee agency's accounts in the period, with their error code
    ("(shredded)" once the entry's content is shredded). ``read``: the leaves the refresh has
    read (``facts.watermark``): below it from the refresh's per-refusal table by its (agency,
    instant) index, each refusal's entry probed for its content; from ``read`` up to the
    report's size (leaves integrated since the refresh, normally none) from the log, by the
    leaves' index."""
    s = scope.selection
    units = grantee_units(scope)
    r = AccessRefusal
    # The entry probed per refusal of the grantee (a scalar subquery, after the filter): joined,
    # the planner hashed every refusal of every agency against a scan of the whole log.
    gone = (
        select(AuditEntry.content.is_(None))
        .where(AuditEntry.id == r.entry_id)
        .correlate(r)
        .scalar_subquery()
    )
    derived = select(
        r.entry_id.label("entry_id"),
        case((gone, SHREDDED), else_=func.coalesce(r.code, SHREDDED)).label("code"),
    ).where(
        r.agency_id.in_(units),
        r.at >= s.start,
        r.at < s.end,
        r.leaf_index < min(read, scope.size),
    )
    later = (
        select(
            AuditEntry.id.label("entry_id"),
            func.coalesce(content_path(scope.dialect, "error_code"), SHREDDED).label("code"),
        )
        .select_from(AuditLeaf)
        .join(AuditEntry, AuditEntry.id == AuditLeaf.entry_id)
        .where(
            AuditLeaf.leaf_index >= read,
            AuditLeaf.leaf_index < scope.size,
            AuditEntry.agency_id.in_(units),
            AuditEntry.kind == AuditKind.REFUSED,
            AuditEntry.at >= s.start,
            AuditEntry.at < s.end,
        )
    )
    return union_all(derived, later).subquery("refusals")


def flags(scope: Scope) -> Select[*tuple[Any, ...]]:
    """The flags raised in the period about the agreement (named by the flag, or by one of the
    entries that fired it), whatever their detector, with their case's state and finding."""
    s = scope.selection
    of_agreement = FlagEntry.flag_id.in_(
        select(FlagEntry.flag_id)
        .join(AuditEntry, AuditEntry.id == FlagEntry.entry_id)
        .where(AuditEntry.agreement_id == scope.agreement_id)
    )
    about = (Flag.subject_agreement_id == scope.agreement_id) | Flag.id.in_(
        select(FlagEntry.flag_id).where(of_agreement)
    )
    entries = (
        select(func.count()).where(FlagEntry.flag_id == Flag.id).correlate(Flag).scalar_subquery()
    )
    return (
        select(
            Flag.id,
            Flag.detector,
            Flag.rule,
            Flag.threshold,
            Flag.raised_at,
            Flag.subject_user_id,
            Flag.subject_agency_id,
            Flag.case_id,
            Case.state.label("case_state"),
            Case.finding,
            entries.label("entries"),
        )
        .outerjoin(Case, Case.id == Flag.case_id)
        .where(about, Flag.raised_at >= s.start, Flag.raised_at < s.end)
    )


def pair_totals(p: Subquery | CTE) -> Select[*tuple[Any, ...]]:
    """Pairs, persons and entries in all, explained, and never charged (persons and entries)."""
    never_person = case((p.c.never_charged, p.c.person_id))
    never_entry = case((p.c.never_charged, p.c.entry_id))
    return select(
        func.count().label("pairs"),
        func.count(func.distinct(p.c.person_id)).label("persons"),
        func.count(func.distinct(p.c.entry_id)).label("entries"),
        func.count(func.distinct(case((p.c.explained, p.c.entry_id)))).label("explained_entries"),
        func.count(func.distinct(case((~p.c.explained, p.c.entry_id)))).label(
            "unexplained_entries"
        ),
        func.count(func.distinct(never_person)).label("never_persons"),
        func.count(func.distinct(never_entry)).label("never_entries"),
    )


# The columns of ``pair_summary``: which part a row belongs to, the group's key (NULL in the
# totals row), then the counts of either part (NULL where the other part's).
GROUP_KEYS = ("week", "agency", "purpose", "code")
GROUP_COUNTS = ("pairs", "entries", "explained", "never_charged")
TOTAL_COUNTS = (
    "persons",
    "explained_entries",
    "unexplained_entries",
    "never_persons",
    "never_entries",
)


def pair_summary(p: Subquery, dialect: str) -> Select[Any]:
    """``pair_groups`` and ``pair_totals`` in one statement: the pairs (the explanation, the
    costly part) are computed once into a materialised CTE and both aggregates read it. Rows
    with ``part`` = 'group' are the groups; the one row with ``part`` = 'total' the totals
    (its ``pairs`` and ``entries`` are the totals' pairs and distinct entries)."""
    once = select(p).cte("report_pairs").prefix_with("MATERIALIZED")
    g = pair_groups(once, dialect).subquery("report_groups")
    t = pair_totals(once).subquery("report_totals")

    def text_null(name: str) -> Any:
        return cast(null(), String).label(name)

    def int_null(name: str) -> Any:
        return cast(null(), BigInteger).label(name)

    groups = select(
        literal("group").label("part"),
        *(g.c[k] for k in GROUP_KEYS),
        *(cast(g.c[k], BigInteger).label(k) for k in GROUP_COUNTS),
        *(int_null(k) for k in TOTAL_COUNTS),
    )
    totals = select(
        literal("total").label("part"),
        *(text_null(k) for k in GROUP_KEYS),
        cast(t.c.pairs, BigInteger).label("pairs"),
        cast(t.c.entries, BigInteger).label("entries"),
        int_null("explained"),
        int_null("never_charged"),
        *(cast(t.c[k], BigInteger).label(k) for k in TOTAL_COUNTS),
    )
    return select(union_all(groups, totals).subquery("report_summary"))


def weekly_queries(q: Subquery, dialect: str) -> Select[Any]:
    """Queries per ISO week, agency and purpose."""
    week = week_of(q.c.at, dialect).label("week")
    agency = func.coalesce(cast(q.c.agency_id, String), NONE).label("agency")
    return (
        select(week, agency, q.c.purpose, func.count().label("queries"))
        .group_by(week, agency, q.c.purpose)
        .order_by(week, agency, q.c.purpose)
    )


def pair_groups(p: Subquery | CTE, dialect: str) -> Select[*tuple[Any, ...]]:
    """Pairs, distinct entries, explained and never-charged pairs per ISO week, agency, purpose
    and explanation code."""
    week = week_of(p.c.at, dialect).label("week")
    return select(
        week,
        p.c.agency,
        p.c.purpose,
        p.c.code,
        func.count().label("pairs"),
        func.count(func.distinct(p.c.entry_id)).label("entries"),
        func.sum(case((p.c.explained, 1), else_=0)).label("explained"),
        func.sum(case((p.c.never_charged, 1), else_=0)).label("never_charged"),
    ).group_by(week, p.c.agency, p.c.purpose, p.c.code)


def week_filter(q: Subquery, monday: datetime, agency: str, purpose: str) -> list[Any]:
    """The rows of ``queries`` in one week, agency and purpose (a weekly row's drill-down)."""
    agency_is = q.c.agency_id.is_(None) if agency == NONE else q.c.agency_id == int(agency)
    return [
        q.c.at >= monday,
        q.c.at < monday + timedelta(days=7),
        agency_is,
        q.c.purpose == purpose,
    ]


def flag_entries(flag_ids: Select[Any]) -> Select[Any]:
    """The audit entries that fired the given flags."""
    return select(FlagEntry.entry_id.label("entry_id")).where(FlagEntry.flag_id.in_(flag_ids))


def entries_page(ids: Select[Any], offset: int, limit: int) -> tuple[Select[Any], Select[Any]]:
    """(count, page) of the distinct entry ids of a figure, with their leaf index and instant."""
    distinct = ids.distinct().subquery("figure_entries")
    total = select(func.count()).select_from(distinct)
    page = (
        select(distinct.c.entry_id, AuditEntry.at, AuditLeaf.leaf_index)
        .join(AuditEntry, AuditEntry.id == distinct.c.entry_id)
        .outerjoin(AuditLeaf, AuditLeaf.entry_id == distinct.c.entry_id)
        .order_by(distinct.c.entry_id)
        .offset(offset)
        .limit(limit)
    )
    return total, page
