"""Access facts: one row per (external read in the audit log, person it returned).

The facts are derived from the log, never written by the request path: ``refresh`` reads the
entries integrated into the Merkle tree since its watermark (a leaf index) and inserts their
facts with one set-based statement per batch. Leaves are contiguous and final, so an entry that
commits late on PostgreSQL (a lower id after a higher one) is never skipped, and every fact
names an entry an auditor can prove with an inclusion proof. Facts of crypto-shredded entries
are dropped when the shredding entry is read, and every reader keeps only entries whose content
is still on their row, so a shredded entry's facts are never shown even before that
(docs/oversight.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    CursorResult,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    exists,
    select,
    text,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from openpars.audit.events import AuditKind, Outcome
from openpars.audit.models import SHREDDED_INDEX, AuditEntry
from openpars.db import Base, UTCDateTime
from openpars.records.enums import ChargeStage, ChargingOutcome, InvolvementRole

# SQLite has BIGINT primary keys only as INTEGER, which is what makes them rowid aliases.
_ID = BigInteger().with_variant(Integer(), "sqlite")
WATERMARK = "access_facts"
# Leaves read per INSERT ... SELECT: bounds one statement's memory, not a loop per entry.
BATCH_LEAVES = 200_000
# A refresh that reads at least this many leaves, and at least as many as the facts had read
# before it (from the first leaf, or far behind), is a bulk load (``_bulk_load``).
BULK_LEAVES = 100_000
# The sort and hash memory of a bulk load's statements and index builds (PostgreSQL; its
# default 4 MB made every batch's joins and sorts spill to disk).
BULK_MEMORY = "256MB"
# The planner settings of a bulk load's staging statement (PostgreSQL): its cost model sees
# the joins, not the JSON parse that is most of the statement's work (about 5 us a document),
# and prices sending the rows to the leader above running them in one process; with these the
# joins and the parse run in parallel workers (``max_parallel_workers_per_gather``), the
# fields read from the parsed documents, the sort and the writes in the leader. Same rows.
PARALLEL_STAGING = {"parallel_setup_cost": "0", "parallel_tuple_cost": "0"}
# Query criteria that name one record exactly (an id given after an earlier result included).
IDENTIFIER_CRITERIA = (
    "sid",
    "fbi_number",
    "otn",
    "incident_number",
    "docket_number",
    "person_id",
    "arrest_id",
)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class AccessFact(Base):
    """One person returned by one external read, with the read's declared context and shape."""

    __tablename__ = "oversight_access_facts"
    __table_args__ = (
        UniqueConstraint("entry_id", "person_id"),
        Index("ix_oversight_access_facts_agreement_at", "agreement_id", "at"),
        Index("ix_oversight_access_facts_agency_at", "agency_id", "at"),
        Index("ix_oversight_access_facts_user_at", "user_id", "at"),
        # No index by person alone: no reader probes the facts by person (each reads a window
        # by agreement, agency, user or reference), and a random leaf per row made it one of
        # the facts insert's two costliest indexes at 10M (docs/benchmarks.md, Oversight).
        # A reference's citations (shared_case_reference reads those of a day's references).
        Index("ix_oversight_access_facts_case_at", "case_reference", "at"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(BigInteger)
    person_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(Integer)
    agency_id: Mapped[int | None] = mapped_column(Integer)
    agreement_id: Mapped[int | None] = mapped_column(Integer)
    agreement_version: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str | None] = mapped_column(String(100))
    case_reference: Mapped[str | None] = mapped_column(String(200))
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    # person.search, person.get, arrest.search, arrest.get
    action: Mapped[str] = mapped_column(String(100))
    # The query's criteria names, sorted and comma-separated ("name,offset" ...).
    criteria: Mapped[str | None] = mapped_column(String(300))
    name_given: Mapped[bool] = mapped_column(Boolean)
    identifier_given: Mapped[bool] = mapped_column(Boolean)
    # Persons the read returned in all (the same for every fact of the entry).
    result_count: Mapped[int] = mapped_column(Integer)


class AccessQuery(Base):
    """One answered external read (whatever it returned, persons or none): the rows a renewal
    report counts as queries, with the purpose read once from the content by the refresh (NULL
    once the content is shredded) and the entry's leaf index, so that a report filters by log
    size and agreement on this narrow table instead of the whole log and its JSON."""

    __tablename__ = "oversight_access_queries"
    __table_args__ = (Index("ix_oversight_access_queries_agreement_at", "agreement_id", "at"),)

    entry_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf_index: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    agency_id: Mapped[int | None] = mapped_column(Integer)
    agreement_id: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str | None] = mapped_column(String)


class AccessRefusal(Base):
    """One refused request by an agency's account (a refusal names no agreement: it was
    refused before one applied), with its error code read once from the content by the
    refresh and the entry's leaf index: the rows a renewal report counts as refusals, read by
    the grantee's units and instant instead of every entry of the agency probed for its kind
    (at 1M entries, 40,000 entries read for a report to find its agency's few refusals). A
    reader decides "shredded" from the entry itself (``report_sql.refusals``)."""

    __tablename__ = "oversight_access_refusals"
    __table_args__ = (Index("ix_oversight_access_refusals_agency_at", "agency_id", "at"),)

    entry_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf_index: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    agency_id: Mapped[int] = mapped_column(Integer)
    code: Mapped[str | None] = mapped_column(String(100))


class ChargeTimeline(Base):
    """One interval of an arrest's charging state, derived from the DA's decisions and the
    approved charges by the refresh: from ``start_at`` (an approval or a decision) up to
    ``end_at`` (the next one, NULL for the current state). Before an arrest's first row it had
    neither a filed nor a declined charge. "As of t" is the row with start_at <= t < end_at:
    one index probe instead of a probe of the charges and another of the decisions."""

    __tablename__ = "oversight_charge_timeline"

    arrest_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A DA-approved charge by then and the latest decision not a decline.
    filed: Mapped[bool] = mapped_column(Boolean)
    # The latest decision by then (the highest id among decisions at the same instant) declined.
    declined: Mapped[bool] = mapped_column(Boolean)


class UserDay(Base):
    """One user's answered reads under an agreement on one UTC day, from the integrated leaves
    the facts have read: how many, and the hours worked as the bits of a mask (bit h for hour
    h). Written by the refresh in the facts' transaction, so that the per-day detectors read a
    row per user and day of history, not the day's entries. The agency is kept so that a reader
    tests it as the entries' readers do (an outside agency's, by the agencies table)."""

    __tablename__ = "oversight_user_days"
    # A daily run reads 28 days of its busy users (the key: a user's days in order), or, when
    # the planner expects many of them, the window's days by the day alone.
    __table_args__ = (Index("ix_oversight_user_days_day", "day"),)

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # 'YYYY-MM-DD' (UTC), the detectors' day.
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    agency_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reads: Mapped[int] = mapped_column(Integer)
    hours: Mapped[int] = mapped_column(Integer)


class ArresteeArrest(Base):
    """One arrest of a person as its arrestee, with the instant of the person's arrest just
    before it (NULL for the first) and the person's attributes copied, so that the arrestees
    of any window [since, end) are counted without a person twice and without a join: each
    person once, by the first of its arrests in the window, the row whose ``prev_at`` is
    before ``since`` (``population_skew``'s baseline). Kept by the refresh for the persons
    whose arrests or attributes changed (new arrestee involvements, and the persons and
    arrests the records' write entries of the new leaves name); the detector recounts live
    the persons the log's tail names (docs/oversight.md, "Population skew")."""

    __tablename__ = "oversight_arrestee_arrests"
    # A window's rows by the instant alone, every column the count reads in the index (an
    # index-only read: the person too, tested against the persons the log's tail names).
    __table_args__ = (
        Index(
            "ix_oversight_arrestee_arrests_at",
            "at",
            "prev_at",
            "citizenship",
            "place_of_birth",
            "race",
            "sex",
            "person_id",
        ),
    )

    person_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    arrest_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    prev_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    citizenship: Mapped[str | None] = mapped_column(String(100))
    place_of_birth: Mapped[str | None] = mapped_column(String(100))
    race: Mapped[str | None] = mapped_column(String(100))
    sex: Mapped[str | None] = mapped_column(String(100))


class ArresteeDay(Base):
    """The arrestee rows (``ArresteeArrest``) counted by the UTC day of their instant, the UTC
    day of the person's arrest just before (NULL for the first) and the attributes:
    ``population_skew``'s baseline for a window bounded by midnights (a daily run's) is summed
    from these counts, not counted from the rows (at 10M, 630 counts for 900,000 rows). Kept
    with the rows by the refresh, as changes: the counts of the rows it deletes added negated,
    those of the rows it inserts added, so that a key's rows sum to its count; compacted (each
    key's rows summed into one, zeros dropped) when they have doubled since the last
    compaction (``ARRESTEE_DAYS``'s mark holds that size)."""

    __tablename__ = "oversight_arrestee_days"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10))
    prev_day: Mapped[str | None] = mapped_column(String(10))
    citizenship: Mapped[str | None] = mapped_column(String(100))
    place_of_birth: Mapped[str | None] = mapped_column(String(100))
    race: Mapped[str | None] = mapped_column(String(100))
    sex: Mapped[str | None] = mapped_column(String(100))
    n: Mapped[int] = mapped_column(Integer)


class ExplainedPair(Base):
    """One access fact's explanation (``explain_sql.explanations``, one agreement's pairs
    explained as on their own), kept by the refresh under the rules in ``ExplanationRules``
    (``maintained.py``): written for the new facts and rewritten for the facts a later write
    may change (docs/oversight.md, "Maintained explanations"). Same columns as the statement's
    rows, keyed by the fact; a shredded entry's rows are deleted with its facts."""

    __tablename__ = "oversight_explained_pairs"
    __table_args__ = (
        # A report's pairs: one agreement's period.
        Index("ix_oversight_explained_pairs_agreement_at", "agreement_id", "at"),
        # The facts of the persons a write touched (the facts keep no index by person).
        Index("ix_oversight_explained_pairs_person", "person_id"),
    )

    entry_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(Integer)
    agency_id: Mapped[int | None] = mapped_column(Integer)
    agreement_id: Mapped[int | None] = mapped_column(Integer)
    agreement_version: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str | None] = mapped_column(String(100))
    case_reference: Mapped[str | None] = mapped_column(String(200))
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    criteria: Mapped[str | None] = mapped_column(String(300))
    name_given: Mapped[bool] = mapped_column(Boolean)
    identifier_given: Mapped[bool] = mapped_column(Boolean)
    result_count: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(50))
    never_charged: Mapped[bool] = mapped_column(Boolean)


class ExplanationRules(Base):
    """The rules the kept explanations were computed under (one row, ``name`` 'rules'): their
    canonical JSON and its SHA-256. No row: no explanation is kept."""

    __tablename__ = "oversight_explanation_rules"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    rules: Mapped[str] = mapped_column(String(2000))
    fingerprint: Mapped[str] = mapped_column(String(64))


# Typed as tables (an ORM class's ``__table__`` is typed as any FromClause).
EXPLAINED_PAIRS = cast(Table, ExplainedPair.__table__)
EXPLANATION_RULES = cast(Table, ExplanationRules.__table__)


class FactsWatermark(Base):
    """How many leaves of the log a derived table has read (the next leaf index to read)."""

    __tablename__ = "oversight_watermarks"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


# ---------------------------------------------------------------------------------------------
# Not shredded
# ---------------------------------------------------------------------------------------------


def shredded_indexed(session: Session) -> bool:
    """Whether the readers may test "not shredded" against the shredded entries' partial
    index (``audit.models.SHREDDED_INDEX``): PostgreSQL with the index built and valid. A store
    created before the index has none until it is built (docs/oversight.md, "Access facts");
    its readers keep probing each entry for its content (``kept_entry_sql``)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_index i "
                "WHERE i.indexrelid = to_regclass(:name) AND i.indisvalid)"
            ),
            {"name": SHREDDED_INDEX},
        ).scalar_one()
    )


def kept_entry_sql(entry_id: str, indexed: bool) -> str:
    """SQL text: the entry ``entry_id`` (a column, no caller input) was not shredded. With
    ``indexed`` (``shredded_indexed``) it is not among the shredded entries, which PostgreSQL
    answers from the partial index as an anti-join on a hash of its few ids; else the entry is
    probed for its content (one index descent and heap page per row). The same rows: an
    entry is never deleted, so a fact's entry exists."""
    if indexed:
        return (
            "NOT EXISTS (SELECT 1 FROM audit_entries c "  # noqa: S608 - a column name
            f"WHERE c.id = {entry_id} AND c.content IS NULL)"
        )
    return (
        "EXISTS (SELECT 1 FROM audit_entries c "  # noqa: S608 - a column name
        f"WHERE c.id = {entry_id} AND c.content IS NOT NULL)"
    )


def kept_entry(entry_id: ColumnElement[Any], indexed: bool) -> ColumnElement[bool]:
    """``kept_entry_sql`` as an expression of the column ``entry_id``."""
    entry = cast(Table, AuditEntry.__table__).alias("kept")
    if indexed:
        return ~exists(select(entry.c.id).where(entry.c.id == entry_id, entry.c.content.is_(None)))
    return exists(select(entry.c.id).where(entry.c.id == entry_id, entry.c.content.is_not(None)))


# ---------------------------------------------------------------------------------------------
# Set-based derivation from the log
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Json:
    """How one dialect reads the canonical JSON of an entry's content."""

    doc: str  # the parsed document, from e.content (NULL once shredded)
    path: str  # a scalar at a path as text; {dots} and {commas} join the path
    persons_of: str  # the person ids of the document n.doc, as a JSON array
    persons: str  # FROM-clause: a row per person id of the staged s.content_person_ids
    person_id: str  # the person id of that row
    count: str  # number of person ids of the staged array
    criteria: str  # sorted, comma-separated keys of params.query
    # Ends the subquery that parses the document: on PostgreSQL "OFFSET 0" keeps the planner
    # from pulling it up, which would parse the document again for every field taken from it.
    fence: str = ""

    def get(self, *path: str) -> str:
        """SQL text of the scalar at the path, as text."""
        return self.path.format(dots=".".join(path), commas=",".join(path))


_SQLITE = _Json(
    # The canonical content is already minified JSON text: json() around it would parse and
    # print every document once per use (the subquery is flattened), four times the work.
    doc="CAST(e.content AS TEXT)",
    path="json_extract(n.doc, '$.{dots}')",
    persons_of="json_extract(n.doc, '$.person_ids')",
    persons="json_each(s.content_person_ids) AS p",
    person_id="CAST(p.value AS INTEGER)",
    count="json_array_length(s.content_person_ids)",
    criteria="(SELECT group_concat(k, ',') FROM (SELECT key AS k FROM "
    "json_each(n.doc, '$.params.query') ORDER BY key))",
)
_POSTGRES = _Json(
    doc="convert_from(e.content, 'UTF8')::jsonb",
    path="(n.doc #>> '{{{commas}}}')",
    persons_of="(n.doc -> 'person_ids')",
    persons="jsonb_array_elements_text(s.content_person_ids) AS p",
    person_id="CAST(p AS INTEGER)",
    count="jsonb_array_length(s.content_person_ids)",
    criteria="(SELECT string_agg(k, ',' ORDER BY k) FROM "
    "jsonb_object_keys(n.doc -> 'params' -> 'query') AS k)",
    fence="OFFSET 0",
)

# The answered external reads of a refresh's leaves, each entry's content parsed once into
# the fields the facts, the queries and the per-day rows take from it (``_stage_sql``).
STAGED = "oversight_refresh_reads"


def _stage_sql(j: _Json) -> str:
    """Create the temporary ``STAGED`` table: one row per answered external read of leaves
    [:lo, :hi), its content parsed once (its fields NULL once the content is shredded), in
    the log's order. Ordered because a bulk load's hash joins outgrow their memory at 10M
    entries and then return rows batch by batch: the facts and queries, written in the staged
    order, would lose the log's order on disk, which their readers' ranges by instant rely on
    for neighbouring rows on neighbouring pages."""
    identifier = " OR ".join(
        f"{j.get('params', 'query', c)} IS NOT NULL" for c in IDENTIFIER_CRITERIA
    )
    return f"""
        CREATE TEMPORARY TABLE {STAGED} AS
        SELECT n.id AS entry_id, n.leaf_index, n.at, n.user_id, n.agency_id, n.agreement_id,
            n.action, CAST({j.get("agreement_version")} AS INTEGER) AS agreement_version,
            {j.get("params", "purpose")} AS purpose,
            {j.get("params", "case_number")} AS case_reference,
            {j.get("params", "on_behalf_of")} AS on_behalf_of, {j.criteria} AS criteria,
            ({j.get("params", "query", "name")} IS NOT NULL) AS name_given,
            ({identifier}) AS identifier_given, {j.persons_of} AS content_person_ids
        FROM (
            SELECT e.id, l.leaf_index, e.at, e.user_id, e.agency_id, e.agreement_id, e.action,
                {j.doc} AS doc
            FROM audit_leaves l
            JOIN audit_entries e ON e.id = l.entry_id
            WHERE l.leaf_index >= :lo AND l.leaf_index < :hi
              AND e.agreement_id IS NOT NULL AND e.outcome = '{Outcome.OK.value}'
              AND e.kind IN ('{AuditKind.SEARCH.value}', '{AuditKind.READ.value}')
            {j.fence}
        ) AS n
        ORDER BY n.leaf_index
    """  # noqa: S608 - no caller input: fixed paths and enum values


def stage_sql(dialect: str) -> str:
    """The statement that stages the answered external reads of leaves [:lo, :hi)."""
    return _stage_sql(_SQLITE if dialect == "sqlite" else _POSTGRES)


def _insert_sql(j: _Json) -> str:
    """The facts of the staged reads: one per person each returned (none once shredded)."""
    return f"""
        INSERT INTO oversight_access_facts (entry_id, person_id, at, user_id, agency_id,
            agreement_id, agreement_version, purpose, case_reference, on_behalf_of, action,
            criteria, name_given, identifier_given, result_count)
        SELECT s.entry_id, {j.person_id}, s.at, s.user_id, s.agency_id, s.agreement_id,
            s.agreement_version, s.purpose, s.case_reference, s.on_behalf_of, s.action,
            s.criteria, s.name_given, s.identifier_given, {j.count}
        FROM {STAGED} AS s, {j.persons}
    """  # noqa: S608 - no caller input


# The staged reads as queries: every one, whatever it returned (the purpose NULL once the
# content is shredded).
_QUERIES = f"""
    INSERT INTO oversight_access_queries (entry_id, leaf_index, at, agency_id, agreement_id,
        purpose)
    SELECT entry_id, leaf_index, at, agency_id, agreement_id, purpose FROM {STAGED}
"""  # noqa: S608 - no caller input


def refusals_sql(dialect: str) -> str:
    """The refused requests of leaves [:lo, :hi) by an agency's accounts into
    ``oversight_access_refusals``, each error code read from its content (NULL once
    shredded; a reader tests the entry itself)."""
    code = (
        "json_extract(CAST(e.content AS TEXT), '$.error_code')"
        if dialect == "sqlite"
        else "convert_from(e.content, 'UTF8')::jsonb ->> 'error_code'"
    )
    return f"""
        INSERT INTO oversight_access_refusals (entry_id, leaf_index, at, agency_id, code)
        SELECT e.id, l.leaf_index, e.at, e.agency_id, {code}
        FROM audit_leaves l JOIN audit_entries e ON e.id = l.entry_id
        WHERE l.leaf_index >= :lo AND l.leaf_index < :hi
          AND e.kind = '{AuditKind.REFUSED.value}' AND e.agency_id IS NOT NULL
    """  # noqa: S608 - no caller input


def day_hour(dialect: str) -> tuple[str, str]:
    """The UTC day ('YYYY-MM-DD') and hour of ``e.at`` (SQLite keeps naive UTC text)."""
    if dialect == "sqlite":
        return "substr(e.at, 1, 10)", "CAST(substr(e.at, 12, 2) AS INTEGER)"
    return (
        "to_char(timezone('UTC', e.at), 'YYYY-MM-DD')",
        "CAST(extract(hour FROM timezone('UTC', e.at)) AS INTEGER)",
    )


def user_days_sql(dialect: str, *, merge: bool) -> str:
    """Add the staged reads to the per-(user, agency, day) rows (no caller input): merged
    into the rows of the same keys (``merge``), or, into an empty table, inserted (a
    speculative insertion per row cost a bulk load more than its grouping)."""
    day, hour = day_hour(dialect)
    if dialect == "postgresql":
        # Grouped by the UTC date, formatted once per group; the hours' bits ORed.
        grouped = f"""
            SELECT user_id, agency_id, to_char(d, 'YYYY-MM-DD'), reads, hours FROM (
                SELECT e.user_id, e.agency_id, CAST(timezone('UTC', e.at) AS DATE) AS d,
                    COUNT(*) AS reads, bit_or(1 << {hour}) AS hours
                FROM {STAGED} AS e
                WHERE e.user_id IS NOT NULL AND e.agency_id IS NOT NULL
                GROUP BY e.user_id, e.agency_id, CAST(timezone('UTC', e.at) AS DATE)
            ) AS g
        """  # noqa: S608 - no caller input
    else:
        # SQLite has no bit_or: the sum of the distinct powers of two is the same mask.
        grouped = f"""
            SELECT e.user_id, e.agency_id, {day}, COUNT(*), SUM(DISTINCT 1 << {hour})
            FROM {STAGED} AS e
            WHERE e.user_id IS NOT NULL AND e.agency_id IS NOT NULL
            GROUP BY e.user_id, e.agency_id, {day}
        """  # noqa: S608 - no caller input
    # SQLite reads "ON" after a SELECT's FROM as a join's: a WHERE true ends the SELECT.
    upsert = """
        WHERE true ON CONFLICT (user_id, agency_id, day) DO UPDATE
        SET reads = oversight_user_days.reads + excluded.reads,
            hours = oversight_user_days.hours | excluded.hours
    """
    return f"""
        INSERT INTO oversight_user_days (user_id, agency_id, day, reads, hours)
        SELECT * FROM ({grouped}) AS u {upsert if merge else ""}
    """  # noqa: S608 - no caller input: fixed fragments


def _purge_sql(dialect: str, action: str, entries: str | None = None) -> str:
    """``action`` (a DELETE or UPDATE of a derived table, no caller input) restricted to the
    entries a shredding entry in the new leaves names (with ``entries``, a SELECT of entry ids
    such as the log's tail not integrated yet: a shredding entry among those)."""
    if dialect == "sqlite":
        ids = "SELECT CAST(x.value AS INTEGER) FROM s, json_each(s.doc, '$.params.entry_ids') AS x"
    else:
        ids = (
            "SELECT CAST(x AS BIGINT) FROM s, "
            "jsonb_array_elements_text(s.doc -> 'params' -> 'entry_ids') AS x"
        )
    shredding = f"e.action = 'audit.shred' AND e.outcome = '{Outcome.OK.value}'"
    documents = (
        _leaf_documents_sql(dialect, shredding)
        if entries is None
        else f"""
            SELECT {_document(dialect)} AS doc FROM audit_entries e
            WHERE e.id IN ({entries}) AND {shredding} AND e.content IS NOT NULL
        """  # noqa: S608 - no caller input
    )
    return f"""
        WITH s AS ({documents})
        {action} WHERE entry_id IN ({ids})
    """


def _document(dialect: str) -> str:
    """The parsed content of ``e`` (SQLite's JSON functions read the canonical text as is)."""
    if dialect == "sqlite":
        return "CAST(e.content AS TEXT)"
    if dialect == "duckdb":
        return "CAST(decode(e.content) AS JSON)"
    return "convert_from(e.content, 'UTF8')::jsonb"


def _leaf_documents_sql(dialect: str, where: str) -> str:
    """The parsed content (``doc``) of each entry of leaves [:lo, :hi) that ``where`` (a
    condition on the entry ``e``, no caller input) keeps."""
    return f"""
            SELECT {_document(dialect)} AS doc FROM audit_leaves l
            JOIN audit_entries e ON e.id = l.entry_id
            WHERE l.leaf_index >= :lo AND l.leaf_index < :hi AND e.content IS NOT NULL
              AND {where}
    """  # noqa: S608 - no caller input


# The charging decisions and charges the timeline has read (their highest ids), so that a refresh
# rebuilds only the arrests with new ones (besides those the new leaves name: see below).
TIMELINE_DECISIONS = "charge_timeline.decision_id"
TIMELINE_CHARGES = "charge_timeline.charge_id"
# The persons and arrests the records' write entries of a refresh's new leaves name, read once
# from their content into this temporary table (kind 'p' or 'a', the id) and read by the
# timeline and the arrestee rows alike (``_named_by_writes``).
NAMED = "oversight_refresh_named"


def _timeline_sql(affected: str) -> str:
    """Rebuild the intervals of the arrests ``affected`` (a subquery of arrest ids, or "" for
    every arrest) from their decisions and approved charges, in one set-based statement.

    The state changes only at the first approval and at each decision instant, so those instants
    are the intervals' starts. At an instant with several decisions the highest id is the
    latest (as ``ORDER BY decided_at DESC, id DESC``). The decline of the latest decision is
    carried forward over the instants that are approvals only (the running count of decisions
    numbers the groups, each starting at a decision). The first approval rides along as a
    column (no join: SQLite would scan an unindexed CTE once per row).
    """
    only = f"WHERE arrest_id IN ({affected})" if affected else ""
    also = f"AND arrest_id IN ({affected})" if affected else ""
    declined, approved = ChargingOutcome.DECLINED.value, ChargeStage.APPROVED.value
    return f"""
        WITH d AS (
            SELECT arrest_id, decided_at AS at,
                CASE WHEN outcome = '{declined}' THEN 1 ELSE 0 END AS dec,
                ROW_NUMBER() OVER (PARTITION BY arrest_id, decided_at ORDER BY id DESC) AS rn
            FROM charging_decisions {only}
        ), a AS (
            SELECT arrest_id, MIN(created_at) AS approved_at FROM charges
            WHERE stage = '{approved}' {also}
            GROUP BY arrest_id
        ), pts AS (
            SELECT arrest_id, at, MAX(dec) AS dec, MAX(approved_at) AS approved_at FROM (
                SELECT arrest_id, at, dec, NULL AS approved_at FROM d WHERE rn = 1
                UNION ALL
                SELECT arrest_id, approved_at, NULL, approved_at FROM a
            ) AS u
            GROUP BY arrest_id, at
        ), numbered AS (
            SELECT arrest_id, at, dec,
                COUNT(dec) OVER (PARTITION BY arrest_id ORDER BY at ROWS UNBOUNDED PRECEDING)
                    AS grp,
                LEAD(at) OVER (PARTITION BY arrest_id ORDER BY at) AS end_at,
                MAX(approved_at) OVER (PARTITION BY arrest_id) AS approved_at
            FROM pts
        ), states AS (
            SELECT arrest_id, at, end_at, approved_at,
                COALESCE(MAX(dec) OVER (PARTITION BY arrest_id, grp), 0) AS declined
            FROM numbered
        )
        INSERT INTO oversight_charge_timeline (arrest_id, start_at, end_at, filed, declined)
        SELECT arrest_id, at, end_at,
            (approved_at IS NOT NULL AND approved_at <= at AND declined = 0), (declined = 1)
        FROM states
    """  # noqa: S608 - no caller input: fixed enum values and subqueries


def _refresh_timeline(session: Session, lo: int, named: bool) -> None:
    """Bring the charge timeline up to the records: every arrest when the log is read from its
    first leaf, else the arrests with a decision or an approved charge newer than the
    timeline's watermarks, and the arrests the records' write entries of leaves [lo, hi) name
    (with ``named``: the ``NAMED`` table's arrests, filled when there are new leaves). A decision
    carries the instant its request gave it (``decide_charges(now=...)``), so one may be
    recorded later with an earlier instant: rebuilding the arrest's intervals from all its
    decisions covers it. On PostgreSQL a decision can commit after one with a higher id; its
    audit entry (same transaction, an ``arrest.charging_decision`` write naming the arrest)
    reaches the log's leaves, contiguous and final, so the arrest is rebuilt when that leaf is
    read. The arrests of every write entry are rebuilt, not only a decision's: a superset (a
    rebuild from the records is the same rows), read by the same statement as the arrestee
    rows' (docs/oversight.md, "The charge timeline")."""
    marks = {}
    for name, table in ((TIMELINE_DECISIONS, "charging_decisions"), (TIMELINE_CHARGES, "charges")):
        session.execute(
            text(
                "INSERT INTO oversight_watermarks (name, size) VALUES (:n, 0) "
                "ON CONFLICT DO NOTHING"
            ),
            {"n": name},
        )
        seen = session.execute(
            select(FactsWatermark.size).where(FactsWatermark.name == name).with_for_update()
        ).scalar_one()
        top = session.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one()  # noqa: S608
        marks[name] = (int(seen), int(top))
    if lo == 0:
        session.execute(text("DELETE FROM oversight_charge_timeline"))
        session.execute(text(_timeline_sql("")))
    else:
        written = f"UNION SELECT id FROM {NAMED} WHERE kind = 'a'" if named else ""  # noqa: S608
        affected = f"""
            SELECT arrest_id FROM charging_decisions WHERE id > :seen_d
            UNION SELECT arrest_id FROM charges WHERE id > :seen_c
                AND stage = '{ChargeStage.APPROVED.value}'
            {written}
        """  # noqa: S608 - no caller input
        bounds = {"seen_d": marks[TIMELINE_DECISIONS][0], "seen_c": marks[TIMELINE_CHARGES][0]}
        session.execute(
            text(f"DELETE FROM oversight_charge_timeline WHERE arrest_id IN ({affected})"),  # noqa: S608
            bounds,
        )
        session.execute(text(_timeline_sql(affected)), bounds)
    for name, (_seen, top) in marks.items():
        session.execute(
            text("UPDATE oversight_watermarks SET size = :s WHERE name = :n"), {"s": top, "n": name}
        )


# The arrestee involvements the arrestee rows have read (the highest id).
ARRESTEES_INVOLVEMENTS = "arrestees.involvement_id"
# The person attributes population_skew compares, as the arrestee rows copy them.
SKEW_ATTRIBUTES = ("citizenship", "place_of_birth", "race", "sex")


def named_sql(dialect: str, documents: str) -> str:
    """The persons ('p') and arrests ('a') that the records' write entries name, as rows
    (kind, id), read from their parsed contents ``documents`` (a query with a ``doc`` column:
    ``_leaf_documents_sql`` for a refresh's new leaves, ``write_documents_sql`` for the log's
    tail), each document read once for both lists; the audit subjects are not read (no caller
    input)."""
    if dialect == "sqlite":
        each, value = "json_each(w.doc, '$.{key}') AS j", "j.value"
    elif dialect == "duckdb":
        each, value = "unnest(CAST(w.doc -> '$.{key}' AS BIGINT[])) AS j(v)", "j.v"
    else:
        each, value = "jsonb_array_elements_text(w.doc -> '{key}') AS j", "j"
    return f"""
        WITH w AS ({documents})
        SELECT 'p' AS kind, CAST({value} AS INTEGER) AS id FROM w, {each.format(key="person_ids")}
        UNION SELECT 'a', CAST({value} AS INTEGER) FROM w, {each.format(key="arrest_ids")}
    """  # noqa: S608 - no caller input


def write_documents_sql(dialect: str, entries: str) -> str:
    """The parsed content (``doc``) of the records' write entries among ``entries`` (a
    FROM-clause item ``x`` with an entry_id column; no caller input)."""
    return f"""
        SELECT {_document(dialect)} AS doc FROM {entries}
        JOIN audit_entries e ON e.id = x.entry_id
        WHERE e.content IS NOT NULL AND e.kind = '{AuditKind.WRITE.value}'
    """  # noqa: S608 - no caller input


def arrestees_named_sql(named: str | None) -> str:
    """The persons whose arrestee rows may be out of date: those of a new arrestee involvement
    past ``:inv``, and, with ``named`` (a FROM-clause item of (kind, id) rows as ``named_sql``
    gives: the refresh's ``NAMED`` table, or the log's tail read by a detector), the persons
    it names and the arrestees of the arrests it names (no caller input)."""
    arrestee = InvolvementRole.ARRESTEE.value
    written = (
        f"""
        UNION SELECT n.id FROM {named} n WHERE n.kind = 'p'
        UNION SELECT i.person_id FROM involvements i WHERE i.role = '{arrestee}'
            AND i.arrest_id IN (SELECT n.id FROM {named} n WHERE n.kind = 'a')
        """  # noqa: S608 - no caller input
        if named
        else ""
    )
    return f"""
        SELECT person_id FROM involvements WHERE id > :inv AND role = '{arrestee}'
        {written}
    """  # noqa: S608 - no caller input


def _arrestees_sql(affected: str) -> str:
    """Insert the arrestee rows of the persons ``affected`` (a subquery of person ids, or ""
    for every person): each arrestee involvement with its arrest's instant and the person's
    arrest just before it (by instant, then arrest id: two arrests at one instant still count
    the person once)."""
    also = f"AND i.person_id IN ({affected})" if affected else ""
    read = ", ".join(f"CAST(p.{a} AS TEXT)" for a in SKEW_ATTRIBUTES)
    return f"""
        INSERT INTO oversight_arrestee_arrests (person_id, arrest_id, at, prev_at,
            {", ".join(SKEW_ATTRIBUTES)})
        SELECT r.person_id, r.arrest_id, r.at, r.prev_at, {read}
        FROM (
            SELECT i.person_id, i.arrest_id, a.arrested_at AS at,
                LAG(a.arrested_at) OVER (
                    PARTITION BY i.person_id ORDER BY a.arrested_at, i.arrest_id) AS prev_at
            FROM involvements i JOIN arrests a ON a.id = i.arrest_id
            WHERE i.role = '{InvolvementRole.ARRESTEE.value}' {also}
        ) AS r
        JOIN persons p ON p.id = r.person_id
    """  # noqa: S608 - no caller input


# The mark of the arrestee rows' day counts (``ArresteeDay``): present once they are built,
# its size their rows after the last compaction.
ARRESTEE_DAYS = "arrestees.days"
# The day counts are compacted when they have more than twice their compacted rows plus this.
COMPACT_MIN = 1000


def _utc_day(column: str, dialect: str) -> str:
    """The UTC day of an instant as 'YYYY-MM-DD' (SQLite keeps naive UTC text)."""
    if dialect == "sqlite":
        return f"substr({column}, 1, 10)"
    if dialect == "duckdb":
        return f"strftime({column}, '%Y-%m-%d')"
    return f"to_char(timezone('UTC', {column}), 'YYYY-MM-DD')"


def _arrestee_days_sql(dialect: str, affected: str, sign: str) -> str:
    """Add to the day counts the arrestee rows of the persons ``affected`` (a subquery of
    person ids, or "" for every row), counted by key, negated with ``sign`` "-"."""
    where = f"WHERE r.person_id IN ({affected})" if affected else ""
    keys = f"{_utc_day('r.at', dialect)}, {_utc_day('r.prev_at', dialect)}, " + ", ".join(
        f"r.{a}" for a in SKEW_ATTRIBUTES
    )
    return f"""
        INSERT INTO oversight_arrestee_days (day, prev_day, {", ".join(SKEW_ATTRIBUTES)}, n)
        SELECT {keys}, {sign}COUNT(*) FROM oversight_arrestee_arrests r {where}
        GROUP BY {keys}
    """  # noqa: S608 - no caller input


def build_arrestee_days(session: Session) -> None:
    """The day counts built afresh from the arrestee rows, and their mark set."""
    dialect = session.get_bind().dialect.name
    session.execute(text("DELETE FROM oversight_arrestee_days"))
    session.execute(text(_arrestee_days_sql(dialect, "", "")))
    _set_mark(session, ARRESTEE_DAYS, _count(session, "oversight_arrestee_days"))


def _compact_arrestee_days(session: Session) -> int:
    """Each key's day counts summed into one row (zeros dropped); returns the rows left."""
    keys = "day, prev_day, " + ", ".join(SKEW_ATTRIBUTES)
    top = session.execute(text("SELECT MAX(id) FROM oversight_arrestee_days")).scalar_one()
    session.execute(
        text(
            f"INSERT INTO oversight_arrestee_days ({keys}, n) SELECT {keys}, SUM(n) "  # noqa: S608
            f"FROM oversight_arrestee_days WHERE id <= :top GROUP BY {keys} HAVING SUM(n) <> 0"
        ),
        {"top": top},
    )
    session.execute(text("DELETE FROM oversight_arrestee_days WHERE id <= :top"), {"top": top})
    return _count(session, "oversight_arrestee_days")


def _count(session: Session, table: str) -> int:
    return int(session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())  # noqa: S608


def _set_mark(session: Session, name: str, size: int) -> int:
    session.execute(
        text(
            "INSERT INTO oversight_watermarks (name, size) VALUES (:n, :s) "
            "ON CONFLICT (name) DO UPDATE SET size = excluded.size"
        ),
        {"n": name, "s": size},
    )
    return size


def _refresh_arrestees(session: Session, lo: int, named: bool) -> None:
    """Bring the arrestee rows up to the records: all of them when the log is read from its
    first leaf or the rows were never built, else those of the persons the records' write
    entries of the new leaves name and the arrestees of the arrests they name (with ``named``:
    the ``NAMED`` table, filled when there are new leaves), and of the arrestee involvements past
    the rows' watermark (as ``arrestees_named_sql``). A write that commits late on PostgreSQL (a
    lower involvement id after a higher one) is caught by its audit entry when its leaf is read,
    as for the charge timeline."""
    seen = session.execute(
        select(FactsWatermark.size)
        .where(FactsWatermark.name == ARRESTEES_INVOLVEMENTS)
        .with_for_update()
    ).scalar()
    top = int(session.execute(text("SELECT COALESCE(MAX(id), 0) FROM involvements")).scalar_one())
    days = session.execute(
        select(FactsWatermark.size).where(FactsWatermark.name == ARRESTEE_DAYS).with_for_update()
    ).scalar()
    dialect = session.get_bind().dialect.name
    if lo == 0 or seen is None:
        session.execute(text("DELETE FROM oversight_arrestee_arrests"))
        session.execute(text(_arrestees_sql("")))
        days = None
    else:
        affected = arrestees_named_sql(NAMED if named else None)
        bounds = {"inv": int(seen)}
        if days is not None:  # the deleted rows' counts taken off
            session.execute(text(_arrestee_days_sql(dialect, affected, "-")), bounds)
        session.execute(
            text(f"DELETE FROM oversight_arrestee_arrests WHERE person_id IN ({affected})"),  # noqa: S608
            bounds,
        )
        session.execute(text(_arrestees_sql(affected)), bounds)
        if days is not None:  # the inserted rows' counts added
            session.execute(text(_arrestee_days_sql(dialect, affected, "")), bounds)
    if days is None:  # built from the rows (first built, or rows rebuilt)
        build_arrestee_days(session)
    elif _count(session, "oversight_arrestee_days") > 2 * int(days) + COMPACT_MIN:
        _set_mark(session, ARRESTEE_DAYS, _compact_arrestee_days(session))
    session.execute(
        text(
            "INSERT INTO oversight_watermarks (name, size) VALUES (:n, :s) "
            "ON CONFLICT (name) DO UPDATE SET size = excluded.size"
        ),
        {"n": ARRESTEES_INVOLVEMENTS, "s": top},
    )


def _named_sql(dialect: str) -> str:
    """Fill ``NAMED`` with the persons and arrests the records' write entries of leaves
    [:lo, :hi) name (``named_sql``; no caller input)."""
    writes = f"e.kind = '{AuditKind.WRITE.value}'"
    named = named_sql(dialect, _leaf_documents_sql(dialect, writes))
    return f"INSERT INTO {NAMED} (kind, id) {named}"


def _named_by_writes(session: Session, lo: int, hi: int) -> bool:
    """Fill the temporary ``NAMED`` table with the persons and arrests the write entries of
    leaves [lo, hi) name (one statement, each entry's content read once); False, and no table,
    when there are no such leaves. Analysed on PostgreSQL (its size, no row or thousands, is
    then known to the statements that read it)."""
    if lo >= hi:
        return False
    dialect = session.get_bind().dialect.name
    connection = session.connection()
    connection.execute(text(f"DROP TABLE IF EXISTS {NAMED}"))
    connection.execute(text(f"CREATE TEMPORARY TABLE {NAMED} (kind CHAR(1), id INTEGER)"))
    connection.execute(text(_named_sql(dialect)), {"lo": lo, "hi": hi})
    if dialect == "postgresql":
        connection.execute(text(f"ANALYZE {NAMED}"))
    return True


@contextmanager
def local_settings(session: Session, **values: str) -> Iterator[None]:
    """On PostgreSQL, the statements inside run with these server settings, restored after
    (``set_config(..., true)``: this transaction only, as ``SET LOCAL``; a rollback restores
    them too). Nothing on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    get, put = text("SELECT current_setting(:n)"), text("SELECT set_config(:n, :v, true)")
    before = {name: session.execute(get, {"n": name}).scalar_one() for name in values}
    for name, value in values.items():
        session.execute(put, {"n": name, "v": value})
    yield
    for name, value in before.items():
        session.execute(put, {"n": name, "v": value})


@contextmanager
def without_jit(session: Session) -> Iterator[None]:
    """On PostgreSQL, the statements inside run without JIT compilation (``local_settings``).
    The oversight statements of a refresh or a daily run each read a day's rows by index, but
    their estimates (a JSON array's 100 elements, a window's rows) pass ``jit_above_cost`` and
    ``jit_optimize_above_cost``: at 10M entries PostgreSQL spent 0.5 s compiling the facts'
    insert of one day, longer than reading its rows (docs/benchmarks.md, Oversight,
    2026-12-06 07:20-08:10)."""
    with local_settings(session, jit="off"):
        yield


@contextmanager
def whole_store_memory(session: Session) -> Iterator[None]:
    """On PostgreSQL, the statements inside hash and sort in ``BULK_MEMORY`` (``local_settings``):
    the whole store's detectors and a long span's explanation, whose aggregates group millions
    of rows. At the default 4 MB PostgreSQL 15's hash aggregate spills, and each spilled batch
    walks and clears a table sized for the estimated groups: at 10M facts
    ``population_skew``'s pairs statement spent minutes in ``tuplehash_iterate`` and
    ``memset`` (perf) where 256 MB took 22.7 s without a spill (docs/benchmarks.md,
    Oversight, 2026-12-06 17:36-19:20)."""
    with local_settings(session, work_mem=BULK_MEMORY):
        yield


def _claim_watermark(session: Session) -> int:
    """The watermark, locked until the transaction ends (one refresh at a time)."""
    session.execute(
        text("INSERT INTO oversight_watermarks (name, size) VALUES (:n, 0) ON CONFLICT DO NOTHING"),
        {"n": WATERMARK},
    )
    # FOR UPDATE on PostgreSQL; SQLite's single writer already holds the database.
    size = session.execute(
        select(FactsWatermark.size).where(FactsWatermark.name == WATERMARK).with_for_update()
    ).scalar_one()
    return int(size)


def watermark(session: Session) -> int:
    """How many leaves of the log the facts have read (0 before the first refresh)."""
    size = session.execute(
        select(FactsWatermark.size).where(FactsWatermark.name == WATERMARK)
    ).scalar()
    return int(size or 0)


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What a refresh read and wrote."""

    start: int
    end: int
    facts: int


# A refresh that wrote at least this many facts, or this share of the facts the planner knows
# of, is followed by ANALYZE of every table it writes (PostgreSQL).
ANALYZE_AFTER_FACTS = 100_000
ANALYZE_AFTER_SHARE = 0.1
# Every table a refresh writes (a bulk load or a refresh from the first leaf rebuilds them all).
REFRESHED_TABLES = (
    "oversight_access_facts",
    "oversight_access_queries",
    "oversight_access_refusals",
    "oversight_user_days",
    "oversight_charge_timeline",
    "oversight_arrestee_arrests",
    "oversight_arrestee_days",
)


def refresh(
    session: Session, *, batch: int = BATCH_LEAVES, bulk_leaves: int = BULK_LEAVES
) -> Refreshed:
    """Derive the facts of every integrated leaf past the watermark; flushes, never commits.
    Reading at least ``bulk_leaves`` leaves, and at least as many as were read before, is a
    bulk load (``_bulk_load``)."""
    session.flush()
    with without_jit(session):
        refreshed = _refresh(session, batch, bulk_leaves)
    _analyse(session, refreshed)
    return refreshed


def _analyse(session: Session, refreshed: Refreshed) -> None:
    """On PostgreSQL, ANALYZE every table the refresh writes (``REFRESHED_TABLES``) after a
    refresh that wrote many facts (``ANALYZE_AFTER_FACTS``, or ``ANALYZE_AFTER_SHARE`` of those
    the planner knows of) or read the log from its first leaf (every one rebuilt: the queries,
    the per-day rows and the arrestee rows too, which the reports and detectors read after it
    in the same transaction; docs/benchmarks.md, Oversight, the 10M full pass). Rows written
    in this transaction are unknown to the planner (no autovacuum has seen them): it would
    take a first pass's million facts for a few dozen and probe the records once per fact
    instead of hashing them; every reader after the refresh (a cycle's explanation, the
    detectors) reads the same figures. A day's few thousand facts in a store of millions
    leave the figures as they were (the planner takes that day for a row or two: the day's
    statements are shaped for it, see ``explain_sql`` and ``detectors.never_charged``)."""
    if session.get_bind().dialect.name != "postgresql" or refreshed.end == refreshed.start:
        return
    # -1 when never analysed, and taken for none when the facts' instants have no statistics
    # (``reltuples`` is updated in place: an ANALYZE rolled back leaves it, without them): any
    # facts written are then many.
    known = session.execute(
        text(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = "
            "current_schema() AND tablename = 'oversight_access_facts' AND attname = 'at') "
            "THEN reltuples ELSE 0 END FROM pg_class "
            "WHERE oid = 'oversight_access_facts'::regclass"
        )
    ).scalar_one()
    many = refreshed.facts >= min(ANALYZE_AFTER_FACTS, ANALYZE_AFTER_SHARE * max(known, 0))
    if refreshed.start == 0 or (refreshed.facts > 0 and many):
        session.execute(text(f"ANALYZE {', '.join(REFRESHED_TABLES)}"))


def _refresh(session: Session, batch: int, bulk_leaves: int) -> Refreshed:
    start = _claim_watermark(session)
    end = int(
        session.execute(
            text("SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM audit_leaves")
        ).scalar_one()
    )
    if start == 0:
        session.execute(text("DELETE FROM oversight_user_days"))
    # The kept explanations (``maintained``; imported here: it builds on the explanations,
    # which build on this module). A refresh from the first leaf or a bulk load explains
    # every fact again; any other explains the new facts and those its leaves may change.
    from openpars.oversight import maintained

    kept = maintained.kept_rules(session)
    far = end - start >= max(bulk_leaves, start, 1)
    top = maintained.top_fact(session) if kept is not None and not far else 0
    written = 0
    if far:
        with _bulk_load(session) as bulk:
            if bulk:
                written = _derive(session, start, end, end - start, parallel=True)
            else:
                written = _derive(session, start, end, batch)
    else:
        written = _derive(session, start, end, batch)
    named = start > 0 and _named_by_writes(session, start, end)
    if kept is not None and not far:
        maintained.touched_persons(session, named)
    _refresh_timeline(session, start, named)
    _refresh_arrestees(session, start, named)
    if kept is not None and far:
        maintained.rebuild(session, kept)
    elif kept is not None:
        maintained.update(session, kept, start=start, end=end, top=top)
    if named:
        session.connection().execute(text(f"DROP TABLE {NAMED}"))
    session.execute(
        text("UPDATE oversight_watermarks SET size = :s WHERE name = :n"),
        {"s": end, "n": WATERMARK},
    )
    return Refreshed(start=start, end=end, facts=written)


def _derive(session: Session, start: int, end: int, batch: int, *, parallel: bool = False) -> int:
    """The facts, queries and per-day rows of leaves [start, end), ``batch`` leaves at a time:
    each batch's answered external reads staged once (``_stage_sql``: each content parsed
    once; with ``parallel``, by parallel workers on PostgreSQL, ``PARALLEL_STAGING``), the
    three tables derived from the staged rows. The number of facts written."""
    dialect = session.get_bind().dialect.name
    j = _SQLITE if dialect == "sqlite" else _POSTGRES
    stage, insert = text(stage_sql(dialect)), text(_insert_sql(j))
    queries, refusals = text(_QUERIES), text(refusals_sql(dialect))
    # The rows were emptied by a refresh from the first leaf: the first batch inserts.
    merged, inserted = (
        text(user_days_sql(dialect, merge=True)),
        text(user_days_sql(dialect, merge=False)),
    )
    # A shredded entry loses its facts (they are read from its content) but stays a query,
    # without the purpose its content gave.
    purge_facts = text(_purge_sql(dialect, "DELETE FROM oversight_access_facts"))
    purge_queries = text(_purge_sql(dialect, "UPDATE oversight_access_queries SET purpose = NULL"))
    written = 0
    connection = session.connection()
    for lo in range(start, end, batch):
        bounds = {"lo": lo, "hi": min(end, lo + batch)}
        connection.execute(text(f"DROP TABLE IF EXISTS {STAGED}"))
        with local_settings(session, **(PARALLEL_STAGING if parallel else {})):
            connection.execute(stage, bounds)
        result = cast(CursorResult[Any], connection.execute(insert))
        written += max(result.rowcount, 0)
        connection.execute(queries)
        connection.execute(refusals, bounds)
        connection.execute(inserted if lo == 0 else merged)
        connection.execute(text(f"DROP TABLE {STAGED}"))
        connection.execute(purge_facts, bounds)
        connection.execute(purge_queries, bounds)
    return written


def _bulk_indexes() -> list[Index]:
    """The derived tables' indexes a bulk load builds after its rows, not row by row (the
    per-day rows keep their key: a refresh far behind merges into it)."""
    tables = Base.metadata.tables
    return [
        *tables[AccessFact.__tablename__].indexes,
        *tables[AccessQuery.__tablename__].indexes,
        *tables[AccessRefusal.__tablename__].indexes,
        *tables[UserDay.__tablename__].indexes,
    ]


def _bulk_unique() -> UniqueConstraint:
    """The facts' (entry, person) key, built after the rows too where the engine can drop it
    (PostgreSQL; SQLite keeps a table's constraints for the table's life)."""
    constraints = Base.metadata.tables[AccessFact.__tablename__].constraints
    (unique,) = (c for c in constraints if isinstance(c, UniqueConstraint))
    return unique


@contextmanager
def _bulk_load(session: Session) -> Iterator[bool]:
    """A refresh of many leaves in one range (True), with the secondary indexes of the facts,
    the queries and the per-day rows (``_bulk_indexes``) dropped while the rows go in and
    built from them after (a sort each, not a random leaf per row and per index), and on
    PostgreSQL larger sort memory for the transaction. The drop takes the tables' exclusive
    lock until the transaction ends; on PostgreSQL it is taken only if free at once (a reader
    holding the facts would otherwise wait behind it, and a reader that then asked for the
    watermark the refresh holds would deadlock): when not, the refresh reads in batches with
    the indexes kept (False). Same rows either way."""
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    if postgresql and not _lock_at_once(session):
        yield False
        return
    with local_settings(session, work_mem=BULK_MEMORY, maintenance_work_mem=BULK_MEMORY):
        for index in _bulk_indexes():
            connection.execute(DropIndex(index))
        if postgresql:
            connection.execute(DropConstraint(_bulk_unique()))
        yield True
        if postgresql:
            # Not isolated from the table (AddConstraint's default): a later CREATE TABLE in
            # this process (a new database's schema) would otherwise lose the constraint.
            connection.execute(AddConstraint(_bulk_unique(), isolate_from_table=False))
        for index in _bulk_indexes():
            connection.execute(CreateIndex(index))


def _lock_at_once(session: Session) -> bool:
    """Take the exclusive locks of the tables whose indexes a bulk load drops if no one holds
    them (PostgreSQL)."""
    try:
        with session.begin_nested():
            session.execute(
                text(
                    "LOCK TABLE oversight_access_facts, oversight_access_queries, "
                    "oversight_access_refusals, oversight_user_days "
                    "IN ACCESS EXCLUSIVE MODE NOWAIT"
                )
            )
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        return False
    return True


LOCK_NOT_AVAILABLE = "55P03"
