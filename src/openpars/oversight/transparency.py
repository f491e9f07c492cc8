"""The public transparency report: monthly counts of external access, with differential privacy.

For one UTC calendar month: how many external reads each outside agency made, per stated
purpose and per outcome (answered, or refused by reason class), published with noise from the
discrete Laplace mechanism of OpenDP, the privacy budget stated on the report. The design (the
unit of privacy, the mechanism, the fixed category set, the ledger) is argued in
docs/oversight.md, "Public transparency report".

- **Categories are fixed before any count is read**: every external agency on the site, each
  with the purposes of its agreements (every version) and one bucket for any other or no
  purpose, crossed with the fixed outcome classes. None of it comes from the audit log, so no
  category exists because someone queried; every cell is published, zeros included.
- **Contributions are clamped**: each external account counts for at most
  ``transparency_contributions`` reads in a month (its first, by entry id), so one account
  changes the whole vector of counts by at most that much (L1 sensitivity).
- **The ledger**: a month is released once (``oversight_transparency_releases``, append-only);
  asking again returns the stored document, never fresh noise, and spends no budget.
- **Exact figures** go only to the oversight role and the stakeholders' voters, audited.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.orm import Session

from openpars.agreements.models import Agreement, AgreementVersion
from openpars.audit import by_actor
from openpars.audit.events import AuditKind, Outcome, event_by
from openpars.audit.models import AuditEntry
from openpars.audit.service import append
from openpars.config import Settings
from openpars.db import utcnow
from openpars.errors import Forbidden, InvalidInput, NotFound
from openpars.identity.models import Agency
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission
from openpars.oversight.models import TransparencyRelease

FORMAT = "openpars-transparency/v1"
OTHER_PURPOSE = "(other or none)"
MECHANISM = "discrete Laplace (OpenDP make_laplace over a vector of integer counts)"

# Outcome classes, fixed: an answered read, or a refusal by the class of its error code.
OK = "ok"
REFUSAL_CLASSES: dict[str, str] = {
    "purpose_not_allowed": "refused_purpose",
    "case_reference_required": "refused_purpose",
    "criterion_not_allowed": "refused_scope",
    "query_shape_not_allowed": "refused_scope",
    "invalid_input": "refused_scope",
    "no_agreement_in_force": "refused_no_agreement",
    "rate_limited": "refused_rate_limit",
    "not_found": "refused_not_found",
}
REFUSED_OTHER = "refused_other"
OUTCOMES: tuple[str, ...] = (
    OK,
    "refused_purpose",
    "refused_scope",
    "refused_no_agreement",
    "refused_rate_limit",
    "refused_not_found",
    REFUSED_OTHER,
)

UNIT = (
    "one external account's reads in the month, at most contributions_bound of them counted "
    "(any set of up to contributions_bound external reads, whoever made them or whomever "
    "they returned, is protected at epsilon)"
)
COMPOSITION = (
    "Each counted read falls in exactly one cell, so one account changes the vector of all "
    "cells by at most contributions_bound (L1): the whole month's release is epsilon-DP, not "
    "epsilon per cell. Months are released once each; an account active in several released "
    "months is protected at the sum of their epsilons (sequential composition), stated as "
    "epsilon_all_releases."
)
POST_PROCESSING = (
    "noisy counts are integers already (discrete noise); negatives are published as 0. "
    "Post-processing spends no budget."
)
NOISE_SOURCE = (
    "OpenDP's sampler, drawing from a cryptographically secure generator; no seed is set or stored"
)

# A noise mechanism: given the scale, a function adding noise to a vector of counts.
NoiseFactory = Callable[[float], Callable[[list[int]], list[int]]]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Month:
    """A UTC calendar month: its label and its bounds (start included, end excluded)."""

    label: str
    start: datetime
    end: datetime


def parse_month(value: str, *, now: datetime | None = None) -> Month:
    """The month named ``YYYY-MM``, if it has ended; InvalidInput naming ``month`` otherwise."""
    found = _MONTH.match(value.strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        raise InvalidInput(
            f"month {value!r} is not a calendar month: write it YYYY-MM, e.g. 2026-11",
            field="month",
        )
    year, number = int(found.group(1)), int(found.group(2))
    if year >= 9999 and number == 12:
        raise InvalidInput(f"month {value!r} has not ended", field="month", code="month_not_ended")
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=UTC)
    current = now or datetime.now(UTC)
    if end > current:
        raise InvalidInput(
            f"month {value} has not ended (it is {current:%Y-%m-%d %H:%M} UTC): its counts are "
            "not final, and a month is released only once; release it after it ends",
            field="month",
            code="month_not_ended",
        )
    return Month(label=f"{year:04d}-{number:02d}", start=start, end=end)


# ---------------------------------------------------------------------------------------------
# The fixed category set and the exact counts
# ---------------------------------------------------------------------------------------------


class AgencyCategories(BaseModel):
    """One outside agency and the purposes it is counted under."""

    id: int
    name: str
    purposes: list[str] = Field(
        description="its agreements' purposes (every version), then the bucket for any other"
    )


def categories(session: Session) -> list[AgencyCategories]:
    """Every external agency, with its agreements' purposes: from the registry, not the log."""
    agencies = session.execute(
        select(Agency.id, Agency.name).where(Agency.kind == AgencyKind.EXTERNAL).order_by(Agency.id)
    ).all()
    purposes: dict[int, set[str]] = {int(a): set() for a, _ in agencies}
    versions = session.execute(
        select(Agreement.grantee_agency_id, AgreementVersion.content).join(
            AgreementVersion, AgreementVersion.agreement_id == Agreement.id
        )
    )
    for agency_id, content in versions:
        for rule in (content or {}).get("scope", {}).get("purposes", []):
            if agency_id in purposes and isinstance(rule.get("purpose"), str):
                purposes[agency_id].add(rule["purpose"])
    return [
        AgencyCategories(id=a, name=n, purposes=[*sorted(purposes[a]), OTHER_PURPOSE])
        for a, n in agencies
    ]


CellKey = tuple[int, str, str]


def cell_keys(cats: Sequence[AgencyCategories]) -> list[CellKey]:
    """Every published cell, in the report's order."""
    return [(a.id, p, o) for a in cats for p in a.purposes for o in OUTCOMES]


def _json_text(dialect: str, *path: str) -> Any:
    if dialect == "sqlite":
        return literal_column(
            f"json_extract(CAST(audit_entries.content AS TEXT), '$.{'.'.join(path)}')"
        )
    return literal_column(
        f"(convert_from(audit_entries.content, 'UTF8')::jsonb #>> '{{{','.join(path)}}}')"
    )


def exact_counts(
    session: Session, month: Month, cats: Sequence[AgencyCategories], *, bound: int | None
) -> dict[CellKey, int]:
    """The month's external reads per cell, each account's first ``bound`` only (all if None).

    One grouped statement over the month's entries: answered reads (kind search or read) and
    refusals of outside agencies' accounts. A crypto-shredded entry has no content and is not
    counted.
    """
    dialect = session.get_bind().dialect.name
    purpose = func.coalesce(
        _json_text(dialect, "params", "purpose"), _json_text(dialect, "params", "query", "purpose")
    )
    rank = func.row_number().over(partition_by=AuditEntry.user_id, order_by=AuditEntry.id)
    inner = (
        select(
            AuditEntry.agency_id.label("agency_id"),
            purpose.label("purpose"),
            AuditEntry.outcome.label("outcome"),
            _json_text(dialect, "error_code").label("error_code"),
            rank.label("rank"),
        )
        .join(Agency, Agency.id == AuditEntry.agency_id)
        .where(
            AuditEntry.id.in_(
                by_actor.entries_by(
                    dialect,
                    "agency_id",
                    select(Agency.id).where(Agency.kind == AgencyKind.EXTERNAL),
                    start=month.start,
                    end=month.end,
                )
            ),
            Agency.kind == AgencyKind.EXTERNAL,
            AuditEntry.content.is_not(None),
            AuditEntry.at >= month.start,
            AuditEntry.at < month.end,
            (
                AuditEntry.kind.in_([AuditKind.SEARCH, AuditKind.READ])
                & (AuditEntry.outcome == Outcome.OK)
            )
            | (AuditEntry.kind == AuditKind.REFUSED),
        )
        .subquery("reads")
    )
    stmt = select(
        inner.c.agency_id, inner.c.purpose, inner.c.outcome, inner.c.error_code, func.count()
    ).group_by(inner.c.agency_id, inner.c.purpose, inner.c.outcome, inner.c.error_code)
    if bound is not None:
        stmt = stmt.where(inner.c.rank <= bound)
    known = {a.id: set(a.purposes) for a in cats}
    counts = dict.fromkeys(cell_keys(cats), 0)
    for agency_id, stated, outcome, error_code, n in session.execute(stmt):
        if agency_id not in known:
            continue  # an agency made external after the categories were read
        bucket = stated if stated in known[agency_id] and stated != OTHER_PURPOSE else None
        cls = OK if outcome == Outcome.OK else REFUSAL_CLASSES.get(error_code or "", REFUSED_OTHER)
        counts[(agency_id, bucket or OTHER_PURPOSE, cls)] += int(n)
    return counts


# ---------------------------------------------------------------------------------------------
# The mechanism
# ---------------------------------------------------------------------------------------------


def library() -> str:
    """The DP library and its version, as stated on the report."""
    return f"opendp {package_version('opendp')}"


def _measurement(scale: float) -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T=dp.i64)), dp.l1_distance(T=dp.i64)
    return dp.m.make_laplace(*space, scale=scale)


def opendp_noise(scale: float) -> Callable[[list[int]], list[int]]:
    """OpenDP's discrete Laplace mechanism of the given scale on integer vectors."""
    measurement = _measurement(scale)

    def add(counts: list[int]) -> list[int]:
        return [int(v) for v in measurement(counts)] if counts else []

    return add


def stated_epsilon(scale: float, bound: int) -> float:
    """The epsilon OpenDP's privacy map proves for the mechanism at L1 distance ``bound``."""
    return float(_measurement(scale).map(bound))


# ---------------------------------------------------------------------------------------------
# Releases
# ---------------------------------------------------------------------------------------------


class Cell(BaseModel):
    """One published count."""

    agency_id: int
    agency: str
    purpose: str
    outcome: str
    count: int


class Privacy(BaseModel):
    """The privacy statement of a release."""

    epsilon: float = Field(description="epsilon of this release (the whole month, all cells)")
    delta: float = 0.0
    unit: str = UNIT
    contributions_bound: int = Field(description="reads counted per external account per month")
    l1_sensitivity: int
    mechanism: str = MECHANISM
    scale: float = Field(description="noise scale: contributions_bound / epsilon")
    library: str
    noise_source: str = NOISE_SOURCE
    composition: str = COMPOSITION
    post_processing: str = POST_PROCESSING
    releases_before: int = Field(description="releases made before this one (any month)")
    epsilon_all_releases: float = Field(description="epsilon of every release so far, this one in")


class Release(BaseModel):
    """A published transparency report: noisy counts of one month and their privacy budget."""

    format: Literal["openpars-transparency/v1"] = "openpars-transparency/v1"
    month: str
    released_at: datetime
    privacy: Privacy
    agencies: list[AgencyCategories]
    outcomes: list[str]
    cells: list[Cell]


class ReleaseSummary(BaseModel):
    """One row of the release ledger."""

    month: str
    released_at: datetime
    epsilon: float
    contributions_bound: int
    scale: float


class ReleasePage(BaseModel):
    """The ledger, newest month first, with the budget spent over all releases."""

    items: list[ReleaseSummary]
    total: int
    offset: int
    limit: int
    epsilon_all_releases: float


class ReleaseOutcome(BaseModel):
    """What a release request did: published the month now, or returned the stored release."""

    released_now: bool
    release: Release


class ExactCell(BaseModel):
    """One cell's exact figures, for the oversight role and the stakeholders."""

    agency_id: int
    agency: str
    purpose: str
    outcome: str
    exact: int = Field(description="every external read of the cell")
    clamped: int = Field(description="the reads the mechanism counts (per-account bound)")
    published: int | None = Field(description="the released noisy count, if released")


class ExactReport(BaseModel):
    """The exact figures of a month next to the published ones."""

    month: str
    contributions_bound: int
    released: bool
    cells: list[ExactCell]


def _stored(row: TransparencyRelease) -> Release:
    return Release.model_validate_json(row.document)


def _row_of(session: Session, label: str) -> TransparencyRelease | None:
    return session.scalars(
        select(TransparencyRelease).where(TransparencyRelease.month == label)
    ).one_or_none()


def _lock_ledger(session: Session) -> None:
    # Two releases of the same month at once: the second waits and then finds the first's
    # row. SQLite has one writer (and the web's writer gate); the unique month holds anyway.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('openpars.transparency'))"))


def release_month(
    session: Session,
    *,
    actor: Principal,
    month: str,
    settings: Settings,
    noise: NoiseFactory = opendp_noise,
    now: datetime | None = None,
    via: str = "api",
) -> ReleaseOutcome:
    """Publish a month's noisy counts once (oversight reviewers); audited.

    A month already released is returned as stored: no fresh noise, no budget spent.
    """
    actor.require(Permission.OVERSIGHT_REVIEW)
    parsed = parse_month(month, now=now)
    _lock_ledger(session)
    existing = _row_of(session, parsed.label)
    if existing is not None:
        append(
            session,
            event_by(
                actor, kind=AuditKind.OVERSIGHT, action="oversight.transparency.release",
                params={"via": via, "month": parsed.label, "released_now": False},
            ),
        )  # fmt: skip
        return ReleaseOutcome(released_now=False, release=_stored(existing))
    bound = settings.transparency_contributions
    scale = bound / settings.transparency_epsilon
    epsilon = stated_epsilon(scale, bound)
    cats = categories(session)
    counts = exact_counts(session, parsed, cats, bound=bound)
    keys = list(counts)
    noisy = noise(scale)([counts[k] for k in keys])
    names = {a.id: a.name for a in cats}
    spent = session.execute(
        select(func.count(), func.coalesce(func.sum(TransparencyRelease.epsilon), 0.0))
    ).one()
    at = now or utcnow()
    document = Release(
        month=parsed.label,
        released_at=at,
        privacy=Privacy(
            epsilon=epsilon, contributions_bound=bound, l1_sensitivity=bound, scale=scale,
            library=library(), releases_before=int(spent[0]),
            epsilon_all_releases=float(spent[1]) + epsilon,
        ),
        agencies=cats,
        outcomes=list(OUTCOMES),
        cells=[
            Cell(agency_id=a, agency=names[a], purpose=p, outcome=o, count=max(0, value))
            for (a, p, o), value in zip(keys, noisy, strict=True)
        ],
    )  # fmt: skip
    entry = append(
        session,
        event_by(
            actor, kind=AuditKind.OVERSIGHT, action="oversight.transparency.release",
            params={"via": via, "month": parsed.label, "released_now": True,
                    "epsilon": epsilon, "contributions_bound": bound, "cells": len(keys)},
        ),
    )  # fmt: skip
    session.add(
        TransparencyRelease(
            month=parsed.label, released_at=at, released_by_id=actor.user_id, entry_id=entry.id,
            epsilon=epsilon, contributions_bound=bound, scale=scale, mechanism=MECHANISM,
            library=library(), document=document.model_dump_json(),
        )
    )  # fmt: skip
    session.flush()
    return ReleaseOutcome(released_now=True, release=document)


def published(session: Session, month: str) -> Release:
    """The stored release of a month (public, not audited); NotFound if not released."""
    found = _MONTH.match(month.strip())
    row = _row_of(session, month.strip()) if found else None
    if row is None:
        raise NotFound(
            f"no transparency report has been released for {month!r} (YYYY-MM); list the "
            "released months at /api/v1/transparency/releases",
            field="month",
        )
    return _stored(row)


def ledger(session: Session, *, offset: int = 0, limit: int = 50) -> ReleasePage:
    """The released months, newest first, and the budget spent over all releases (public)."""
    total, spent = session.execute(
        select(func.count(), func.coalesce(func.sum(TransparencyRelease.epsilon), 0.0))
    ).one()
    rows = session.scalars(
        select(TransparencyRelease)
        .order_by(TransparencyRelease.month.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return ReleasePage(
        items=[
            ReleaseSummary(
                month=r.month, released_at=r.released_at, epsilon=r.epsilon,
                contributions_bound=r.contributions_bound, scale=r.scale,
            )
            for r in rows
        ],
        total=int(total), offset=offset, limit=limit, epsilon_all_releases=float(spent),
    )  # fmt: skip


def may_read_exact(actor: Principal) -> bool:
    """The oversight role and the stakeholders' voters see exact figures; nobody else."""
    return actor.can(Permission.OVERSIGHT_READ) or actor.can(Permission.VOTE)


def exact_report(
    session: Session,
    *,
    actor: Principal,
    month: str,
    settings: Settings,
    now: datetime | None = None,
    via: str = "api",
) -> ExactReport:
    """The month's exact counts, clamped counts and published counts per cell; audited."""
    if not may_read_exact(actor):
        raise Forbidden(
            f"your account ({actor.username}) may not read exact transparency figures: only "
            "the oversight role and the stakeholders' voters may (oversight:read or vote)",
            code="permission_denied",
            details={"permission": [Permission.OVERSIGHT_READ.value, Permission.VOTE.value]},
        )
    parsed = parse_month(month, now=now)
    row = _row_of(session, parsed.label)
    cats = _stored(row).agencies if row is not None else categories(session)
    bound = row.contributions_bound if row is not None else settings.transparency_contributions
    exact = exact_counts(session, parsed, cats, bound=None)
    clamped = exact_counts(session, parsed, cats, bound=bound)
    released = (
        {(c.agency_id, c.purpose, c.outcome): c.count for c in _stored(row).cells}
        if (row is not None)
        else {}
    )
    names = {a.id: a.name for a in cats}
    append(
        session,
        event_by(
            actor, kind=AuditKind.AUDIT_READ, action="oversight.transparency.exact",
            params={"via": via, "month": parsed.label},
        ),
    )  # fmt: skip
    return ExactReport(
        month=parsed.label,
        contributions_bound=bound,
        released=row is not None,
        cells=[
            ExactCell(
                agency_id=a, agency=names[a], purpose=p, outcome=o, exact=exact[(a, p, o)],
                clamped=clamped[(a, p, o)], published=released.get((a, p, o)),
            )
            for (a, p, o) in exact
        ],
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Renderings
# ---------------------------------------------------------------------------------------------


def as_json(release: Release) -> str:
    """The release as JSON."""
    return json.dumps(release.model_dump(mode="json"), indent=2, sort_keys=True)


CSV_COLUMNS = (
    "month", "agency_id", "agency", "purpose", "outcome", "noisy_count", "epsilon", "delta",
    "contributions_bound", "scale", "mechanism", "epsilon_all_releases",
)  # fmt: skip


def as_csv(release: Release) -> str:
    """One row per cell, each carrying the release's privacy budget."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    p = release.privacy
    for c in release.cells:
        writer.writerow(
            [release.month, c.agency_id, c.agency, c.purpose, c.outcome, c.count, p.epsilon,
             p.delta, p.contributions_bound, p.scale, p.mechanism, p.epsilon_all_releases]
        )  # fmt: skip
    return buffer.getvalue()


def as_html(release: Release) -> str:
    """A self-contained page: the privacy statement, then one table per agency."""
    e = html.escape
    p = release.privacy
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>External access, {e(release.month)}: transparency report</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em}"
        "td.n{text-align:right}</style></head><body>",
        f"<h1>External access to arrest records, {e(release.month)}</h1>",
        "<p>Counts of outside agencies' reads, by purpose and outcome, published with "
        "differential privacy: every count has random noise added, so small counts may be "
        "0 or larger than the truth.</p>",
        "<h2>Privacy budget</h2><dl>",
    ]
    for label, value in (
        ("epsilon (this release, all cells together)", p.epsilon),
        ("delta", p.delta),
        ("unit of privacy", p.unit),
        ("reads counted per account (bound)", p.contributions_bound),
        ("mechanism", p.mechanism),
        ("noise scale", p.scale),
        ("typical error (standard deviation)", f"{(2 * p.scale**2) ** 0.5:.1f}"),
        ("composition", p.composition),
        ("post-processing", p.post_processing),
        ("epsilon of all releases so far", p.epsilon_all_releases),
        ("library", p.library),
    ):
        parts.append(f"<dt>{e(label)}</dt><dd>{e(str(value))}</dd>")
    parts.append("</dl>")
    for agency in release.agencies:
        parts.append(f"<h2>{e(agency.name)}</h2><table><tr><th>purpose</th>")
        parts.extend(f"<th>{e(o)}</th>" for o in release.outcomes)
        parts.append("</tr>")
        counts = {
            (c.purpose, c.outcome): c.count for c in release.cells if c.agency_id == agency.id
        }
        for purpose in agency.purposes:
            parts.append(f"<tr><td>{e(purpose)}</td>")
            parts.extend(
                f'<td class="n">{counts.get((purpose, o), 0)}</td>' for o in release.outcomes
            )
            parts.append("</tr>")
        parts.append("</table>")
    parts.append(f"<p>Released {e(release.released_at.isoformat())}.</p></body></html>")
    return "\n".join(parts)
