"""Read endpoints for persons and arrests; every one goes through the enforcement point."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from openpars.access import service
from openpars.access.schemas import (
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
Offset = Annotated[int, Query(ge=0, le=100_000)]
Limit = Annotated[int, Query(ge=1, le=500)]
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
    birth_date: date | None = None,
    sid: Annotated[str | None, Query(max_length=20)] = None,
    fbi_number: Annotated[str | None, Query(max_length=20)] = None,
    offset: Offset = 0,
    limit: Limit | None = None,
    count: Count = False,
) -> PersonPage:
    """Search persons by name prefix, date of birth, SID or FBI number.

    A name search lists persons whose own name matches first, then persons who match only by
    an alias, each in name order.
    """
    query = PersonQuery(
        name=name,
        birth_date=birth_date,
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
    """Search arrests by OTN, incident or docket number, date range, statute or state."""
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
