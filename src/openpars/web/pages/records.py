"""Search and record pages: persons and arrests, a person's involvements, an arrest's timeline.

The same services as the API: ``GET /api/v1/persons`` and ``/arrests`` (access.service, the
enforcement point, one audit entry per search or read) and ``GET /api/v1/arrests/{id}/history``
(records.service.history). What the service does not give a user (a sealed record without
sealed access, another agency's scope) is simply absent; a record that is absent to the user
is the same "not found" page as one that does not exist, audited by the refusal handler.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openpars.access import service as access_service
from openpars.access.schemas import ArrestQuery, PersonQuery, ReadContext
from openpars.errors import InvalidInput
from openpars.identity.names import names_of
from openpars.identity.roles import Permission
from openpars.ranges import RowId
from openpars.records import service
from openpars.records.enums import ArrestState, VersionedEntity
from openpars.records.versions import SITE_TZ
from openpars.text import Line
from openpars.web.context import Ctx
from openpars.web.pages.core import NAV, NavLink, area_router, domain_errors, page, render
from openpars.web.pages.court import errors_of, steps_for
from openpars.web.refusals import record_refusal

router = area_router()
NAV.append(NavLink("Search", "/search", frozenset({Permission.RECORD_READ})))

PAGE_SIZE = 20
KINDS = ("persons", "arrests")
STATES: list[tuple[str, str]] = [("", "Any state")] + [(s.value, s.value) for s in ArrestState]
SAVED = {
    "bail-recommendation": "The bail recommendation was recorded.",
    "arraignment": "The arraignment was recorded.",
    "custody": "The release or commitment was recorded.",
}


class _Search(BaseModel):
    model_config = ConfigDict(extra="ignore")

    offset: int = Field(default=0, ge=0, le=100_000)


class PersonSearch(_Search):
    """The person search form (the API's query parameters)."""

    name: Line | None = Field(default=None, max_length=200)
    birth_date: date | None = None
    birth_year: int | None = Field(default=None, ge=1, le=9999)
    sid: Line | None = Field(default=None, max_length=20)
    fbi_number: Line | None = Field(default=None, max_length=20)


class ArrestSearch(_Search):
    """The arrest search form (the API's query parameters; dates are whole days)."""

    otn: Line | None = Field(default=None, max_length=20)
    incident_number: Line | None = Field(default=None, max_length=30)
    docket_number: Line | None = Field(default=None, max_length=30)
    arrested_from: date | None = None
    arrested_to: date | None = None
    statute: Line | None = Field(default=None, max_length=40)
    state: ArrestState | None = None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), SITE_TZ)


def _run_search(
    ctx: Ctx, kind: str, form: PersonSearch | ArrestSearch
) -> tuple[Any, dict[str, str]]:
    """The search through the API's service; a refusal of the query becomes the form's error."""
    try:
        with ctx.unit() as (session, principal):
            if isinstance(form, PersonSearch):
                return access_service.search_persons(
                    session,
                    principal=principal,
                    query=PersonQuery(
                        name=form.name,
                        birth_date=form.birth_date,
                        birth_year=form.birth_year,
                        sid=form.sid,
                        fbi_number=form.fbi_number,
                        offset=form.offset,
                        limit=PAGE_SIZE,
                    ),
                    context=ReadContext(),
                ), {}
            return access_service.search_arrests(
                session,
                principal=principal,
                query=ArrestQuery(
                    otn=form.otn,
                    incident_number=form.incident_number,
                    docket_number=form.docket_number,
                    arrested_from=_day_start(form.arrested_from) if form.arrested_from else None,
                    arrested_to=(
                        _day_start(form.arrested_to + timedelta(days=1)) - timedelta(microseconds=1)
                        if form.arrested_to
                        else None
                    ),
                    statute=form.statute,
                    state=form.state,
                    offset=form.offset,
                    limit=PAGE_SIZE,
                ),
                context=ReadContext(),
            ), {}
    except InvalidInput as refused:
        record_refusal(ctx.request, refused)
        return None, domain_errors(refused)


@router.get("/search", response_class=HTMLResponse, dependencies=[page(Permission.RECORD_READ)])
def search(ctx: Ctx) -> HTMLResponse:
    """Search persons or arrests; a page of 20 at a time, with links to the next and previous."""
    params = {k: v for k, v in ctx.request.query_params.items() if v.strip() != ""}
    kind = params.pop("kind", "persons")
    if kind not in KINDS:
        kind = "persons"
    values: dict[str, Any] = dict(params)
    model: type[PersonSearch | ArrestSearch] = PersonSearch if kind == "persons" else ArrestSearch
    errors: dict[str, str] = {}
    result: Any = None
    criteria = {k: v for k, v in params.items() if k in model.model_fields and k != "offset"}
    if criteria:
        try:
            form = model.model_validate(params)
        except ValidationError as invalid:
            errors = errors_of(model, invalid)
        else:
            result, errors = _run_search(ctx, kind, form)
    if "query" in errors:
        errors["form"] = errors.pop("query")
    status_code = 422 if errors else 200

    def link(offset: int) -> str:
        return "/search?" + urlencode({"kind": kind, **criteria, "offset": offset})

    return render(
        ctx.request,
        "records/search.html",
        {
            "kind": kind,
            "values": values,
            "errors": errors,
            "result": result,
            "states": STATES,
            "previous": link(max(0, result.offset - PAGE_SIZE))
            if result and result.offset
            else None,
            "next": link(result.offset + PAGE_SIZE) if result and result.has_more else None,
        },
        status_code=status_code,
    )


@router.get(
    "/persons/{person_id}", response_class=HTMLResponse, dependencies=[page(Permission.RECORD_READ)]
)
def person(person_id: RowId, ctx: Ctx) -> HTMLResponse:
    """A person with every involvement the viewer may see (the API's GET /persons/{id})."""
    with ctx.unit() as (session, principal):
        result = access_service.get_person(
            session, principal=principal, person_id=person_id, context=ReadContext()
        )
    return render(ctx.request, "records/person.html", {"person": result.person})


def changes(snapshots: list[dict[str, object]]) -> list[list[str]]:
    """For each version, the top-level fields that differ from the version before it."""
    out: list[list[str]] = []
    before: dict[str, object] | None = None
    for snap in snapshots:
        if before is None:
            out.append([])
        else:
            keys = sorted(set(snap) | set(before))
            out.append([k for k in keys if k != "version" and snap.get(k) != before.get(k)])
        before = snap
    return out


@router.get(
    "/arrests/{arrest_id}", response_class=HTMLResponse, dependencies=[page(Permission.RECORD_READ)]
)
def arrest(arrest_id: RowId, ctx: Ctx, saved: str | None = None) -> HTMLResponse:
    """An arrest with everything the viewer may see, and the timeline of its versions (the
    API's GET /arrests/{id} and GET /arrests/{id}/history)."""
    with ctx.unit() as (session, principal):
        result = access_service.get_arrest(
            session, principal=principal, arrest_id=arrest_id, context=ReadContext()
        )
        versions = service.history(
            session, actor=principal, entity=VersionedEntity.ARREST, entity_id=arrest_id
        )
        timeline = [
            {
                "version": v.version,
                "change": v.change.value,
                "reason": v.reason,
                "changed_at": v.changed_at,
                "changed_by_id": v.changed_by_id,
                "state": v.snapshot.get("state"),
            }
            for v in versions
        ]
        for entry, fields in zip(
            timeline, changes([dict(v.snapshot) for v in versions]), strict=True
        ):
            entry["fields"] = fields
        steps = steps_for(principal, result.arrest.state)
        names = names_of(
            session, user_ids=[v.changed_by_id for v in versions], oris=[result.arrest.ori]
        )
    return render(
        ctx.request,
        "records/arrest.html",
        {
            "arrest": result.arrest,
            "timeline": timeline,
            "steps": steps,
            "names": names,
            "saved": SAVED.get(saved or ""),
        },
    )
