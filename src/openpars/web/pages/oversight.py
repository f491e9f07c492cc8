"""The oversight review queue: flags grouped into cases; assign, annotate, close with a finding.

The same services as ``/api/v1/oversight/cases*`` (oversight/review.py): they require
``oversight:read`` to look and ``oversight:review`` to act, refuse a reviewer acting on a case
about their own account, refuse acting on a closed case (a stale form: someone closed it since
the page was shown), and write one audit entry per request.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from openpars.errors import Conflict, InvalidInput
from openpars.identity.names import names_of
from openpars.identity.roles import Permission
from openpars.oversight import review
from openpars.oversight.models import CaseState, Finding
from openpars.oversight.schemas import CaseAssign, CaseClose, CaseNote
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx
from openpars.web.pages.core import (
    NAV,
    NavLink,
    area_router,
    domain_errors,
    form_values,
    page,
    parse_form,
    render,
)
from openpars.web.refusals import record_refusal, record_service_refusal

router = area_router()
NAV.append(NavLink("Oversight", "/oversight", frozenset({Permission.OVERSIGHT_READ})))

READ = page(Permission.OVERSIGHT_READ)
REVIEW = page(Permission.OVERSIGHT_REVIEW)
PAGE_SIZE = 50
FINDINGS: dict[str, str] = {
    Finding.NO_ISSUE.value: "No issue: the access was proper",
    Finding.TRAINING.value: "Training: the user needs training",
    Finding.SANCTION.value: "Sanction: the user's agency must act",
    Finding.REFERRAL_TO_STAKEHOLDERS.value: "Referral to the stakeholders",
}
# What an empty required field asks for, by field (pydantic says only "Field required").
MISSING: dict[str, str] = {
    "assignee": "Enter the username of the reviewer to assign the case to.",
    "note": "Write the note.",
    "finding": "Choose a finding.",
}
DONE: dict[str, str] = {
    "assigned": "The case was assigned.",
    "noted": "The note was added to the case.",
    "closed": "The case was closed with its finding.",
}


@router.get("/oversight", response_class=HTMLResponse, dependencies=[READ])
def queue(
    ctx: Ctx,
    state: CaseState | None = Query(None, description="only cases in this state"),
    offset: Offset = 0,
) -> HTMLResponse:
    """Review cases, newest first (open ones by default)."""
    with ctx.unit() as (session, principal):
        items, total = review.list_cases(
            session, actor=principal, state=state, offset=offset, limit=PAGE_SIZE
        )
        names = names_of(
            session,
            agency_ids=[c.subject_agency_id for c in items],
            user_ids=[c.subject_user_id for c in items],
        )
    return render(
        ctx.request,
        "oversight/queue.html",
        {
            "cases": items,
            "names": names,
            "total": total,
            "state": state.value if state else "",
            "states": [("", "Every state")] + [(s.value, s.value) for s in CaseState],
            "offset": offset,
            "next_offset": offset + PAGE_SIZE if offset + PAGE_SIZE < total else None,
        },
    )


def _case_page(
    ctx: Ctx,
    case_id: int,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with ctx.unit() as (session, principal):
        detail = review.show_case(session, actor=principal, case_id=case_id)
        can_act = principal.can(Permission.OVERSIGHT_REVIEW)
        own = detail.subject_user_id is not None and detail.subject_user_id == principal.user_id
        names = names_of(
            session,
            agency_ids=[detail.subject_agency_id],
            user_ids=[
                detail.subject_user_id,
                detail.assignee_id,
                *(h.actor_id for h in detail.history),
                *(h.assignee_id for h in detail.history),
            ],
        )
    return render(
        ctx.request,
        "oversight/case.html",
        {
            "case": detail,
            "names": names,
            "can_act": can_act and not own,
            "own": own,
            "findings": [("", "Choose a finding"), *FINDINGS.items()],
            "finding_words": FINDINGS,
            "done": DONE.get(done or ""),
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status,
    )


@router.get("/oversight/cases/{case_id}", response_class=HTMLResponse, dependencies=[READ])
def case(case_id: RowId, ctx: Ctx, done: str | None = None) -> HTMLResponse:
    """One case: its flags, the audit entries that fired them, its history and the actions."""
    return _case_page(ctx, case_id, done=done)


def _act(ctx: Ctx, case_id: int, schema: type[BaseModel], act: str, done: str) -> Response:
    """Parse the form with the API's schema and call the service; errors beside the fields."""
    values = form_values(ctx.request)
    body, errors = parse_form(ctx.request, schema)
    try:
        with ctx.unit() as (session, principal):
            if body is None:
                raise InvalidInput("the form has errors", field="form")
            if isinstance(body, CaseAssign):
                review.assign_case(
                    session, actor=principal, case_id=case_id, assignee=body.assignee
                )
            elif isinstance(body, CaseNote):
                review.note_case(session, actor=principal, case_id=case_id, note=body.note)
            elif isinstance(body, CaseClose):
                review.close_case(
                    session, actor=principal, case_id=case_id, finding=body.finding,
                    note=body.note,
                )  # fmt: skip
    except Conflict as stale:
        # The case was closed since the form was shown: say so, keep what was typed.
        record_refusal(ctx.request, stale)
        return _case_page(ctx, case_id, errors={"form": domain_errors(stale)["case_id"]},
                          values=values, status=409)  # fmt: skip
    except InvalidInput as refused:
        record_service_refusal(ctx.request, refused, errors)
        shown = {k: MISSING.get(k, v) if v == "Field required." else v for k, v in errors.items()}
        shown = shown or domain_errors(refused)
        return _case_page(ctx, case_id, errors={f"{act}_{k}": v for k, v in shown.items()},
                          values=values, status=422)  # fmt: skip
    return RedirectResponse(f"/oversight/cases/{case_id}?done={done}", status_code=303)


@router.post(
    "/oversight/cases/{case_id}/assign", response_class=HTMLResponse, dependencies=[REVIEW]
)
def assign(case_id: RowId, ctx: Ctx) -> Response:
    """Assign the case to an oversight reviewer (not the account it is about)."""
    return _act(ctx, case_id, CaseAssign, "assign", "assigned")


@router.post("/oversight/cases/{case_id}/notes", response_class=HTMLResponse, dependencies=[REVIEW])
def note(case_id: RowId, ctx: Ctx) -> Response:
    """Add a note; notes are never edited, only added."""
    return _act(ctx, case_id, CaseNote, "note", "noted")


@router.post("/oversight/cases/{case_id}/close", response_class=HTMLResponse, dependencies=[REVIEW])
def close(case_id: RowId, ctx: Ctx) -> Response:
    """Close the case with a finding (and a last note)."""
    return _act(ctx, case_id, CaseClose, "close", "closed")
