"""Audit pages: the latest checkpoint and its cosignatures, an entry's inclusion proof (its
receipt), the entries for auditors, and the export for offline verification (docs/web.md).

The same services as ``/api/v1/audit/*``: ``checkpoints`` for the signed note, ``receipts`` for
an entry's proof (auditors: any entry; anyone else: only the entries recording their own
accesses, another's answered exactly like a missing one), ``export`` for the entries and the
download. Reads of entries, receipts and exports leave the same audit entries as the API's.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from openpars.audit import checkpoints, notes, receipts, witness
from openpars.audit import export as exporting
from openpars.audit.api import NOTE_MEDIA_TYPE, audit_event
from openpars.audit.events import AuditKind
from openpars.audit.service import append
from openpars.errors import InvalidInput, NotFound
from openpars.identity.names import names_of
from openpars.identity.roles import Permission
from openpars.ranges import INT64_MAX, AuditNumber, AuditSize
from openpars.web.context import Ctx
from openpars.web.pages.core import NAV, NavLink, area_router, page, render

router = area_router()
# Everyone may see the checkpoint and fetch receipts of their own accesses.
NAV.append(NavLink("Audit", "/audit"))

ENTRIES_PAGE = 50
# The caller's own newest entries listed on /audit, each linked to its proof.
OWN_ENTRIES = 20


@dataclass(frozen=True, slots=True)
class SignatureLine:
    """One signature of the checkpoint note: the log's own, or a witness's cosignature."""

    name: str
    witness: bool


@dataclass(frozen=True, slots=True)
class CheckpointView:
    """The newest checkpoint as the page shows it."""

    origin: str
    size: int
    root_hex: str
    root_b64: str
    note: str
    signatures: list[SignatureLine]
    cosigners: int
    quorum: int


def _checkpoint_view(session: Session, quorum: int) -> CheckpointView | None:
    try:
        latest = checkpoints.latest(session)
    except NotFound:
        return None
    note = checkpoints.cosigned_note(session, latest)
    parsed = notes.parse_note(note)
    body = notes.parse_checkpoint(parsed.text)
    active = {w["name"] for w in witness.active_set(session)}
    return CheckpointView(
        origin=body.origin,
        size=body.size,
        root_hex=body.root_hash.hex(),
        root_b64=base64.b64encode(body.root_hash).decode("ascii"),
        note=note,
        signatures=[SignatureLine(s.name, s.name in active) for s in parsed.signatures],
        cosigners=checkpoints.cosigner_count(session, latest),
        quorum=quorum,
    )


@router.get("/audit", response_class=HTMLResponse, dependencies=[page()])
def overview(
    ctx: Ctx,
    before_id: Annotated[
        AuditSize | None, Query(description="list your entries older than this one")
    ] = None,
) -> HTMLResponse:
    """The latest checkpoint; the caller's own newest entries (their receipts, as
    ``GET /api/v1/audit/own-entries``), a form for any entry's proof and (auditors) the export.
    The checkpoint is public; the list is audited by the receipts service."""
    with ctx.unit() as (session, principal):
        view = _checkpoint_view(session, ctx.settings.witness_quorum)
        auditor = principal.can(Permission.AUDIT_READ)
        own = receipts.audited_own_entries(
            session, principal=principal, limit=OWN_ENTRIES, before_id=before_id
        )
        mine = [
            {"id": e.id, "at": e.at, "action": e.action, "outcome": e.outcome.value}
            for e in own.entries
        ]
    return render(
        ctx.request,
        "audit/overview.html",
        {"checkpoint": view, "auditor": auditor, "mine": mine, "older": own.next_before_id},
    )


def _receipt(ctx: Ctx, entry_id: int) -> dict[str, Any]:
    retry = ctx.settings.receipt_retry_after_s
    with ctx.unit() as (session, principal):
        found = receipts.audited_receipt(
            session, principal=principal, entry_id=entry_id,
            quorum=ctx.settings.witness_quorum, retry_after_s=retry, via="web",
        )  # fmt: skip
    return found.document()


def _path(leaf_index: int, size: int, proof: list[str]) -> list[dict[str, Any]]:
    """Each proof hash with the side it joins on, walking up from the leaf (RFC 9162 2.1.3.2)."""
    steps: list[dict[str, Any]] = []
    index, last = leaf_index, size - 1
    for level, hashed in enumerate(proof):
        left = index % 2 == 1 or index == last
        steps.append(
            {"step": level + 1, "side": "left" if left else "right",
             "hex": base64.b64decode(hashed).hex()}
        )  # fmt: skip
        if left and index % 2 == 0:
            # A right-edge node without a sibling is carried up until it has one.
            while index % 2 == 0 and index != 0:
                index //= 2
                last //= 2
        index //= 2
        last //= 2
    return steps


@router.get("/audit/proof", response_class=HTMLResponse, dependencies=[page()])
def proof(ctx: Ctx, entry_id: AuditSize = Query(description="the audit entry")) -> HTMLResponse:
    """An entry's inclusion proof against the checkpoint that covers it (its receipt)."""
    document = _receipt(ctx, entry_id)
    checkpoint_text = notes.parse_note(document["checkpoint"]).text
    body = notes.parse_checkpoint(checkpoint_text)
    return render(
        ctx.request,
        "audit/proof.html",
        {
            "receipt": document,
            "path": _path(document["leaf_index"], document["tree_size"], document["proof"]),
            "root_hex": body.root_hash.hex(),
            "proof_hex": [base64.b64decode(h).hex() for h in document["proof"]],
        },
    )


@router.get("/audit/receipts/{entry_id}", dependencies=[page()])
def receipt_file(entry_id: AuditSize, ctx: Ctx) -> Response:
    """The receipt document to keep, as a file: check it with 'openpars-verify receipt FILE'."""
    document = _receipt(ctx, entry_id)
    return Response(
        json.dumps(document, indent=2) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="openpars-receipt-{entry_id}.json"'},
    )


@router.get(
    "/audit/entries", response_class=HTMLResponse, dependencies=[page(Permission.AUDIT_READ)]
)
def entries(ctx: Ctx, after_id: AuditNumber = 0) -> HTMLResponse:
    """A page of entries in id order (auditors), each linked to its proof."""
    with ctx.unit() as (session, principal):
        rows = exporting.list_entries(
            session, actor=principal, after_id=after_id, limit=ENTRIES_PAGE
        )
        ids = [r["id"] for r in rows]
        names = names_of(
            session,
            user_ids=[r["user_id"] for r in rows],
            agency_ids=[r["agency_id"] for r in rows],
        )
        append(
            session,
            audit_event(
                principal, AuditKind.AUDIT_READ, "audit.entries.list", after_id=after_id,
                limit=ENTRIES_PAGE, returned=len(ids), first_id=ids[0] if ids else None,
                last_id=ids[-1] if ids else None,
            ),
        )  # fmt: skip
    return render(
        ctx.request,
        "audit/entries.html",
        {
            "entries": rows,
            "names": names,
            "after_id": after_id,
            "next_after_id": ids[-1] if len(ids) == ENTRIES_PAGE else None,
        },
    )


def _leaf_number(text: str, field: str) -> int | None:
    """A form's whole number of leaves (empty: None), or InvalidInput naming the field."""
    text = text.strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or int(text) > INT64_MAX:
        raise InvalidInput(
            f"{field}: enter a whole number of entries from 0 to {INT64_MAX}",
            field=field,
        )
    return int(text)


@router.get(
    "/audit/export", response_class=StreamingResponse, dependencies=[page(Permission.AUDIT_READ)]
)
def export(
    ctx: Ctx,
    start: Annotated[str, Query(max_length=20, description="the first leaf")] = "0",
    end: Annotated[str, Query(max_length=20, description="a tree size; empty: newest")] = "",
) -> StreamingResponse:
    """The log from ``start`` to the newest checkpoint at or below ``end`` (as the API's).

    The form's empty fields mean "from the first entry" and "to the newest checkpoint"."""
    first = _leaf_number(start, "start") or 0
    last = _leaf_number(end, "end")
    with ctx.unit() as (session, principal):
        principal.require(Permission.AUDIT_READ)
        span = exporting.export_range(session, start=first, end=last)
        append(
            session,
            audit_event(
                principal, AuditKind.EXPORT, "audit.export", start=span.start, end=span.end
            ),
        )
    filename = f"openpars-audit-{span.start}-{span.end}.txt"
    return StreamingResponse(
        exporting.export_from(ctx.db, settings=ctx.settings, span=span),
        media_type=NOTE_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
