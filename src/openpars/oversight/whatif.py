"""What-if replay: the real external reads of the last months, run again under a proposed version.

For one agreement, every answered external read of the last ``months`` (its audit entry: the
criteria, purpose, case reference, user and agency) is replayed twice through the enforcement
point (``access.replay``), once under the version it ran under and once under the proposed
version, both compiled with the site floor in force today. The difference is what the proposal
changes: persons and arrests more or fewer, fields shown more, fewer or masked otherwise,
queries newly refused or newly answered. Nothing is returned to anyone but counts and field
names, no audit entry is written for a simulated read, and the request itself leaves one
``oversight.what_if`` entry.

Records as of now, restricted to those that existed at the query time: a person or arrest
created after the read is dropped from both sides. What cannot be reconstructed is listed in
``LIMITS`` (and docs/oversight.md, "What-if replay").

``what_if`` returns a ``WhatIfReport`` (pydantic, JSON-ready); the renewal report renders its
``totals`` and the first page of ``items``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.access.external import compile_grant
from openpars.access.policy import ReadPolicy
from openpars.access.replay import REPLAYABLE, Disclosure, recorded_read, replay
from openpars.agreements.floor import check_scope, floor_hash, get_floor
from openpars.agreements.grants import Grant
from openpars.agreements.models import Agreement, AgreementVersion, new_mask_key
from openpars.agreements.schemas import AgreementDocument, parse_document
from openpars.audit.events import AuditKind, Outcome, event_by
from openpars.audit.models import AuditEntry
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput, NotFound
from openpars.governance.models import Proposal, ProposalReplay, ProposalReplayQuery
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.records.models import Arrest, Person

MONTHS_MIN = 1
MONTHS_MAX = 24
# The window of the replay kept with a proposal when it opens.
WHATIF_MONTHS = 6
# Entries replayed, then records' creation times read, per batch (one IN list per batch).
BATCH = 500
# Who may ask: the oversight role and the stakeholders' voters; never an outside agency.
PERMISSIONS = (Permission.OVERSIGHT_READ, Permission.VOTE)
LIMITS = (
    "records as they are now, restricted to those created by the query time: a charge, state, "
    "sealing or correction made since the query is seen as it is today, on both sides",
    "both sides under today's site floor, not the floor of the query time",
    "a page that records created later would have filled is not refilled from further rows",
    "rate limits are not replayed (they depend on the minute's traffic, not on the version)",
    "only answered reads are replayed; refused requests and crypto-shredded entries are "
    "counted as not replayed",
)


class Change(StrEnum):
    """How a query's answer changes under the proposal."""

    SAME = "same"
    MORE = "more"
    FEWER = "fewer"
    MIXED = "mixed"
    NEWLY_REFUSED = "newly_refused"
    NEWLY_ANSWERED = "newly_answered"
    REFUSED_BOTH = "refused_both"


class Side(BaseModel):
    """A query's answer under one version: refused (and why) or how much it returned."""

    version: int | None = Field(description="the agreement version (None: a version file)")
    refused: bool
    code: str | None = None
    field: str | None = None
    message: str | None = None
    persons: int = 0
    arrests: int = 0


class FieldChange(BaseModel):
    """A field shown under both versions with different masks."""

    field: str
    current: str
    proposed: str


class QueryReplay(BaseModel):
    """One real external read and what the proposal changes in its answer."""

    entry_id: int
    at: datetime
    action: str
    user_id: int | None
    agency_id: int | None
    purpose: str | None
    case_reference: str | None
    recorded_persons: int = Field(description="persons the entry says the read returned")
    current: Side
    proposed: Side
    change: Change
    persons_more: int
    persons_fewer: int
    arrests_more: int
    arrests_fewer: int
    fields_more: list[str] = Field(description="fields the proposal would show that were not")
    fields_fewer: list[str] = Field(description="fields shown that the proposal would not show")
    fields_masked_otherwise: list[FieldChange]


class Totals(BaseModel):
    """Totals over every query replayed (not only the page)."""

    queries: int = Field(description="external reads of the agreement in the window")
    replayed: int
    not_replayed: int = Field(description="shredded entries and actions that are no read")
    refused_current: int
    refused_proposed: int
    newly_refused: int
    newly_answered: int
    with_more_persons: int
    with_fewer_persons: int
    with_field_changes: int
    persons_more: int = Field(description="sum over queries of persons gained")
    persons_fewer: int = Field(description="sum over queries of persons lost")
    distinct_persons_more: int
    distinct_persons_fewer: int
    fields_more: dict[str, int] = Field(description="field -> queries that would show it")
    fields_fewer: dict[str, int] = Field(description="field -> queries that would lose it")
    refusals_proposed_by_code: dict[str, int]
    newly_refused_by_code: dict[str, int]
    by_change: dict[str, int]


class WhatIfReport(BaseModel):
    """The what-if replay of one proposed agreement version (docs/oversight.md)."""

    agreement_id: int
    proposal_id: int | None
    proposed_version: int | None = Field(description="None: a version given as a file")
    proposed_hash: str
    floor_hash: str
    months: int
    since: datetime
    until: datetime
    totals: Totals
    items: list[QueryReplay]
    offset: int
    limit: int
    limits: list[str] = Field(description="what a replay cannot reconstruct")
    computed_at: datetime | None = Field(
        None, description="a proposal's stored replay: when it was computed (None: just now)"
    )
    computed_by: str | None = Field(
        None, description="a proposal's stored replay: the account that asked for it"
    )


@dataclass(frozen=True, slots=True)
class Proposed:
    """The version replayed: the agreement, its document and where it came from."""

    agreement_id: int
    document: AgreementDocument
    content_hash: str
    version: int | None = None
    proposal_id: int | None = None
    mask_key: bytes | None = None


def require_reader(actor: Principal) -> None:
    """Only the oversight role and stakeholder voters; an outside agency never, whatever it
    holds (403 before any argument is read)."""
    if actor.is_external or not any(actor.can(p) for p in PERMISSIONS):
        raise Forbidden(
            f"your account ({actor.username}) may not run a what-if replay; it needs "
            "oversight:read or vote, and no outside agency's account may",
            code="permission_denied",
            details={"permissions": [p.value for p in PERMISSIONS]},
        )


def check_months(months: int) -> None:
    """The window, in months, must be between MONTHS_MIN and MONTHS_MAX."""
    if not MONTHS_MIN <= months <= MONTHS_MAX:
        raise InvalidInput(
            f"months must be between {MONTHS_MIN} and {MONTHS_MAX}; got {months}",
            field="months",
        )


def of_proposal(session: Session, proposal_id: int, *, actor: Principal) -> Proposed:
    """The agreement version a governance proposal votes on (the caller is checked first)."""
    require_reader(actor)
    return _proposed_of(session, proposal_id)


def _proposed_of(session: Session, proposal_id: int) -> Proposed:
    """The proposal's version, nobody checked (the callers have)."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise NotFound(f"no proposal with id {proposal_id}", field="proposal_id")
    if proposal.agreement_id is None or proposal.agreement_version is None:
        raise InvalidInput(
            f"proposal {proposal_id} is a {proposal.action.value} proposal: it proposes no "
            "agreement version to replay queries against",
            field="proposal_id",
        )
    version = session.scalars(
        select(AgreementVersion).where(
            AgreementVersion.agreement_id == proposal.agreement_id,
            AgreementVersion.version == proposal.agreement_version,
        )
    ).one()
    return Proposed(
        agreement_id=proposal.agreement_id,
        document=parse_document(version.content),
        content_hash=version.content_hash,
        version=version.version,
        proposal_id=proposal.id,
        mask_key=version.mask_key,
    )


def of_document(
    session: Session,
    agreement_id: int,
    content: AgreementDocument | Mapping[str, Any],
    *,
    actor: Principal,
) -> Proposed:
    """A version not yet stored: an agreement document (as ``agreements update`` takes); the
    caller is checked first.

    The oversight role only: a voter replays the versions governance stored (a proposal's),
    never a document of their own making, since varying grades, states or roles one call at a
    time would tell them, through the counts, about the records behind the agency's queries.
    """
    require_reader(actor)
    if not actor.can(Permission.OVERSIGHT_READ):
        raise Forbidden(
            f"your account ({actor.username}) may replay only a proposal's version (GET "
            "/api/v1/proposals/{id}/what-if); a version file needs oversight:read",
            code="permission_denied",
            details={"permission": Permission.OVERSIGHT_READ.value},
        )
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        raise NotFound(f"no agreement with id {agreement_id}", field="agreement_id")
    document = content if isinstance(content, AgreementDocument) else parse_document(dict(content))
    if document.grantee_agency_id != agreement.grantee_agency_id:
        raise InvalidInput(
            f"the version's grantee_agency_id {document.grantee_agency_id} is not agreement "
            f"{agreement_id}'s grantee ({agreement.grantee_agency_id}): its queries were made "
            "by another agency",
            field="grantee_agency_id",
        )
    return Proposed(agreement_id, document, document.content_hash())


def months_before(moment: datetime, months: int) -> datetime:
    """The same instant ``months`` calendar months earlier (the day clamped to the month)."""
    year, month = divmod(moment.month - 1 - months, 12)
    year, month = moment.year + year, month + 1
    next_month = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=moment.tzinfo)
    last_day = (next_month - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def what_if(
    session: Session,
    *,
    actor: Principal,
    proposed: Proposed,
    months: int,
    offset: int = 0,
    limit: int = 50,
    max_queries: int = 20_000,
    now: datetime | None = None,
    via: str = "api",
) -> WhatIfReport:
    """Replay the agreement's external reads of the last ``months`` under ``proposed``.

    Refuses (nothing written but the request's audit entry, which the edges write for a
    refusal): a version that crosses the site floor (422 ``floor_crossed`` naming the clause),
    months out of range, or a window holding more than ``max_queries`` reads (field months).
    """
    require_reader(actor)
    check_months(months)
    full = compute(session, proposed, months=months, max_queries=max_queries, now=now)
    report = full.model_copy(
        update={"items": full.items[offset : offset + limit], "offset": offset, "limit": limit}
    )
    append(
        session,
        event_by(
            actor,
            kind=AuditKind.OVERSIGHT,
            action="oversight.what_if",
            params=_read_params(report, via=via, agreement_id=proposed.agreement_id,
                                proposal_id=proposed.proposal_id),
        ),
        at=report.until,
    )  # fmt: skip
    return report


def _read_params(
    report: WhatIfReport, *, via: str, agreement_id: int, proposal_id: int | None, **kept: Any
) -> dict[str, Any]:
    """The ``oversight.what_if`` entry's parameters: which replay, which page, its totals (a
    kept replay's id and hash in ``kept``)."""
    totals = report.totals
    return {
        "via": via,
        "agreement_id": agreement_id,
        "proposal_id": proposal_id,
        "proposed_version": report.proposed_version,
        "proposed_hash": report.proposed_hash,
        **kept,
        "months": report.months,
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "offset": report.offset,
        "limit": report.limit,
        "queries": totals.queries,
        "replayed": totals.replayed,
        "newly_refused": totals.newly_refused,
        "newly_answered": totals.newly_answered,
    }


def compute(
    session: Session,
    proposed: Proposed,
    *,
    months: int,
    max_queries: int,
    now: datetime | None = None,
) -> WhatIfReport:
    """The whole replay (every query in ``items``), nothing written and nobody checked: what
    ``what_if`` pages and audits, and what a proposal keeps (``store_replay``)."""
    check_months(months)
    until = now or utcnow()
    since = months_before(until, months)
    floor = get_floor(session)
    check_scope(proposed.document.scope, floor)
    # One row past the bound says the window is too long, without reading it all.
    entries = _entries(session, proposed.agreement_id, since, until, max_queries + 1)
    if len(entries) > max_queries:
        raise InvalidInput(
            f"the last {months} months hold more than {max_queries} external reads of agreement "
            f"{proposed.agreement_id}, the most a replay runs at once; ask for fewer months",
            field="months",
            code="too_many_queries",
        )
    target = _policy(proposed, floor)
    purposes = _purposes(proposed.document)
    baselines = _baselines(session, proposed.agreement_id, floor)
    replays = [r for batch in _batches(entries) for r in _replay_batch(session, batch, target,
               purposes, baselines)]  # fmt: skip
    return WhatIfReport(
        agreement_id=proposed.agreement_id,
        proposal_id=proposed.proposal_id,
        proposed_version=proposed.version,
        proposed_hash=proposed.content_hash,
        floor_hash=floor_hash(floor),
        months=months,
        since=since,
        until=until,
        totals=_totals(len(entries), replays),
        items=[r.item for r in replays],
        offset=0,
        limit=len(replays),
        limits=list(LIMITS),
    )


# ---- a proposal's replay, kept with it ----------------------------------------------------

DONE = "done"
FAILED = "failed"


def canonical(report: WhatIfReport) -> bytes:
    """The replay's canonical JSON (sorted keys, no spaces): what ``sha256`` hashes."""
    data = report.model_dump(mode="json", exclude={"offset", "limit", "computed_at", "computed_by"})
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def store_replay(
    session: Session,
    proposal_id: int,
    *,
    by: Principal,
    months: int,
    max_queries: int,
    now: datetime | None = None,
    keep_failure: bool = True,
) -> ProposalReplay:
    """Replay the proposal's version and keep the result with it (a new row; the latest is the
    one shown). A replay the site refuses (too many queries, a version across today's floor) is
    kept as failed, with the refusal's words, so the proposal says so (``keep_failure``; else
    the refusal is raised and nothing kept); nobody is checked here (the proposal's opening and
    ``recompute`` check their caller)."""
    moment = now or utcnow()
    proposed = _proposed_of(session, proposal_id)
    row = ProposalReplay(
        proposal_id=proposal_id,
        months=months,
        since=months_before(moment, months),
        until=moment,
        computed_at=moment,
        computed_by=by.username,
        computed_by_user_id=by.user_id,
        status=DONE,
    )
    try:
        with session.begin_nested():
            report = compute(session, proposed, months=months, max_queries=max_queries, now=moment)
    except (InvalidInput, Conflict) as refused:
        if not keep_failure:
            raise
        row.status, row.error_code, row.error = FAILED, refused.code, refused.message
        session.add(row)
        session.flush()
        return row
    row.sha256 = hashlib.sha256(canonical(report)).hexdigest()
    row.summary = report.model_dump(mode="json", exclude={"items", "offset", "limit"})
    session.add(row)
    session.flush()
    session.add_all(
        ProposalReplayQuery(replay_id=row.id, position=n, content=item.model_dump(mode="json"))
        for n, item in enumerate(report.items)
    )
    session.flush()
    return row


def recompute(
    session: Session,
    *,
    actor: Principal,
    proposal_id: int,
    months: int,
    max_queries: int,
    via: str,
) -> ProposalReplay:
    """ "Replay again": a new replay of the proposal's version over the last ``months``, kept
    with it and shown from now on; one ``oversight.what_if_recompute`` entry. A replay the site
    refuses (422 ``too_many_queries`` naming months) keeps nothing: the previous one stays.

    The oversight role only: a voter reads the replay kept with the proposal but does not
    replace it, so no party to the vote changes the evidence the other voters see."""
    require_reader(actor)
    if not actor.can(Permission.OVERSIGHT_READ):
        raise Forbidden(
            f"your account ({actor.username}) may read the replay kept with the proposal but "
            "not replay it again: the oversight role replays again, so that no party to the "
            "vote changes the evidence the other voters see",
            code="permission_denied",
            details={"permission": Permission.OVERSIGHT_READ.value},
        )
    check_months(months)
    of_proposal(session, proposal_id, actor=actor)
    row = store_replay(
        session, proposal_id, by=actor, months=months, max_queries=max_queries,
        keep_failure=False,
    )  # fmt: skip
    append(
        session,
        event_by(
            actor,
            kind=AuditKind.OVERSIGHT,
            action="oversight.what_if_recompute",
            params={
                "via": via,
                "proposal_id": proposal_id,
                "replay_id": row.id,
                "months": months,
                "status": row.status,
                "error_code": row.error_code,
                "sha256": row.sha256,
            },
        ),
        at=row.computed_at,
    )
    return row


def latest_replay(session: Session, proposal_id: int) -> ProposalReplay | None:
    """The replay a proposal shows: its latest."""
    return session.scalars(
        select(ProposalReplay)
        .where(ProposalReplay.proposal_id == proposal_id)
        .order_by(ProposalReplay.id.desc())
        .limit(1)
    ).first()


def replay_proposal(
    session: Session,
    *,
    actor: Principal,
    proposal_id: int,
    offset: int,
    limit: int,
    via: str,
) -> WhatIfReport:
    """The replay kept with a proposal, a page of its queries: what ``GET
    /api/v1/proposals/{id}/what-if``, the proposal's what-if page and the CLI read (one
    ``oversight.what_if`` entry, ``via`` naming the edge). No replay kept: 404 ``no_replay``;
    the latest failed: 409 ``replay_failed`` with the refusal's words; both say how to replay
    again."""
    proposed = of_proposal(session, proposal_id, actor=actor)
    row = latest_replay(session, proposal_id)
    again = f"replay again: POST /api/v1/proposals/{proposal_id}/what-if"
    if row is None:
        raise NotFound(
            f"proposal {proposal_id} has no what-if replay kept with it; {again}",
            field="proposal_id",
            code="no_replay",
        )
    if row.status != DONE or row.summary is None:
        raise Conflict(
            f"the what-if replay of proposal {proposal_id} computed "
            f"{row.computed_at:%Y-%m-%d %H:%M} UTC failed: {row.error}; {again}",
            field="proposal_id",
            code="replay_failed",
        )
    contents = session.scalars(
        select(ProposalReplayQuery.content)
        .where(ProposalReplayQuery.replay_id == row.id)
        .order_by(ProposalReplayQuery.position)
        .offset(offset)
        .limit(limit)
    ).all()
    report = WhatIfReport.model_validate(
        {
            **row.summary,
            "items": list(contents),
            "offset": offset,
            "limit": limit,
            "computed_at": row.computed_at,
            "computed_by": row.computed_by,
        }
    )
    append(
        session,
        event_by(
            actor,
            kind=AuditKind.OVERSIGHT,
            action="oversight.what_if",
            params=_read_params(report, via=via, agreement_id=proposed.agreement_id,
                                proposal_id=proposal_id, replay_id=row.id, sha256=row.sha256),
        ),
    )  # fmt: skip
    return report


# ---- the entries -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    id: int
    at: datetime
    user_id: int | None
    agency_id: int | None
    content: dict[str, Any] | None  # None: crypto-shredded


def _entries(
    session: Session, agreement_id: int, since: datetime, until: datetime, limit: int
) -> list[_Entry]:
    e = AuditEntry
    rows = session.execute(
        select(e.id, e.at, e.user_id, e.agency_id, e.content)
        .where(
            e.agreement_id == agreement_id,
            e.kind.in_((AuditKind.SEARCH, AuditKind.READ)),
            e.outcome == Outcome.OK,
            e.at >= since,
            e.at <= until,
        )
        .order_by(e.at, e.id)
        .limit(limit)
    ).all()
    return [
        _Entry(i, at, user, agency, None if content is None else json.loads(content))
        for i, at, user, agency, content in rows
    ]


def _batches(entries: list[_Entry]) -> Iterable[list[_Entry]]:
    for start in range(0, len(entries), BATCH):
        yield entries[start : start + BATCH]


# ---- the policies ------------------------------------------------------------------------


def _purposes(document: AgreementDocument) -> dict[str, bool]:
    return {rule.purpose: rule.case_reference_required for rule in document.scope.purposes}


def _policy(proposed: Proposed, floor: Any) -> ReadPolicy:
    document = proposed.document
    grant = Grant(
        proposed.agreement_id,
        proposed.version or 0,
        proposed.content_hash,
        document.scope,
        document.effective_at,
        document.expires_at,
        # A version file has no secret yet; masks are compared by rule, never by value.
        proposed.mask_key or new_mask_key(),
    )
    return compile_grant(grant, floor)


@dataclass(frozen=True, slots=True)
class _Version:
    policy: ReadPolicy
    purposes: dict[str, bool]


def _baselines(session: Session, agreement_id: int, floor: Any) -> dict[int, _Version]:
    """Every stored version of the agreement, compiled under today's floor."""
    out: dict[int, _Version] = {}
    for version in session.scalars(
        select(AgreementVersion).where(AgreementVersion.agreement_id == agreement_id)
    ):
        document = parse_document(version.content)
        proposed = Proposed(agreement_id, document, version.content_hash, version.version,
                            mask_key=version.mask_key)  # fmt: skip
        out[version.version] = _Version(_policy(proposed, floor), _purposes(document))
    return out


# ---- one batch ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Replayed:
    item: QueryReplay
    gained: frozenset[int]
    lost: frozenset[int]


_NOT_REPLAYED = Disclosure(refused=True, code="not_replayed")


def _replay_batch(
    session: Session,
    batch: list[_Entry],
    target: ReadPolicy,
    purposes: dict[str, bool],
    baselines: dict[int, _Version],
) -> list[_Replayed]:
    sides: list[tuple[_Entry, Disclosure, Disclosure] | None] = []
    for entry in batch:
        content = entry.content
        recorded = None if content is None else content.get("agreement_version")
        version = baselines.get(recorded) if isinstance(recorded, int) else None
        if content is None or version is None or content.get("action") not in REPLAYABLE:
            sides.append(None)
            continue
        read = recorded_read(content)
        current = replay(session, policy=version.policy, purposes=version.purposes, read=read)
        proposed = replay(session, policy=target, purposes=purposes, read=read)
        sides.append((entry, current, proposed))
    persons, arrests = _created(session, [s for s in sides if s is not None])
    out = []
    for entry, pair in zip(batch, sides, strict=True):
        if pair is None:
            out.append(_skipped(entry))
            continue
        _, current, proposed = pair
        out.append(_compare(entry, _as_of(current, entry.at, persons, arrests),
                            _as_of(proposed, entry.at, persons, arrests), baselines))  # fmt: skip
    return out


def _created(
    session: Session, sides: list[tuple[_Entry, Disclosure, Disclosure]]
) -> tuple[dict[int, datetime], dict[int, datetime]]:
    """When each person and arrest any side returned was created (one statement per table)."""
    person_ids = {p for _, a, b in sides for p in a.person_ids | b.person_ids}
    arrest_ids = {x for _, a, b in sides for x in a.arrest_ids | b.arrest_ids}
    persons: dict[int, datetime] = {}
    arrests: dict[int, datetime] = {}
    for model, ids, out in ((Person, person_ids, persons), (Arrest, arrest_ids, arrests)):
        if ids:
            stmt = select(model.id, model.created_at).where(model.id.in_(sorted(ids)))
            out.update({row[0]: row[1] for row in session.execute(stmt).all()})
    return persons, arrests


def _as_of(
    side: Disclosure, at: datetime, persons: dict[int, datetime], arrests: dict[int, datetime]
) -> Disclosure:
    """The side without records created after the query."""
    if side.refused:
        return side
    kept_persons = frozenset(p for p in side.person_ids if _utc(persons.get(p, at)) <= at)
    kept_arrests = frozenset(a for a in side.arrest_ids if _utc(arrests.get(a, at)) <= at)
    return Disclosure(
        refused=False,
        person_ids=kept_persons,
        arrest_ids=kept_arrests,
        fields=side.fields if kept_persons or kept_arrests else {},
    )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _side(version: int | None, d: Disclosure) -> Side:
    return Side(
        version=version,
        refused=d.refused,
        code=d.code,
        field=d.field,
        message=d.message,
        persons=len(d.person_ids),
        arrests=len(d.arrest_ids),
    )


def _params(entry: _Entry) -> dict[str, Any]:
    return (entry.content or {}).get("params") or {}


def _skipped(entry: _Entry) -> _Replayed:
    content = entry.content or {}
    why = "crypto-shredded entry" if entry.content is None else "not a replayable read"
    side = Side(version=None, refused=True, code="not_replayed", message=why)
    item = QueryReplay(
        entry_id=entry.id, at=entry.at, action=str(content.get("action", "")),
        user_id=entry.user_id, agency_id=entry.agency_id,
        purpose=_params(entry).get("purpose"), case_reference=_params(entry).get("case_number"),
        recorded_persons=len(content.get("person_ids") or []), current=side, proposed=side,
        change=Change.SAME, persons_more=0, persons_fewer=0, arrests_more=0, arrests_fewer=0,
        fields_more=[], fields_fewer=[], fields_masked_otherwise=[],
    )  # fmt: skip
    return _Replayed(item, frozenset(), frozenset())


def _compare(
    entry: _Entry, current: Disclosure, proposed: Disclosure, baselines: dict[int, _Version]
) -> _Replayed:
    content = entry.content or {}
    gained = proposed.person_ids - current.person_ids
    lost = current.person_ids - proposed.person_ids
    arrests_gained = proposed.arrest_ids - current.arrest_ids
    arrests_lost = current.arrest_ids - proposed.arrest_ids
    before, after = current.fields, proposed.fields
    fields_more = sorted(set(after) - set(before))
    fields_fewer = sorted(set(before) - set(after))
    masked = [
        FieldChange(field=f, current=before[f], proposed=after[f])
        for f in sorted(set(before) & set(after))
        if before[f] != after[f]
    ]
    item = QueryReplay(
        entry_id=entry.id,
        at=entry.at,
        action=str(content.get("action")),
        user_id=entry.user_id,
        agency_id=entry.agency_id,
        purpose=_params(entry).get("purpose"),
        case_reference=_params(entry).get("case_number"),
        recorded_persons=len(content.get("person_ids") or []),
        current=_side(content.get("agreement_version"), current),
        proposed=_side(None, proposed),
        change=_change(
            current,
            proposed,
            gained or arrests_gained or fields_more,
            lost or arrests_lost or fields_fewer,
        ),
        persons_more=len(gained),
        persons_fewer=len(lost),
        arrests_more=len(arrests_gained),
        arrests_fewer=len(arrests_lost),
        fields_more=fields_more,
        fields_fewer=fields_fewer,
        fields_masked_otherwise=masked,
    )
    return _Replayed(item, frozenset(gained), frozenset(lost))


def _change(current: Disclosure, proposed: Disclosure, more: object, fewer: object) -> Change:
    if current.refused and proposed.refused:
        return Change.REFUSED_BOTH
    if proposed.refused:
        return Change.NEWLY_REFUSED
    if current.refused:
        return Change.NEWLY_ANSWERED
    if more and fewer:
        return Change.MIXED
    if more:
        return Change.MORE
    return Change.FEWER if fewer else Change.SAME


def _totals(queries: int, replays: list[_Replayed]) -> Totals:
    items = [r.item for r in replays]
    done = [i for i in items if i.current.code != "not_replayed"]
    fields_more: Counter[str] = Counter(f for i in done for f in i.fields_more)
    fields_fewer: Counter[str] = Counter(f for i in done for f in i.fields_fewer)
    refusals: Counter[str] = Counter(i.proposed.code or "" for i in done if i.proposed.refused)
    newly: Counter[str] = Counter(
        i.proposed.code or "" for i in done if i.change is Change.NEWLY_REFUSED
    )
    return Totals(
        queries=queries,
        replayed=len(done),
        not_replayed=len(items) - len(done),
        refused_current=sum(i.current.refused for i in done),
        refused_proposed=sum(i.proposed.refused for i in done),
        newly_refused=sum(i.change is Change.NEWLY_REFUSED for i in done),
        newly_answered=sum(i.change is Change.NEWLY_ANSWERED for i in done),
        with_more_persons=sum(i.persons_more > 0 for i in done),
        with_fewer_persons=sum(i.persons_fewer > 0 for i in done),
        with_field_changes=sum(
            bool(i.fields_more or i.fields_fewer or i.fields_masked_otherwise) for i in done
        ),
        persons_more=sum(i.persons_more for i in done),
        persons_fewer=sum(i.persons_fewer for i in done),
        distinct_persons_more=len(frozenset().union(*(r.gained for r in replays))),
        distinct_persons_fewer=len(frozenset().union(*(r.lost for r in replays))),
        fields_more=dict(sorted(fields_more.items())),
        fields_fewer=dict(sorted(fields_fewer.items())),
        refusals_proposed_by_code=dict(sorted(refusals.items())),
        newly_refused_by_code=dict(sorted(newly.items())),
        by_change=dict(sorted(Counter(i.change.value for i in done).items())),
    )
