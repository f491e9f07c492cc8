"""Oversight tables: canary records, detector flags, review cases and their history.

A canary is a synthetic person with an arrest and charges, planted so that no legitimate query
reaches it. Internal readers never see it (``access.filters`` hides it from every internal
read); an outside agency sees it exactly like a real record, and the moment an external read
returns it the audit append path raises a flag in the same transaction: a database trigger
notices the canary among the persons and arrests in the new entry's content. Internal entries
cost it nothing or one rowid probe: on PostgreSQL a row trigger on ``audit_entries`` whose
``WHEN`` admits only answered reads under an agreement, in a ``SECURITY DEFINER`` function (so
the external login role never reads the canary table); on SQLite a row trigger on
``audit_entries`` whose ``WHEN`` admits the same reads and probes the canary table's unique
indexes with each person and arrest id the entry carries. Flags are grouped into
review cases; a case's history is append-only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from openpars.db import (
    Base,
    JSONDoc,
    UTCDateTime,
    append_only_ddl,
    register_schema_ddl,
    str_enum,
)

# Audit entry ids are BIGINT (INTEGER, the rowid, on SQLite).
_ENTRY_ID = BigInteger().with_variant(Integer(), "sqlite")

CANARY_DETECTOR = "canary"
CANARY_RULE = (
    "an external read returned a canary record: a synthetic person no legitimate query can "
    "reach (any one access fires)"
)
CANARY_THRESHOLD = 1.0


class CaseState(StrEnum):
    """Where a review case stands."""

    OPEN = "open"
    ASSIGNED = "assigned"
    CLOSED = "closed"


class Finding(StrEnum):
    """What a reviewer concluded when closing a case (CJIS audit review)."""

    NO_ISSUE = "no_issue"
    TRAINING = "training"
    SANCTION = "sanction"
    REFERRAL_TO_STAKEHOLDERS = "referral_to_stakeholders"


class CaseAct(StrEnum):
    """One step of a case's append-only history."""

    OPENED = "opened"
    FLAG_ADDED = "flag_added"
    ASSIGNED = "assigned"
    NOTED = "noted"
    CLOSED = "closed"


class Canary(Base):
    """A planted synthetic person and its arrest; known only to the oversight role."""

    __tablename__ = "oversight_canaries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Null while the canary is pending: its arrest is entered (and so exists for anyone) only
    # when a second reviewer confirms it (oversight.canaries).
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), unique=True)
    arrest_id: Mapped[int | None] = mapped_column(ForeignKey("arrests.id"), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    # The arrest as intake will enter it (ArrestCreate, JSON mode), what the confirmer reviews.
    arrest: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    planted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    planted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def pending(self) -> bool:
        """Whether the canary still waits for a second reviewer's confirmation."""
        return self.confirmed_at is None


class Flag(Base):
    """One detector finding: the rule, its threshold, who it is about and when it fired.

    ``dedupe_key`` makes raising idempotent: a detector names what it found (the canary
    detector: ``entry:<id>``) and the same finding is stored once however often it runs.
    """

    __tablename__ = "oversight_flags"
    __table_args__ = (
        UniqueConstraint("detector", "dedupe_key"),
        Index("ix_oversight_flags_case", "case_id"),
        Index("ix_oversight_flags_agency_raised", "subject_agency_id", "raised_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    detector: Mapped[str] = mapped_column(String(50))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(Text)
    threshold: Mapped[float | None] = mapped_column(Float)
    subject_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    subject_agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    subject_agreement_id: Mapped[int | None] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set once, when the review queue groups the flag into a case.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("oversight_cases.id"))


class FlagEntry(Base):
    """An audit entry that fired a flag.

    Both columns reference rows that must exist (the flag, the audit entry), checked by the
    database as foreign keys would, but per statement on PostgreSQL (``_link_checks``): a
    foreign key's check is a trigger per row that also share-locks the referenced row, and a
    daily run links some 20,000 entries (0.26 s of backend CPU a day at 10M, most of it the
    entries' locks). An audit entry is never updated or deleted (the log is append-only), and
    a flag with links cannot be deleted, which is all the locks protected against."""

    __tablename__ = "oversight_flag_entries"

    flag_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entry_id: Mapped[int] = mapped_column(_ENTRY_ID, primary_key=True, index=True)


class Case(Base):
    """Flags of one detector about one subject, under review; the current state of the case.

    Every change is also a row of ``oversight_case_events`` (append-only): the case row is the
    summary the queue lists, the events are the record.
    """

    __tablename__ = "oversight_cases"
    __table_args__ = (
        Index("ix_oversight_cases_subject", "detector", "subject_user_id", "subject_agency_id"),
        Index("ix_oversight_cases_state", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    detector: Mapped[str] = mapped_column(String(50))
    subject_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    subject_agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    state: Mapped[CaseState] = mapped_column(str_enum(CaseState, 10))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    finding: Mapped[Finding | None] = mapped_column(str_enum(Finding, 30))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CaseEvent(Base):
    """One act on a case: opened, a flag added, assigned, a note, closed with a finding."""

    __tablename__ = "oversight_case_events"
    __table_args__ = (Index("ix_oversight_case_events_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("oversight_cases.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    act: Mapped[CaseAct] = mapped_column(str_enum(CaseAct, 20))
    # None: the queue itself (grouping a flag into a case).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    finding: Mapped[Finding | None] = mapped_column(str_enum(Finding, 30))
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("oversight_flags.id"))
    note: Mapped[str | None] = mapped_column(Text)


def _sql(text: str) -> str:
    return text.replace("'", "''")


# The entries of an external read that returned something: made under an agreement, answered.
_EXTERNAL_READ = "e.agreement_id IS NOT NULL AND e.outcome = 'ok'"
_FLAG_COLUMNS = (
    "detector, dedupe_key, rule, threshold, subject_user_id, subject_agency_id, "
    "subject_agreement_id, raised_at"
)
_FLAG_VALUES = (
    f"'{CANARY_DETECTOR}', 'entry:' || e.id, '{_sql(CANARY_RULE)}', {CANARY_THRESHOLD}, "
    "e.user_id, e.agency_id, e.agreement_id, e.at"
)


def _sqlite_trip() -> list[str]:
    # A row trigger on the entry, whose WHEN first reads the new row's own columns (internal
    # and refused entries stop there), then probes the canary table's unique person or arrest
    # index with each id the entry carries (person_ids, arrest_ids: the same ids as its
    # content, written from one list by audit.repository). Reading the content's JSON instead
    # cost an external SID lookup about 20 µs on every append (bench/audit_overhead.py); the
    # id arrays are a few bytes. An entry naming several canaries raises one flag. A NULL
    # array (no ids of that kind: every person search's arrest_ids) opens no json_each at
    # all, which saved an append 1-3 µs of CPU (docs/benchmarks.md, Audit log, 2026-12-07,
    # branch h12lite).
    hit = (
        "((NEW.person_ids IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(NEW.person_ids) s "
        "WHERE s.value IN (SELECT person_id FROM oversight_canaries))) OR "
        "(NEW.arrest_ids IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(NEW.arrest_ids) s "
        "WHERE s.value IN (SELECT arrest_id FROM oversight_canaries))))"
    )
    new_read = _EXTERNAL_READ.replace("e.", "NEW.")
    return [
        "CREATE TRIGGER IF NOT EXISTS audit_entries_canary AFTER INSERT ON "  # noqa: S608 - constants
        f"audit_entries FOR EACH ROW WHEN {new_read} AND {hit} "
        f"BEGIN INSERT OR IGNORE INTO oversight_flags ({_FLAG_COLUMNS}) SELECT {_FLAG_VALUES} "
        "FROM audit_entries e WHERE e.id = NEW.id; "
        "INSERT OR IGNORE INTO oversight_flag_entries (flag_id, entry_id) SELECT id, "
        f"NEW.id FROM oversight_flags WHERE detector = '{CANARY_DETECTOR}' AND "
        "dedupe_key = 'entry:' || NEW.id; END",
    ]


def _postgresql_trip() -> list[str]:
    # A row trigger on the entry whose WHEN reads only the new row's own columns: an internal
    # or refused entry costs nothing (no function call). An external read's call tests the
    # canaries (a handful of rows) against the person and arrest ids the entry carries on its
    # own row (person_ids, arrest_ids: the same ids as its content, written from one list by
    # audit.repository), as SQLite's trigger does. Reading them from the content instead
    # (the content row by its key, its JSON parsed) cost an external name page about 0.1 ms
    # of server CPU on every append (docs/benchmarks.md, Search, h12pg3). It runs as the
    # table owner (SECURITY DEFINER) with a fixed search path, so the external login role,
    # whose appends fire it, needs no right on the canary or flag tables.
    return [
        "CREATE OR REPLACE FUNCTION openpars_canary_trip() RETURNS trigger LANGUAGE plpgsql "  # noqa: S608 - constants
        "SECURITY DEFINER AS $$ BEGIN "
        # Still refused: an external read's entry written without its content (the content
        # is on the entry's own row: a test of the new row, nothing read or parsed).
        "IF NEW.content IS NULL THEN "
        "RAISE EXCEPTION USING MESSAGE = 'an external read''s audit entry was written without "
        "its content; the canary check needs both'; END IF; "
        "IF NOT EXISTS (SELECT 1 FROM oversight_canaries c WHERE "
        "c.person_id = ANY (NEW.person_ids) OR c.arrest_id = ANY (NEW.arrest_ids)) "
        "THEN RETURN NULL; END IF; "
        f"INSERT INTO oversight_flags ({_FLAG_COLUMNS}) SELECT {_FLAG_VALUES} "
        "FROM audit_entries e WHERE e.id = NEW.id "
        "ON CONFLICT (detector, dedupe_key) DO NOTHING; "
        "INSERT INTO oversight_flag_entries (flag_id, entry_id) SELECT f.id, NEW.id FROM "
        f"oversight_flags f WHERE f.detector = '{CANARY_DETECTOR}' AND f.dedupe_key = "
        "'entry:' || NEW.id ON CONFLICT DO NOTHING; RETURN NULL; END $$",
        "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_canary_trip() SET search_path = ' "
        "|| quote_ident(current_schema()) || ', pg_temp'; END $do$",
        "REVOKE ALL ON FUNCTION openpars_canary_trip() FROM PUBLIC",
        "CREATE OR REPLACE TRIGGER audit_entries_canary AFTER INSERT ON audit_entries "
        "FOR EACH ROW WHEN (NEW.agreement_id IS NOT NULL AND NEW.outcome = 'ok') "
        "EXECUTE FUNCTION openpars_canary_trip()",
    ]


class TransparencyRelease(Base):
    """One month's published transparency report: the noisy counts exactly as released.

    The release ledger: one row per month, written once with the noise drawn once, never
    updated or deleted (the database refuses both), so a month is never re-released with fresh
    noise and the privacy budget spent is the sum of the rows' epsilons.
    """

    __tablename__ = "oversight_transparency_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "YYYY-MM", UTC calendar month.
    month: Mapped[str] = mapped_column(String(7), unique=True)
    released_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The audit entry of the release (kind oversight, action oversight.transparency.release).
    entry_id: Mapped[int] = mapped_column(_ENTRY_ID)
    epsilon: Mapped[float] = mapped_column(Float)
    contributions_bound: Mapped[int] = mapped_column(Integer)
    scale: Mapped[float] = mapped_column(Float)
    mechanism: Mapped[str] = mapped_column(String(200))
    library: Mapped[str] = mapped_column(String(100))
    # The published document (categories, cells, privacy statement) as canonical JSON.
    document: Mapped[str] = mapped_column(Text)


_LINK_REFUSED = "oversight_flag_entries: a link names no such flag or audit entry"
_FLAG_LINKED = "oversight_flags: a flag with linked entries cannot be deleted"


def _link_checks(dialect: str) -> list[str]:
    """What the foreign keys of ``oversight_flag_entries`` checked: every link names an
    existing flag and audit entry, and a linked flag is not deleted (an audit entry never is).
    PostgreSQL checks once per statement, over its rows together (a transition table, two
    anti-joins by primary key, no row locked), and raises foreign_key_violation as the keys
    did; SQLite per row, as its keys did."""
    if dialect == "sqlite":
        return [
            "CREATE TRIGGER IF NOT EXISTS oversight_flag_entries_refs BEFORE INSERT ON "  # noqa: S608 - constants
            "oversight_flag_entries WHEN NOT EXISTS (SELECT 1 FROM oversight_flags f WHERE "
            "f.id = NEW.flag_id) OR NOT EXISTS (SELECT 1 FROM audit_entries e WHERE "
            f"e.id = NEW.entry_id) BEGIN SELECT RAISE(ABORT, '{_LINK_REFUSED}'); END",
            "CREATE TRIGGER IF NOT EXISTS oversight_flags_linked BEFORE DELETE ON "  # noqa: S608 - constants
            "oversight_flags WHEN EXISTS (SELECT 1 FROM oversight_flag_entries l WHERE "
            f"l.flag_id = OLD.id) BEGIN SELECT RAISE(ABORT, '{_FLAG_LINKED}'); END",
        ]
    return [
        "CREATE OR REPLACE FUNCTION openpars_flag_links_refs() RETURNS trigger LANGUAGE plpgsql "  # noqa: S608 - constants
        "AS $$ BEGIN IF EXISTS (SELECT 1 FROM new_links n WHERE NOT EXISTS (SELECT 1 FROM "
        "oversight_flags f WHERE f.id = n.flag_id) OR NOT EXISTS (SELECT 1 FROM audit_entries e "
        "WHERE e.id = n.entry_id)) THEN RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', "
        f"MESSAGE = '{_LINK_REFUSED}'; END IF; RETURN NULL; END $$",
        "CREATE OR REPLACE TRIGGER oversight_flag_entries_refs AFTER INSERT ON "
        "oversight_flag_entries REFERENCING NEW TABLE AS new_links FOR EACH STATEMENT "
        "EXECUTE FUNCTION openpars_flag_links_refs()",
        "CREATE OR REPLACE FUNCTION openpars_flags_linked() RETURNS trigger LANGUAGE plpgsql "  # noqa: S608 - constants
        "AS $$ BEGIN IF EXISTS (SELECT 1 FROM old_flags o JOIN oversight_flag_entries l ON "
        "l.flag_id = o.id) THEN RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', "
        f"MESSAGE = '{_FLAG_LINKED}'; END IF; RETURN NULL; END $$",
        "CREATE OR REPLACE TRIGGER oversight_flags_linked AFTER DELETE ON oversight_flags "
        "REFERENCING OLD TABLE AS old_flags FOR EACH STATEMENT "
        "EXECUTE FUNCTION openpars_flags_linked()",
    ]


def oversight_ddl(dialect: str) -> list[str]:
    """The canary trigger, and the append-only case history, on the given dialect."""
    history = append_only_ddl(
        dialect,
        {
            "oversight_case_events": ("UPDATE", "DELETE"),
            "oversight_flag_entries": ("UPDATE",),
            "oversight_transparency_releases": ("UPDATE", "DELETE"),
        },
        function="openpars_refuse_oversight_change",
    )
    trip = _sqlite_trip() if dialect == "sqlite" else _postgresql_trip()
    return [*trip, *history, *_link_checks(dialect)]


register_schema_ddl(oversight_ddl)
