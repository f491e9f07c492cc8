"""Audit tables. Entries are immutable; the database refuses UPDATE and DELETE on them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from openpars.audit.events import AuditKind, Outcome
from openpars.db import Base, UTCDateTime, append_only_ddl, register_schema_ddl, str_enum

# SQLite has BIGINT primary keys only as INTEGER, which is what makes them rowid aliases.
_ID = BigInteger().with_variant(Integer(), "sqlite")
# An entry's subject ids, carried on its own row: a bigint[] on PostgreSQL, the text of a JSON
# array of integers on SQLite (read with json_each); NULL when the entry names none.
_IDS = Text().with_variant(ARRAY(BigInteger()), "postgresql")


class AuditEntry(Base):
    """One audited act. The commitment binds the salted canonical content; it never changes."""

    __tablename__ = "audit_entries"
    # No index but the primary key: an append writes the entry at the end of its B-tree and
    # nowhere else. Entries by user or agency and instant are in AuditUserEntry and
    # AuditAgencyEntry, kept by the integrator (issue 12).

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[AuditKind] = mapped_column(str_enum(AuditKind, 20))
    action: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[Outcome] = mapped_column(str_enum(Outcome, 10))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    agreement_id: Mapped[int | None] = mapped_column()
    # SHA-256(salt || content): the RFC 9162 leaf data of this entry.
    commitment: Mapped[bytes] = mapped_column(LargeBinary(32))
    # Which persons and arrests the entry touched (the ids of its content's person_ids and
    # arrest_ids), carried on the entry's own row so that an append writes no row per subject
    # and no index of its own for them: one B-tree page fewer per commit, and no statement.
    # Not part of the commitment. Looking entries up by person or arrest goes through
    # ``repository.entries_naming``: the integrator's subject index (AuditPersonEntry,
    # AuditArrestEntry) for integrated entries, these columns for the entries not integrated
    # yet (issue 12). A list on PostgreSQL, JSON text on SQLite (see _IDS).
    person_ids: Mapped[list[int] | str | None] = mapped_column(_IDS)
    arrest_ids: Mapped[list[int] | str | None] = mapped_column(_IDS)


class AuditEntryContent(Base):
    """The salt and canonical content behind an entry's commitment.

    Kept apart so a sealed or expunged record's entries can be crypto-shredded (this row
    deleted) while the commitment, and so the Merkle tree, stays intact. Rows are never updated.
    """

    __tablename__ = "audit_entry_contents"

    entry_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("audit_entries.id"), primary_key=True, autoincrement=False
    )
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class AuditPersonEntry(Base):
    """The subject index by person of integrated entries: (person, entry), nothing else.

    Filled by the integrator (``log.integrate_batch``) from the entries' ``person_ids`` in the
    transaction that gives the entries their leaves, a whole batch in one sorted INSERT ...
    SELECT, so the random places in this B-tree are paid once per batch, off the request path.
    Append-only. No foreign keys: every row is copied from an entry, and the check would cost
    the integrator a probe per row.
    """

    __tablename__ = "audit_person_entries"
    __table_args__ = ({"sqlite_with_rowid": False},)

    person_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    entry_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)


class AuditArrestEntry(Base):
    """The subject index by arrest of integrated entries; see AuditPersonEntry."""

    __tablename__ = "audit_arrest_entries"
    __table_args__ = ({"sqlite_with_rowid": False},)

    arrest_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    entry_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)


class AuditUserEntry(Base):
    """The index by user and instant of integrated entries: (user, at, entry), nothing else.

    What an index on audit_entries (user_id, at) would hold, written by the integrator with
    the batch's leaves (``by_actor.index_actors``), one sorted INSERT ... SELECT a batch, so
    that an append does not write a page of it. Read only through ``by_actor``, which adds the
    entries not integrated yet: an entry is counted from the moment it commits. Append-only.
    """

    __tablename__ = "audit_user_entries"
    __table_args__ = ({"sqlite_with_rowid": False},)

    user_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    entry_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)


class AuditAgencyEntry(Base):
    """The index by agency and instant of integrated entries; see AuditUserEntry."""

    __tablename__ = "audit_agency_entries"
    __table_args__ = ({"sqlite_with_rowid": False},)

    agency_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    entry_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)


class AuditPending(Base):
    """Entries appended but not yet given a leaf index: the integrator's work queue (PostgreSQL).

    On PostgreSQL a database trigger fills it on every insert into audit_entries, so an entry
    whose transaction commits late (after a higher id was integrated) is still found; the
    integrator deletes rows once their leaves are written. SQLite needs no queue and leaves it
    empty: its single writer commits entries in id order, so the integrator takes the entries
    above the last integrated one (see repository.pending_entries).
    """

    __tablename__ = "audit_pending"

    entry_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("audit_entries.id"), primary_key=True, autoincrement=False
    )


class AuditLeaf(Base):
    """An entry's position in the Merkle tree; leaf indexes are contiguous from 0."""

    __tablename__ = "audit_leaves"

    leaf_index: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    entry_id: Mapped[int] = mapped_column(_ID, ForeignKey("audit_entries.id"), unique=True)
    # SHA-256(0x00 || commitment); also the level-0 node of the tree.
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditNode(Base):
    """The hash of a complete subtree above the leaves, covering [index*2**level, ...)."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed C2SP checkpoint of the tree at one size; one per size, never changed."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger, unique=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The signed note exactly as published (log signature only; cosignatures are separate).
    note: Mapped[str] = mapped_column(Text)
    # The verifier key that signed it, so old checkpoints stay checkable after a key change.
    log_vkey: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditWitness(Base):
    """A registered witness key; removal sets removed_at (changes are audited as CONFIG)."""

    __tablename__ = "audit_witnesses"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    vkey: Mapped[str] = mapped_column(String(300), unique=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditCosignature(Base):
    """A verified witness cosignature of a checkpoint; immutable."""

    __tablename__ = "audit_cosignatures"
    __table_args__ = (UniqueConstraint("checkpoint_id", "witness_id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    checkpoint_id: Mapped[int] = mapped_column(_ID, ForeignKey("audit_checkpoints.id"), index=True)
    witness_id: Mapped[int] = mapped_column(_ID, ForeignKey("audit_witnesses.id"))
    # The cosignature/v1 timestamp the witness signed, in POSIX seconds.
    timestamp: Mapped[int] = mapped_column(BigInteger)
    # The signature line as it is appended to the checkpoint note.
    line: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# The database itself refuses to change or remove an audit entry (CJIS AU-9), whatever the
# application does. Contents may be deleted (crypto-shredding) but never updated.
_IMMUTABLE_TABLES = {
    table: ("UPDATE", "DELETE")
    for table in (
        "audit_entries",
        "audit_person_entries",
        "audit_arrest_entries",
        "audit_user_entries",
        "audit_agency_entries",
        "audit_leaves",
        "audit_nodes",
        "audit_checkpoints",
        "audit_cosignatures",
    )
}
_NO_UPDATE_TABLES = {"audit_entry_contents": ("UPDATE",)}


def immutability_ddl(dialect: str) -> list[str]:
    """Statements that make the audit tables append-only on the given dialect."""
    tables = {**_IMMUTABLE_TABLES, **_NO_UPDATE_TABLES}
    return append_only_ddl(dialect, tables, function="openpars_refuse_audit_change") + (
        _pending_queue_ddl(dialect)
    )


def _pending_queue_ddl(dialect: str) -> list[str]:
    """Queue every new entry for the integrator, in the appending transaction itself."""
    if dialect == "sqlite":
        return []  # entries commit in id order on SQLite; see AuditPending
    # A statement-level trigger with a transition table costs one INSERT per batch.
    return [
        "CREATE OR REPLACE FUNCTION openpars_enqueue_audit_entries() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit_pending (entry_id) "
        "SELECT id FROM new_entries; RETURN NULL; END $$",
        "CREATE OR REPLACE TRIGGER audit_entries_enqueue AFTER INSERT ON audit_entries "
        "REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT "
        "EXECUTE FUNCTION openpars_enqueue_audit_entries()",
    ]


register_schema_ddl(immutability_ddl)
