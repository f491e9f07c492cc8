"""Pydantic shapes of the audit log API: proofs, entries, receipts, witnesses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openpars.audit.events import AuditKind, Outcome
from openpars.ranges import RowId
from openpars.text import Line, Prose


class InclusionProofRead(BaseModel):
    """An RFC 9162 inclusion proof; hashes in standard base64, leaf end first."""

    index: int
    size: int
    proof: list[str]


class ConsistencyProofRead(BaseModel):
    """An RFC 9162 consistency proof from tree size `first` to `second`."""

    first: int
    second: int
    proof: list[str]


class EntryRead(BaseModel):
    """An audit entry for auditors; `content` is null once crypto-shredded."""

    id: int
    at: datetime
    kind: AuditKind
    action: str
    outcome: Outcome
    user_id: int | None
    agency_id: int | None
    commitment: str = Field(description="SHA-256(salt || content), hex; the Merkle leaf data")
    leaf_index: int | None = Field(description="null until the integrator has placed it")
    shredded: bool
    content: dict[str, Any] | None


class EntryPage(BaseModel):
    """A page of entries; pass `next_after_id` as `after_id` for the next page."""

    entries: list[EntryRead]
    next_after_id: int | None


class OwnEntryRead(BaseModel):
    """One entry recording the caller's own access: fetch its receipt by its id."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="the entry's id: GET /api/v1/audit/receipts/{id} proves it")
    at: datetime
    kind: AuditKind
    action: str = Field(description="what was done, e.g. arrest.get or GET /arrests/7 (refused)")
    outcome: Outcome


class OwnEntryPage(BaseModel):
    """A page of your own entries, newest first; pass `next_before_id` as `before_id` for the
    next (older) page; null on the last page."""

    entries: list[OwnEntryRead]
    next_before_id: int | None


class ReceiptRead(BaseModel):
    """An `openpars-receipt/v1` document: check it with 'openpars-verify receipt FILE'."""

    format: Literal["openpars-receipt/v1"]
    entry_id: int = Field(description="the id the OpenPARS-Audit-Entry header named")
    leaf_index: int = Field(description="the entry's position in the log (RFC 9162 leaf index)")
    tree_size: int = Field(description="the size of the checkpoint the proof leads to")
    shredded: bool = Field(description="true once crypto-shredded: no content and no salt")
    content: str | None = Field(description="the entry's canonical JSON content, base64")
    salt: str | None = Field(description="the entry's 32-byte salt, hex")
    commitment: str = Field(description="SHA-256(salt || content), hex; the Merkle leaf data")
    leaf_hash: str = Field(description="SHA-256(0x00 || commitment), hex")
    proof: list[str] = Field(description="inclusion proof, base64, leaf end first")
    checkpoint: str = Field(description="the signed checkpoint note with its cosignatures")


class WitnessRead(BaseModel):
    """A registered witness."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    vkey: str
    added_at: datetime
    removed_at: datetime | None


class CosignatureCreate(BaseModel):
    """A witness's cosignature: the signature line it printed (or the whole cosigned note)."""

    model_config = ConfigDict(extra="forbid")

    cosignature: Prose = Field(min_length=10, max_length=20_000)


class CosignatureRead(BaseModel):
    """The stored cosignature and whether the checkpoint is final."""

    size: int
    witness: str
    timestamp: int
    cosigners: int
    quorum: int
    final: bool


class ShredCreate(BaseModel):
    """A court order to carry out: shred the entries about one sealed or expunged record."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Not required by the schema: an attempt without an order is refused by the service, so
    # that it is audited like every other refused shredding (schema errors are not).
    order_reference: Line = Field(
        default="", max_length=100, description="The order recorded on the sealed record"
    )
    arrest_id: RowId | None = None
    person_id: RowId | None = None


class ShredRead(BaseModel):
    """What was shredded: the order and the id of every entry whose content is gone."""

    order_reference: str
    arrest_id: int | None
    person_id: int | None
    entry_ids: list[int]
