"""Read endpoints for persons and arrests; every one goes through the enforcement point."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from openpars.access import service
from openpars.access.criteria import BIRTH_YEAR_MAX
from openpars.access.schemas import (
    OFFSET_MAX,
    PAGE_MAX,
    ArrestPage,
    ArrestQuery,
    ArrestResult,
    PersonPage,
    PersonQuery,
    PersonResult,
    ReadContext,
)
from openpars.identity.roles import Permission
from openpars.ranges import Instant, RowId
from openpars.records.enums import ArrestState
from openpars.web.context import Ctx, needs

router = APIRouter(tags=["search"])


def read_context(
    purpose: Annotated[
        str | None,
        Query(max_length=60, description="why you are asking (required for external agencies)"),
    ] = None,
    case_number: Annotated[
        str | None, Query(max_length=60, description="case reference, where the purpose needs one")
    ] = None,
    on_behalf_of: Annotated[
        str | None, Query(max_length=200, description="who you are asking for, if not yourself")
    ] = None,
) -> ReadContext:
    """The caller's declaration: purpose, case reference, on whose behalf."""
    return ReadContext(purpose=purpose, case_number=case_number, on_behalf_of=on_behalf_of)


Context = Annotated[ReadContext, Depends(read_context)]
# The bounds are declared for clients here but checked by the service (access.criteria), so
# the console gets exactly the API's refusal; an outside agency's window is narrower still:
# offset + limit at most its agreement's max_results.
Offset = Annotated[
    int,
    Query(
        description=f"rows to skip (0 to {OFFSET_MAX}); for an outside agency, offset + limit "
        "may not exceed the agreement's max_results",
        json_schema_extra={"minimum": 0, "maximum": OFFSET_MAX},
    ),
]
Limit = Annotated[
    int,
    Query(
        description=f"page size (1 to {PAGE_MAX}); at most the agreement's max_results",
        json_schema_extra={"minimum": 1, "maximum": PAGE_MAX},
    ),
]
Count = Annotated[
    bool,
    Query(
        description="count the visible rows (up to 200) even when this page does not tell the "
        "total; without it a full page reports 'at least' and has_more"
    ),
]


@router.get(
    "/persons",
    response_model=PersonPage,
    summary="Search persons",
    dependencies=[needs(Permission.RECORD_READ, Permission.EXTERNAL_QUERY)],
)
def search_persons(
    ctx: Ctx,
    context: Context,
    name: Annotated[
        str | None, Query(max_length=200, description="name prefix, case and accent insensitive")
    ] = None,
    birth_date: Annotated[
        date | None,
        Query(description="exact date of birth; refused where only the year is shown"),
    ] = None,
    birth_year: Annotated[
        int | None,
        Query(
            description="year of birth (persons born in that year)",
            json_schema_extra={"minimum": 1, "maximum": BIRTH_YEAR_MAX},
        ),
    ] = None,
    sid: Annotated[str | None, Query(max_length=20)] = None,
    fbi_number: Annotated[str | None, Query(max_length=20)] = None,
    offset: Offset = 0,
    limit: Limit | None = None,
    count: Count = False,
) -> PersonPage:
    """Search persons by name prefix, date or year of birth, SID or FBI number.

    A name search lists persons whose own name matches first, then persons who match only by
    an alias, each in name order. An outside agency may search only by fields its agreement
    shows whole (403 `criterion_not_allowed` otherwise; `birth_year` where only the year of
    birth is shown), aliases answer only where aliases are shown, results come in id order
    where names are not shown whole, and a search must give a name of at least 2 letters, a
    SID or an FBI number (403 `query_shape_not_allowed`).
    """
    query = PersonQuery(
        name=name,
        birth_date=birth_date,
        birth_year=birth_year,
        sid=sid,
        fbi_number=fbi_number,
        offset=offset,
        limit=limit,
        count=count,
    )
    with ctx.unit(external_role=True) as (session, principal):
        result = service.search_persons(session, principal=principal, query=query, context=context)
    return result


@router.get(
    "/persons/{person_id}",
    response_model=PersonResult,
    summary="Get a person",
    dependencies=[needs(Permission.RECORD_READ, Permission.EXTERNAL_QUERY)],
)
def get_person(person_id: RowId, ctx: Ctx, context: Context) -> PersonResult:
    """One person with every involvement you may see."""
    with ctx.unit(external_role=True) as (session, principal):
        result = service.get_person(
            session, principal=principal, person_id=person_id, context=context
        )
    return result


@router.get(
    "/arrests",
    response_model=ArrestPage,
    summary="Search arrests",
    dependencies=[needs(Permission.RECORD_READ, Permission.EXTERNAL_QUERY)],
)
def search_arrests(
    ctx: Ctx,
    context: Context,
    otn: Annotated[str | None, Query(max_length=20)] = None,
    incident_number: Annotated[str | None, Query(max_length=30)] = None,
    docket_number: Annotated[str | None, Query(max_length=30)] = None,
    arrested_from: Instant | None = None,
    arrested_to: Instant | None = None,
    statute: Annotated[str | None, Query(max_length=40, examples=["18 § 2701"])] = None,
    state: ArrestState | None = None,
    offset: Offset = 0,
    limit: Limit | None = None,
    count: Count = False,
) -> ArrestPage:
    """Search arrests by OTN, incident or docket number, date range, statute or state.

    Newest first. An outside agency may search only by fields its agreement shows whole (403
    `criterion_not_allowed` otherwise), gets results in id order where arrest times are not
    shown whole, and must give an OTN, incident or docket number (403
    `query_shape_not_allowed`): a date, state or statute alone is refused.
    """
    query = ArrestQuery(
        otn=otn,
        incident_number=incident_number,
        docket_number=docket_number,
        arrested_from=arrested_from,
        arrested_to=arrested_to,
        statute=statute,
        state=state,
        offset=offset,
        limit=limit,
        count=count,
    )
    with ctx.unit(external_role=True) as (session, principal):
        result = service.search_arrests(session, principal=principal, query=query, context=context)
    return result


@router.get(
    "/arrests/{arrest_id}",
    response_model=ArrestResult,
    summary="Get an arrest",
    dependencies=[needs(Permission.RECORD_READ, Permission.EXTERNAL_QUERY)],
)
def get_arrest(arrest_id: RowId, ctx: Ctx, context: Context) -> ArrestResult:
    """One arrest with everything in it you may see."""
    with ctx.unit(external_role=True) as (session, principal):
        result = service.get_arrest(
            session, principal=principal, arrest_id=arrest_id, context=context
        )
    return result
