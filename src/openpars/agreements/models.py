"""Tables of data-sharing agreements: versions, status events, kill-switch acts, the site floor.

Versions, events, suspensions, resumptions and floor versions are append-only: the ORM refuses
to update or delete them, so the history an oversight board reads is the history that happened.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from openpars.db import (
    Base,
    JSONDoc,
    UTCDateTime,
    append_only_ddl,
    register_schema_ddl,
    str_enum,
    utcnow,
)


def new_mask_key() -> bytes:
    """A fresh secret for one agreement version's HASH mask."""
    return secrets.token_bytes(32)


class AgreementStatus(StrEnum):
    """Where an agreement stands; ``expired`` and ``scheduled`` are also derived from time."""

    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    # Adopted but not yet in force (before effective_at); only ever derived, never stored.
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    TERMINATED = "terminated"


class LifecycleAction(StrEnum):
    """What a governance decision does to an agreement."""

    ADOPT = "adopt"
    RENEW = "renew"
    AMEND = "amend"
    SUSPEND = "suspend"
    RESUME = "resume"
    TERMINATE = "terminate"


class EventKind(StrEnum):
    """One entry of an agreement's timeline."""

    CREATED = "created"
    UPDATED = "updated"
    PROPOSED = "proposed"
    ADOPTED = "adopted"
    RENEWED = "renewed"
    AMENDED = "amended"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    TERMINATED = "terminated"
    EXPIRED = "expired"
    KILL_SWITCH = "kill_switch"
    KILL_SWITCH_RESUMED = "kill_switch_resumed"


class SuspensionTarget(StrEnum):
    """What a kill-switch act cuts off."""

    AGREEMENT = "agreement"
    UNIT = "unit"
    ACCOUNT = "account"


class Agreement(Base):
    """A data-sharing agreement; its content lives in immutable versions.

    ``current_version`` is the latest version (what a proposal votes on); ``active_version``
    is the one in force, changed only by a governance decision. ``in_force_from`` and
    ``in_force_until`` copy the active window so the enforcement point needs one indexed query.
    """

    __tablename__ = "agreements"
    __table_args__ = (Index("ix_agreements_grantee_status", "grantee_agency_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    grantee_agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    status: Mapped[AgreementStatus] = mapped_column(str_enum(AgreementStatus, 20))
    current_version: Mapped[int] = mapped_column(Integer)
    active_version: Mapped[int | None] = mapped_column(Integer)
    in_force_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    in_force_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AgreementVersion(Base):
    """One immutable version: the full canonical agreement document and its SHA-256."""

    __tablename__ = "agreement_versions"
    __table_args__ = (UniqueConstraint("agreement_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    # Copied from the content for the overlap check.
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    # The secret of this version's HASH mask (HMAC-SHA256 key, 32 random bytes made with the
    # row): equal values hash equal for the grantee within the version, and nobody without the
    # key can reverse a hash by hashing guesses. Not part of the content, its hash or any read
    # model, so no API or signature ever carries it.
    mask_key: Mapped[bytes] = mapped_column(LargeBinary(32), default=new_mask_key)


class AgreementEvent(Base):
    """A status change or act on an agreement, for its timeline."""

    __tablename__ = "agreement_events"
    __table_args__ = (Index("ix_agreement_events_agreement_at", "agreement_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind, 30))
    from_status: Mapped[AgreementStatus | None] = mapped_column(str_enum(AgreementStatus, 20))
    to_status: Mapped[AgreementStatus | None] = mapped_column(str_enum(AgreementStatus, 20))
    version: Mapped[int | None] = mapped_column(Integer)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)


class Suspension(Base):
    """A kill-switch act: an agreement, a sub-unit or an account cut off from an instant."""

    __tablename__ = "agreement_suspensions"
    __table_args__ = (Index("ix_agreement_suspensions_target", "target_kind", "target_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    target_kind: Mapped[SuspensionTarget] = mapped_column(str_enum(SuspensionTarget, 20))
    target_id: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    suspended_by: Mapped[str] = mapped_column(String(100))
    suspended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The board member (stakeholder agency) the suspending account speaks for: only an account
    # of that stakeholder, or a quorum decision, may lift it. None: no stakeholder imposed it.
    stakeholder_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    suspended_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Resumption(Base):
    """The separate act that lifts one suspension from an instant."""

    __tablename__ = "agreement_resumptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    suspension_id: Mapped[int] = mapped_column(ForeignKey("agreement_suspensions.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    resumed_by: Mapped[str] = mapped_column(String(100))
    resumed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resumed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SiteFloorVersion(Base):
    """One version of the site floor, as set by the data owners; the newest is in force."""

    __tablename__ = "site_floor_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    content_hash: Mapped[str] = mapped_column(String(64))
    changed_by: Mapped[str] = mapped_column(String(100))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)


class GovernanceGeneration(Base):
    """One row: a number the database raises at every change of what the in-force lookup reads
    (``GOVERNED_TABLES``), by its own triggers (``generation_ddl``), whoever writes (the
    application, a script, raw SQL by hand). A process keeps the lookup's rows read under a
    generation and reads them again only when the number moves (``agreements.in_force``).

    ``token`` is new random bytes at every change, so a pair (generation, token) names one
    state of one database: two databases (or a rolled-back transaction and the one after it)
    that reach the same number never share a pair. The number only goes up and the row cannot
    be deleted (the database refuses), so no earlier pair can be written back.
    """

    __tablename__ = "governance_generation"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger)
    token: Mapped[bytes] = mapped_column(LargeBinary(16))


class ImmutableRowError(RuntimeError):
    """Raised when code tries to change a row that is part of an agreement's history."""


def _refuse_change(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    raise ImmutableRowError(
        f"{type(target).__tablename__} rows are append-only; write a new row instead"
    )


for _model in (AgreementVersion, AgreementEvent, Suspension, Resumption, SiteFloorVersion):
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)


# The database refuses the same, so no code path (not even raw SQL) rewrites the history.
APPEND_ONLY_TABLES = (
    "agreement_versions",
    "agreement_events",
    "agreement_suspensions",
    "agreement_resumptions",
    "site_floor_versions",
)


def immutability_ddl(dialect: str) -> list[str]:
    """Triggers that make the agreement history tables append-only on the given dialect."""
    tables = {table: ("UPDATE", "DELETE") for table in APPEND_ONLY_TABLES}
    return append_only_ddl(dialect, tables, function="openpars_refuse_agreement_history_change")


register_schema_ddl(immutability_ddl)


# Every table the in-force lookup reads (agreements.repository._in_force_stmt): a row written,
# changed or removed in any of them moves the governance generation, in the same transaction.
GOVERNED_TABLES = (
    "agreements",
    "agreement_versions",
    "agreement_suspensions",
    "agreement_resumptions",
    "site_floor_versions",
)
_MOVE_SQLITE = (
    "UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) "
    "WHERE id = 1"
)
_ONLY_UP = "governance_generation only goes up and is never deleted (agreements/models.py)"


def generation_ddl(dialect: str) -> list[str]:
    """The governance generation's row, the triggers that move it, and its guards: the number
    only goes up, the row is never deleted."""
    if dialect == "sqlite":
        statements = [
            "INSERT OR IGNORE INTO governance_generation (id, generation, token) "
            "VALUES (1, 1, randomblob(16))"
        ]
        statements += [
            f"CREATE TRIGGER IF NOT EXISTS governance_generation_{table}_{op.lower()} "
            f"AFTER {op} ON {table} FOR EACH ROW BEGIN {_MOVE_SQLITE}; END"
            for table in GOVERNED_TABLES
            for op in ("INSERT", "UPDATE", "DELETE")
        ]
        statements += [
            "CREATE TRIGGER IF NOT EXISTS governance_generation_only_up BEFORE UPDATE ON "
            "governance_generation WHEN NEW.generation IS NULL OR "
            "NEW.generation <= OLD.generation OR NEW.id IS NOT OLD.id "
            f"BEGIN SELECT RAISE(ABORT, '{_ONLY_UP}: UPDATE refused'); END",
            "CREATE TRIGGER IF NOT EXISTS governance_generation_no_delete BEFORE DELETE ON "
            f"governance_generation BEGIN SELECT RAISE(ABORT, '{_ONLY_UP}: DELETE refused'); END",
        ]
        return statements
    statements = [
        "INSERT INTO governance_generation (id, generation, token) "
        "VALUES (1, 1, uuid_send(gen_random_uuid())) ON CONFLICT DO NOTHING",
        # Statement-level: a bulk change moves it once; TRUNCATE fires no row trigger. Moved
        # in the writing transaction: seen by others exactly when the change is.
        "CREATE OR REPLACE FUNCTION openpars_governance_changed() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN UPDATE governance_generation SET "
        "generation = generation + 1, token = uuid_send(gen_random_uuid()) WHERE id = 1; "
        "RETURN NULL; END $$",
        "CREATE OR REPLACE FUNCTION openpars_governance_generation_guard() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = "
        f"'{_ONLY_UP}: ' || TG_OP || ' refused'; END $$",
    ]
    for function in ("openpars_governance_changed", "openpars_governance_generation_guard"):
        # Names looked up when they run: fixed to openpars' schema (as access.rls does).
        statements.append(
            f"DO $do$ BEGIN EXECUTE 'ALTER FUNCTION {function}() SET search_path = ' || "
            "quote_ident(current_schema()) || ', pg_temp'; END $do$"
        )
    # BEFORE the statement: the generation's row is locked before any row the statement
    # changes, so writers take their locks in one order (the generation first; get_agreement
    # and lock_grantee do the same) and two of them never wait for each other in a cycle.
    statements += [
        f"CREATE OR REPLACE TRIGGER governance_generation_{table} BEFORE INSERT OR UPDATE OR "
        f"DELETE OR TRUNCATE ON {table} FOR EACH STATEMENT "
        "EXECUTE FUNCTION openpars_governance_changed()"
        for table in GOVERNED_TABLES
    ]
    statements += [
        "CREATE OR REPLACE TRIGGER governance_generation_only_up BEFORE UPDATE ON "
        "governance_generation FOR EACH ROW WHEN (NEW.generation IS NULL OR "
        "NEW.generation <= OLD.generation OR NEW.id IS DISTINCT FROM OLD.id) "
        "EXECUTE FUNCTION openpars_governance_generation_guard()",
        "CREATE OR REPLACE TRIGGER governance_generation_no_delete BEFORE DELETE OR TRUNCATE "
        "ON governance_generation FOR EACH STATEMENT "
        "EXECUTE FUNCTION openpars_governance_generation_guard()",
    ]
    return statements


register_schema_ddl(generation_ddl)
