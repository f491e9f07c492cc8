"""Agreements and governance: the list, one agreement in plain words with a diff between
versions, its proposals, and casting a signed vote.

Reads call the API's services (``agreements.service``, ``governance.service``), which check the
reader and write the audit entry. A vote is signed by the voter, never by openpars: in the
browser (``static/vote-sign.js``, WebCrypto Ed25519, the private key read from a file the voter
picks or text they paste, and never sent), or by ``openpars vote sign`` and uploaded. Either way
the page posts only the signed vote, which ``governance.votes.submit_vote`` verifies exactly as
for ``POST /api/v1/proposals/{id}/votes``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from openpars import __version__
from openpars.agreements import service as agreements
from openpars.agreements.rules import READ_PERMISSIONS as AGREEMENT_READERS
from openpars.agreements.schemas import AgreementDocument, AgreementRead
from openpars.db import utcnow
from openpars.errors import Conflict, DomainError, InvalidInput, NotFound
from openpars.governance import reports, signing, votes
from openpars.governance import service as governance
from openpars.governance.board import READ_PERMISSIONS as GOVERNANCE_READERS
from openpars.governance.models import ProposalStatus
from openpars.governance.quorum import Choice
from openpars.governance.schemas import ProposalRead, SignedVote
from openpars.identity.names import names_of
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission, Role
from openpars.oversight.report import READERS as REPORT_READERS
from openpars.oversight.report import ReportFormat
from openpars.oversight.report_api import SHA_HEADER
from openpars.oversight.report_render import render_html
from openpars.oversight.whatif import (
    MONTHS_MAX,
    MONTHS_MIN,
    WHATIF_MONTHS,
    Change,
    recompute,
    replay_proposal,
)
from openpars.oversight.whatif import PERMISSIONS as WHATIF_READERS
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx
from openpars.web.pages.core import NAV, NavLink, area_router, form_values, page, render
from openpars.web.pages.plain import days_left, document_names, document_sentences, scope_diff
from openpars.web.refusals import record_refusal
from openpars.web.security import INLINE_STYLE_POLICY

router = area_router()
NAV.append(NavLink("Agreements", "/agreements", frozenset(AGREEMENT_READERS)))

# A signed vote document is a few kilobytes; the rationale may be long, but not this long.
UPLOAD_MAX = 256 * 1024
VOTE_FIELD = "signed_vote"
WHATIF_PAGE = 50
# How each query's answer changes, in words (oversight.whatif.Change).
CHANGE_WORDS: dict[str, str] = {
    Change.SAME.value: "the same",
    Change.MORE.value: "more disclosed",
    Change.FEWER.value: "less disclosed",
    Change.MIXED.value: "more and less disclosed",
    Change.NEWLY_REFUSED.value: "would be refused",
    Change.NEWLY_ANSWERED.value: "would be answered",
    Change.REFUSED_BOTH.value: "refused under both",
}


@router.get("/agreements", response_class=HTMLResponse, dependencies=[page(*AGREEMENT_READERS)])
def agreement_list(ctx: Ctx, offset: int = Query(0, ge=0, le=100_000)) -> HTMLResponse:
    """Every agreement with its status in force and the days left before it expires."""
    with ctx.unit() as (session, principal):
        listed = agreements.list_agreements(session, actor=principal, offset=offset, limit=50)
        names = names_of(session, agency_ids=[a.grantee_agency_id for a in listed.items])
    now = utcnow()
    rows = [(a, days_left(a.in_force_until, now)) for a in listed.items]
    context = {"listed": listed, "rows": rows, "names": names}
    return render(ctx.request, "agreements/list.html", context)


def _document(shown: AgreementRead, number: int) -> AgreementDocument | None:
    for version in shown.versions:
        if version.version == number:
            return AgreementDocument.model_validate(version.content)
    return None


def _pick(value: int | None, default: int, shown: AgreementRead) -> int:
    numbers = {v.version for v in shown.versions}
    return value if value in numbers else default


@router.get(
    "/agreements/{agreement_id}",
    response_class=HTMLResponse,
    dependencies=[page(*AGREEMENT_READERS)],
)
def agreement_show(
    agreement_id: RowId,
    ctx: Ctx,
    old: int | None = Query(None, ge=1, le=100_000, alias="from"),
    new: int | None = Query(None, ge=1, le=100_000, alias="to"),
) -> HTMLResponse:
    """One agreement: its current terms in plain words, a diff of two versions, its proposals."""
    with ctx.unit() as (session, principal):
        shown = agreements.show_agreement(session, actor=principal, agreement_id=agreement_id)
        proposals = _proposals_if_allowed(session, principal, agreement_id)
        newest = shown.current_version
        to_version = _pick(new, newest, shown)
        from_version = _pick(old, max(1, to_version - 1), shown)
        current = _document(shown, newest)
        assert current is not None
        old_doc, new_doc = _document(shown, from_version), _document(shown, to_version)
        names = document_names(session, (current, old_doc, new_doc))
    diff = (
        scope_diff(document_sentences(old_doc, names), document_sentences(new_doc, names))
        if old_doc and new_doc and from_version != to_version
        else []
    )
    until = shown.in_force_until or current.expires_at
    context = {
        "agreement": shown,
        "terms": document_sentences(current, names),
        "days": days_left(until, utcnow()),
        "until": until,
        "diff": diff,
        "from_version": from_version,
        "to_version": to_version,
        "proposals": proposals,
    }
    return render(ctx.request, "agreements/show.html", context)


def _proposals_if_allowed(session: Any, principal: Principal, agreement_id: int) -> Any:
    if not any(principal.can(p) for p in GOVERNANCE_READERS):
        return None
    return governance.list_proposals(
        session, actor=principal, agreement_id=agreement_id, limit=50
    ).items


def _can_replay(principal: Principal) -> bool:
    """Whether the what-if replay is open to this user (oversight.whatif.require_reader)."""
    return not principal.is_external and any(principal.can(p) for p in WHATIF_READERS)


def _signing_terms(proposal: ProposalRead, principal: Principal) -> dict[str, str] | None:
    """What the browser signs besides the voter's choice: the proposal's lines of the statement
    (openpars-vote/v2) and the stakeholder this voter speaks for; None if they cannot vote."""
    if (
        proposal.status is not ProposalStatus.OPEN
        or not principal.can(Permission.VOTE)
        or Role.VOTER not in principal.roles
        or principal.agency_id not in proposal.board_members
    ):
        return None
    return {
        "format": signing.VOTE_FORMAT,
        "proposal": str(proposal.id),
        "agreement": str(proposal.agreement_id or 0),
        "version-hash": proposal.content_hash,
        "action": proposal.action.value,
        "effective-at": signing.format_optional_at(proposal.effective_at),
        "new-expires-at": signing.format_optional_at(proposal.new_expires_at),
        "stakeholder": str(principal.agency_id),
        "opened-at": signing.format_at(proposal.opened_at),
    }


def _proposal_page(
    ctx: Ctx,
    proposal_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with ctx.unit() as (session, principal):
        proposal = governance.show_proposal(session, actor=principal, proposal_id=proposal_id)
        tally = proposal.tally
        names = names_of(
            session, agency_ids=[*proposal.board_members, *tally.yes, *tally.no, *tally.abstain]
        )
    context = {
        "proposal": proposal,
        "terms": _signing_terms(proposal, principal),
        "choices": [c.value for c in Choice],
        "can_read_report": any(principal.can(p) for p in REPORT_READERS),
        "can_replay": _can_replay(principal),
        "names": names,
        "voted": ctx.request.query_params.get("voted") == "1",
        "errors": errors or {},
        "values": values or {},
    }
    return render(ctx.request, "agreements/proposal.html", context, status_code=status_code)


@router.get(
    "/proposals/{proposal_id}",
    response_class=HTMLResponse,
    dependencies=[page(*GOVERNANCE_READERS)],
)
def proposal_show(proposal_id: RowId, ctx: Ctx) -> HTMLResponse:
    """A proposal: its deadline, tally, oversight report and what-if replay, and the vote form."""
    return _proposal_page(ctx, proposal_id)


@router.get(
    "/proposals/{proposal_id}/report",
    response_class=HTMLResponse,
    dependencies=[page(*REPORT_READERS)],
)
def proposal_report_page(proposal_id: RowId, ctx: Ctx) -> HTMLResponse:
    """The oversight report attached to a renewal proposal, as its own HTML document (the one
    ``oversight.report_render`` makes for the API and the CLI), with the same readers and the
    same audited read (``governance.reports.show_report``) as ``GET
    /api/v1/proposals/{id}/report``; its PDF and JSON are that API route's downloads."""
    with ctx.unit() as (session, principal):
        document, _, digest = reports.show_report(
            session, actor=principal, proposal_id=proposal_id, output=ReportFormat.HTML
        )
    api = f"/api/v1/proposals/{proposal_id}/report"
    links = (
        (f"Back to proposal {proposal_id}", f"/proposals/{proposal_id}", None),
        ("Download the PDF", f"{api}?format=pdf", f"proposal-{proposal_id}-report.pdf"),
        ("Download the JSON", f"{api}?format=json", f"proposal-{proposal_id}-report.json"),
    )
    icon = f"/static/favicon.svg?v={__version__}"
    html = render_html(document, sha=digest, links=links, icon=icon)
    # Its own <style> and matplotlib's attribute-styled SVG: inline style, still no script.
    return HTMLResponse(
        html, headers={"Content-Security-Policy": INLINE_STYLE_POLICY, SHA_HEADER: digest}
    )


@router.get(
    "/proposals/{proposal_id}/what-if",
    response_class=HTMLResponse,
    dependencies=[page(*WHATIF_READERS)],
)
def proposal_what_if_page(proposal_id: RowId, ctx: Ctx, offset: Offset = 0) -> HTMLResponse:
    """The what-if replay kept with the proposal, per query and in total: the service and
    audit entry of ``GET /api/v1/proposals/{id}/what-if``; none kept, or the latest failed:
    said plainly, beside the form that replays again."""
    return _what_if_page(ctx, proposal_id, offset=offset)


@router.post(
    "/proposals/{proposal_id}/what-if",
    response_class=HTMLResponse,
    dependencies=[page(*WHATIF_READERS)],
)
def proposal_what_if_again(proposal_id: RowId, ctx: Ctx) -> Response:
    """Replay again over the months chosen (``POST /api/v1/proposals/{id}/what-if``'s
    service), then show the new replay."""
    raw = form_values(ctx.request).get("months", "")
    months = int(raw) if isinstance(raw, str) and raw.isdigit() else 0
    try:
        with ctx.unit() as (session, principal):
            recompute(
                session, actor=principal, proposal_id=proposal_id, months=months,
                max_queries=ctx.settings.oversight_whatif_max_queries, via="web",
            )  # fmt: skip
    except InvalidInput as refused:
        if refused.field != "months":
            raise
        record_refusal(ctx.request, refused)
        return _what_if_page(ctx, proposal_id, errors={"months": refused.message})
    return RedirectResponse(f"/proposals/{proposal_id}/what-if", status_code=303)


def _what_if_page(
    ctx: Ctx, proposal_id: int, *, offset: int = 0, errors: dict[str, str] | None = None
) -> HTMLResponse:
    report = None
    names = None
    missing = None
    again_allowed = False
    try:
        with ctx.unit() as (session, principal):
            again_allowed = principal.can(Permission.OVERSIGHT_READ)
            report = replay_proposal(
                session, actor=principal, proposal_id=proposal_id, offset=offset,
                limit=WHATIF_PAGE, via="web",
            )  # fmt: skip
            names = names_of(
                session,
                agency_ids=[i.agency_id for i in report.items],
                user_ids=[i.user_id for i in report.items],
            )
    except (NotFound, Conflict) as none:
        # No replay kept, or the latest failed: said plainly, with the form to replay again.
        if none.code not in ("no_replay", "replay_failed"):
            raise
        missing = none.message
    context = {
        "proposal_id": proposal_id,
        "report": report,
        "missing": missing,
        "can_replay_again": again_allowed,
        "names": names,
        "months": report.months if report is not None else WHATIF_MONTHS,
        "month_options": [(m, f"{m} month{'' if m == 1 else 's'}")
                          for m in range(MONTHS_MIN, MONTHS_MAX + 1)],
        "change_words": CHANGE_WORDS,
        "page_size": WHATIF_PAGE,
        "errors": errors or {},
    }  # fmt: skip
    return render(
        ctx.request, "agreements/whatif.html", context, status_code=422 if errors else 200
    )


def _sent_vote(ctx: Ctx) -> tuple[str, dict[str, str]]:
    """The signed vote's JSON text, from the uploaded file or the text field."""
    form = getattr(ctx.request.state, "form", None)
    upload = form.get("signed_vote_file") if form is not None else None
    if isinstance(upload, UploadFile) and upload.filename:
        raw = upload.file.read(UPLOAD_MAX + 1)
        if len(raw) > UPLOAD_MAX:
            return "", {
                VOTE_FIELD: f"The file is over {UPLOAD_MAX // 1024} KB; a signed vote is a few KB."
            }
        try:
            return raw.decode("utf-8"), {}
        except UnicodeDecodeError:
            return "", {
                VOTE_FIELD: "The file is not UTF-8 text; upload the JSON that "
                "'openpars vote sign' printed."
            }
    text = form.get(VOTE_FIELD) if form is not None else None
    return (text if isinstance(text, str) else ""), {}


def parse_signed_vote(text: str, proposal_id: int) -> tuple[SignedVote | None, dict[str, str]]:
    """The signed vote document, or an error for the form's field."""
    if not text.strip():
        return None, {
            VOTE_FIELD: "Sign your vote in the browser, or paste or upload the signed vote."
        }
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, {VOTE_FIELD: f"The signed vote is not JSON ({exc.msg}, line {exc.lineno})."}
    if not isinstance(data, dict):
        return None, {
            VOTE_FIELD: "The signed vote must be a JSON object, as 'openpars vote sign' prints."
        }
    try:
        vote = SignedVote.model_validate(data)
    except ValidationError as invalid:
        problem = invalid.errors()[0]
        where = ".".join(str(p) for p in problem.get("loc", ())) or "document"
        return None, {
            VOTE_FIELD: f"The signed vote's {where}: {problem.get('msg', 'is not valid')}."
        }
    if vote.proposal_id != proposal_id:
        return None, {
            VOTE_FIELD: f"The vote is signed for proposal {vote.proposal_id}, not for proposal "
            f"{proposal_id}: sign this proposal."
        }
    return vote, {}


@router.post(
    "/proposals/{proposal_id}/vote",
    response_class=HTMLResponse,
    dependencies=[page(Permission.VOTE)],
)
def proposal_vote(proposal_id: RowId, ctx: Ctx) -> Response:
    """Submit a signed vote; it is verified and recorded by the API's votes service."""
    text, errors = _sent_vote(ctx)
    vote = None
    if not errors:
        vote, errors = parse_signed_vote(text, proposal_id)
    if vote is not None:
        try:
            with ctx.unit() as (session, principal):
                votes.submit_vote(session, actor=principal, data=vote)
        except DomainError as refused:
            if refused.status >= 500 or refused.code == "permission_denied":
                raise
            record_refusal(ctx.request, refused)
            errors = {VOTE_FIELD: _refusal_words(refused)}
        else:
            return RedirectResponse(f"/proposals/{proposal_id}?voted=1", status_code=303)
    return _proposal_page(
        ctx, proposal_id, errors=errors, values={VOTE_FIELD: text}, status_code=422
    )


def _refusal_words(refused: DomainError) -> str:
    text = refused.message.strip()
    return "The vote was refused: " + text.rstrip(".") + ". Nothing was recorded."
