"""Pretrial and court pages: the arraignment docket, bail recommendation, arraignment, custody.

Each form posts to the same service the API's ``POST /api/v1/arrests/{id}/bail-recommendation``,
``/arraignment`` and ``/custody`` call (records.service), through the same enforcement point
and audit entry. The form carries the arrest's version: the service refuses a stale form (the
arrest changed since the form was shown) with its Conflict, shown beside the form and audited
(web/refusals.py) as the API's refusal is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from fastapi import Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError

from openpars.access import service as access_service
from openpars.access.schemas import PAGE_MAX, ArrestQuery, ArrestResult, ReadContext
from openpars.errors import Conflict, InvalidInput
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission
from openpars.ranges import RowId
from openpars.records import service
from openpars.records.enums import ArrestState, BailType, CustodyOutcome
from openpars.records.schemas import (
    ArraignmentCreate,
    ArrestSummary,
    BailRecommendationCreate,
    CustodyCreate,
)
from openpars.records.versions import SITE_TZ
from openpars.web.context import Ctx
from openpars.web.pages.core import (
    NAV,
    NavLink,
    area_router,
    domain_errors,
    form_values,
    page,
    render,
    templates,
)
from openpars.web.refusals import record_refusal

router = area_router()


def localtime(value: datetime) -> str:
    """An instant on the site's wall clock, as people in the building read it."""
    return value.astimezone(SITE_TZ).strftime("%Y-%m-%d %H:%M %Z")


templates.env.filters["localtime"] = localtime
NAV.append(
    NavLink(
        "Docket",
        "/docket",
        frozenset({Permission.BAIL_RECOMMEND, Permission.ARRAIGN, Permission.RELEASE}),
    )
)

BAIL_TYPES: list[tuple[str, str]] = [
    ("", "Choose a bail type"),
    (BailType.ROR.value, "Released on own recognizance (ROR)"),
    (BailType.UNSECURED.value, "Unsecured bail (amount owed only on default)"),
    (BailType.NONMONETARY.value, "Nonmonetary conditions"),
    (BailType.MONETARY.value, "Monetary bail"),
    (BailType.DENIED.value, "Bail denied"),
]
CUSTODY_OUTCOMES: list[tuple[str, str]] = [
    ("", "Choose an outcome"),
    (CustodyOutcome.RELEASED.value, "Released"),
    (CustodyOutcome.COMMITTED.value, "Committed to a facility"),
]
# Fields of the forms that a browser sends as a local date and time (datetime-local): the
# site's wall clock, as the people entering them read it.
LOCAL_TIMES = ("arraigned_at", "at")


class Step:
    """One workflow step's page: its path, title, who does it and in which state."""

    def __init__(
        self,
        path: str,
        title: str,
        permission: Permission,
        owner: AgencyKind,
        state: ArrestState,
        template: str,
    ) -> None:
        self.path = path
        self.title = title
        self.permission = permission
        self.owner = owner
        self.state = state
        self.template = template

    def open_to(self, principal: Principal, state: ArrestState | None) -> bool:
        """Whether to offer the step's link: the service still decides."""
        return (
            principal.can(self.permission)
            and principal.agency_kind is self.owner
            and state is self.state
        )


BAIL = Step(
    "bail-recommendation",
    "Recommend bail",
    Permission.BAIL_RECOMMEND,
    AgencyKind.PRETRIAL,
    ArrestState.CHARGED,
    "court/bail.html",
)
ARRAIGN = Step(
    "arraignment",
    "Arraign: bail and docket number",
    Permission.ARRAIGN,
    AgencyKind.COURT,
    ArrestState.CHARGED,
    "court/arraignment.html",
)
CUSTODY = Step(
    "custody",
    "Release or commitment",
    Permission.RELEASE,
    AgencyKind.COURT,
    ArrestState.ARRAIGNED,
    "court/custody.html",
)
STEPS: tuple[Step, ...] = (BAIL, ARRAIGN, CUSTODY)


def steps_for(principal: Principal, state: ArrestState | None) -> list[Step]:
    """The workflow steps whose links this user may be offered on an arrest in ``state``."""
    return [s for s in STEPS if s.open_to(principal, state)]


Model = TypeVar("Model", bound=BaseModel)


def local_instant(value: str) -> str:
    """A datetime-local value (site wall clock, no offset) as an ISO instant with the offset."""
    if not value:
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # the schema names the field and the rule
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SITE_TZ)
    return moment.isoformat()


# What each form field is called on the page, and an example where the rule is a pattern.
LABELS: dict[str, str] = {
    "bail_type": "Bail type",
    "amount": "Amount",
    "bail_amount": "Bail amount",
    "conditions": "Conditions",
    "arraigned_at": "Arraigned at",
    "magistrate": "Magistrate",
    "preliminary_hearing_date": "Preliminary hearing date",
    "docket_number": "Docket number",
    "outcome": "Outcome",
    "at": "When",
    "facility": "Facility",
    "name": "Name",
    "birth_date": "Date of birth",
    "birth_year": "Year of birth",
    "sid": "SID",
    "fbi_number": "FBI number",
    "otn": "OTN",
    "incident_number": "Incident number",
    "arrested_from": "Arrested on or after",
    "arrested_to": "Arrested on or before",
    "statute": "Statute",
    "state": "State",
    "offset": "Page offset",
}
EXAMPLES: dict[str, str] = {"docket_number": "MC-51-CR-0007226-2025"}
# Whole-form rules of a body model (the bail amount must suit the bail type) shown beside the
# field they are about.
MODEL_RULE_FIELD: dict[str, str] = {
    "BailRecommendationCreate": "amount",
    "ArraignmentCreate": "bail_amount",
}


def friendly(field: str, kind: str, message: str) -> str:
    """One pydantic error as a sentence naming the field and the rule, in plain words."""
    label = LABELS.get(field, field.replace("_", " ").capitalize())
    if kind == "missing":
        return f"{label} is required."
    if kind == "string_pattern_mismatch":
        example = EXAMPLES.get(field)
        return f"{label} is not in the expected form" + (
            f", for example {example}." if example else "."
        )
    if kind.startswith("decimal") or kind in ("float_parsing", "int_parsing"):
        return f"{label} must be a number, like 5000.00, without a dollar sign or commas."
    if kind in ("greater_than_equal", "less_than_equal", "too_long", "string_too_long"):
        return f"{label}: {message[:1].lower() + message[1:]}."
    if kind.startswith(("datetime", "date", "timezone")):
        return f"{label} must be a valid date{' and time' if 'datetime' in kind else ''}."
    if kind == "enum":
        return f"{label}: choose one of the options offered."
    text = message.strip().removeprefix("Value error, ").rstrip(".")
    return f"{label}: {text[:1].lower() + text[1:]}." if text else f"{label} is not valid."


def errors_of(model: type[BaseModel], invalid: ValidationError) -> dict[str, str]:
    """A ValidationError as one plain message per form field."""
    errors: dict[str, str] = {}
    for problem in invalid.errors():
        loc = problem.get("loc", ())
        name = ".".join(str(p) for p in loc) or MODEL_RULE_FIELD.get(model.__name__, "form")
        errors.setdefault(
            name, friendly(name, str(problem.get("type", "")), str(problem.get("msg", "")))
        )
    return errors


def validate(model: type[Model], values: dict[str, Any]) -> tuple[Model | None, dict[str, str]]:
    """The form's values as the API's body model, or one message per field."""
    data = {k: v for k, v in values.items() if v != ""}
    for name in LOCAL_TIMES:
        if isinstance(data.get(name), str):
            data[name] = local_instant(data[name])
    try:
        return model.model_validate(data), {}
    except ValidationError as invalid:
        return None, errors_of(model, invalid)


def expected_version(values: dict[str, Any]) -> tuple[int | None, dict[str, str]]:
    """The arrest version the form was shown with (its hidden field), popped from the values."""
    raw = values.pop("version", "")
    if isinstance(raw, str) and raw.isdigit() and len(raw) < 10:
        return int(raw), {}
    return None, {
        "form": "The form is missing the arrest's version it was shown with. Open the arrest "
        "again and use its form."
    }


def read_arrest(ctx: Ctx, arrest_id: int) -> ArrestResult:
    """The arrest as the API's GET /api/v1/arrests/{id} shows it to this user (audited)."""
    with ctx.unit() as (session, principal):
        return access_service.get_arrest(
            session, principal=principal, arrest_id=arrest_id, context=ReadContext()
        )


def show_form(
    ctx: Ctx,
    step: Step,
    arrest_id: int,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The step's form over the arrest as the user may see it."""
    result = read_arrest(ctx, arrest_id)
    arrest = result.arrest
    shown = dict(values or {})
    shown.setdefault("version", arrest.version)
    return render(
        ctx.request,
        step.template,
        {
            "step": step,
            "arrest": arrest,
            "values": shown,
            "errors": errors or {},
            "bail_types": BAIL_TYPES,
            "custody_outcomes": CUSTODY_OUTCOMES,
            "latest_bail": arrest.bail_recommendations[-1] if arrest.bail_recommendations else None,
        },
        status_code=status_code,
    )


def submit(ctx: Ctx, step: Step, arrest_id: int, model: type[BaseModel]) -> Response:
    """Validate the form as the API's body, then call the API's service; errors beside fields."""
    values = form_values(ctx.request)
    version, errors = expected_version(values)
    parsed, field_errors = validate(model, values)
    errors.update(field_errors)
    if version is not None:
        # Shown again with the version it was shown with, never the current one: a form
        # shown before a change stays stale until the user opens the arrest again.
        values["version"] = version
    if version is None:
        # A form the page never sends (its hidden field stripped): refused and audited, like
        # the service's own refusals below. A typing mistake the schema catches (above) is not
        # audited, as the API's 422 for a body that does not validate is not. The edge's
        # transaction ends first: the refusal's entry is written in a transaction of its own.
        with ctx.unit():
            pass
        record_refusal(
            ctx.request,
            InvalidInput("version: the form came without the arrest's version", field="version"),
        )
    if parsed is None or version is None:
        return show_form(ctx, step, arrest_id, values=values, errors=errors, status_code=422)
    try:
        with ctx.unit() as (session, principal):
            if isinstance(parsed, BailRecommendationCreate):
                service.recommend_bail(
                    session,
                    actor=principal,
                    arrest_id=arrest_id,
                    data=parsed,
                    expected_version=version,
                )
            elif isinstance(parsed, ArraignmentCreate):
                service.arraign(
                    session,
                    actor=principal,
                    arrest_id=arrest_id,
                    data=parsed,
                    expected_version=version,
                )
            else:
                assert isinstance(parsed, CustodyCreate)
                service.record_custody(
                    session,
                    actor=principal,
                    arrest_id=arrest_id,
                    data=parsed,
                    expected_version=version,
                )
    except (InvalidInput, Conflict) as refused:
        # Shown beside the form, and audited as the API's refusal of the same call is.
        record_refusal(ctx.request, refused)
        errors = domain_errors(refused)
        if "version" in errors or "state" in errors:
            errors = {"form": errors.get("version") or errors["state"]}
        status_code = 409 if isinstance(refused, Conflict) else 422
        return show_form(
            ctx, step, arrest_id, values=values, errors=errors, status_code=status_code
        )
    return RedirectResponse(f"/arrests/{arrest_id}?saved={step.path}", status_code=303)


# ---- the docket -------------------------------------------------------------------------------


def _oldest_first(items: list[ArrestSummary]) -> list[ArrestSummary]:
    return sorted(items, key=lambda a: (a.arrested_at is None, a.arrested_at or datetime.min, a.id))


def docket_context(ctx: Ctx) -> dict[str, Any]:
    """The next hearing block: charged arrests awaiting arraignment (oldest arrest first), and
    arraigned arrests awaiting release or commitment; through the API's arrest search."""
    with ctx.unit() as (session, principal):
        waiting = access_service.search_arrests(
            session,
            principal=principal,
            query=ArrestQuery(state=ArrestState.CHARGED, limit=PAGE_MAX),
            context=ReadContext(),
        )
        arraigned = access_service.search_arrests(
            session,
            principal=principal,
            query=ArrestQuery(state=ArrestState.ARRAIGNED, limit=PAGE_MAX),
            context=ReadContext(),
        )
        waiting_steps = {a.id: steps_for(principal, a.state) for a in waiting.items}
        arraigned_steps = {a.id: steps_for(principal, a.state) for a in arraigned.items}
    return {
        "waiting": _oldest_first(waiting.items),
        "waiting_more": waiting.has_more,
        "arraigned": _oldest_first(arraigned.items),
        "arraigned_more": arraigned.has_more,
        "steps": waiting_steps | arraigned_steps,
        "page_max": PAGE_MAX,
    }


DOCKET_EDGE = page(Permission.BAIL_RECOMMEND, Permission.ARRAIGN, Permission.RELEASE)


@router.get("/docket", response_class=HTMLResponse, dependencies=[DOCKET_EDGE])
def docket(ctx: Ctx) -> HTMLResponse:
    """The arraignment docket for the next hearing block."""
    return render(ctx.request, "court/docket.html", docket_context(ctx))


@router.get("/docket/rows", response_class=HTMLResponse, dependencies=[DOCKET_EDGE])
def docket_rows(ctx: Ctx) -> HTMLResponse:
    """The docket's tables alone, for its Refresh link (htmx). Refreshed when the user asks,
    never on a timer: a page polling by itself would keep an unattended session from its
    30-minute idle lock."""
    return render(ctx.request, "court/_docket_rows.html", docket_context(ctx))


# ---- the steps --------------------------------------------------------------------------------


@router.get(
    "/arrests/{arrest_id}/bail-recommendation",
    response_class=HTMLResponse,
    dependencies=[page(Permission.BAIL_RECOMMEND)],
)
def bail_form(arrest_id: RowId, ctx: Ctx) -> HTMLResponse:
    """Pretrial services' bail recommendation form."""
    return show_form(ctx, BAIL, arrest_id)


@router.post(
    "/arrests/{arrest_id}/bail-recommendation",
    response_class=HTMLResponse,
    dependencies=[page(Permission.BAIL_RECOMMEND)],
)
def bail_submit(arrest_id: RowId, ctx: Ctx) -> Response:
    """Record the recommendation (records.service.recommend_bail, as the API)."""
    return submit(ctx, BAIL, arrest_id, BailRecommendationCreate)


@router.get(
    "/arrests/{arrest_id}/arraignment",
    response_class=HTMLResponse,
    dependencies=[page(Permission.ARRAIGN)],
)
def arraignment_form(arrest_id: RowId, ctx: Ctx) -> HTMLResponse:
    """The preliminary arraignment form: bail, hearing date, docket number."""
    return show_form(ctx, ARRAIGN, arrest_id)


@router.post(
    "/arrests/{arrest_id}/arraignment",
    response_class=HTMLResponse,
    dependencies=[page(Permission.ARRAIGN)],
)
def arraignment_submit(arrest_id: RowId, ctx: Ctx) -> Response:
    """Record the arraignment (records.service.arraign, as the API)."""
    return submit(ctx, ARRAIGN, arrest_id, ArraignmentCreate)


@router.get(
    "/arrests/{arrest_id}/custody",
    response_class=HTMLResponse,
    dependencies=[page(Permission.RELEASE)],
)
def custody_form(arrest_id: RowId, ctx: Ctx) -> HTMLResponse:
    """The release or commitment form."""
    return show_form(ctx, CUSTODY, arrest_id)


@router.post(
    "/arrests/{arrest_id}/custody",
    response_class=HTMLResponse,
    dependencies=[page(Permission.RELEASE)],
)
def custody_submit(arrest_id: RowId, ctx: Ctx) -> Response:
    """Record the release or commitment (records.service.record_custody, as the API)."""
    return submit(ctx, CUSTODY, arrest_id, CustodyCreate)
