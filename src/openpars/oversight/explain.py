"""Explain every external access to a person, and how much of an agency's use is explained.

The two services behind ``openpars oversight explain|coverage`` and the oversight API. Each
checks the caller's permission and the selection (one agreement or one agency, a period of
whole UTC days), brings the access facts up to the integrated log (``facts.refresh``), runs the
set-based statement of ``explain_sql`` and appends one audit entry for the request, in the
caller's transaction. Only holders of ``oversight:read`` get here: an outside agency never sees
an explanation, its own included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Column, ColumnElement, Index, MetaData, Table, func, select, text
from sqlalchemy.orm import Session

from openpars.agreements.models import Agreement, AgreementVersion
from openpars.audit.events import AuditKind, event_by
from openpars.audit.service import append
from openpars.config import Settings
from openpars.errors import InvalidInput, NotFound
from openpars.identity.models import Agency
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.oversight import duck
from openpars.oversight import explain_sql as sql
from openpars.oversight.explain_sql import Dimension, PurposeGrant, Reason, Rule, Rules, Selection
from openpars.oversight.facts import (
    AccessFact,
    refresh,
    shredded_indexed,
    watermark,
    whole_store_memory,
    without_jit,
)

# A cycle of at most this span (a daily run) is explained without JIT compilation: its few
# thousand pairs are read by index, and once the planner knows their number (the facts
# analysed) its cost estimate passes JIT's thresholds: at 10M entries a day's explanation spent
# 1.07 s of its 2.0 s compiling (docs/benchmarks.md, Oversight). A longer one keeps JIT.
JIT_FREE_SPAN = timedelta(days=7)

__all__ = [
    "Dimension",
    "Explained",
    "Reason",
    "Rule",
    "Rules",
    "Selection",
    "materialise",
    "materialise_on",
]


def rules_from(settings: Settings) -> Rules:
    """The explanation thresholds configured for the site."""
    return Rules(
        follow_up_window=timedelta(hours=settings.oversight_follow_up_hours),
        bulk_results=settings.oversight_bulk_results,
        sweep_queries=settings.oversight_sweep_queries,
        sweep_window=timedelta(minutes=settings.oversight_sweep_minutes),
        caseless_purposes=frozenset(settings.oversight_caseless_purposes),
    )


@dataclass(frozen=True, slots=True)
class Period:
    """What the caller asked for: one agreement or one agency, from and to (whole days)."""

    start: date
    end: date
    agreement_id: int | None = None
    agency_id: int | None = None


def select_period(session: Session, period: Period, *, today: date | None = None) -> Selection:
    """The selection of a request, or InvalidInput naming the argument at fault."""
    if (period.agreement_id is None) == (period.agency_id is None):
        raise InvalidInput(
            "give exactly one of agreement and agency: whose accesses to explain",
            field="agreement",
        )
    current = today or datetime.now(UTC).date()
    if period.start > current:
        raise InvalidInput(
            f"from {period.start} is in the future (today is {current} UTC): no access can have "
            "happened yet; give a period that has begun",
            field="from",
            code="period_in_future",
        )
    if period.end < period.start:
        raise InvalidInput(
            f"to {period.end} is before from {period.start}: the period is empty; give to on or "
            "after from (both days are included)",
            field="to",
            code="empty_period",
        )
    if period.agreement_id is not None and session.get(Agreement, period.agreement_id) is None:
        # The same answer as any other unknown id in the API: 404 not_found, naming the field.
        raise NotFound(f"agreement {period.agreement_id} does not exist", field="agreement")
    if period.agency_id is not None and session.get(Agency, period.agency_id) is None:
        raise NotFound(f"agency {period.agency_id} does not exist", field="agency")
    return Selection(
        start=datetime.combine(period.start, time(), UTC),
        # The day after the last; the calendar's last day ends at its last instant.
        end=(
            datetime.combine(period.end + timedelta(days=1), time(), UTC)
            if period.end < date.max
            else datetime.max.replace(tzinfo=UTC)
        ),
        agreement_id=period.agreement_id,
        agency_id=period.agency_id,
    )


def purpose_grants(session: Session, selection: Selection) -> list[PurposeGrant]:
    """Every purpose of every version of the selected agreements (a few rows per version)."""
    query = select(
        AgreementVersion.agreement_id, AgreementVersion.version, AgreementVersion.content
    )
    if selection.agreement_id is not None:
        query = query.where(AgreementVersion.agreement_id == selection.agreement_id)
    grants: list[PurposeGrant] = []
    for agreement_id, version, content in session.execute(query):
        for rule in content.get("scope", {}).get("purposes", []):
            grants.append(
                PurposeGrant(
                    agreement_id,
                    version,
                    rule["purpose"],
                    bool(rule.get("case_reference_required", False)),
                )
            )
    return grants


@dataclass(frozen=True, slots=True)
class Explained:
    """The explanations of one oversight cycle, computed once into a temporary table.

    A cycle (``bench/oversight.py``'s full pass; a renewal round over every agreement) reads
    the same pairs several times: coverage by each dimension, then each agreement's renewal
    report. Explaining is the costly statement (the facts joined to the records of their persons
    and cases), so it runs once, for every agreement, into this table and every reader reads
    it. ``size`` is the log size the access facts were brought up to: a report built from the
    table counts only leaves below it, so its queries, pairs and refusals describe the same log.
    """

    table: Table
    start: datetime
    end: datetime
    rules: Rules
    size: int
    agreement_ids: frozenset[int]
    # Made on DuckDB reading the store (``materialise_on``): a table of the reader's file,
    # read there by every report (``report.build_report`` with the same ``reader``).
    on_reader: bool = False

    def drop(self, session: Session) -> None:
        """Drop the table (a pooled connection outlives the cycle; its temporary tables too);
        ``session``: the reader's for a cycle made on DuckDB."""
        self.table.drop(session.connection())

    def covers(self, selection: Selection, rules: Rules) -> bool:
        """Whether the table holds every pair of ``selection`` as ``rules`` explain them."""
        return (
            rules == self.rules
            and selection.agreement_id in self.agreement_ids
            and self.start <= selection.start
            and selection.end <= self.end
        )


CYCLE_FACTS = "oversight_cycle_facts"


def _temporary(session: Session, name: str, columns: Iterable[ColumnElement[Any]]) -> Table:
    """A new, empty temporary table ``name`` (dropped first if this connection has one) with
    the names and types of ``columns``. On DuckDB a table of the reader's own database file
    instead (removed with it, or tidied by the next bring-up of a kept file: ``duck_kept``),
    as ``detectors._temporary`` makes them: DuckDB holds a temporary table in memory, where a
    whole store's pairs (10M at 10M entries) crowd the explanation's hashes and sorts out of
    its memory limit into spills; a table of the file is buffer-managed like the copies."""
    on_duckdb = session.get_bind().dialect.name == "duckdb"
    table = Table(
        name,
        MetaData(),
        *(Column(c.name, c.type) for c in columns),
        prefixes=[] if on_duckdb else ["TEMPORARY"],
    )
    connection = session.connection()
    connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
    table.create(connection)
    return table


def _cycle_facts(session: Session, selection: Selection, rules: Rules) -> Table:
    """The facts a cycle explains (``explain_sql.facts_select``) in a temporary table,
    analysed (PostgreSQL): the statement that explains them joins them to sets made of them,
    and the planner must know how many they are. Read from the facts table, a day's just
    written facts lie past the facts' statistics (unless a refresh analysed them: a day is too
    few), which the planner takes for a row or two; a join of two such sets was then planned as
    a hash only by luck, and as a nested loop it scans one set once per row of the other (at
    10M, 27,398 facts against 22,161 charge states: minutes)."""
    facts = _temporary(session, CYCLE_FACTS, AccessFact.__table__.columns)
    rows = sql.facts_select(selection, rules, shredded_indexed=shredded_indexed(session))
    session.execute(facts.insert().from_select([c.name for c in facts.columns], rows))
    session.execute(text(f"ANALYZE {CYCLE_FACTS}"))
    return facts


def materialise(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    agreement_ids: Sequence[int],
    rules: Rules,
    name: str = "oversight_cycle_pairs",
    refreshed: bool = False,
    recompute: bool = False,
) -> Explained:
    """Explain every pair of the agreements in [start, end) once, into a temporary table
    indexed by (agreement, instant), which the caller drops (``Explained.drop``) when the cycle
    is over (the connection would drop it when it closes). Not audited: the
    callers that show its rows audit their own reads. ``refreshed``: the caller refreshed the
    facts in this transaction after its last write (as ``flags.run_detectors``); the facts'
    watermark is then the size the table covers. The pairs are read from the explanations the
    refresh keeps (``maintained.read``) when they follow ``rules``: a daily run does not explain
    its day a second time beside the refresh; ``recompute`` (or none kept) explains them
    afresh (the same rows: ``tests/oversight/test_maintained.py``)."""
    from openpars.oversight import maintained  # it builds on this module

    # The refresh analyses what it wrote when that is much (``facts.refresh``).
    size = watermark(session) if refreshed else refresh(session).end
    dialect = session.get_bind().dialect.name
    grants = purpose_grants(session, Selection(start=start, end=end))
    shape = sql.explanations(Selection(start=start, end=end), rules, grants, dialect)
    table = _temporary(session, name, shape.selected_columns)
    connection = session.connection()
    columns = [c.name for c in table.columns]
    # One statement for every agreement, each explained as on its own: the per-case and
    # per-person sets it joins are built once, not once per agreement.
    selection = Selection(start=start, end=end, agreement_ids=frozenset(agreement_ids))
    kept = None if recompute else maintained.read(session, selection, rules)
    facts = (
        _cycle_facts(session, selection, rules)
        if dialect == "postgresql" and kept is None
        else None
    )
    # A short span's facts (PostgreSQL's table of them): their charge states probed by person.
    short = end - start <= JIT_FREE_SPAN
    pairs = (
        kept
        if kept is not None
        else sql.explanations(
            selection, rules, grants, dialect, facts, by_person=short and facts is not None
        )
    )
    # A long span's pairs are millions: their hashes and sorts get more memory.
    with without_jit(session) if short else whole_store_memory(session):
        session.execute(table.insert().from_select(columns, pairs))
    if facts is not None:
        facts.drop(connection)
    Index(f"ix_{name}_agreement_at", table.c.agreement_id, table.c.at).create(connection)
    return Explained(
        table=table,
        start=start,
        end=end,
        rules=rules,
        size=size,
        agreement_ids=frozenset(agreement_ids),
    )


def materialise_on(
    reader: Session,
    session: Session,
    *,
    start: datetime,
    end: datetime,
    agreement_ids: Sequence[int],
    rules: Rules,
    size: int,
    name: str = "oversight_round_pairs",
) -> Explained:
    """``materialise`` on DuckDB reading the store (``oversight.duck``): every pair of the
    agreements in [start, end) explained once, in one statement, into a table of the reader's
    file (``_temporary``), for a renewal round's reports to read (``report.build_report`` with
    ``cycle`` and the same ``reader``). The caller brought the facts up to the log and
    committed them before the reader opened (``engines.reading``); ``size`` is the log size the
    reader's copies cover (``report.reader_size``). The agreements' purposes are read in the
    store (``session``). Not audited: each report of the round is. The caller drops the table
    (``Explained.drop(reader)``)."""
    grants = purpose_grants(session, Selection(start=start, end=end))
    selection = Selection(start=start, end=end, agreement_ids=frozenset(agreement_ids))
    pairs = sql.explanations(selection, rules, grants, "duckdb")
    table = _temporary(reader, name, pairs.selected_columns)
    with duck.joins_as_written(reader):
        reader.execute(table.insert().from_select([c.name for c in table.columns], pairs))
    return Explained(
        table=table,
        start=start,
        end=end,
        rules=rules,
        size=size,
        agreement_ids=frozenset(agreement_ids),
        on_reader=True,
    )


class ExplanationRead(BaseModel):
    """One (external access, person returned) pair and how it is explained."""

    entry_id: int = Field(description="the audit entry of the access (provable in the log)")
    person_id: int
    at: datetime
    user_id: int | None
    agency_id: int | None
    agreement_id: int | None
    agreement_version: int | None
    purpose: str | None
    case_reference: str | None
    on_behalf_of: str | None
    action: str
    criteria: str | None = Field(description="the query's criteria names, comma-separated")
    name_given: bool
    identifier_given: bool
    result_count: int = Field(description="persons the access returned in all")
    explained: bool
    code: str = Field(description="the rule that explains it, or the one reason it is not")
    never_charged: bool = Field(
        description="the person had no DA-approved charge and no declined one at the time"
    )


class ExplanationPage(BaseModel):
    """A page of explained pairs, oldest first."""

    items: list[ExplanationRead]
    total: int
    offset: int
    limit: int


class CoverageRow(BaseModel):
    """Pairs and the explained share for one value of the grouping (or in all)."""

    key: str
    pairs: int
    explained: int
    share: float | None = Field(description="explained / pairs; null when there are no pairs")
    never_charged: int
    reasons: dict[str, int]


class CoverageReport(BaseModel):
    """Coverage of a selection: in all and per agency, user, purpose or week."""

    by: Dimension | None
    start: date
    end: date
    agreement_id: int | None
    agency_id: int | None
    total: CoverageRow
    rows: list[CoverageRow]


def _audit(session: Session, actor: Principal, action: str, **params: Any) -> None:
    persons: list[int] = params.pop("person_ids", [])
    append(
        session,
        event_by(
            actor, kind=AuditKind.AUDIT_READ, action=action, params=params, person_ids=persons
        ),
    )


def _params(period: Period, via: str, reader: Session | None) -> dict[str, Any]:
    return {
        "via": via,
        "engine": "store" if reader is None else "duckdb",
        "agreement_id": period.agreement_id,
        "agency_id": period.agency_id,
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
    }


READER_PAIRS = "oversight_reader_pairs"


def _prepare(
    session: Session,
    actor: Principal,
    period: Period,
    rules: Rules,
    today: date | None,
    recompute: bool = False,
    reader: Session | None = None,
) -> Any:
    """The selection's pairs: read from the kept explanations when they follow ``rules`` and
    the selection is one agreement's (``maintained.read``), else (or with ``recompute``)
    explained afresh; the same rows either way. With ``reader`` (DuckDB attached to the store,
    ``oversight.duck``; the caller brought the facts up to the log and committed them before
    opening it) they are explained afresh there, once, into a table of the reader's file
    (``_temporary``) that the caller's reads then read and ``_done`` drops (the kept
    explanations are the store's to serve)."""
    from openpars.oversight import maintained  # it builds on this module

    actor.require(Permission.OVERSIGHT_READ)
    selection = select_period(session, period, today=today)
    refresh(session)
    if reader is not None:
        pairs = sql.explanations(selection, rules, purpose_grants(session, selection), "duckdb")
        table = _temporary(reader, READER_PAIRS, pairs.selected_columns)
        with duck.joins_as_written(reader):
            reader.execute(table.insert().from_select([c.name for c in table.columns], pairs))
        return select(table)
    kept = None if recompute else maintained.read(session, selection, rules)
    if kept is not None:
        return kept
    dialect = session.get_bind().dialect.name
    return sql.explanations(selection, rules, purpose_grants(session, selection), dialect)


def _done(reader: Session | None) -> None:
    """Drop the reader's table of pairs once read (``_prepare``): a table of its file, which a
    kept file would otherwise carry until its next bring-up."""
    if reader is not None:
        reader.execute(text(f"DROP TABLE IF EXISTS {READER_PAIRS}"))


def explain(
    session: Session,
    *,
    actor: Principal,
    period: Period,
    rules: Rules,
    unexplained_only: bool = False,
    offset: int = 0,
    limit: int = 50,
    via: str = "api",
    today: date | None = None,
    recompute: bool = False,
    reader: Session | None = None,
) -> ExplanationPage:
    """A page of the selection's pairs, each explained or given its one reason; audited (in
    ``session``). ``recompute``: explained afresh even when kept; ``reader``: explained on
    DuckDB reading the store (``_prepare``)."""
    pairs = _prepare(session, actor, period, rules, today, recompute, reader).subquery("pairs")
    where = [pairs.c.code.not_in([r.value for r in Rule])] if unexplained_only else []
    source = session if reader is None else reader
    total = source.execute(select(func.count()).select_from(pairs).where(*where)).scalar_one()
    rows = source.execute(
        select(pairs)
        .where(*where)
        .order_by(pairs.c.at, pairs.c.entry_id, pairs.c.person_id)
        .offset(offset)
        .limit(limit)
    ).mappings()
    items = [
        ExplanationRead.model_validate({**row, "explained": row["code"] in set(Rule)})
        for row in rows
    ]
    _done(reader)
    _audit(
        session, actor, "oversight.explanations", **_params(period, via, reader),
        unexplained_only=unexplained_only, offset=offset, limit=limit, returned=len(items),
        total=total, person_ids=[i.person_id for i in items],
    )  # fmt: skip
    return ExplanationPage(items=items, total=total, offset=offset, limit=limit)


def _row(values: Any) -> CoverageRow:
    pairs, explained = int(values["pairs"]), int(values["explained"] or 0)
    return CoverageRow(
        key=str(values["key"]),
        pairs=pairs,
        explained=explained,
        share=explained / pairs if pairs else None,
        never_charged=int(values["never_charged"] or 0),
        reasons={r.value: int(values[f"reason_{r.value}"] or 0) for r in Reason},
    )


def coverage(
    session: Session,
    *,
    actor: Principal,
    period: Period,
    rules: Rules,
    by: Dimension | None = None,
    via: str = "api",
    today: date | None = None,
    recompute: bool = False,
    reader: Session | None = None,
) -> CoverageReport:
    """The explained share of the selection in all and per ``by``; audited (in ``session``).
    ``recompute``: explained afresh even when kept; ``reader``: explained and counted on
    DuckDB reading the store (``_prepare``)."""
    dimension = by
    pairs = _prepare(session, actor, period, rules, today, recompute, reader)
    source = session if reader is None else reader
    dialect = source.get_bind().dialect.name
    total = _row(source.execute(sql.coverage(pairs, None, dialect)).mappings().one())
    rows = (
        [_row(r) for r in source.execute(sql.coverage(pairs, dimension, dialect)).mappings()]
        if dimension is not None
        else []
    )
    _done(reader)
    _audit(
        session, actor, "oversight.coverage", **_params(period, via, reader),
        by=dimension.value if dimension else None, pairs=total.pairs,
    )  # fmt: skip
    return CoverageReport(
        by=dimension,
        start=period.start,
        end=period.end,
        agreement_id=period.agreement_id,
        agency_id=period.agency_id,
        total=total,
        rows=rows,
    )
