"""The outside agency's view: search under its agreement, with purpose, case and on whose behalf.

Every read goes through the API's own read services (``access.service``), in the external
database role (``ctx.unit(external_role=True)``), so the enforcement point decides, filters and
audits exactly as for ``GET /api/v1/persons``. The page renders only what the service returned:
a role, a field or a section outside the agreement is not named anywhere on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openpars.access import service as access
from openpars.access.criteria import BIRTH_YEAR_MAX
from openpars.access.external import compile_grant, grant_in_force, purpose_rules
from openpars.access.schemas import ArrestQuery, PersonQuery, ReadContext
from openpars.agreements.floor import get_floor
from openpars.agreements.rules import audit
from openpars.db import utcnow
from openpars.errors import DomainError, InvalidInput
from openpars.identity.roles import Permission
from openpars.ranges import RowId
from openpars.text import Line
from openpars.web.context import Ctx
from openpars.web.pages.core import NAV, NavLink, area_router, domain_errors, page, render
from openpars.web.pages.plain import field_words, policy_sentences
from openpars.web.refusals import record_refusal

router = area_router()
NAV.append(NavLink("Agency search", "/external", frozenset({Permission.EXTERNAL_QUERY})))

# Refusals shown beside the form's fields rather than as an error page: the caller can fix them.
FORM_REFUSALS = frozenset({400, 403, 422, 429})
WHOLE_PAGE_CODES = frozenset({"no_agreement_in_force", "permission_denied"})
REQUIRED = {
    "purpose": "Say why you are searching: choose the purpose",
    "on_behalf_of": "Say on whose behalf you search (your own name if for yourself)",
}
CASE_REQUIRED = (
    "The purpose you chose requires a case reference under your agreement: give the case "
    "this search is for."
)
PERSON_FIELDS = ("name", "sid", "fbi_number", "birth_year")
ARREST_FIELDS = ("otn", "incident_number", "docket_number")
HIDDEN_PERSON_KEYS = frozenset({"id", "version", "involvements", "aliases"})


class Declaration(BaseModel):
    """What every outside read declares: the purpose and on whose behalf, always; the case
    reference where the agreement's rule for the purpose requires it, which the enforcement
    point checks (``check_purpose_rules``), as for the API: the page has no rule of its own."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    purpose: Line = Field(min_length=1, max_length=60)
    case_number: Line | None = Field(default=None, max_length=60)
    on_behalf_of: Line = Field(min_length=1, max_length=200)

    def context(self) -> ReadContext:
        """As the read services take it."""
        return ReadContext(self.purpose, self.case_number, self.on_behalf_of)

    def query(self) -> str:
        """The declaration as a query string, carried to the record pages."""
        declared = {"purpose": self.purpose, "on_behalf_of": self.on_behalf_of}
        if self.case_number:
            declared["case_number"] = self.case_number
        return urlencode(declared)


class SearchForm(Declaration):
    """The search form: the declaration, then the criteria of a person or arrest search."""

    kind: Literal["persons", "arrests"] = "persons"
    name: Line | None = Field(default=None, max_length=200)
    sid: Line | None = Field(default=None, max_length=20)
    fbi_number: Line | None = Field(default=None, max_length=20)
    birth_year: int | None = Field(default=None, ge=1, le=BIRTH_YEAR_MAX)
    otn: Line | None = Field(default=None, max_length=20)
    incident_number: Line | None = Field(default=None, max_length=30)
    docket_number: Line | None = Field(default=None, max_length=30)


def parse_query(request: Request, model: type[Declaration]) -> tuple[Any, dict[str, str]]:
    """The query string as ``model``, or None and one message per field."""
    data = {k: v for k, v in request.query_params.items() if v.strip() != ""}
    try:
        return model.model_validate(data), {}
    except ValidationError as invalid:
        errors: dict[str, str] = {}
        for problem in invalid.errors():
            name = ".".join(str(p) for p in problem.get("loc", ())) or "form"
            if problem.get("type") == "missing" and name in REQUIRED:
                message = REQUIRED[name]
            else:
                message = str(problem.get("msg", "is not valid"))
            errors.setdefault(name, message.rstrip(".") + ".")
        return None, errors


@dataclass(frozen=True, slots=True)
class Purpose:
    """A purpose of the caller's agreement, and whether it needs a case reference."""

    slug: str
    case_reference_required: bool


def _scope(ctx: Ctx) -> tuple[list[str], list[Purpose]]:
    """The agreement in force for the caller, in plain words, and its purposes with their
    case-reference rule (``purpose_rules``, the rule the enforcement point applies); audited."""
    with ctx.unit(external_role=True) as (session, principal):
        at = utcnow()
        grant = grant_in_force(session, principal=principal, at=at)
        purposes = purpose_rules(session, principal=principal, at=at)
        policy = compile_grant(grant, get_floor(session))
        audit(
            session,
            action="agreement.scope_read",
            actor=principal,
            agreement_id=grant.agreement_id,
            version=grant.version,
        )
    return policy_sentences(policy, purposes), [
        Purpose(slug, required) for slug, required in sorted(purposes.items())
    ]


def _search(ctx: Ctx, form: SearchForm) -> Any:
    with ctx.unit(external_role=True) as (session, principal):
        if form.kind == "persons":
            return access.search_persons(
                session,
                principal=principal,
                query=PersonQuery(
                    name=form.name,
                    sid=form.sid,
                    fbi_number=form.fbi_number,
                    birth_year=form.birth_year,
                ),
                context=form.context(),
            )
        return access.search_arrests(
            session,
            principal=principal,
            query=ArrestQuery(
                otn=form.otn, incident_number=form.incident_number, docket_number=form.docket_number
            ),
            context=form.context(),
        )


def _refusal_shown(request: Request, refused: DomainError) -> dict[str, str]:
    """A refusal the caller can fix, audited, as the form's errors; anything else re-raised."""
    if refused.status not in FORM_REFUSALS or refused.code in WHOLE_PAGE_CODES:
        raise refused
    record_refusal(request, refused)
    errors = domain_errors(refused)
    if refused.field == "case_number" and refused.code == "invalid_input":
        # The enforcement point's rule, in the page's words (the API names its parameter).
        errors["case_number"] = CASE_REQUIRED
    return errors


@router.get(
    "/external", response_class=HTMLResponse, dependencies=[page(Permission.EXTERNAL_QUERY)]
)
def search(ctx: Ctx) -> HTMLResponse:
    """The search form under the agreement in force, and the results of a search."""
    request = ctx.request
    values = dict(request.query_params)
    errors: dict[str, str] = {}
    result: Any = None
    declaration = ""
    if values:
        form, errors = parse_query(request, SearchForm)
        if form is not None:
            try:
                result = _search(ctx, form)
                declaration = form.query()
            except DomainError as refused:
                errors = _refusal_shown(request, refused)
    scope, purposes = _scope(ctx)
    context = {
        "scope": scope,
        "purposes": purposes,
        "result": result,
        "kind": values.get("kind", "persons"),
        "declaration": declaration,
        "errors": errors,
        "values": values,
        "searched": bool(values),
    }
    return render(request, "external/search.html", context, status_code=_status(errors))


def _status(errors: dict[str, str]) -> int:
    return 422 if errors else 200


def _declared(request: Request) -> Declaration:
    form, errors = parse_query(request, Declaration)
    if form is None:
        name, message = next(iter(errors.items()))
        raise InvalidInput(message, field=name)
    assert isinstance(form, Declaration)
    return form


def person_facts(person: Any) -> list[tuple[str, str]]:
    """A person's fields that came back with a value, as (label, value) pairs."""
    data = person.model_dump(exclude_none=True)
    facts = [
        (field_words(name), str(value))
        for name, value in data.items()
        if name not in HIDDEN_PERSON_KEYS
    ]
    for alias in data.get("aliases") or ():
        facts.append(("alias", f"{alias['family_name']}, {alias['given_name']}"))
    return facts


def arrest_facts(arrest: Any) -> list[tuple[str, str]]:
    """An arrest's plain fields that came back with a value."""
    data = arrest.model_dump(exclude_none=True)
    facts = []
    for name, value in data.items():
        if name in ("id", "version") or isinstance(value, (list, dict)):
            continue
        if name == "sealed" and not value:
            continue
        shown = value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else value
        facts.append((field_words(name), str(shown)))
    return facts


@router.get(
    "/external/persons/{person_id}",
    response_class=HTMLResponse,
    dependencies=[page(Permission.EXTERNAL_QUERY)],
)
def person(person_id: RowId, ctx: Ctx) -> HTMLResponse:
    """One person as the agreement shows them, with the arrests it shows."""
    declaration = _declared(ctx.request)
    with ctx.unit(external_role=True) as (session, principal):
        result = access.get_person(
            session, principal=principal, person_id=person_id, context=declaration.context()
        )
    found = result.person
    return render(
        ctx.request,
        "external/person.html",
        {"person": found, "facts": person_facts(found), "declaration": declaration.query()},
    )


@router.get(
    "/external/arrests/{arrest_id}",
    response_class=HTMLResponse,
    dependencies=[page(Permission.EXTERNAL_QUERY)],
)
def arrest(arrest_id: RowId, ctx: Ctx) -> HTMLResponse:
    """One arrest as the agreement shows it."""
    declaration = _declared(ctx.request)
    with ctx.unit(external_role=True) as (session, principal):
        result = access.get_arrest(
            session, principal=principal, arrest_id=arrest_id, context=declaration.context()
        )
    found = result.arrest
    parts = found.model_dump(exclude_none=True)
    return render(
        ctx.request,
        "external/arrest.html",
        {
            "arrest": found,
            "facts": arrest_facts(found),
            "parts": {k: v for k, v in parts.items() if isinstance(v, dict) and v},
            "declaration": declaration.query(),
            "field_words": field_words,
        },
    )
