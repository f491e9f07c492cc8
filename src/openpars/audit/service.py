"""The one audit path: every access appends its entry here, in the caller's transaction."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from openpars.audit import repository as repo

# canonical_bytes: re-exported, where callers have always found it.
from openpars.audit.canonical import KIND_VALUES, OUTCOME_VALUES, entry_text
from openpars.audit.canonical import canonical_bytes as canonical_bytes
from openpars.audit.events import AuditEvent
from openpars.audit.recorded import note_appended
from openpars.db import COMMITS_WITH_ENTRY, COMMITTED_WITH_ENTRY, utcnow
from openpars.errors import AuditUnavailable
from openpars.prepared import connection_of, pipeline

_sha256 = hashlib.sha256
R = TypeVar("R")


def commitment_of(salt: bytes, content: bytes) -> bytes:
    """SHA-256(salt || content), the leaf data of the entry in the Merkle tree."""
    return _sha256(salt + content).digest()


def entry_document(event: AuditEvent, *, at: datetime) -> dict[str, Any]:
    """The full content of an entry as it is committed to."""
    iso = at.isoformat(timespec="microseconds")
    return _document(event, iso, event.kind.value, event.outcome.value)


def _document(event: AuditEvent, at_iso: str, kind: str, outcome: str) -> dict[str, Any]:
    return {
        "at": at_iso,
        "kind": kind,
        "action": event.action,
        "outcome": outcome,
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


def _stored_time(moment: datetime, iso: str, sqlite: bool) -> datetime | str:
    """The instant as the driver stores a UTCDateTime: naive UTC text on SQLite."""
    if not sqlite:
        return moment
    if iso.endswith("+00:00"):  # the ISO form already holds the text
        return f"{iso[:10]} {iso[11:26]}"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _instant(moment: datetime, sqlite: bool) -> tuple[str, datetime | str]:
    """The entry's instant as its document writes it (``isoformat`` to the microsecond) and as
    the driver stores it (``_stored_time``).

    An instant in UTC (every request's, ``db.utcnow``) is written from its fields in one
    printf-style format, the same text in a quarter fewer instructions than ``isoformat``
    (whose offset goes through C's snprintf); any other the long way.
    """
    if moment.tzinfo is not UTC:
        iso = moment.isoformat(timespec="microseconds")
        return iso, _stored_time(moment, iso, sqlite)
    # A printf-style format: one call, measured cheaper than seven format specs.
    stored = "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
        moment.microsecond,
    )  # fmt: skip
    return f"{stored[:10]}T{stored[11:]}+00:00", stored if sqlite else moment


def _row(event: AuditEvent, iso: str, stored: datetime | str, salt: bytes) -> repo.EntryRow:
    """The rows of one event: its canonical content, the salt, the commitment over both.

    The content is ``canonical_bytes(entry_document(event))``, written without the document
    (``canonical.entry_text``).
    """
    persons = sorted(set(event.person_ids)) if event.person_ids else []
    arrests = sorted(set(event.arrest_ids)) if event.arrest_ids else []
    content = entry_text(event, iso, persons, arrests).encode("utf-8")
    return repo.EntryRow(
        (stored, KIND_VALUES[event.kind], event.action, OUTCOME_VALUES[event.outcome],
         event.user_id, event.agency_id, event.agreement_id, _sha256(salt + content).digest()),
        salt,
        content,
        persons,
        arrests,
    )  # fmt: skip


def _write(
    session: Session, events: Sequence[AuditEvent], moment: datetime
) -> tuple[list[int], list[repo.EntryRow]]:
    """Insert the entries' rows, each with a fresh salt; any failure becomes AuditUnavailable.

    One event (every audited request) skips the group commit's shared randomness and slicing.
    """
    try:
        connection = connection_of(session)
        iso, stored = _instant(moment, connection.dialect.name == "sqlite")
        if len(events) == 1:
            rows = [_row(events[0], iso, stored, os.urandom(32))]
            ids = [repo.insert_entry(connection, rows[0])]
        else:
            randomness = os.urandom(32 * len(events))
            rows = [
                _row(event, iso, stored, randomness[32 * n : 32 * n + 32])
                for n, event in enumerate(events)
            ]
            ids = repo.insert_entries_bulk(connection, rows)
    except Exception as exc:
        raise AuditUnavailable(
            "the access could not be written to the audit log, so nothing is returned; "
            "check the database and try again"
        ) from exc
    repo.notify_appended(session)
    # The request's response names the entries once their transaction commits.
    note_appended(session, ids)
    return ids, rows


def append_many(
    session: Session, events: Sequence[AuditEvent], *, at: datetime | None = None
) -> list[Appended]:
    """Append entries in the caller's transaction, a few statements per table (group commit).

    If this fails, the access fails: the caller gets AuditUnavailable and nothing is returned.
    Rows go in at the driver level because per-row ORM work costs more than the inserts. The
    entries of one call are appended at one instant (`at`, by default now), in one transaction.
    """
    if not events:
        return []
    moment = at or utcnow()
    ids, rows = _write(session, events, moment)
    return [
        Appended(id=entry_id, at=moment, commitment=row.entry[-1])
        for entry_id, row in zip(ids, rows, strict=True)
    ]


def append_many_ids(
    session: Session, events: Sequence[AuditEvent], *, at: datetime | None = None
) -> list[int]:
    """`append_many` returning only the new ids: a large group commit needs no more."""
    if not events:
        return []
    return _write(session, events, at or utcnow())[0]


def append(session: Session, event: AuditEvent, *, at: datetime | None = None) -> Appended:
    """Append one entry in the caller's transaction; if this fails, the access fails.

    The request path: straight to `_write`, without `append_many`'s lists (in a request, with
    little of this code in the CPU caches, the layers cost a few µs).
    """
    moment = at or utcnow()
    ids, rows = _write(session, (event,), moment)
    return Appended(id=ids[0], at=moment, commitment=rows[0].entry[-1])


def append_sending(
    session: Session, event: AuditEvent, sends: Callable[[], R], *, at: datetime | None = None
) -> tuple[Appended, R]:
    """``append``, with the statements ``sends`` sends in the same round trip (a pipeline on
    PostgreSQL): a read's last statements travel with its entry. ``sends`` returns what reads
    its results; they are read after the entry is written. If anything here fails, the access
    fails as with ``append``: AuditUnavailable, nothing returned.
    """
    moment = at or utcnow()
    commits = _commits_with_entry(session)
    try:
        connection = connection_of(session)
        sqlite = connection.dialect.name == "sqlite"
        iso, stored = _instant(moment, sqlite)
        row = _row(event, iso, stored, os.urandom(32))
        if sqlite:
            # No round trip to share: the entry, then the read's last statements, in order.
            entry_id = repo.insert_entry(connection, row)
            sent = sends()
        else:
            with pipeline(session):
                read_id = repo.send_entry(connection, row)
                sent = sends()
                if commits:
                    # The entry, the read's last statements and the COMMIT leave together with
                    # the pipeline's closing sync: one round trip. (The driver's commit() would
                    # sync once more.) If the entry fails, the pipeline skips the COMMIT.
                    connection.connection.driver_connection.cursor().execute("COMMIT")  # type: ignore[union-attr]
            entry_id = read_id()
    except Exception as exc:
        raise AuditUnavailable(
            "the access could not be written to the audit log, so nothing is returned; "
            "check the database and try again"
        ) from exc
    repo.notify_appended(session)
    note_appended(session, [entry_id])
    if commits:
        session.info[COMMITTED_WITH_ENTRY] = True
        session.commit()  # the driver's transaction is over: this sends nothing, runs the hooks
    return Appended(id=entry_id, at=moment, commitment=row.entry[-1]), sent


def append_last(session: Session, event: AuditEvent, *, at: datetime | None = None) -> Appended:
    """``append`` for a read's last statement: in a unit that may carry its COMMIT with the
    entry (``db.COMMITS_WITH_ENTRY``), ``append_sending`` with nothing more to send (the entry
    and the COMMIT in one round trip); anywhere else, ``append`` as it was."""
    if _commits_with_entry(session):
        return append_sending(session, event, _nothing, at=at)[0]
    return append(session, event, at=at)


def _nothing() -> None:
    return None


def _commits_with_entry(session: Session) -> bool:
    """Whether the entry may carry the unit's COMMIT (``db.COMMITS_WITH_ENTRY``): only with
    nothing of the ORM's left to flush, which a COMMIT sent at the driver would skip."""
    if not session.info.get(COMMITS_WITH_ENTRY):
        return False
    return not (session.new or session.dirty or session.deleted)
