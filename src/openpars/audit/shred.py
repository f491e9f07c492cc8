"""Crypto-shredding under a court order: only the entries about a sealed or expunged record.

Shredding sets an entry's salt and content to NULL and keeps its commitment, so the log still
verifies. Because it erases evidence it is allowed only under the order recorded on the record
itself (`Arrest.seal_order`, set when a court seals or expunges the arrest, records/amendments):

- by arrest: the arrest is sealed or expunged and its order is the one given;
- by person: every arrest of the person is sealed or expunged and one of them under that order
  (an entry about a person also concerns the person's other arrests, which may not be erased
  while any of them is an ordinary record).

The `audit.shred` entry names the order, the record, and the id and commitment of every entry
shredded. It is appended first: the database lets salt and content be set to NULL only on an
entry that the newest shredding entry names (audit.models.shredding_ddl). The independent
verifier checks that each shredded line of an export is named by such an entry
(docs/audit-export.md), so content erased outside this procedure, even directly in the
database with its guard dropped, fails verification. A refused attempt is audited as REFUSED
by the caller.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from openpars.audit import repository as repo
from openpars.audit.events import AuditKind, event_by
from openpars.audit.service import append
from openpars.errors import Conflict, InvalidInput, NotFound
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.records.models import Arrest, Involvement

ACTION = "audit.shred"
# Entries named by one shredding entry; a larger shredding writes one such entry per part. On
# SQLite the guard looks for each erased row's commitment in the newest shredding entry's
# content (a byte search, no JSON parsed), so the parts keep the cost per row bounded: the
# whole shredding stays linear in its size, not quadratic (docs/benchmarks.md, h12lite5).
ENTRIES_PER_RECORD = 250
_log = logging.getLogger(__name__)


def _covered_arrests(
    session: Session, order: str, arrest_id: int | None, person_id: int | None
) -> list[int]:
    """The arrests the order covers for this request; raise when the order does not cover it."""
    if arrest_id is not None:
        arrest = session.get(Arrest, arrest_id)
        if arrest is None:
            raise NotFound(f"arrest {arrest_id} does not exist", field="arrest_id")
        if not arrest.is_sealed:
            raise Conflict(
                f"arrest {arrest_id} is neither sealed nor expunged: its audit entries may be "
                "shredded only after a court order seals or expunges it",
                code="not_sealed",
                field="arrest_id",
            )
        if arrest.seal_order != order:
            raise Conflict(
                f"arrest {arrest_id} was sealed or expunged under order {arrest.seal_order!r}, "
                f"not {order!r}: give the order recorded on the arrest",
                code="order_mismatch",
                field="order_reference",
            )
        return [arrest_id]
    arrests = list(
        session.scalars(
            select(Arrest)
            .join(Involvement, Involvement.arrest_id == Arrest.id)
            .where(Involvement.person_id == person_id)
            .distinct()
        )
    )
    if not arrests:
        raise NotFound(f"person {person_id} has no arrest record", field="person_id")
    open_ = sorted(a.id for a in arrests if not a.is_sealed)
    if open_:
        raise Conflict(
            f"person {person_id} still has arrests that are neither sealed nor expunged "
            f"({', '.join(map(str, open_))}): entries about the person may be shredded only "
            "when every arrest of theirs is",
            code="not_sealed",
            field="person_id",
        )
    if not any(a.seal_order == order for a in arrests):
        raise Conflict(
            f"no arrest of person {person_id} was sealed or expunged under order {order!r}",
            code="order_mismatch",
            field="order_reference",
        )
    return sorted(a.id for a in arrests)


def shred(
    session: Session,
    *,
    actor: Principal,
    order_reference: str,
    arrest_id: int | None = None,
    person_id: int | None = None,
) -> list[int]:
    """Crypto-shred the content of every entry about a record sealed or expunged by this order."""
    actor.require(Permission.RECORD_SEAL)
    actor.require_fresh()
    if (arrest_id is None) == (person_id is None):
        raise InvalidInput("give exactly one of arrest_id and person_id", field="arrest_id")
    order = order_reference.strip()
    if not order:
        raise InvalidInput(
            "order_reference must name the sealing or expungement order", field="order_reference"
        )
    arrests = _covered_arrests(session, order, arrest_id, person_id)
    shredded = repo.entries_to_shred(session, arrest_id=arrest_id, person_id=person_id)
    # The shredding itself is recorded, but not as a subject of the record, so that a later
    # order for the same record cannot erase the evidence that this one was carried out. The
    # commitments are what the verifier sees of a shredded entry, so they name it there. Each
    # part is appended before its contents are erased: the database's guard checks that the
    # newest shredding entry names every row erased.
    for start in range(0, max(len(shredded), 1), ENTRIES_PER_RECORD):
        part = shredded[start : start + ENTRIES_PER_RECORD]
        recorded = append(
            session,
            event_by(
                actor,
                kind=AuditKind.WRITE,
                action=ACTION,
                params={
                    "order_reference": order,
                    "arrest_id": arrest_id,
                    "person_id": person_id,
                    "order_arrest_ids": arrests,
                    "entries_shredded": len(part),
                    "entry_ids": [i for i, _ in part],
                    "commitments": [c.hex() for _, c in part],
                },
            ),
        )
        if part:
            repo.shred_contents(
                session, shredding_entry=recorded.id, entry_ids=[i for i, _ in part]
            )
    if shredded:
        _checkpoint_when_committed(session)
    return [i for i, _ in shredded]


_SHREDDED = "openpars.audit.shredded"


def _checkpoint_when_committed(session: Session) -> None:
    """Empty SQLite's WAL once this transaction commits; not if it rolls back.

    SQLAlchemy has no listeners per transaction: the session's listen for as long as it
    lives, and a marker in ``session.info`` says whether the transaction that ends shredded
    anything, so a shredding rolled back leaves nothing for the session's next commit to do."""
    session.info[_SHREDDED] = True
    if not event.contains(session, "after_commit", _committed):
        event.listen(session, "after_commit", _committed)
        event.listen(session, "after_rollback", _rolled_back)


def _committed(session: Session) -> None:
    if session.info.pop(_SHREDDED, False):
        _empty_sqlite_wal(session)


def _rolled_back(session: Session) -> None:
    session.info.pop(_SHREDDED, None)


def _empty_sqlite_wal(session: Session) -> None:
    """SQLite: once the shredding has committed, empty the write-ahead log.

    ``secure_delete`` (db.py) zeroes the erased content in the database's pages, but the WAL
    still holds the frames that wrote it, if they are recent, until a checkpoint is followed by
    enough writes to overwrite them. A TRUNCATE checkpoint copies every frame back and cuts the
    WAL to nothing. It runs on its own connection and does not wait: a reader still holding an
    older snapshot makes it give up, and the frames are then overwritten by later writes after
    the next automatic checkpoint. PostgreSQL keeps an updated row's old version in the table
    until its page is rewritten (docs/audit-export.md, "Shredding").
    """
    bind = session.get_bind()
    path = bind.engine.url.database
    if bind.dialect.name != "sqlite" or not path or path == ":memory:":
        return
    try:
        with closing(sqlite3.connect(path, timeout=0)) as connection:
            busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as error:
        busy, frames, copied = 1, -1, -1
        _log.warning("shredding: the checkpoint of %s failed: %s", path, error)
    if busy:
        _log.warning(
            "shredding committed, but the write-ahead log of %s could not be emptied now "
            "(%s of %s frames copied back; a reader holds an older snapshot): the shredded "
            "content's frames stay in the -wal file until later writes overwrite them; run "
            "'PRAGMA wal_checkpoint(TRUNCATE)' when the site is quiet to remove them at once",
            path,
            copied,
            frames,
        )
