"""Audit tables. Entries are immutable; the database refuses UPDATE and DELETE on them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from openpars.audit.events import AuditKind, Outcome
from openpars.db import Base, UTCDateTime, str_enum

# SQLite has BIGINT primary keys only as INTEGER, which is what makes them rowid aliases.
_ID = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(Base):
    """One audited act. The commitment binds the salted canonical content; it never changes."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_user_at", "user_id", "at"),
        Index("ix_audit_entries_agency_at", "agency_id", "at"),
    )

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


class AuditSubject(Base):
    """Which persons and arrests an entry touched, for oversight queries and shredding."""

    __tablename__ = "audit_subjects"
    __table_args__ = (
        Index("ix_audit_subjects_person", "person_id"),
        Index("ix_audit_subjects_arrest", "arrest_id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(_ID, ForeignKey("audit_entries.id"), index=True)
    person_id: Mapped[int | None] = mapped_column()
    arrest_id: Mapped[int | None] = mapped_column()


# The database itself refuses to change or remove an audit entry (CJIS AU-9), whatever the
# application does. Contents may be deleted (crypto-shredding) but never updated.
_IMMUTABLE_TABLES = {"audit_entries": ("UPDATE", "DELETE"), "audit_subjects": ("UPDATE", "DELETE")}
_NO_UPDATE_TABLES = {"audit_entry_contents": ("UPDATE",)}


def immutability_ddl(dialect: str) -> list[str]:
    """Statements that make the audit tables append-only on the given dialect."""
    statements: list[str] = []
    tables = {**_IMMUTABLE_TABLES, **_NO_UPDATE_TABLES}
    if dialect == "sqlite":
        for table, ops in tables.items():
            for op in ops:
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'audit log is append-only: {op} on {table} "
                    f"refused'); END"
                )
    else:
        statements.append(
            "CREATE OR REPLACE FUNCTION openpars_refuse_audit_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = "
            "'audit log is append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME || ' refused'; "
            "END $$"
        )
        for table, ops in tables.items():
            statements.append(
                f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE {' OR '.join(ops)} "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION openpars_refuse_audit_change()"
            )
    return statements


def _install_triggers(_target: object, connection: Connection, **_: object) -> None:
    for statement in immutability_ddl(connection.dialect.name):
        connection.exec_driver_sql(statement)


event.listen(Base.metadata, "after_create", _install_triggers)
