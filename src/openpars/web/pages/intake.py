"""Intake pages: a booking officer enters an arrest with its people, their roles and charges.

The form posts to the same service as ``POST /api/v1/arrests`` (``records.service.
submit_arrest``), parsed with the API's own body schema, so its rules, text types and audit
entry are the API's. Person matching is ``records.service.match_candidates``, the service of
``POST /api/v1/persons/match``: the officer sees the candidates and picks one, or confirms a new
person; nothing is ever merged silently (the service refuses with ``person_match_required``
and the form shows that person's candidates).

Field names are the schema's paths (``involvements.0.person.family_name``), so a refusal's
field (pydantic's location or a service's ``field``) lands beside its input. Blank extra rows
(people or charges the officer added and left empty) are dropped before parsing, and error
positions are mapped back to the rows on the form.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from openpars.demo.statutes import STATUTES
from openpars.errors import DomainError
from openpars.identity.roles import Permission
from openpars.records import service
from openpars.records.enums import ArrestType, Grade, InvolvementRole, Race, Sex
from openpars.records.schemas import ArrestCreate, CandidateRead, PersonIn
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
)
from openpars.web.refusals import record_refusal

router = area_router()
NAV.append(NavLink("Intake", "/intake", frozenset({Permission.ARREST_CREATE})))

# Rows a form may grow to (the schema's own maxima are higher; a booking has a few people).
MAX_PEOPLE = 30
MAX_CHARGES = 30
PERSON_FIELDS = (
    "family_name",
    "given_name",
    "middle_name",
    "birth_date",
    "sex",
    "race",
    "address",
    "phone",
    "place_of_birth",
    "citizenship",
    "sid",
    "fbi_number",
)
CHARGE_FIELDS = ("statute", "description", "grade", "counts")
ARREST_FIELDS = (
    "report_id",
    "otn",
    "incident_number",
    "ori",
    "arresting_officer",
    "arrested_at",
    "location",
    "arrest_type",
    "narrative",
)
NEW_PERSON = "new"
# The service's refusals the form shows beside their fields (audited as the API's); anything
# else is an error page.
FORM_REFUSALS = ("invalid_input", "ori_not_yours", "person_match_required", "report_id_reused")

ROLE_LABELS = {
    InvolvementRole.ARRESTEE: "Arrestee",
    InvolvementRole.VICTIM: "Victim",
    InvolvementRole.WITNESS: "Witness",
    InvolvementRole.COMPLAINANT: "Complainant",
    InvolvementRole.AFFIANT: "Affiant",
    InvolvementRole.OTHER: "Other",
}
CHOICES: dict[str, list[tuple[str, str]]] = {
    "role": [(r.value, ROLE_LABELS[r]) for r in InvolvementRole],
    "sex": [("", "Not known"), *((s.value, s.name.title()) for s in Sex)],
    "race": [("", "Not known"), *((r.value, r.name.replace("_", " ").title()) for r in Race)],
    "grade": [("", "Choose a grade"), *((g.value, g.value) for g in Grade)],
    "arrest_type": [
        (ArrestType.ON_VIEW.value, "On view"),
        (ArrestType.WARRANT.value, "Warrant"),
        (ArrestType.SUMMONS.value, "Summons"),
    ],
}
_ROW = re.compile(r"^(involvements|charges)\.(\d+)(\..*)?$")


def statutes() -> list[dict[str, str]]:
    """The statute list offered for search (citation, description, usual grade)."""
    return [
        {"citation": s.citation, "description": s.description, "grade": s.grade.value}
        for s in sorted(STATUTES.values(), key=lambda s: s.citation)
    ]


def form_rows(values: dict[str, Any], prefix: str, at_least: int) -> int:
    """How many rows of ``prefix`` the form holds (its highest index + 1)."""
    found = -1
    for key in values:
        match = _ROW.match(key)
        if match and match.group(1) == prefix:
            found = max(found, int(match.group(2)))
    return max(found + 1, at_least)


def _text(values: dict[str, Any], key: str) -> str:
    value = values.get(key, "")
    return value if isinstance(value, str) else (value[0] if value else "")


def _arrest_time(text: str) -> str:
    """A ``datetime-local`` value (no zone) is site-local time; anything else is left to the
    schema, which names the field if it is not a date and time with its zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SITE_TZ)
    return moment.isoformat()


def build_payload(
    values: dict[str, Any], people: int, charges: int
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The form as the API's body (blank rows dropped) and, for each list, the form rows kept."""
    data: dict[str, Any] = {}
    for name in ARREST_FIELDS:
        value = _text(values, name).strip()
        if value:
            data[name] = _arrest_time(value) if name == "arrested_at" else value
    kept: dict[str, list[int]] = {"involvements": [], "charges": []}
    involvements: list[dict[str, Any]] = []
    for i in range(people):
        person = {
            f: v
            for f in PERSON_FIELDS
            if (v := _text(values, f"involvements.{i}.person.{f}").strip())
        }
        match = _text(values, f"involvements.{i}.match").strip()
        if not person and not match and i > 0:
            continue
        item: dict[str, Any] = {"role": _text(values, f"involvements.{i}.role") or "other"}
        if match.isdigit():
            item["person_id"] = match
        else:
            item["person"] = person
            if match == NEW_PERSON:
                item["create_new_person"] = True
        involvements.append(item)
        kept["involvements"].append(i)
    data["involvements"] = involvements
    lines: list[dict[str, Any]] = []
    for j in range(charges):
        line = {f: v for f in CHARGE_FIELDS if (v := _text(values, f"charges.{j}.{f}").strip())}
        if set(line) <= {"counts"} and j > 0:
            continue
        lines.append(line)
        kept["charges"].append(j)
    data["charges"] = lines
    return data, kept


def form_name(name: str, kept: dict[str, list[int]]) -> str:
    """A schema path of the payload as the name of the form's field (its row as on the form)."""
    match = _ROW.match(name)
    if not match:
        return name
    rows = kept[match.group(1)]
    position = int(match.group(2))
    row = rows[position] if position < len(rows) else position
    return f"{match.group(1)}.{row}{match.group(3) or ''}"


def validation_errors(invalid: ValidationError, kept: dict[str, list[int]]) -> dict[str, str]:
    """One message per field of the form, for each error beside its field."""
    errors: dict[str, str] = {}
    for problem in invalid.errors():
        name = ".".join(str(p) for p in problem.get("loc", ())) or "form"
        message = str(problem.get("msg", "is not valid")).removeprefix("Value error, ")
        errors.setdefault(form_name(name, kept), _sentence(message))
    return errors


def _sentence(message: str) -> str:
    text = message.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text


def _form(
    ctx: Ctx,
    values: dict[str, Any],
    *,
    people: int,
    charges: int,
    errors: dict[str, str] | None = None,
    candidates: dict[int, list[dict[str, Any]]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        ctx.request,
        "intake/arrest_form.html",
        {
            "values": values,
            "errors": errors or {},
            "people": people,
            "charges": charges,
            "candidates": candidates or {},
            "choices": CHOICES,
            "statutes": statutes(),
            "person_fields": PERSON_FIELDS,
            "new_person": NEW_PERSON,
        },
        status_code=status_code,
    )


@router.get("/intake", response_class=HTMLResponse, dependencies=[page(Permission.ARREST_CREATE)])
def arrest_form(ctx: Ctx) -> HTMLResponse:
    """A blank arrest: one arrestee, one victim row and one charge to start with."""
    with ctx.unit():
        pass
    values = {"involvements.0.role": "arrestee", "involvements.1.role": "victim"}
    return _form(ctx, values, people=2, charges=1)


@router.post("/intake", response_class=HTMLResponse, dependencies=[page(Permission.ARREST_CREATE)])
def submit_arrest(ctx: Ctx) -> HTMLResponse:
    """Add a row, or submit the arrest through the intake service (as ``POST /arrests``)."""
    values = form_values(ctx.request)
    action = _text(values, "action")
    people = form_rows(values, "involvements", 1)
    charges = form_rows(values, "charges", 1)
    if people > MAX_PEOPLE or charges > MAX_CHARGES:
        # Never drop a row silently: a form beyond the maxima is refused whole.
        with ctx.unit():
            pass
        errors = {}
        if people > MAX_PEOPLE:
            errors["involvements"] = f"At most {MAX_PEOPLE} people fit on one form."
        if charges > MAX_CHARGES:
            errors["charges"] = f"At most {MAX_CHARGES} charges fit on one form."
        people, charges = min(people, MAX_PEOPLE), min(charges, MAX_CHARGES)
        return _form(ctx, values, people=people, charges=charges, errors=errors, status_code=422)
    if action == "add_person":
        with ctx.unit():
            pass
        values[f"involvements.{people}.role"] = "victim"
        return _form(ctx, values, people=min(people + 1, MAX_PEOPLE), charges=charges)
    if action == "add_charge":
        with ctx.unit():
            pass
        return _form(ctx, values, people=people, charges=min(charges + 1, MAX_CHARGES))
    data, kept = build_payload(values, people, charges)
    try:
        body = ArrestCreate.model_validate(data)
    except ValidationError as invalid:
        with ctx.unit():
            pass
        errors = validation_errors(invalid, kept)
        return _form(ctx, values, people=people, charges=charges, errors=errors, status_code=422)
    try:
        with ctx.unit() as (session, principal):
            result = service.submit_arrest(
                session,
                actor=principal,
                data=body,
                earliest=ctx.settings.earliest_arrest_date,
            )
    except DomainError as refused:
        if refused.code not in FORM_REFUSALS:
            raise
        record_refusal(ctx.request, refused)
        candidates = _candidates_of(refused, kept)
        errors = (
            {} if candidates else {form_name(k, kept): v for k, v in domain_errors(refused).items()}
        )
        for index in candidates:
            errors[f"involvements.{index}.match"] = (
                "This person may already be on file. Choose the right person below, or "
                "confirm that this is a new person."
            )
        return _form(
            ctx,
            values,
            people=people,
            charges=charges,
            errors=errors,
            candidates=candidates,
            status_code=409 if refused.code == "person_match_required" else 422,
        )
    return render(ctx.request, "intake/created.html", {"result": result})


def _candidates_of(
    refused: DomainError, kept: dict[str, list[int]]
) -> dict[int, list[dict[str, Any]]]:
    """The candidates of each involvement the service would not resolve alone, by form row."""
    if refused.code != "person_match_required":
        return {}
    found: dict[int, list[dict[str, Any]]] = {}
    rows = kept["involvements"]
    for pending in (refused.details or {}).get("involvements", []):
        position = int(pending["index"])
        row = rows[position] if position < len(rows) else position
        found[row] = list(pending["candidates"])
    return found


@router.post(
    "/intake/match/{row}",
    response_class=HTMLResponse,
    dependencies=[page(Permission.ARREST_CREATE)],
)
def match_person(row: int, ctx: Ctx) -> HTMLResponse:
    """The candidates for one person of the form (htmx), from the service of
    ``POST /api/v1/persons/match``; the officer chooses, nothing is merged here."""
    values = form_values(ctx.request)
    prefix = f"involvements.{row}.person."
    person = {f: v for f in PERSON_FIELDS if (v := _text(values, prefix + f).strip())}
    items: list[CandidateRead] = []
    problem = None
    try:
        wanted = PersonIn.model_validate(person)
    except ValidationError:
        wanted = None
        problem = (
            "Enter this person's family and given names (and the birth date if known) to look "
            "for people already on file."
        )
    with ctx.unit() as (session, principal):
        if wanted is not None:
            items = service.match_candidates(session, actor=principal, person=wanted, limit=10)
    return render(
        ctx.request,
        "intake/_candidates.html",
        {
            "row": row,
            "items": [c.model_dump(mode="json") for c in items],
            "problem": problem,
            "searched": wanted is not None,
            "chosen": _text(values, f"involvements.{row}.match"),
            "new_person": NEW_PERSON,
        },
    )
