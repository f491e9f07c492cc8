"""Receipts: what an agency needs to check, alone, that an entry about its access is in the log.

A receipt (`openpars-receipt/v1`, docs/audit-export.md) holds the entry's leaf index, its
canonical content and salt (none once shredded), its commitment, an RFC 9162 inclusion proof to
a signed checkpoint and that checkpoint's note with its witness cosignatures. `openpars-verify
receipt` recomputes the commitment and the leaf hash from the content and salt and checks the
proof against the checkpoint's root, and the checkpoint against the pinned log and witness
keys, without trusting the server.

Who may fetch one: the user whose access the entry records, and internal auditors (the
`audit:read` permission). Colleagues in the same agency may not: an entry's parameters say what
that user searched for, and an external agency has no auditor role of its own. Anyone else gets
the same 404 as for an id that does not exist, so receipts are no oracle for which ids exist.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.audit import by_actor, checkpoints, merkle
from openpars.audit import repository as repo
from openpars.audit.events import AuditKind, event_by
from openpars.audit.log import inclusion_proof
from openpars.audit.models import AuditCheckpoint, AuditEntry
from openpars.audit.service import append
from openpars.errors import Conflict, NotFound
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission

FORMAT = "openpars-receipt/v1"
# How many of the newest covering checkpoints to try for one the witness quorum cosigned.
WITNESSED_LOOKBACK = 8


@dataclass(frozen=True, slots=True)
class Receipt:
    """An entry, where it sits in the tree, and the proof that it is there."""

    entry_id: int
    leaf_index: int
    tree_size: int
    commitment: bytes
    leaf_hash: bytes
    salt: bytes | None
    content: bytes | None
    proof: list[bytes]
    checkpoint: str

    def document(self) -> dict[str, Any]:
        """The receipt as its JSON document (`openpars-receipt/v1`)."""
        return {
            "format": FORMAT,
            "entry_id": self.entry_id,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "shredded": self.content is None,
            "content": None if self.content is None else _b64(self.content),
            "salt": None if self.salt is None else self.salt.hex(),
            "commitment": self.commitment.hex(),
            "leaf_hash": self.leaf_hash.hex(),
            "proof": [_b64(h) for h in self.proof],
            "checkpoint": self.checkpoint,
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def may_see(principal: Principal, entry: AuditEntry) -> bool:
    """Auditors see every entry; anyone else only the entries that record their own accesses."""
    if principal.can(Permission.AUDIT_READ):
        return True
    return principal.user_id is not None and entry.user_id == principal.user_id


def _checkpoint_for(session: Session, leaf_index: int, quorum: int) -> AuditCheckpoint | None:
    """The newest checkpoint covering the leaf that the witness quorum cosigned, else the newest.

    A checkpoint is signed before witnesses cosign it, so the newest may still lack them.
    """
    covering = repo.newest_checkpoints_from(session, leaf_index + 1, limit=WITNESSED_LOOKBACK)
    if quorum > 0:
        for candidate in covering:
            if checkpoints.is_final(session, candidate, quorum=quorum):
                return candidate
    return covering[0] if covering else None


def receipt(
    session: Session, *, principal: Principal, entry_id: int, quorum: int, retry_after_s: int
) -> Receipt:
    """The receipt of one entry; NotFound if it is not the caller's, Conflict if not yet signed."""
    entry = repo.get_entry(session, entry_id)
    # Someone else's entry is reported exactly like a missing one.
    if entry is None or not may_see(principal, entry):
        raise NotFound(f"no audit entry {entry_id} that you may see", field="entry_id")
    leaf = repo.leaf_of_entry(session, entry_id)
    checkpoint = None if leaf is None else _checkpoint_for(session, leaf.leaf_index, quorum)
    if leaf is None or checkpoint is None:
        raise Conflict(
            f"audit entry {entry_id} is not yet covered by a signed checkpoint; the log signs "
            f"one every few seconds while entries arrive: retry in {retry_after_s} seconds",
            code="not_yet_checkpointed",
            field="entry_id",
            details={"retry_after_s": retry_after_s},
        )
    proof = inclusion_proof(session, index=leaf.leaf_index, size=checkpoint.size)
    # Belt and braces: never hand out a receipt that would not verify.
    merkle.verify_inclusion(
        leaf.leaf_hash, leaf.leaf_index, checkpoint.size, proof, checkpoint.root
    )
    # Both NULL once shredded, never one alone (the table's check constraint).
    stored = repo.stored_content(entry)
    return Receipt(
        entry_id=entry_id,
        leaf_index=leaf.leaf_index,
        tree_size=checkpoint.size,
        commitment=entry.commitment,
        leaf_hash=leaf.leaf_hash,
        salt=None if stored is None else stored.salt,
        content=None if stored is None else stored.content,
        proof=proof,
        checkpoint=checkpoints.cosigned_note(session, checkpoint),
    )


def audited_receipt(
    session: Session,
    *,
    principal: Principal,
    entry_id: int,
    quorum: int,
    retry_after_s: int,
    via: str,
) -> Receipt:
    """``receipt`` with its own ``audit.receipt`` entry, in the same transaction: the one read
    path of a receipt for the API, the pages and the CLI (``via``: api, web or cli)."""
    found = receipt(
        session, principal=principal, entry_id=entry_id, quorum=quorum, retry_after_s=retry_after_s
    )
    append(
        session,
        event_by(
            principal,
            kind=AuditKind.AUDIT_READ,
            action="audit.receipt",
            params={
                "via": via,
                "entry_id": entry_id,
                "leaf_index": found.leaf_index,
                "tree_size": found.tree_size,
            },
        ),
    )
    return found


@dataclass(frozen=True, slots=True)
class OwnEntries:
    """A page of the caller's own entries, newest first; ``next_before_id``: pass it as
    ``before_id`` for the next (older) page, None on the last."""

    entries: list[AuditEntry]
    next_before_id: int | None


def own_entries(
    session: Session, *, principal: Principal, limit: int, before_id: int | None = None
) -> OwnEntries:
    """The newest entries recording the caller's own accesses, newest first, below
    ``before_id`` when given: the entries whose receipts they may fetch (``may_see``), without
    knowing the ids the API's header named. Not audited: see ``audited_own_entries``."""
    if principal.user_id is None:
        return OwnEntries([], None)
    # By user through by_actor: the integrator's index and the entries not integrated yet.
    mine = by_actor.entries_by(session.get_bind().dialect.name, "user_id", [principal.user_id])
    query = select(AuditEntry).where(AuditEntry.id.in_(mine))
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    rows = list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return OwnEntries(rows, rows[-1].id if more and rows else None)


def audited_own_entries(
    session: Session, *, principal: Principal, limit: int, before_id: int | None = None
) -> OwnEntries:
    """``own_entries`` with its own ``audit.own_entries`` entry, in the same transaction: the one
    read path of the caller's own entries for the API and the audit page. The listing shows the
    caller only their own entries, yet it is a read of the audit log like any other."""
    found = own_entries(session, principal=principal, limit=limit, before_id=before_id)
    ids = [e.id for e in found.entries]
    append(
        session,
        event_by(
            principal,
            kind=AuditKind.AUDIT_READ,
            action="audit.own_entries",
            params={
                "before_id": before_id,
                "limit": limit,
                "returned": len(ids),
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            },
        ),
    )
    return found
