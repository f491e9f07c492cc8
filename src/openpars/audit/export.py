"""Reading the log out: the verifiable export and paged entries for auditors.

The export is the `openpars-audit-export/v1` line format of docs/audit-export.md, which the
independent `openpars-verify export` command checks:

    openpars-audit-export/v1 <first index> <origin>
    frontier <hex> ...                       (only when the first index is not 0)
    entry <index> <commitment hex> <salt hex> <content base64>
    shredded <index> <commitment hex>        (an entry whose salt and content were shredded)
    checkpoint <base64 of the cosigned note> (after the entry that makes the tree that size)
    end <size>
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from openpars.audit import checkpoints
from openpars.audit import repository as repo
from openpars.audit.checkpoints import log_origin
from openpars.audit.log import load_frontier
from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database
from openpars.errors import InvalidInput
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission

FORMAT = "openpars-audit-export/v1"
EXPORT_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class ExportRange:
    """The leaves an export covers: [start, end), where `end` is a checkpoint size."""

    start: int
    end: int


def export_range(session: Session, *, start: int = 0, end: int | None = None) -> ExportRange:
    """Resolve a requested range; `end` snaps down to the newest checkpoint at or below it."""
    if start < 0:
        raise InvalidInput(f"start must be 0 or more, not {start}", field="start")
    limit = end if end is not None else repo.tree_size(session)
    checkpoint = repo.latest_checkpoint_at_most(session, limit)
    # Every entry in an export must be covered by a signed checkpoint, so the export ends at one.
    if checkpoint is None or checkpoint.size < start:
        raise InvalidInput(
            f"no signed checkpoint between start {start} and end {limit}; wait for the "
            "next checkpoint (at most a minute) or widen the range",
            field="end",
        )
    return ExportRange(start, checkpoint.size)


def export(
    session: Session, *, settings: Settings, start: int = 0, end: int | None = None
) -> Iterator[str]:
    """Yield the export lines (each ending in a newline) for leaves [start, end)."""
    span = export_range(session, start=start, end=end)
    return _lines(lambda: nullcontext(session), settings, span)


def export_from(db: Database, *, settings: Settings, span: ExportRange) -> Iterator[str]:
    """The same lines, reading each chunk in its own short transaction.

    On SQLite every transaction holds the write lock, and every request appends an entry,
    so a long export must not keep one transaction open while the client reads slowly.
    """
    return _lines(db.session, settings, span)


def _lines(
    open_session: Callable[[], AbstractContextManager[Session]],
    settings: Settings,
    span: ExportRange,
) -> Iterator[str]:
    with open_session() as session:
        head = [f"{FORMAT} {span.start} {log_origin(settings)}\n"]
        if span.start > 0:
            frontier = load_frontier(session, span.start)
            head.append("frontier " + " ".join(h.hex() for h in frontier.hashes) + "\n")
        notes_by_size = {
            c.size: checkpoints.cosigned_note(session, c)
            for c in repo.checkpoints_between(session, span.start, span.end)
        }
    if span.start in notes_by_size:
        head.append(_checkpoint_line(notes_by_size[span.start]))
    yield from head
    for chunk_start in range(span.start, span.end, EXPORT_CHUNK):
        chunk_end = min(chunk_start + EXPORT_CHUNK, span.end)
        with open_session() as session:
            rows = repo.export_rows(session, start=chunk_start, end=chunk_end)
        for index, commitment, salt, content in rows:
            if salt is None or content is None:
                yield f"shredded {index} {commitment.hex()}\n"
            else:
                encoded = base64.b64encode(content).decode("ascii")
                yield f"entry {index} {commitment.hex()} {salt.hex()} {encoded}\n"
            note = notes_by_size.get(index + 1)
            if note is not None:
                yield _checkpoint_line(note)
    yield f"end {span.end}\n"


def _checkpoint_line(note: str) -> str:
    return "checkpoint " + base64.b64encode(note.encode("utf-8")).decode("ascii") + "\n"


def entry_read(
    entry: AuditEntry, content: repo.StoredContent | None, leaf_index: int | None
) -> dict[str, Any]:
    """An entry as auditors see it: its columns, leaf index, and content unless shredded."""
    return {
        "id": entry.id,
        "at": entry.at,
        "kind": entry.kind.value,
        "action": entry.action,
        "outcome": entry.outcome.value,
        "user_id": entry.user_id,
        "agency_id": entry.agency_id,
        "commitment": entry.commitment.hex(),
        "leaf_index": leaf_index,
        "shredded": content is None,
        "content": None if content is None else json.loads(content.content),
    }


def list_entries(
    session: Session, *, actor: Principal, after_id: int = 0, limit: int = 50
) -> list[dict[str, Any]]:
    """A page of entries in id order after `after_id` (auditors)."""
    actor.require(Permission.AUDIT_READ)
    return [
        entry_read(e, c, i)
        for e, c, i in repo.list_entries(session, after_id=after_id, limit=limit)
    ]
