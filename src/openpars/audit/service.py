"""The one audit path: every access appends its entry here, in the caller's transaction."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent
from openpars.audit.recorded import note_appended
from openpars.db import COMMITS_WITH_ENTRY, COMMITTED_WITH_ENTRY, utcnow
from openpars.errors import AuditUnavailable
from openpars.prepared import connection_of, pipeline

# The canonical form is json.dumps(document, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False, default=str). json.dumps builds a new encoder for every call, which costs
# as much as the encoding, so the C encoder with those same settings is built once. Without
# the circular-reference check an impossible self-containing document fails with
# RecursionError instead of ValueError; the bytes of every other document are the same.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
_c_encode = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, str, encode_basestring, None, ":", ",", True, False, True)
)
_sha256 = hashlib.sha256
R = TypeVar("R")


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8; the bytes the commitment is over."""
    if _c_encode is None:  # pragma: no cover - CPython always has the C encoder
        return _ENCODER.encode(document).encode("utf-8")
    return "".join(_c_encode(document, 0)).encode("utf-8")


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


def _row(event: AuditEvent, iso: str, stored: datetime | str, salt: bytes) -> repo.EntryRow:
    """The rows of one event: its canonical content, the salt, the commitment over both."""
    # An enum's .value is a descriptor call; every entry needs both twice.
    kind, outcome = event.kind.value, event.outcome.value
    document = _document(event, iso, kind, outcome)
    content = canonical_bytes(document)
    return repo.EntryRow(
        (stored, kind, event.action, outcome, event.user_id, event.agency_id,
         event.agreement_id, _sha256(salt + content).digest()),
        salt,
        content,
        document["person_ids"],
        document["arrest_ids"],
    )  # fmt: skip


def _write(
    session: Session, events: Sequence[AuditEvent], moment: datetime
) -> tuple[list[int], list[repo.EntryRow]]:
    """Insert the entries' rows, each with a fresh salt; any failure becomes AuditUnavailable.

    One event (every audited request) skips the group commit's shared randomness and slicing.
    """
    try:
        connection = connection_of(session)
        iso = moment.isoformat(timespec="microseconds")
        stored = _stored_time(moment, iso, connection.dialect.name == "sqlite")
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
        with pipeline(session):
            connection = connection_of(session)
            iso = moment.isoformat(timespec="microseconds")
            stored = _stored_time(moment, iso, connection.dialect.name == "sqlite")
            row = _row(event, iso, stored, os.urandom(32))
            read_id = repo.send_entry(connection, row)
            sent = sends()
            if commits:
                # The entry, the read's last statements and the COMMIT leave together with the
                # pipeline's closing sync: one round trip. (The driver's commit() would sync
                # once more.) If the entry fails, the pipeline skips the COMMIT.
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
