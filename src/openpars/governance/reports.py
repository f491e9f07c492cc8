"""The oversight renewal report attached to every renewal proposal.

When a ``renew`` proposal opens, the report of the agreement over its current term (from the day
it came into force to the day the proposal opens, UTC) is computed in the same transaction and
stored with the proposal as canonical JSON with its SHA-256. The hash is also written into the
``proposal.open`` audit entry, so it sits in the verifiable log: a voter who reads the report
(``GET /api/v1/proposals/{id}/report``) can hash what they read and compare it with the log.

The stored report is what every voter sees, whenever they look: the log and the review queue go
on, but the evidence a vote was cast on does not change under it. A fresh report of any period
is always available at ``GET /api/v1/oversight/reports``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.orm import Session

from openpars.agreements.models import Agreement
from openpars.audit.events import AuditKind
from openpars.errors import NotFound
from openpars.governance.board import audit_act
from openpars.governance.models import Proposal, ProposalReport
from openpars.governance.schemas import ProposalReportRef
from openpars.identity.principal import Principal
from openpars.oversight.explain import Period
from openpars.oversight.explain_sql import Rules
from openpars.oversight.report import (
    OversightReport,
    ReportFormat,
    build_report,
    canonical,
    require_reader,
    sha256,
    term_period,
)


def attach_report(
    session: Session, proposal: Proposal, agreement: Agreement, *, rules: Rules, now: datetime
) -> ProposalReport:
    """Compute the agreement's report over its current term and store it with the proposal."""
    start, end = term_period(agreement, today=now.date())
    document = build_report(
        session,
        agreement=agreement,
        period=Period(start=start, end=end, agreement_id=agreement.id),
        rules=rules,
        now=now,
    )
    stored = ProposalReport(
        proposal_id=proposal.id,
        agreement_id=agreement.id,
        period_start=start,
        period_end=end,
        sha256=sha256(document),
        content=canonical(document),
        created_at=now,
    )
    session.add(stored)
    session.flush()
    return stored


def report_ref(session: Session, proposal_id: int) -> ProposalReportRef | None:
    """The reference a proposal view shows: hash, period and where to read the report."""
    stored = session.get(ProposalReport, proposal_id)
    if stored is None:
        return None
    return ProposalReportRef(
        sha256=stored.sha256,
        start=stored.period_start,
        end=stored.period_end,
        path=f"/api/v1/proposals/{proposal_id}/report",
    )


def show_report(
    session: Session, *, actor: Principal, proposal_id: int, output: ReportFormat
) -> tuple[OversightReport, bytes, str]:
    """The stored report of a renewal proposal: (document, its canonical bytes, SHA-256);
    audited. Oversight and stakeholder voters only; an outside agency never."""
    require_reader(actor)
    if session.get(Proposal, proposal_id) is None:
        raise NotFound(f"proposal {proposal_id} does not exist", field="proposal_id")
    stored = session.get(ProposalReport, proposal_id)
    if stored is None:
        raise NotFound(
            f"proposal {proposal_id} has no oversight report: only renewal proposals carry one",
            field="proposal_id",
            code="no_report",
        )
    try:
        document = OversightReport.model_validate_json(stored.content)
    except ValidationError as exc:  # pragma: no cover - only a newer format could do this
        raise RuntimeError(f"the stored report of proposal {proposal_id} is unreadable") from exc
    audit_act(
        session,
        kind=AuditKind.PROPOSAL,
        action="proposal.report",
        actor=actor,
        agreement_id=stored.agreement_id,
        proposal_id=proposal_id,
        format=output.value,
        sha256=stored.sha256,
    )
    return document, bytes(stored.content), stored.sha256
