"""The one audit path: every access appends its entry here, in the caller's transaction."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent
from openpars.audit.models import AuditEntry, AuditEntryContent, AuditSubject
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


def append(session: Session, event: AuditEvent, *, at: datetime | None = None) -> AuditEntry:
    """Append one entry in the caller's transaction; if this fails, the access fails."""
    moment = at or utcnow()
    content = canonical_bytes(entry_document(event, at=moment))
    salt = os.urandom(32)
    entry = AuditEntry(
        at=moment,
        kind=event.kind,
        action=event.action,
        outcome=event.outcome,
        user_id=event.user_id,
        agency_id=event.agency_id,
        agreement_id=event.agreement_id,
        commitment=commitment_of(salt, content),
    )
    try:
        session.add(entry)
        session.flush()
        session.add(AuditEntryContent(entry_id=entry.id, salt=salt, content=content))
        subjects = [AuditSubject(entry_id=entry.id, person_id=p) for p in set(event.person_ids)]
        subjects += [AuditSubject(entry_id=entry.id, arrest_id=a) for a in set(event.arrest_ids)]
        session.add_all(subjects)
        session.flush()
    except Exception as exc:
        raise AuditUnavailable(
            "the access could not be written to the audit log, so nothing is returned; "
            "check the database and try again"
        ) from exc
    repo.notify_appended(session)
    return entry
