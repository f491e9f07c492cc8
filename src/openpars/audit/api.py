"""REST endpoints of the audit log: checkpoints, proofs, entries, export, receipts, witnesses.

The log's public key, the checkpoint, the proofs and cosignature submission are public and leave
no entry of their own: they carry only keys, hashes and signatures, and auditing them would make
the log feed itself (each witness cosignature would add an entry, so a new checkpoint, so a new
cosignature ...) and never let it settle. Cosignatures are kept in their own immutable table
instead. Reading entries, receipts, exports and the witness list are audited like any
other access.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from openpars.audit import checkpoints, log, receipts, witness
from openpars.audit import export as exporting
from openpars.audit.events import AuditEvent, AuditKind, event_by
from openpars.audit.schemas import (
    ConsistencyProofRead,
    CosignatureCreate,
    CosignatureRead,
    EntryPage,
    EntryRead,
    InclusionProofRead,
    OwnEntryPage,
    OwnEntryRead,
    ReceiptRead,
    ShredCreate,
    ShredRead,
    WitnessRead,
)
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.governance import service as proposals
from openpars.governance.schemas import ProposalRead, WitnessProposalCreate
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission
from openpars.pages import Page, PageSize, page_of
from openpars.ranges import AuditNumber, AuditSize, Offset
from openpars.records.versions import require_owner
from openpars.web.context import Ctx, needs, public

router = APIRouter(prefix="/audit", tags=["audit log"])

NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]


def audit_event(principal: Principal, kind: AuditKind, action: str, **params: Any) -> AuditEvent:
    """The audit entry of an audit-log access."""
    return event_by(principal, kind=kind, action=action, params=params)


@router.get("/checkpoint", response_class=PlainTextResponse, dependencies=[public()])
def latest_checkpoint(ctx: Ctx) -> PlainTextResponse:
    """The newest signed checkpoint with its witness cosignatures (C2SP signed note)."""
    with ctx.anonymous_unit() as session:
        note = checkpoints.cosigned_note(session, checkpoints.latest(session))
    return PlainTextResponse(note, media_type=NOTE_MEDIA_TYPE)


@router.get("/key", response_class=PlainTextResponse, dependencies=[public()])
def log_key(ctx: Ctx) -> PlainTextResponse:
    """The log's public (verifier) key, one line, for 'openpars-verify --log-key'."""
    with ctx.anonymous_unit() as session:
        vkey = checkpoints.public_key(ctx.settings, session)
    return PlainTextResponse(vkey + "\n", media_type=NOTE_MEDIA_TYPE)


@router.get("/proof/inclusion", response_model=InclusionProofRead, dependencies=[public()])
def inclusion_proof(ctx: Ctx, index: AuditNumber, size: AuditSize) -> InclusionProofRead:
    """The inclusion proof of leaf `index` in the tree of `size`."""
    with ctx.anonymous_unit() as session:
        proof = log.inclusion_proof(session, index=index, size=size)
    return InclusionProofRead(index=index, size=size, proof=_b64(proof))


@router.get("/proof/consistency", response_model=ConsistencyProofRead, dependencies=[public()])
def consistency_proof(ctx: Ctx, first: AuditSize, second: AuditSize) -> ConsistencyProofRead:
    """The consistency proof between tree sizes `first` and `second`."""
    with ctx.anonymous_unit() as session:
        proof = log.consistency_proof(session, first=first, second=second)
    return ConsistencyProofRead(first=first, second=second, proof=_b64(proof))


@router.get("/entries", response_model=EntryPage, dependencies=[needs(Permission.AUDIT_READ)])
def list_entries(
    ctx: Ctx,
    after_id: Annotated[AuditNumber, Query(description="return entries with a larger id")] = 0,
    limit: int | None = Query(None, ge=1),
) -> EntryPage:
    """A page of audit entries in id order (auditors); this read is itself audited."""
    size = min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
    with ctx.unit() as (session, principal):
        rows = exporting.list_entries(session, actor=principal, after_id=after_id, limit=size)
        page = EntryPage(
            entries=[EntryRead.model_validate(r) for r in rows],
            next_after_id=rows[-1]["id"] if len(rows) == size else None,
        )
        ids = [r["id"] for r in rows]
        append(
            session,
            audit_event(
                principal, AuditKind.AUDIT_READ, "audit.entries.list", after_id=after_id,
                limit=size, returned=len(ids), first_id=ids[0] if ids else None,
                last_id=ids[-1] if ids else None,
            ),
        )  # fmt: skip
    return page


@router.get("/own-entries", response_model=OwnEntryPage, dependencies=[needs()])
def own_entries(
    ctx: Ctx,
    before_id: Annotated[
        AuditSize | None, Query(description="return entries with a smaller id (the next page)")
    ] = None,
    limit: int | None = Query(None, ge=1),
) -> OwnEntryPage:
    """The entries recording your own accesses, newest first: the ones whose receipts you may
    fetch (GET /audit/receipts/{id}). Any user; this read is itself audited."""
    size = min(limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
    with ctx.unit() as (session, principal):
        found = receipts.audited_own_entries(
            session, principal=principal, limit=size, before_id=before_id
        )
        page = OwnEntryPage(
            entries=[OwnEntryRead.model_validate(e) for e in found.entries],
            next_before_id=found.next_before_id,
        )
    return page


@router.get(
    "/export", response_class=StreamingResponse, dependencies=[needs(Permission.AUDIT_READ)]
)
def export(ctx: Ctx, start: AuditNumber = 0, end: AuditNumber | None = None) -> StreamingResponse:
    """The log from `start` to the newest checkpoint at or below `end`, for openpars-verify."""
    with ctx.unit() as (session, principal):
        principal.require(Permission.AUDIT_READ)
        span = exporting.export_range(session, start=start, end=end)
        append(
            session,
            audit_event(
                principal, AuditKind.EXPORT, "audit.export", start=span.start, end=span.end
            ),
        )
    # The EXPORT entry is committed above, before the first line leaves the server.
    db, settings = ctx.db, ctx.settings

    filename = f"openpars-audit-{span.start}-{span.end}.txt"
    return StreamingResponse(
        exporting.export_from(db, settings=settings, span=span),
        media_type=NOTE_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/receipts/{entry_id}",
    response_model=ReceiptRead,
    # The body is exactly the receipt document the agency keeps; this read's own audit entry
    # is named in the OpenPARS-Audit-Entry header only.
    response_class=JSONResponse,
    dependencies=[needs()],
    responses={
        409: {
            "description": "the entry is not yet covered by a signed checkpoint "
            "(code not_yet_checkpointed); retry after details.retry_after_s seconds"
        }
    },
)
def receipt(entry_id: AuditSize, ctx: Ctx) -> ReceiptRead:
    """The receipt of an entry that records your own access (auditors: any entry)."""
    retry = ctx.settings.receipt_retry_after_s
    with ctx.unit() as (session, principal):
        found = receipts.audited_receipt(
            session, principal=principal, entry_id=entry_id,
            quorum=ctx.settings.witness_quorum, retry_after_s=retry, via="api",
        )  # fmt: skip
    return ReceiptRead.model_validate(found.document())


@router.post(
    "/checkpoints/{size}/cosignatures",
    response_model=CosignatureRead,
    status_code=201,
    dependencies=[public()],
)
def submit_cosignature(size: AuditSize, body: CosignatureCreate, ctx: Ctx) -> CosignatureRead:
    """A registered witness cosigns the checkpoint of `size` (its signature is its credential)."""
    quorum = ctx.settings.witness_quorum
    with ctx.anonymous_unit() as session:
        done = witness.submit_cosignature(
            session, size=size, cosignature=body.cosignature, quorum=quorum
        )
        result = CosignatureRead(
            size=size,
            witness=done.witness,
            timestamp=done.cosignature.timestamp,
            cosigners=done.cosigners,
            quorum=quorum,
            final=done.final,
        )
    return result


@router.get(
    "/witnesses",
    response_model=Page[WitnessRead],
    dependencies=[needs(*witness.READERS)],
)
def list_witnesses(ctx: Ctx, offset: Offset = 0, limit: PageSize = 50) -> Page[WitnessRead]:
    """Registered witnesses, removed ones included (administrators and auditors)."""
    with ctx.unit() as (session, principal):
        rows = [
            WitnessRead.model_validate(w) for w in witness.list_witnesses(session, actor=principal)
        ]
        append(session, audit_event(principal, AuditKind.AUDIT_READ, "audit.witnesses.list"))
    return page_of(rows, offset=offset, limit=limit)


@router.post(
    "/witnesses/proposals",
    response_model=ProposalRead,
    status_code=201,
    dependencies=[needs()],
    responses={403: {"description": "not a designated voter of a stakeholder on the board"}},
)
def propose_witness_change(body: WitnessProposalCreate, ctx: Ctx) -> ProposalRead:
    """Propose adding or removing one witness; the board decides it by its quorum of signed votes.

    Only a stakeholder's designated voter may propose; nobody changes the witnesses alone (the
    site administrator least of all: the witnesses watch the log it runs).
    """
    with ctx.unit() as (session, principal):
        proposal = proposals.open_proposal(session, actor=principal, data=body.proposal())
        result = proposals.proposal_read(session, proposal, now=utcnow())
    return result


@router.post(
    "/shred",
    response_model=ShredRead,
    dependencies=[needs(Permission.RECORD_SEAL)],
    summary="Shred the entries about a sealed or expunged record, under its court order",
)
def shred(body: ShredCreate, ctx: Ctx) -> ShredRead:
    """Court, with sealed access. Refused unless the order is the one recorded on the record."""
    with ctx.unit() as (session, principal):
        require_owner(principal, Permission.RECORD_SEAL, AgencyKind.COURT, "shredding")
        # Whether a record is sealed, and under which order, is itself sealed information.
        principal.require(Permission.SEALED_READ)
        ids = log.shred(
            session, actor=principal, order_reference=body.order_reference,
            arrest_id=body.arrest_id, person_id=body.person_id,
        )  # fmt: skip
        result = ShredRead(
            order_reference=body.order_reference, arrest_id=body.arrest_id,
            person_id=body.person_id, entry_ids=ids,
        )  # fmt: skip
    return result
