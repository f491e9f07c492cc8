"""The one audit path: every access appends its entry here, in the caller's transaction."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent
from openpars.db import utcnow
from openpars.errors import AuditUnavailable


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8; the bytes the commitment is over."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def commitment_of(salt: bytes, content: bytes) -> bytes:
    """SHA-256(salt || content), the leaf data of the entry in the Merkle tree."""
    return hashlib.sha256(salt + content).digest()


def entry_document(event: AuditEvent, *, at: datetime) -> dict[str, Any]:
    """The full content of an entry as it is committed to."""
    return {
        "at": at.isoformat(timespec="microseconds"),
        "kind": event.kind.value,
        "action": event.action,
        "outcome": event.outcome.value,
        "user_id": event.user_id,
        "username": event.username,
        "agency_id": event.agency_id,
        "source_ip": event.source_ip,
        "params": event.params,
        "person_ids": sorted(set(event.person_ids)),
        "arrest_ids": sorted(set(event.arrest_ids)),
        "agreement_id": event.agreement_id,
        "agreement_version": event.agreement_version,
        "error_code": event.error_code,
    }


@dataclass(frozen=True, slots=True)
class Appended:
    """What an append wrote: the entry's id, instant and commitment."""

    id: int
    at: datetime
    commitment: bytes


def append_many(
    session: Session, events: Sequence[AuditEvent], *, at: datetime | None = None
) -> list[Appended]:
    """Append entries in the caller's transaction, one executemany per table (group commit).

    If this fails, the access fails: the caller gets AuditUnavailable and nothing is returned.
    Rows go in at the driver level because per-row ORM work costs more than the inserts.
    """
    try:
        ids = repo.reserve_entry_ids(session, len(events))
        randomness = os.urandom(32 * len(events))
        entries: list[tuple[Any, ...]] = []
        contents: list[tuple[int, bytes, bytes]] = []
        subjects: list[tuple[int, int | None, int | None]] = []
        written: list[Appended] = []
        for n, (entry_id, event) in enumerate(zip(ids, events, strict=True)):
            moment = at or utcnow()
            content = canonical_bytes(entry_document(event, at=moment))
            salt = randomness[32 * n : 32 * n + 32]
            commitment = commitment_of(salt, content)
            entries.append(
                (entry_id, moment, event.kind.value, event.action, event.outcome.value,
                 event.user_id, event.agency_id, event.agreement_id, commitment)
            )  # fmt: skip
            contents.append((entry_id, salt, content))
            subjects += [(entry_id, p, None) for p in sorted(set(event.person_ids))]
            subjects += [(entry_id, None, a) for a in sorted(set(event.arrest_ids))]
            written.append(Appended(id=entry_id, at=moment, commitment=commitment))
        repo.insert_entries_bulk(session, entries, contents, subjects)
    except Exception as exc:
        raise AuditUnavailable(
            "the access could not be written to the audit log, so nothing is returned; "
            "check the database and try again"
        ) from exc
    repo.notify_appended(session)
    return written


def append(session: Session, event: AuditEvent, *, at: datetime | None = None) -> Appended:
    """Append one entry in the caller's transaction; if this fails, the access fails."""
    return append_many(session, [event], at=at)[0]
