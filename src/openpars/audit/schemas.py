"""Pydantic shapes of the audit log API: proofs, entries, receipts, witnesses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from openpars.audit.events import AuditKind, Outcome
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


class ReceiptRead(BaseModel):
    """Proof that an entry is in the log, against the newest signed checkpoint."""

    entry: EntryRead
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || commitment), hex")
    proof: list[str] = Field(description="inclusion proof, base64, leaf end first")
    checkpoint: str = Field(description="the signed checkpoint note with its cosignatures")


class WitnessCreate(BaseModel):
    """A witness to register, by its C2SP cosignature/v1 verifier key."""

    model_config = ConfigDict(extra="forbid")

    vkey: Line = Field(min_length=10, max_length=300, description="name+keyid+base64(0x04||key)")


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
