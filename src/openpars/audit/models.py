"""Audit tables. Entries are immutable; the database refuses UPDATE and DELETE on them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
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
from openpars.db import (
    DIALECT_INDEXES,
    Base,
    UTCDateTime,
    append_only_ddl,
    register_schema_ddl,
    str_enum,
)

# SQLite has BIGINT primary keys only as INTEGER, which is what makes them rowid aliases.
_ID = BigInteger().with_variant(Integer(), "sqlite")
# An entry's subject ids, carried on its own row: a bigint[] on PostgreSQL, the text of a JSON
# array of integers on SQLite (read with json_each); NULL when the entry names none.
_IDS = Text().with_variant(ARRAY(BigInteger()), "postgresql")


class AuditEntry(Base):
    """One audited act. The commitment binds the salted canonical content; it never changes."""

    __tablename__ = "audit_entries"
    # Shredded (both NULL) or not (neither): never half.
    __table_args__ = (CheckConstraint("(salt IS NULL) = (content IS NULL)", name="shredded_whole"),)
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
    # The salt and canonical content behind the commitment, on the entry's own row so that an
    # append writes one row in one B-tree (issue 12: a separate content table cost the SQLite
    # append ~16 µs and 1.35 WAL frames). Crypto-shredding a sealed or expunged record's
    # entries sets both to NULL in place, the one UPDATE the database allows on this table
    # (see shredding_ddl): the commitment, and so the Merkle tree, stays intact. NULL only
    # when shredded: both or neither.
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)


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
# application does. The one change it lets through is crypto-shredding's (shredding_ddl).
_IMMUTABLE_TABLES = {
    table: ("UPDATE", "DELETE")
    for table in (
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
_NO_DELETE_TABLES = {"audit_entries": ("DELETE",)}
_SHRED_ACTION = "audit.shred"
_REFUSED_UPDATE = (
    "audit_entries is append-only: UPDATE refused (the one change allowed is crypto-shredding: "
    "salt and content set to NULL on entries the shredding entry names, nothing else changed)"
)


def immutability_ddl(dialect: str) -> list[str]:
    """Statements that make the audit tables append-only on the given dialect."""
    tables = {**_IMMUTABLE_TABLES, **_NO_DELETE_TABLES}
    return (
        append_only_ddl(dialect, tables, function="openpars_refuse_audit_change")
        + shredding_ddl(dialect)
        + _pending_queue_ddl(dialect)
    )


def _kept_columns() -> list[str]:
    """Every column of an entry but the two that shredding erases."""
    return [c.name for c in AuditEntry.__table__.columns if c.name not in ("salt", "content")]


def shredding_ddl(dialect: str) -> list[str]:
    """The guard on UPDATE of audit_entries: only crypto-shredding's passes.

    An UPDATE is let through only if, on every row it changes, salt and content go from
    present to NULL, every other column stays as it was, and the shredding entry (an
    ``audit.shred`` entry of outcome ``ok``, with a higher id) names the row's commitment among
    the ``commitments`` the verifier checks: so content cannot be altered, restored ("un-
    shredded"), or erased without the entry that records it. Whoever owns the tables can still
    drop this guard; the verifier's check of every shredded line against the shredding entries
    is what holds against that adversary (docs/audit-export.md, "Shredding").
    """
    if dialect == "sqlite":
        return _sqlite_shredding()
    return _postgresql_shredding()


def _sqlite_shredding() -> list[str]:
    # A row trigger. SQLite has one writer, and the shredding appends its entry just before the
    # UPDATE in the same transaction, so the shredding entry is the newest entry: found by the
    # primary key's last key, not a scan. The commitment is looked for as a quoted hex string
    # in its content's bytes (instr: no JSON parsed, nothing copied per row); the shredding
    # writes one entry per 250 erased, so that search stays short (audit.shred).
    unchanged = " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in _kept_columns())
    named = (
        "EXISTS (SELECT 1 FROM audit_entries s WHERE s.id = (SELECT max(id) FROM audit_entries) "  # noqa: S608 - constants
        f"AND s.id > OLD.id AND s.action = '{_SHRED_ACTION}' AND s.outcome = '{Outcome.OK.value}' "
        f"AND s.kind = '{AuditKind.WRITE.value}' AND s.content IS NOT NULL AND "
        "instr(s.content, CAST('\"' || lower(hex(OLD.commitment)) || '\"' AS BLOB)) > 0)"
    )
    allowed = (
        "OLD.salt IS NOT NULL AND OLD.content IS NOT NULL AND NEW.salt IS NULL AND "
        f"NEW.content IS NULL AND {unchanged} AND {named}"
    )
    return [
        "CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries "
        f"WHEN NOT ({allowed}) BEGIN SELECT RAISE(ABORT, '{_REFUSED_UPDATE}'); END"
    ]


def _postgresql_shredding() -> list[str]:
    # A statement trigger over the transition tables: the shredding entry (found by the
    # transaction-local setting the shredding sets, by primary key) is parsed once per
    # statement and its commitments hashed once, not once per row. Rows are compared whole
    # (to_jsonb, less salt and content), so a column added later is covered too.
    return [
        "CREATE OR REPLACE FUNCTION openpars_guard_audit_shredding() RETURNS trigger "  # noqa: S608 - constants
        "LANGUAGE plpgsql AS $$ DECLARE shredding bigint; named jsonb; BEGIN "
        "IF NOT EXISTS (SELECT 1 FROM old_rows) THEN RETURN NULL; END IF; "
        "SELECT s.id, convert_from(s.content, 'UTF8')::jsonb -> 'params' -> 'commitments' "
        "INTO shredding, named FROM audit_entries s WHERE s.id = nullif(current_setting("
        "'openpars.shredding_entry', true), '')::bigint "
        f"AND s.action = '{_SHRED_ACTION}' AND s.outcome = '{Outcome.OK.value}' "
        f"AND s.kind = '{AuditKind.WRITE.value}' AND s.content IS NOT NULL; "
        "IF shredding IS NULL OR jsonb_typeof(named) IS DISTINCT FROM 'array' "
        "OR (SELECT count(*) FROM old_rows) <> (SELECT count(*) FROM old_rows o "
        "JOIN new_rows n ON n.id = o.id) "
        "OR EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE "
        "o.salt IS NULL OR o.content IS NULL OR n.salt IS NOT NULL OR n.content IS NOT NULL "
        "OR o.id >= shredding "
        "OR to_jsonb(o) - 'salt' - 'content' IS DISTINCT FROM to_jsonb(n) - 'salt' - 'content') "
        "OR EXISTS (SELECT 1 FROM old_rows o WHERE encode(o.commitment, 'hex') NOT IN "
        "(SELECT jsonb_array_elements_text(named))) "
        f"THEN RAISE EXCEPTION USING MESSAGE = '{_REFUSED_UPDATE}'; END IF; RETURN NULL; END $$",
        "CREATE OR REPLACE TRIGGER audit_entries_shredding_only AFTER UPDATE ON audit_entries "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION openpars_guard_audit_shredding()",
    ]


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

# The shredded entries' ids (PostgreSQL): a partial index, empty until an entry is shredded and
# then as small as the shredded entries, which an entry's insert does not write (its content is
# set). A reader that keeps only unshredded entries tests a row against this index (an anti-join
# on a hash of its few ids) instead of probing every row's entry for its content: at 10M a daily
# run's stages each probed ~27,000 entries that way (docs/oversight.md, "Shredding").
SHREDDED_INDEX = "ix_audit_entries_shredded"


def shredded_index_ddl(dialect: str) -> list[str]:
    """PostgreSQL: the shredded entries' partial index. SQLite's readers probe an entry by
    its rowid, already a short descent of the table's own B-tree: no index there."""
    if dialect != "postgresql":
        return []
    return [
        f"CREATE INDEX IF NOT EXISTS {SHREDDED_INDEX} ON audit_entries (id) WHERE content IS NULL"
    ]


register_schema_ddl(shredded_index_ddl)
DIALECT_INDEXES.add(SHREDDED_INDEX)
