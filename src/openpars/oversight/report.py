"""The renewal report: what an outside agency did with one agreement over a period.

For the stakeholders who vote on a renewal (docs/oversight.md, "Renewal report"): queries,
distinct persons viewed, the share never charged, the unexplained share by reason, refusals by
reason, detector flags with their review findings, and weekly trends by agency and purpose.
Every figure names how many audit entries are behind it and the drill-down path that lists
them (entry ids, leaf indexes and the path of each inclusion proof), so an auditor can prove any
number from the log.

``build_report`` computes the document with the set-based statements of ``report_sql``; it
reads the log and the records but writes nothing except the access facts it brings up to date
(``facts.refresh``). ``report`` and ``report_entries`` are the audited services behind the API
and the console. Only the oversight role and stakeholder voters may read a report; an outside
agency never does, not even about its own agreement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from openpars.agreements.models import Agreement
from openpars.audit.events import AuditKind, event_by
from openpars.audit.models import AuditCheckpoint, AuditLeaf
from openpars.audit.service import append, canonical_bytes
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput, NotFound
from openpars.identity.models import Agency
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.oversight import maintained
from openpars.oversight import report_sql as sql
from openpars.oversight.engines import READ_UP_TO
from openpars.oversight.explain import (
    Explained,
    Period,
    materialise,
    materialise_on,
    purpose_grants,
    select_period,
)
from openpars.oversight.explain_sql import Reason, Rule, Rules
from openpars.oversight.facts import EXPLAINED_PAIRS, local_settings, refresh, watermark
from openpars.oversight.models import FlagEntry

FORMAT: Literal["openpars-oversight-report/v1"] = "openpars-oversight-report/v1"
API = "/api/v1"
READERS = (Permission.OVERSIGHT_READ, Permission.VOTE)
# Flags listed one by one in the document; the detectors table counts them all.
MAX_FLAG_ROWS = 500


class ReportFormat(StrEnum):
    """How a report is delivered: the same document as HTML, PDF or canonical JSON."""

    HTML = "html"
    PDF = "pdf"
    JSON = "json"


class Figure(BaseModel):
    """One number of the report and the audit entries behind it."""

    key: str = Field(description="names the figure in the drill-down (`figure=`)")
    label: str
    value: int
    share: float | None = Field(None, description="value / the figure named by `of`")
    of: str | None = None
    entries: int = Field(description="distinct audit entries behind the figure")
    entries_path: str = Field(description="API path listing those entries with their proofs")


class WeekRow(BaseModel):
    """One ISO week (by its Monday, UTC), agency and stated purpose."""

    week: str
    agency: str
    purpose: str
    queries: int
    pairs: int
    explained: int
    never_charged: int
    figure: str
    entries_path: str


class FlagRow(BaseModel):
    """One detector flag about the agreement and where its review stands."""

    id: int
    detector: str
    rule: str
    threshold: float | None
    raised_at: datetime
    subject_user_id: int | None
    subject_agency_id: int | None
    case_id: int | None
    case_state: str | None
    finding: str | None
    entries: int
    figure: str
    entries_path: str


class DetectorRow(BaseModel):
    """Flags of one detector: how many, how many reviewed, and the findings."""

    detector: str
    flags: int
    closed: int
    findings: dict[str, int]
    figure: str
    entries_path: str


class AgreementSummary(BaseModel):
    """The agreement the report is about."""

    id: int
    name: str
    grantee_agency_id: int
    grantee_agency: str
    status: str
    current_version: int
    in_force_from: datetime | None
    in_force_until: datetime | None


class OversightReport(BaseModel):
    """The renewal report of one agreement over a period (both days included, UTC)."""

    format: Literal["openpars-oversight-report/v1"] = FORMAT
    agreement: AgreementSummary
    start: date
    end: date
    generated_at: datetime
    tree_size: int = Field(description="log leaves the figures are computed from: [0, tree_size)")
    checkpoint_size: int | None = Field(description="the newest signed checkpoint's size")
    rules: dict[str, Any] = Field(description="the explanation thresholds used")
    figures: list[Figure]
    weekly: list[WeekRow]
    detectors: list[DetectorRow]
    flags: list[FlagRow]
    flags_total: int
    what_if: dict[str, Any] | None = Field(
        None, description="a what-if replay's result, when one was passed in (issue 13)"
    )

    def figure(self, key: str) -> Figure:
        """The figure named ``key``."""
        for found in self.figures:
            if found.key == key:
                return found
        raise KeyError(key)


def canonical(report: OversightReport) -> bytes:
    """The report's canonical JSON bytes (sorted keys, no spaces): what its SHA-256 is over."""
    return canonical_bytes(report.model_dump(mode="json"))


def sha256(report: OversightReport) -> str:
    """SHA-256 (hex) of the canonical JSON: what a voter compares with the proposal's."""
    return hashlib.sha256(canonical(report)).hexdigest()


# -- input --------------------------------------------------------------------------------------


def check_period(
    session: Session, agreement_id: int, start: date, end: date, *, today: date | None = None
) -> tuple[Agreement, Period]:
    """The agreement and period of a report request, or an error naming the argument."""
    _check_days(start, end, today or datetime.now(UTC).date())
    return _check_agreement(session, agreement_id, start, end)


def _check_days(start: date, end: date, current: date) -> None:
    """A report's days: begun, and in order (both included), or an error naming the argument."""
    if start > current:
        raise InvalidInput(
            f"from {start} is in the future (today is {current} UTC): nothing can have happened "
            "yet; give a period that has begun",
            field="from",
            code="period_in_future",
        )
    if end > current:
        raise InvalidInput(
            f"to {end} is in the future (today is {current} UTC): a report covers days that "
            f"have begun; give to {current} or earlier",
            field="to",
            code="period_in_future",
        )
    if start > end:
        raise InvalidInput(
            f"from {start} is after to {end}: the period is empty; give from on or before to "
            "(both days are included)",
            field="from",
            code="from_after_to",
        )


def _check_agreement(
    session: Session, agreement_id: int, start: date, end: date
) -> tuple[Agreement, Period]:
    """The agreement of a report over days already checked (``_check_days``)."""
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        raise NotFound(
            f"agreement {agreement_id} does not exist; list agreements with "
            "'openpars agreement list'",
            field="agreement",
        )
    created = agreement.created_at.astimezone(UTC).date()
    if end < created:
        raise InvalidInput(
            f"agreement {agreement_id} was created on {created}; a period ending {end} holds "
            "none of its days: give to on or after its creation",
            field="to",
            code="empty_period",
        )
    return agreement, Period(start=start, end=end, agreement_id=agreement_id)


def require_reader(actor: Principal) -> None:
    """Only the oversight role and stakeholder voters; never an outside agency's account."""
    if actor.is_external or not any(actor.can(p) for p in READERS):
        raise Forbidden(
            f"your account ({actor.username}) may not read oversight reports; only the "
            "oversight role and stakeholder voters may",
            code="permission_denied",
            details={"permission": [p.value for p in READERS]},
        )


# -- the document --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Links:
    agreement_id: int
    start: date
    end: date
    size: int

    def entries(self, figure: str) -> str:
        query = urlencode(
            {
                "agreement": self.agreement_id,
                "from": self.start.isoformat(),
                "to": self.end.isoformat(),
                "size": self.size,
                "figure": figure,
            }
        )
        return f"{API}/oversight/reports/entries?{query}"


def _integrated(source: Session) -> int:
    """The leaves integrated into the log: numbered 0, 1, ... with no gap (a Merkle log), their
    count is the next index, read from the primary key's end rather than by counting every
    leaf."""
    return int(source.scalar(select(func.max(AuditLeaf.leaf_index) + 1)) or 0)


def reader_size(session: Session, reader: Session) -> int:
    """The log size a report on DuckDB counts up to. DuckDB copied the leaves and facts after
    the store committed the facts up to ``READ_UP_TO`` (``engines.reading``): the figures count
    no leaf past it nor past its copy of the leaves, so a leaf integrated since (whose facts the
    copy may lack) is left out, as from a report of an earlier size."""
    integrated = _integrated(session)
    return min(integrated, _integrated(reader), int(reader.info.get(READ_UP_TO, integrated)))


def _scope(
    session: Session,
    agreement: Agreement,
    period: Period,
    rules: Rules,
    size: int | None,
    reader: Session | None = None,
) -> sql.Scope:
    selection = select_period(session, period)
    integrated = _integrated(session) if reader is None else reader_size(session, reader)
    return sql.Scope(
        selection=selection,
        grantee_agency_id=agreement.grantee_agency_id,
        size=integrated if size is None else min(size, integrated),
        rules=rules,
        grants=tuple(purpose_grants(session, selection)),
        dialect=(session if reader is None else reader).get_bind().dialect.name,
    )


def _share(value: int, whole: int) -> float | None:
    return value / whole if whole else None


def _kept(session: Session, rules: Rules, recompute: bool) -> tuple[Table | None, bool]:
    """The kept explanations' table, if a report may read it (they follow ``rules``)."""
    if recompute or not maintained.current(session, rules):
        return None, False
    return EXPLAINED_PAIRS, True


def _read_up_to_log(session: Session) -> int | None:
    """The log's size when the facts are read up to it already (committed), else None.

    A report then refreshes nothing and claims nothing: the refresh claims the facts'
    watermark ``FOR UPDATE`` even with nothing to read, until the transaction ends, and every
    other report on the store waited for this one's whole transaction. Its figures count no
    leaf past that size (``build_report``'s ``size``): a leaf integrated meanwhile, whose facts
    a concurrent refresh may be writing, is left out as from a report made a moment before.
    Facts of leaves below it are not rewritten by later refreshes but for the kept
    explanations, which the report's pairs read in one statement."""
    read = watermark(session)
    return read if read == _integrated(session) else None


def build_report(
    session: Session,
    *,
    agreement: Agreement,
    period: Period,
    rules: Rules,
    what_if: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    cycle: Explained | None = None,
    recompute: bool = False,
    reader: Session | None = None,
    size: int | None = None,
) -> OversightReport:
    """The report's document (not audited: callers audit). Brings the access facts up to the
    integrated log first; every figure counts only entries integrated by then.

    ``cycle``: the pairs this cycle has explained already (``explain.materialise``), read
    instead of explaining the agreement's pairs again; every figure then counts only the leaves
    below the size they were explained at. It must cover the agreement, the period and the
    rules (``ValueError`` otherwise: a programming error, not a caller's). Without a cycle,
    the pairs are the explanations the refresh keeps (``maintained``) when they follow
    ``rules``; else, or with ``recompute``, they are explained afresh from the facts (the
    same figures: ``tests/oversight/test_maintained.py``). On PostgreSQL its statements are
    planned for their own parameters each time (``plan_cache_mode``): the same statements run
    for every agreement of a renewal round, and once the driver had prepared them, the
    server's generic plan for the pairs statement took 35-50 s where its own plan took 2 s
    (at 1M entries, the 12th and 16th of 20 reports in one session, docs/benchmarks.md).
    When the facts are read up to the log already the refresh is skipped and the watermark not
    claimed (``_read_up_to_log``): two reports on one store run at once
    (``tests/oversight/test_report_round.py``); the console and the API refresh the facts in a
    transaction of their own first (``engines.reading``).

    ``reader``: DuckDB attached to the store (``oversight.duck``, opened by
    ``engines.reading`` after the facts' refresh was committed): every figure's statement
    runs there, the pairs explained afresh (the kept explanations are the store's to serve);
    the same document as the store's (``tests/oversight/test_report_duckdb.py``). The
    agreement, its purposes, the grantee's name and the newest checkpoint are read in the
    store. With ``cycle``, one made on the same reader (``explain.materialise_on``: a renewal
    round's), a store's cycle without one (``ValueError`` otherwise). ``size``: count no leaf
    at or past it (a cycle's own size otherwise)."""
    if cycle is not None and cycle.on_reader != (reader is not None):
        where = "DuckDB's (the reader's file)" if cycle.on_reader else "the store's"
        raise ValueError(f"a cycle's explanations are read where they were made: {where}")
    current = _read_up_to_log(session)
    if current is None:
        refresh(session)
    elif cycle is None:
        size = current if size is None else min(size, current)
    with local_settings(session, plan_cache_mode="force_custom_plan"):
        return _build(
            session, agreement, period, rules, what_if, now, cycle, recompute, reader, size
        )


def _build(
    session: Session,
    agreement: Agreement,
    period: Period,
    rules: Rules,
    what_if: Mapping[str, Any] | None,
    now: datetime | None,
    cycle: Explained | None,
    recompute: bool,
    reader: Session | None = None,
    size: int | None = None,
) -> OversightReport:
    """``build_report``'s document, the facts refreshed; its statements run on ``reader``
    when one is given."""
    scope = _scope(session, agreement, period, rules, size if cycle is None else cycle.size, reader)
    source = session if reader is None else reader
    if cycle is not None and not cycle.covers(scope.selection, rules):
        raise ValueError(
            f"the explanations given cover agreements {sorted(cycle.agreement_ids)} from "
            f"{cycle.start} to {cycle.end} under other rules or not this report's "
            f"agreement {agreement.id} and period {period.start} to {period.end}"
        )
    links = _Links(agreement.id, period.start, period.end, scope.size)
    if cycle is not None:
        stored, kept = cycle.table, False
    elif reader is not None:
        stored, kept = None, False
    else:
        stored, kept = _kept(session, rules, recompute)
    q, p = sql.queries(scope), sql.pairs(scope, stored, kept=kept)
    r = sql.refusals(scope, watermark(source))

    def fig(key: str, label: str, value: int, entries: int, of: tuple[str, int] | None = None):  # type: ignore[no-untyped-def]
        return Figure(
            key=key,
            label=label,
            value=value,
            entries=entries,
            entries_path=links.entries(key),
            share=_share(value, of[1]) if of else None,
            of=of[0] if of else None,
        )

    # One pass over the explained pairs (the costly statement: its grouped counts give every
    # per-code and per-week figure, its distinct counts the rest) and one over the queries.
    summary = [dict(row) for row in source.execute(sql.pair_summary(p, scope.dialect)).mappings()]
    weekly, codes = _grouped(source, scope, q, [r for r in summary if r["part"] == "group"], links)
    queries = sum(w.queries for w in weekly)
    t = next(r for r in summary if r["part"] == "total")
    pairs, persons = int(t["pairs"]), int(t["persons"])
    explained = sum(w.explained for w in weekly)
    figures = [
        fig("queries", "external queries answered", queries, queries),
        fig("pairs", "persons returned (access, person pairs)", pairs, int(t["entries"])),
        fig("persons_viewed", "distinct persons viewed", persons, int(t["entries"])),
        fig(
            "never_charged",
            "distinct persons viewed who were never charged",
            int(t["never_persons"]),
            int(t["never_entries"]),
            ("persons_viewed", persons),
        ),
        fig(
            "explained", "pairs explained", explained, int(t["explained_entries"]), ("pairs", pairs)
        ),
        fig(
            "unexplained",
            "pairs unexplained",
            pairs - explained,
            int(t["unexplained_entries"]),
            ("pairs", pairs),
        ),
    ]
    for rule in Rule:
        n, e = codes.get(rule.value, (0, 0))
        figures.append(
            fig(f"rule:{rule.value}", f"explained by {rule.value}", n, e, ("pairs", pairs))
        )
    for reason in Reason:
        n, e = codes.get(reason.value, (0, 0))
        figures.append(
            fig(f"reason:{reason.value}", f"unexplained: {reason.value}", n, e, ("pairs", pairs))
        )
    refused = {
        str(code): int(n)
        for code, n in source.execute(
            select(r.c.code, func.count()).group_by(r.c.code).order_by(r.c.code)
        )
    }
    total_refused = sum(refused.values())
    figures.append(fig("refusals", "requests refused", total_refused, total_refused))
    for code, n in refused.items():
        figures.append(
            fig(f"refusal:{code}", f"refused: {code}", n, n, ("refusals", total_refused))
        )
    detectors, flag_rows, flags_total, flag_entries = _flags(source, scope, links)
    figures.append(fig("flags", "detector flags raised", flags_total, flag_entries))
    checkpoint = session.scalar(
        select(func.max(AuditCheckpoint.size)).where(AuditCheckpoint.size <= scope.size)
    )
    grantee = session.get(Agency, agreement.grantee_agency_id)
    return OversightReport(
        agreement=AgreementSummary(
            id=agreement.id,
            name=agreement.name,
            grantee_agency_id=agreement.grantee_agency_id,
            grantee_agency=grantee.name if grantee else str(agreement.grantee_agency_id),
            status=agreement.status.value,
            current_version=agreement.current_version,
            in_force_from=agreement.in_force_from,
            in_force_until=agreement.in_force_until,
        ),
        start=period.start,
        end=period.end,
        generated_at=now or utcnow(),
        tree_size=scope.size,
        checkpoint_size=checkpoint,
        rules={
            "follow_up_hours": rules.follow_up_window.total_seconds() / 3600,
            "bulk_results": rules.bulk_results,
            "sweep_queries": rules.sweep_queries,
            "sweep_minutes": rules.sweep_window.total_seconds() / 60,
            "caseless_purposes": sorted(rules.caseless_purposes),
        },
        figures=figures,
        weekly=weekly,
        detectors=detectors,
        flags=flag_rows,
        flags_total=flags_total,
        what_if=dict(what_if) if what_if is not None else None,
    )


def _grouped(
    session: Session, scope: sql.Scope, q: Any, groups: list[dict[str, Any]], links: _Links
) -> tuple[list[WeekRow], dict[str, tuple[int, int]]]:
    """Weekly rows (queries and pairs per week, agency and purpose), and (pairs, entries) per
    explanation code. An entry's pairs share its week, agency and purpose, so distinct entries
    per group add up to distinct entries per code."""
    rows: dict[tuple[str, str, str], dict[str, int]] = {}
    zero = {"queries": 0, "pairs": 0, "explained": 0, "never_charged": 0}
    for week, agency, purpose, n in session.execute(sql.weekly_queries(q, scope.dialect)):
        rows.setdefault((str(week), str(agency), str(purpose)), dict(zero))["queries"] = int(n)
    codes: dict[str, tuple[int, int]] = {}
    for row in groups:
        key = (str(row["week"]), str(row["agency"]), str(row["purpose"]))
        counts = rows.setdefault(key, dict(zero))
        n, entries = int(row["pairs"]), int(row["entries"])
        counts["pairs"] += n
        counts["explained"] += int(row["explained"] or 0)
        counts["never_charged"] += int(row["never_charged"] or 0)
        before = codes.get(str(row["code"]), (0, 0))
        codes[str(row["code"])] = (before[0] + n, before[1] + entries)
    result = []
    for (week, agency, purpose), counts in sorted(rows.items()):
        figure = f"week:{week}:{agency}:{purpose}"
        result.append(
            WeekRow(
                week=week,
                agency=agency,
                purpose=purpose,
                figure=figure,
                entries_path=links.entries(figure),
                **counts,
            )
        )
    return result, codes


def _flags(
    session: Session, scope: sql.Scope, links: _Links
) -> tuple[list[DetectorRow], list[FlagRow], int, int]:
    """Per detector (read generically: any detector's flags appear) and the first flags.

    The agreement's flags are selected once (a few per detector and subject, not per entry)
    and counted per detector here; the distinct entries behind them are a second statement.
    """
    # The flags selected once (materialised), the distinct entries behind them counted in the
    # same statement: a second statement selected the agreement's flags again (at 1M entries
    # 0.4-0.7 s a report, every flag entry joined to the log to find the agreement's).
    listed = sql.flags(scope).cte("report_flags").prefix_with("MATERIALIZED")
    behind = (
        select(func.count(func.distinct(FlagEntry.entry_id)))
        .where(FlagEntry.flag_id.in_(select(listed.c.id)))
        .scalar_subquery()
    )
    flagged = list(
        session.execute(
            select(listed, behind.label("entries_behind")).order_by(listed.c.raised_at, listed.c.id)
        ).mappings()
    )
    per: dict[str, DetectorRow] = {}
    for m in flagged:
        detector, state, finding = str(m["detector"]), m["case_state"], m["finding"]
        row = per.setdefault(
            detector,
            DetectorRow(
                detector=detector,
                flags=0,
                closed=0,
                findings={},
                figure=f"detector:{detector}",
                entries_path=links.entries(f"detector:{detector}"),
            ),
        )
        row.flags += 1
        if state == "closed":
            row.closed += 1
        if finding is not None:
            row.findings[str(finding)] = row.findings.get(str(finding), 0) + 1
    for row in per.values():
        row.findings = dict(sorted(row.findings.items()))
    total = len(flagged)
    entries = int(flagged[0]["entries_behind"] or 0) if flagged else 0
    rows = [
        FlagRow(
            **{k: v for k, v in m.items() if k not in ("case_state", "finding", "entries_behind")},
            case_state=None if m["case_state"] is None else str(m["case_state"]),
            finding=None if m["finding"] is None else str(m["finding"]),
            figure=f"flag:{m['id']}",
            entries_path=links.entries(f"flag:{m['id']}"),
        )
        for m in flagged[:MAX_FLAG_ROWS]
    ]
    return sorted(per.values(), key=lambda d: d.detector), rows, total, entries


# -- drill-down ---------------------------------------------------------------------------------


class EntryRef(BaseModel):
    """One audit entry behind a figure, and where to get the proof that it is in the log."""

    entry_id: int
    at: datetime
    leaf_index: int | None
    proof_path: str | None = Field(
        description="the inclusion proof against the newest checkpoint covering the leaf "
        "(null while no signed checkpoint covers it yet)"
    )


class EntryPage(BaseModel):
    """A page of the audit entries behind one figure, by entry id."""

    figure: str
    tree_size: int
    checkpoint_size: int | None
    items: list[EntryRef]
    total: int
    offset: int
    limit: int


def _figure_ids(session: Session, scope: sql.Scope, figure: str, recompute: bool) -> Any:
    """The statement of the entry ids behind ``figure`` (the same row sets as the figures)."""
    kind, _, rest = figure.partition(":")
    if figure == "queries":
        q = sql.queries(scope)
        return select(q.c.entry_id)
    if figure in ("pairs", "persons_viewed", "explained", "unexplained", "never_charged") or (
        kind in ("rule", "reason") and rest in {*Rule, *Reason}
    ):
        stored, kept = _kept(session, scope.rules, recompute)
        p = sql.pairs(scope, stored, kept=kept)
        named: dict[str, list[Any]] = {
            "explained": [p.c.explained],
            "unexplained": [~p.c.explained],
            "never_charged": [p.c.never_charged],
        }
        by_code = [p.c.code == rest] if kind in ("rule", "reason") else []
        conditions = named.get(figure, by_code)
        return select(p.c.entry_id).where(*conditions)
    if figure == "refusals" or kind == "refusal":
        r = sql.refusals(scope, watermark(session))
        return select(r.c.entry_id).where(*([r.c.code == rest] if kind == "refusal" else []))
    if figure == "flags" or kind in ("detector", "flag"):
        f = sql.flags(scope).subquery("report_flags")
        where: list[Any] = []
        if kind == "detector":
            where = [f.c.detector == rest]
        elif kind == "flag":
            if not rest.isdigit():
                return None
            where = [f.c.id == int(rest)]
        return sql.flag_entries(select(f.c.id).where(*where))
    if kind == "week":
        monday, _, tail = rest.partition(":")
        agency, _, purpose = tail.partition(":")
        try:
            start = datetime.combine(date.fromisoformat(monday), time(), UTC)
        except ValueError:
            return None
        if not purpose or not (agency == sql.NONE or agency.isdigit()):
            return None
        q = sql.queries(scope)
        return select(q.c.entry_id).where(*sql.week_filter(q, start, agency, purpose))
    return None


def entries_of(
    session: Session,
    *,
    agreement: Agreement,
    period: Period,
    rules: Rules,
    figure: str,
    size: int | None,
    offset: int,
    limit: int,
    recompute: bool = False,
) -> EntryPage:
    """A page of the entries behind one figure of the report (not audited: callers audit);
    ``recompute`` as for ``build_report``."""
    refresh(session)
    scope = _scope(session, agreement, period, rules, size)
    ids = _figure_ids(session, scope, figure, recompute)
    if ids is None:
        raise InvalidInput(
            f"figure '{figure}' names no figure of a report: use the key a figure, weekly row or "
            "flag carries (e.g. queries, persons_viewed, reason:never_charged, "
            "refusal:permission_denied, detector:canary, flag:12, week:2026-08-31:4:warrant-check)",
            field="figure",
        )
    count, page = sql.entries_page(ids, offset, limit)
    total = int(session.scalar(count) or 0)
    checkpoint = session.scalar(select(func.max(AuditCheckpoint.size)))
    items = []
    for entry_id, at, leaf in session.execute(page):
        proof = None
        if leaf is not None and checkpoint is not None and leaf < checkpoint:
            proof = f"{API}/audit/proof/inclusion?index={leaf}&size={checkpoint}"
        items.append(EntryRef(entry_id=entry_id, at=at, leaf_index=leaf, proof_path=proof))
    return EntryPage(
        figure=figure,
        tree_size=scope.size,
        checkpoint_size=checkpoint,
        items=items,
        total=total,
        offset=offset,
        limit=limit,
    )


# -- the audited services -----------------------------------------------------------------------


def _audit(session: Session, actor: Principal, action: str, **params: Any) -> None:
    append(session, event_by(actor, kind=AuditKind.AUDIT_READ, action=action, params=params))


def _audit_report(
    session: Session,
    actor: Principal,
    document: OversightReport,
    *,
    via: str,
    recompute: bool,
    verify: bool,
    on_duckdb: bool,
    start: date,
    end: date,
    output: ReportFormat,
    **extra: Any,
) -> None:
    """The entry of one report delivered (alone, or one of a round: ``extra`` its size)."""
    _audit(
        session,
        actor,
        "oversight.report",
        via=via,
        recompute=recompute,
        verify=verify,
        engine="duckdb" if on_duckdb else "store",
        agreement_id=document.agreement.id,
        **{"from": start.isoformat(), "to": end.isoformat()},
        format=output.value,
        tree_size=document.tree_size,
        sha256=sha256(document),
        **extra,
    )


def report(
    session: Session,
    *,
    actor: Principal,
    agreement_id: int,
    start: date,
    end: date,
    rules: Rules,
    output: ReportFormat,
    what_if: Mapping[str, Any] | None = None,
    what_if_proposal: int | None = None,
    what_if_months: int = 6,
    what_if_max_queries: int = 20_000,
    via: str = "api",
    today: date | None = None,
    recompute: bool = False,
    verify: bool = False,
    reader: Session | None = None,
) -> OversightReport:
    """The report of an agreement over a period; audited with its SHA-256 (and whether its
    pairs were explained afresh: ``recompute``, as for ``build_report``, and on which engine).
    With ``verify`` the report is built both ways, from the kept explanations and afresh, and
    refused (409 ``report_mismatch``, logged as any refusal) unless the two are the same bytes:
    an operator who altered the kept rows cannot pass them off. ``reader``: built on DuckDB
    reading the store (``build_report``; its pairs are always explained afresh), and with
    ``verify`` checked against the store's report explained afresh.

    With ``what_if_proposal`` the report carries the what-if replay of that proposal's version
    over the last ``what_if_months`` (the replay writes its own ``oversight.what_if`` entry).
    """
    require_reader(actor)
    moment = utcnow()  # read once: the period check and the document's generated_at agree
    agreement, period = check_period(
        session, agreement_id, start, end, today=today or moment.date()
    )
    if what_if_proposal is not None:
        what_if = replay_summary(
            session,
            actor=actor,
            agreement_id=agreement_id,
            proposal_id=what_if_proposal,
            months=what_if_months,
            max_queries=what_if_max_queries,
            via=via,
        )

    def built(afresh: bool, on: Session | None) -> OversightReport:
        return build_report(
            session,
            agreement=agreement,
            period=period,
            rules=rules,
            what_if=what_if,
            now=moment,
            recompute=afresh,
            reader=on,
        )

    document = built(recompute, reader)
    if verify:
        fresh = built(True, None)
        if reader is not None and fresh.tree_size != document.tree_size:
            # Leaves integrated since DuckDB opened: the store's report counts them too.
            fresh = build_report(
                session, agreement=agreement, period=period, rules=rules, what_if=what_if,
                now=moment, recompute=True, size=document.tree_size,
            )  # fmt: skip
        if canonical(fresh) != canonical(document):
            source = "DuckDB's report" if reader is not None else "the kept explanations"
            raise Conflict(
                f"the report read from {source} differs from the report explained afresh in "
                f"the store (SHA-256 {sha256(document)} against {sha256(fresh)}); the store's "
                "recomputed report is the one to read (--recompute)",
                code="report_mismatch",
            )
    _audit_report(
        session, actor, document, via=via, recompute=recompute, verify=verify,
        on_duckdb=reader is not None, start=start, end=end, output=output,
    )  # fmt: skip
    return document


def check_round(
    session: Session,
    agreement_ids: Sequence[int] | None,
    start: date,
    end: date,
    *,
    today: date | None = None,
) -> list[tuple[Agreement, Period]]:
    """The agreements and period of a renewal round, or an error naming the argument: the days
    as for one report, then each agreement given (in the order given, once each) as for one
    report; ``None``: every agreement created on or before ``end`` (by id), at least one."""
    _check_days(start, end, today or datetime.now(UTC).date())
    if agreement_ids is None:
        last = datetime.combine(end + timedelta(days=1), time(), UTC)
        ids: Sequence[int] = list(
            session.scalars(
                select(Agreement.id).where(Agreement.created_at < last).order_by(Agreement.id)
            )
        )
        if not ids:
            raise InvalidInput(
                f"no agreement was created on or before {end}: a round over every agreement "
                "has none to report on; give to on or after an agreement's creation",
                field="to",
                code="empty_period",
            )
    else:
        ids = list(dict.fromkeys(agreement_ids))
        if not ids:
            raise InvalidInput(
                "a round needs at least one agreement (or every agreement)", field="agreement"
            )
    return [_check_agreement(session, agreement_id, start, end) for agreement_id in ids]


def report_round(
    session: Session,
    *,
    actor: Principal,
    agreement_ids: Sequence[int] | None,
    start: date,
    end: date,
    rules: Rules,
    output: ReportFormat,
    via: str = "api",
    today: date | None = None,
    recompute: bool = False,
    reader: Session | None = None,
) -> list[OversightReport]:
    """A renewal round: the reports of several agreements (``None``: every agreement,
    ``check_round``) over one period, their pairs explained once for all of them. Each report
    is the one ``report`` gives for its agreement alone, byte for byte but for
    ``generated_at`` (one instant for the round; ``tests/oversight/test_report_round.py``), and
    is audited as that one is: one ``oversight.report`` entry per report, in the caller's
    transaction (all or none), with its SHA-256 and ``round`` (the number of reports).

    On the store the pairs are explained once into a temporary table (``explain.materialise``,
    from the explanations the refresh keeps unless ``recompute``); on DuckDB (``reader``)
    every agreement's pairs are explained in one statement into a table of the reader's file
    (``explain.materialise_on``: one explanation of the period, not one per agreement), and
    every report's statements read it there. The table is dropped when the round ends."""
    require_reader(actor)
    moment = utcnow()
    chosen = check_round(session, agreement_ids, start, end, today=today or moment.date())
    first = select_period(session, chosen[0][1])
    ids = [agreement.id for agreement, _ in chosen]
    if reader is None:
        cycle = materialise(
            session, start=first.start, end=first.end, agreement_ids=ids, rules=rules,
            recompute=recompute,
        )  # fmt: skip
    else:
        refresh(session)
        cycle = materialise_on(
            reader, session, start=first.start, end=first.end, agreement_ids=ids, rules=rules,
            size=reader_size(session, reader),
        )  # fmt: skip
    documents: list[OversightReport] = []
    try:
        for agreement, period in chosen:
            document = build_report(
                session, agreement=agreement, period=period, rules=rules, now=moment,
                cycle=cycle, reader=reader,
            )  # fmt: skip
            documents.append(document)
    finally:
        cycle.drop(session if reader is None else reader)
    for document in documents:
        _audit_report(
            session, actor, document, via=via, recompute=recompute, verify=False,
            on_duckdb=reader is not None, start=start, end=end, output=output,
            round=len(documents),
        )  # fmt: skip
    return documents


def replay_summary(
    session: Session,
    *,
    actor: Principal,
    agreement_id: int,
    proposal_id: int,
    months: int,
    max_queries: int,
    via: str,
) -> dict[str, Any]:
    """The what-if replay of a proposal on this agreement, as the report shows it: what was
    replayed and the totals (the per-query list stays at the replay's own endpoint)."""
    # Imported here: the replay reads governance proposals, which import this module.
    from openpars.oversight.whatif import of_proposal, what_if

    proposed = of_proposal(session, proposal_id, actor=actor)
    if proposed.agreement_id != agreement_id:
        raise InvalidInput(
            f"proposal {proposal_id} is on agreement {proposed.agreement_id}, not on agreement "
            f"{agreement_id} that this report covers",
            field="what_if_proposal",
        )
    replay = what_if(
        session,
        actor=actor,
        proposed=proposed,
        months=months,
        limit=1,
        max_queries=max_queries,
        via=via,
    )
    totals = replay.totals.model_dump(mode="json")
    shown: dict[str, Any] = {
        "proposal": proposal_id,
        "proposed_version": replay.proposed_version,
        "window": f"{replay.since.isoformat()} to {replay.until.isoformat()} ({months} months)",
    }
    for key, value in totals.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in sorted(value.items())) or "none"
        shown[key] = value
    # The proposal's own replay (kept with it, its window said there).
    shown["details"] = f"/api/v1/proposals/{proposal_id}/what-if"
    return shown


def report_entries(
    session: Session,
    *,
    actor: Principal,
    agreement_id: int,
    start: date,
    end: date,
    rules: Rules,
    figure: str,
    size: int | None = None,
    offset: int = 0,
    limit: int = 100,
    via: str = "api",
    today: date | None = None,
) -> EntryPage:
    """A page of the audit entries behind one figure; audited."""
    require_reader(actor)
    agreement, period = check_period(session, agreement_id, start, end, today=today)
    page = entries_of(
        session,
        agreement=agreement,
        period=period,
        rules=rules,
        figure=figure,
        size=size,
        offset=offset,
        limit=limit,
    )
    _audit(
        session,
        actor,
        "oversight.report.entries",
        via=via,
        agreement_id=agreement_id,
        **{"from": start.isoformat(), "to": end.isoformat()},
        figure=figure,
        size=size,
        offset=offset,
        limit=limit,
        returned=[i.entry_id for i in page.items],
        total=page.total,
    )
    return page


def term_period(agreement: Agreement, *, today: date) -> tuple[date, date]:
    """The agreement's current term up to today: from the day it came into force (or was
    created, if never in force) to today (UTC), both included."""
    began = agreement.in_force_from or agreement.created_at
    start = min(began.astimezone(UTC).date(), today)
    return start, today


__all__ = [
    "FORMAT",
    "EntryPage",
    "Figure",
    "OversightReport",
    "ReportFormat",
    "build_report",
    "canonical",
    "check_period",
    "check_round",
    "report",
    "report_entries",
    "report_round",
    "sha256",
    "term_period",
]
