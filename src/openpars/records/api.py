"""REST endpoints of the records write side: intake, workflow, amendments, sealing, history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from openpars.identity.roles import Permission
from openpars.pages import Page, PageSize, Results, page_of
from openpars.ranges import Offset, RowId
from openpars.records import batch, service
from openpars.records.batch import MAX_BATCH, BatchItemResult, BatchRefusal
from openpars.records.enums import VersionedEntity
from openpars.records.models import Arrest
from openpars.records.schemas import (
    ArraignmentCreate,
    ArrestAmend,
    ArrestCreate,
    ArrestCreated,
    ArrestWritten,
    BailRecommendationCreate,
    CandidateRead,
    ChargingDecisionCreate,
    CustodyCreate,
    PersonAmend,
    PersonIn,
    PersonWritten,
    SealCreate,
    VersionRead,
)
from openpars.web.context import Ctx, needs

router = APIRouter(tags=["records"])

_ERRORS: dict[int | str, dict[str, object]] = {
    403: {"description": "the account or its agency may not do this step"},
    404: {"description": "no such record (or one the caller may not see)"},
    409: {"description": "the step clashes with the record's current state"},
    422: {"description": "the payload breaks a rule; error.field names the field"},
}


def written(arrest: Arrest) -> ArrestWritten:
    """Shape the result of a write to an arrest."""
    return ArrestWritten(
        arrest_id=arrest.id,
        state=arrest.state,
        version=arrest.version,
        sealed=arrest.sealed_at is not None,
        expunged=arrest.expunged_at is not None,
        docket_number=arrest.docket_number,
    )


@router.post(
    "/arrests",
    response_model=ArrestCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Submit an arrest with its persons, roles and recommended charges",
    responses={
        200: {"model": ArrestCreated, "description": "a resend: the arrest stored before"},
        **_ERRORS,
    },
    dependencies=[needs(Permission.ARREST_CREATE)],
)
def submit_arrest(body: ArrestCreate, ctx: Ctx, response: Response) -> ArrestCreated:
    """Police intake. The report id is the idempotency key: a resend returns the same arrest.

    A person you can see whose SID or FBI number matches is linked automatically (a sealed
    record counts as unknown: a new person is created). The ORI must be your agency's or one
    of its sub-units'. When existing persons
    only resemble one being entered, the answer is 409 `person_match_required` with the
    candidates; resend with `person_id` or `create_new_person: true` for that involvement.
    """
    with ctx.unit() as (session, principal):
        result = service.submit_arrest(
            session, actor=principal, data=body, earliest=ctx.settings.earliest_arrest_date
        )
    if result.replayed:
        response.status_code = status.HTTP_200_OK
    return result


@router.post(
    "/arrests/batch",
    response_model=Results[ArrestCreated | BatchRefusal],
    summary="Submit up to 500 arrests at once; one result per arrest, in order",
    responses=_ERRORS,
    dependencies=[needs(Permission.ARREST_CREATE)],
)
def submit_arrest_batch(
    body: Annotated[list[ArrestCreate], Body(min_length=1, max_length=MAX_BATCH)], ctx: Ctx
) -> Results[BatchItemResult]:
    """Police intake in bulk, with exactly the rules of `POST /arrests` for each arrest.

    The answer is 200 with `items`, one result per arrest, in the order sent, and the batch's
    first `audit_entry` (the header lists one entry per arrest): what `POST /arrests` returns
    for it, or a
    refusal (`refused: true`, with the status, code, field and message a single submission
    would have got). A refused arrest writes nothing; the others are written. A payload that
    breaks the schema is refused whole (422, the field names the item). The request-size
    limit applies, so very long narratives need smaller batches.
    """
    with ctx.unit() as (session, principal):
        result = batch.submit_arrests(
            session, actor=principal, items=body, earliest=ctx.settings.earliest_arrest_date
        )
    return Results[BatchItemResult](items=result)


@router.post(
    "/persons/match",
    response_model=Results[CandidateRead],
    summary="List existing persons who may be the person being entered",
    responses=_ERRORS,
    dependencies=[needs(Permission.ARREST_CREATE)],
)
def match_persons(body: PersonIn, ctx: Ctx, limit: int = 10) -> Results[CandidateRead]:
    """Candidates by name, aliases and birth date, best first (at most ``limit``, 50 at most),
    for intake to choose from."""
    with ctx.unit() as (session, principal):
        result = service.match_candidates(
            session, actor=principal, person=body, limit=max(1, min(limit, 50))
        )
    return Results[CandidateRead](items=result)


@router.post(
    "/arrests/{arrest_id}/charging-decision",
    response_model=ArrestWritten,
    status_code=status.HTTP_201_CREATED,
    summary="Record the DA's charging decision (approved, declined, modified)",
    responses=_ERRORS,
    dependencies=[needs(Permission.CHARGE_DECIDE)],
)
def decide_charges(arrest_id: RowId, body: ChargingDecisionCreate, ctx: Ctx) -> ArrestWritten:
    """DA charging unit. A new decision on a charged arrest adds a new approved revision."""
    with ctx.unit() as (session, principal):
        result = written(
            service.decide_charges(session, actor=principal, arrest_id=arrest_id, data=body)
        )
    return result


@router.post(
    "/arrests/{arrest_id}/bail-recommendation",
    response_model=ArrestWritten,
    status_code=status.HTTP_201_CREATED,
    summary="Record pretrial services' bail recommendation",
    responses=_ERRORS,
    dependencies=[needs(Permission.BAIL_RECOMMEND)],
)
def recommend_bail(arrest_id: RowId, body: BailRecommendationCreate, ctx: Ctx) -> ArrestWritten:
    """Pretrial services, on a charged arrest."""
    with ctx.unit() as (session, principal):
        result = written(
            service.recommend_bail(session, actor=principal, arrest_id=arrest_id, data=body)
        )
    return result


@router.post(
    "/arrests/{arrest_id}/arraignment",
    response_model=ArrestWritten,
    status_code=status.HTTP_201_CREATED,
    summary="Record the preliminary arraignment (bail, hearing date, docket number)",
    responses=_ERRORS,
    dependencies=[needs(Permission.ARRAIGN)],
)
def arraign(arrest_id: RowId, body: ArraignmentCreate, ctx: Ctx) -> ArrestWritten:
    """Arraignment court, on a charged arrest; the docket number must be unused."""
    with ctx.unit() as (session, principal):
        result = written(service.arraign(session, actor=principal, arrest_id=arrest_id, data=body))
    return result


@router.post(
    "/arrests/{arrest_id}/custody",
    response_model=ArrestWritten,
    status_code=status.HTTP_201_CREATED,
    summary="Record release or commitment after the arraignment",
    responses=_ERRORS,
    dependencies=[needs(Permission.RELEASE)],
)
def record_custody(arrest_id: RowId, body: CustodyCreate, ctx: Ctx) -> ArrestWritten:
    """Court, on an arraigned arrest; ends the workflow."""
    with ctx.unit() as (session, principal):
        result = written(
            service.record_custody(session, actor=principal, arrest_id=arrest_id, data=body)
        )
    return result


@router.patch(
    "/arrests/{arrest_id}",
    response_model=ArrestWritten,
    summary="Amend or correct an arrest (with a reason); the earlier version is kept",
    responses=_ERRORS,
    dependencies=[needs(Permission.ARREST_AMEND)],
)
def amend_arrest(arrest_id: RowId, body: ArrestAmend, ctx: Ctx) -> ArrestWritten:
    """Only the fields given change; see the history for every earlier version."""
    with ctx.unit() as (session, principal):
        result = written(
            service.amend_arrest(
                session,
                actor=principal,
                arrest_id=arrest_id,
                data=body,
                earliest=ctx.settings.earliest_arrest_date,
            )
        )
    return result


@router.patch(
    "/persons/{person_id}",
    response_model=PersonWritten,
    summary="Amend or correct a person (with a reason); the earlier version is kept",
    responses=_ERRORS,
    dependencies=[needs(Permission.ARREST_AMEND)],
)
def amend_person(person_id: RowId, body: PersonAmend, ctx: Ctx) -> PersonWritten:
    """Only the fields given change; juvenile flags follow a changed birth date."""
    with ctx.unit() as (session, principal):
        person = service.amend_person(session, actor=principal, person_id=person_id, data=body)
        result = PersonWritten(person_id=person.id, version=person.version)
    return result


@router.post(
    "/arrests/{arrest_id}/seal",
    response_model=ArrestWritten,
    summary="Seal, unseal or expunge an arrest by court order",
    responses=_ERRORS,
    dependencies=[needs(Permission.RECORD_SEAL)],
)
def seal_arrest(arrest_id: RowId, body: SealCreate, ctx: Ctx) -> ArrestWritten:
    """Court. A sealed or expunged arrest disappears from every ordinary view."""
    with ctx.unit() as (session, principal):
        result = written(
            service.seal_arrest(session, actor=principal, arrest_id=arrest_id, data=body)
        )
    return result


@router.get(
    "/arrests/{arrest_id}/history",
    response_model=Page[VersionRead],
    summary="Every version of an arrest: who changed it, when and why",
    responses=_ERRORS,
    dependencies=[needs(Permission.RECORD_READ)],
)
def arrest_history(
    arrest_id: RowId, ctx: Ctx, offset: Offset = 0, limit: PageSize = 50
) -> Page[VersionRead]:
    """Internal readers only, oldest first; each snapshot is the full arrest as of that
    version."""
    return _history(ctx, VersionedEntity.ARREST, arrest_id, offset=offset, limit=limit)


@router.get(
    "/persons/{person_id}/history",
    response_model=Page[VersionRead],
    summary="Every version of a person: who changed it, when and why",
    responses=_ERRORS,
    dependencies=[needs(Permission.RECORD_READ)],
)
def person_history(
    person_id: RowId, ctx: Ctx, offset: Offset = 0, limit: PageSize = 50
) -> Page[VersionRead]:
    """Internal readers only, oldest first; each snapshot is the full person as of that
    version."""
    return _history(ctx, VersionedEntity.PERSON, person_id, offset=offset, limit=limit)


def _history(
    ctx: Ctx, entity: VersionedEntity, entity_id: int, *, offset: int, limit: int
) -> Page[VersionRead]:
    with ctx.unit() as (session, principal):
        rows = service.history(session, actor=principal, entity=entity, entity_id=entity_id)
        result = [VersionRead.model_validate(row) for row in rows]
    return page_of(result, offset=offset, limit=limit)
