"""DA charging pages: the queue of arrests awaiting a decision (oldest first, live) and the
decision itself (approve, decline, modify).

The queue is the access service's arrest search (``GET /api/v1/arrests?state=entered``, the
same enforcement point and audit entry), oldest first; htmx polls its rows every
``POLL_SECONDS``, and they are read again (audited) only when the queue has changed
(``queue_rows``). A decision goes to ``records.service.decide_charges``, the service of
``POST /api/v1/arrests/{id}/charging-decision``, with the arrest's version as the form showed
it: if the arrest changed meanwhile, the service refuses (``version_mismatch``) and the page
says why; nothing is written.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette import status

from openpars.access import service as access
from openpars.access.schemas import ArrestQuery, ReadContext
from openpars.errors import DomainError
from openpars.identity.roles import Permission
from openpars.ranges import RowId
from openpars.records import service
from openpars.records.enums import ArrestState, ChargeStage, ChargingOutcome
from openpars.records.schemas import ArrestRead, ChargingDecisionCreate
from openpars.web.context import Ctx
from openpars.web.pages.core import (
    NAV,
    NavLink,
    area_router,
    domain_errors,
    form_values,
    page,
    render,
)
from openpars.web.pages.intake import (
    CHARGE_FIELDS,
    CHOICES,
    form_rows,
    statutes,
    validation_errors,
)
from openpars.web.refusals import record_refusal

router = area_router()
NAV.append(NavLink("Charging", "/charging", frozenset({Permission.CHARGE_DECIDE})))

POLL_SECONDS = 10
QUEUE_SIZE = 100
EXTRA_ROWS = 2
# The schema's maximum of charges on one decision, plus the form's blank rows.
MAX_ROWS = 100 + EXTRA_ROWS
OUTCOMES = [
    (ChargingOutcome.APPROVED.value, "Approve the recommended charges as they are"),
    (ChargingOutcome.MODIFIED.value, "Approve modified charges (edit them below)"),
    (ChargingOutcome.DECLINED.value, "Decline to charge (give the reason)"),
]
# The refusals a decision form shows beside its fields; anything else is an error page.
FORM_REFUSALS = ("invalid_input", "version_mismatch", "out_of_order")


QUEUE_QUERY = ArrestQuery(state=ArrestState.ENTERED, oldest_first=True, limit=QUEUE_SIZE)


def _queue(ctx: Ctx) -> dict[str, Any]:
    """The arrests awaiting a charging decision, oldest first (audited as the API's search),
    and the digest of that page, which its poll sends back."""
    with ctx.unit() as (session, principal):
        found = access.search_arrests(
            session, principal=principal, query=QUEUE_QUERY, context=ReadContext()
        )
    return {
        "items": list(found.items),
        "more": found.has_more,
        "digest": access.page_digest(found),
        "poll": POLL_SECONDS,
    }


@router.get("/charging", response_class=HTMLResponse, dependencies=[page(Permission.CHARGE_DECIDE)])
def queue(
    ctx: Ctx, decided: RowId | None = None, outcome: ChargingOutcome | None = None
) -> HTMLResponse:
    """The charging queue; after a decision, which one was recorded."""
    return render(
        ctx.request,
        "charging/queue.html",
        _queue(ctx) | {"decided": decided, "outcome": outcome.value if outcome else None},
    )


@router.get(
    "/charging/rows",
    response_class=HTMLResponse,
    dependencies=[page(Permission.CHARGE_DECIDE, background=True)],
    responses={204: {"description": "the queue is as the page shows it (seen): keep it"}},
)
def queue_rows(
    ctx: Ctx,
    seen: Annotated[
        str | None,
        Query(
            pattern="^[0-9a-f]{64}$",
            description="the digest of the rows the page shows (from its last load)",
        ),
    ] = None,
) -> Response:
    """The queue's rows alone, for htmx to refresh the table every ``POLL_SECONDS``.

    A poll sends the digest of the rows it shows: while the queue the user may see is the same
    (``access.arrest_page_digest``, no audit entry: it discloses nothing), the answer is 204
    and htmx keeps the rows; when it has changed, the rows are read again through the audited
    search. An open queue thus leaves an audit entry per change it shows, not per 10 seconds.
    """
    if seen is not None:
        with ctx.unit() as (session, principal):
            current = access.arrest_page_digest(
                session, principal=principal, query=QUEUE_QUERY, context=ReadContext()
            )
        if hmac.compare_digest(current, seen):
            return Response(status_code=status.HTTP_204_NO_CONTENT)
    return render(ctx.request, "charging/_rows.html", _queue(ctx))


def _arrest(ctx: Ctx, arrest_id: int) -> ArrestRead:
    with ctx.unit() as (session, principal):
        found = access.get_arrest(
            session, principal=principal, arrest_id=arrest_id, context=ReadContext()
        )
    return found.arrest


def _recommended(arrest: ArrestRead) -> list[Any]:
    lines = [c for c in arrest.charges if c.stage is ChargeStage.RECOMMENDED]
    latest = max((c.revision for c in lines), default=0)
    return sorted((c for c in lines if c.revision == latest), key=lambda c: c.sequence)


def _decision_page(
    ctx: Ctx,
    arrest: ArrestRead,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    recommended = _recommended(arrest)
    rows = len(recommended) + EXTRA_ROWS
    if not values:
        values = {"outcome": ChargingOutcome.APPROVED.value, "version": str(arrest.version)}
        for j, line in enumerate(recommended):
            values |= {
                f"charges.{j}.statute": line.statute,
                f"charges.{j}.description": line.description,
                f"charges.{j}.grade": line.grade.value,
                f"charges.{j}.counts": str(line.counts),
            }
    return render(
        ctx.request,
        "charging/decide.html",
        {
            "arrest": arrest,
            "recommended": recommended,
            "rows": rows,
            "values": values,
            "errors": errors or {},
            "outcomes": OUTCOMES,
            "choices": CHOICES,
            "statutes": statutes(),
        },
        status_code=status_code,
    )


@router.get(
    "/charging/{arrest_id}",
    response_class=HTMLResponse,
    dependencies=[page(Permission.CHARGE_DECIDE)],
)
def decision_form(arrest_id: RowId, ctx: Ctx) -> HTMLResponse:
    """One arrest with its people and recommended charges, and the decision form."""
    return _decision_page(ctx, _arrest(ctx, arrest_id), {})


def decision_payload(values: dict[str, Any], rows: int) -> tuple[dict[str, Any], list[int]]:
    """The form as the API's body; charge rows only for a modification, blank rows dropped."""
    data: dict[str, Any] = {}
    for name in ("outcome", "reason", "version"):
        value = values.get(name, "")
        if isinstance(value, str) and value.strip():
            data[name] = value.strip()
    kept: list[int] = []
    if data.get("outcome") == ChargingOutcome.MODIFIED.value:
        lines = []
        for j in range(rows):
            line = {
                f: v.strip()
                for f in CHARGE_FIELDS
                if isinstance(v := values.get(f"charges.{j}.{f}", ""), str) and v.strip()
            }
            if set(line) <= {"counts"}:
                continue
            lines.append(line)
            kept.append(j)
        data["charges"] = lines
    return data, kept


@router.post(
    "/charging/{arrest_id}",
    response_class=HTMLResponse,
    dependencies=[page(Permission.CHARGE_DECIDE)],
)
def decide(arrest_id: RowId, ctx: Ctx) -> Response:
    """Record the decision through the charging service; errors beside their fields."""
    values = form_values(ctx.request)
    rows = form_rows(values, "charges", 0)
    errors: dict[str, str]
    if rows > MAX_ROWS:
        # Never cut the list silently: a form beyond the schema's maximum is refused whole.
        errors = {"charges": f"At most {MAX_ROWS} charge rows fit on one decision."}
        return _decision_page(ctx, _arrest(ctx, arrest_id), values, errors, 422)
    data, kept = decision_payload(values, rows)
    try:
        body = ChargingDecisionCreate.model_validate(data)
    except ValidationError as invalid:
        errors = validation_errors(invalid, {"charges": kept, "involvements": []})
        if "form" in errors:
            where = "charges" if data.get("outcome") == ChargingOutcome.MODIFIED.value else "reason"
            errors.setdefault(where, errors.pop("form"))
        return _decision_page(ctx, _arrest(ctx, arrest_id), values, errors, 422)
    try:
        with ctx.unit() as (session, principal):
            service.decide_charges(session, actor=principal, arrest_id=arrest_id, data=body)
    except DomainError as refused:
        if refused.code not in FORM_REFUSALS:
            raise
        record_refusal(ctx.request, refused)
        errors = domain_errors(refused)
        if refused.code in ("version_mismatch", "out_of_order"):
            errors = {"form": errors.pop(next(iter(errors)))}
        code = 422 if refused.code == "invalid_input" else 409
        arrest = _arrest(ctx, arrest_id)
        if refused.code == "version_mismatch":
            # The page now shows the arrest as it is: a new decision is on this version.
            values["version"] = str(arrest.version)
        return _decision_page(ctx, arrest, values, errors, code)
    return RedirectResponse(
        f"/charging?decided={arrest_id}&outcome={body.outcome.value}",
        status_code=status.HTTP_303_SEE_OTHER,
    )
