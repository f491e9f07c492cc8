"""Visibility sets: for each distinct external row filter, the persons it lets a caller see.

A name search under an agreement used to prove every candidate visible (an involvement in the
scope's roles, its arrest in the scope's states and grades, unsealed) until a page of them
passed: under an arrestees-only scope about three probes per person returned. A visibility set
holds, per row filter, the visible persons keyed by name with a copy of their searchable
columns (identifiers and birth date, nothing else), so the search walks only persons it may
return, as the bare search walks every person.

The set is derived data, and it can only ever hide too much, never show too much:

* Triggers in the database itself (not application code) remove a person from every set, in
  the same transaction, on any change that could make the person less visible (an involvement
  changed or deleted, an arrest's state or sealing changed, a charge added, changed or deleted:
  a new approved revision supersedes the current charges, see ``records.charges``; the person
  changed), and mark the person pending. New involvements, which can only add visibility, mark
  the person pending.
* Pending persons are recomputed with the same predicate every read uses
  (``access.filters.person_visible``) before the writing transaction commits
  (``access.visibility``), and by the governance tick if a writer ever did not.
* A set is keyed by the whole row filter; a filter without a set is searched with the probes,
  so a changed scope or floor never reads a set built for another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Enum,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from openpars.db import (
    DIALECT_INDEXES,
    Base,
    JSONDoc,
    UTCDateTime,
    register_schema_ddl,
    utcnow,
)
from openpars.records.models import NameKey, Person


class VisibilitySet(Base):
    """One external row filter whose visible persons are kept in ``visible_persons``."""

    __tablename__ = "visibility_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The row filter as canonical JSON: roles, states, grades, juveniles, sealed.
    row_key: Mapped[str] = mapped_column(String(1000), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# The person columns a set row carries: only what a search tests, so a name search with
# identifier or birth criteria walks the set alone. Nothing else is copied (no citizenship,
# place of birth, address or phone: derived data must not widen where those live); the
# columns a page shows are read from `persons` for the page's ids only, after the walk
# (access.repository.search_persons). A year of birth is derived from birth_date.
COPIED_COLUMNS = ("sid", "fbi_number", "birth_date")


def _copied(name: str) -> Column[Any]:
    kind = Person.__table__.c[name].type
    # Enumerated values are copied as stored; the persons table checks them.
    return Column(name, String(kind.length) if isinstance(kind, Enum) else kind)


class VisiblePerson(Base):
    """A person visible under a set's row filter: the name key searches walk and a copy of
    the person's searchable columns only (kept by the same triggers as membership)."""

    __table__ = Table(
        "visible_persons",
        Base.metadata,
        # (person, set): a trigger removes a person from every set with one range delete.
        Column("person_id", ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True),
        Column("set_id", ForeignKey("visibility_sets.id", ondelete="CASCADE"), primary_key=True),
        Column("name_key", NameKey, nullable=False),
        *(_copied(name) for name in COPIED_COLUMNS),
        # PostgreSQL: the person's ``persons.floor_visible`` (whether the site floor admits
        # the person at all), which the external role's policy on this table reads instead of
        # probing ``persons`` for every row (access.rls). Written with the row from the
        # person's own column (``access.visibility``), checked against it by a trigger on every
        # insert and update, and rewritten by the triggers that recompute the person's column,
        # in the same transaction. Not person data: a flag of the floor's. On SQLite, which has
        # no row-level security, it copies the person's column, which stays false there.
        Column("floor_visible", Boolean, nullable=False, server_default=text("false")),
        # The order of a name search under the set: walk the range, stop after a page. On
        # PostgreSQL the floor flag rides in the index's leaf tuples, so the external role's
        # walk tests its policy there too (an index-only scan, as before the flag).
        Index(
            "ix_visible_persons_name",
            "set_id",
            "name_key",
            "person_id",
            postgresql_include=["floor_visible"],
        ),
    )


class RateSlot(Base):
    """One place in a rate window (``access.rate``): a user's or an agency's admitted
    external accesses each hold one place for a minute, so a window of ``limit`` places
    admits at most ``limit`` accesses in any minute. Operational state, not evidence: the
    audit log stays the record of every access."""

    __tablename__ = "rate_slots"
    __table_args__ = (
        CheckConstraint("kind IN (0, 1)", name="ck_rate_slots_kind"),
        CheckConstraint("slot >= 0", name="ck_rate_slots_slot"),
        # Keyed by what a claim looks up: a window's places by their last use (a claim walks
        # them from its instant down). On SQLite the table is this one B-tree (no rowid, no
        # other index), so taking a place rewrites one page of it, not a table page and an
        # index page. A place (kind, owner, slot) is unique: on SQLite the request holds the
        # only write lock while it grows a window; on PostgreSQL a unique index says so
        # (rate_slots_ddl), which concurrent growers conflict on.
        PrimaryKeyConstraint("kind", "owner_id", "at_us", "slot", name="pk_rate_slots"),
        {"sqlite_with_rowid": False},
    )

    # 0: a user's window, 1: an agency's (owner_id is then a user's or an agency's id).
    kind: Mapped[int] = mapped_column(SmallInteger, autoincrement=False)
    owner_id: Mapped[int] = mapped_column(Integer, autoincrement=False)
    slot: Mapped[int] = mapped_column(Integer, autoincrement=False)
    # When the place was last taken, in microseconds since the epoch (never: the place's own
    # number on PostgreSQL, 0 on SQLite and in windows grown before; long past either way).
    at_us: Mapped[int] = mapped_column(BigInteger, autoincrement=False)


def rate_slots_ddl(dialect: str) -> list[str]:
    """PostgreSQL: each place of a window once (the growers' ON CONFLICT is on it). SQLite's
    single writer grows a window inside the request's write lock, so no second index there."""
    if dialect != "postgresql":
        return []
    return [
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_rate_slots_place ON rate_slots (kind, owner_id, slot)"
    ]


register_schema_ddl(rate_slots_ddl)
DIALECT_INDEXES.add("ux_rate_slots_place")


class VisibilityPending(Base):
    """A person whose visibility must be recomputed (written by the triggers)."""

    __tablename__ = "visibility_pending"

    person_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


# What the triggers do for a set of person ids: remove them from every set (only when the
# change can reduce visibility) and mark them pending.
def _sqlite_body(persons: str, *, remove: bool) -> str:
    # `persons` is a constant subquery of this module, never input.
    mark = "INSERT OR IGNORE INTO visibility_pending (person_id) SELECT person_id FROM ({});"
    body = mark.format(persons)
    if remove:
        body = f"DELETE FROM visible_persons WHERE person_id IN ({persons}); " + body  # noqa: S608
    return body


def _sqlite_ddl() -> list[str]:
    of_arrest = "SELECT person_id FROM involvements WHERE arrest_id = {row}.arrest_id"
    triggers = {
        "visibility_involvement_insert": (
            "AFTER INSERT ON involvements",
            _sqlite_body("SELECT NEW.person_id AS person_id", remove=False),
        ),
        "visibility_involvement_update": (
            "AFTER UPDATE ON involvements",
            _sqlite_body(
                "SELECT OLD.person_id AS person_id UNION SELECT NEW.person_id", remove=True
            ),
        ),
        "visibility_involvement_delete": (
            "AFTER DELETE ON involvements",
            _sqlite_body("SELECT OLD.person_id AS person_id", remove=True),
        ),
        "visibility_arrest_update": (
            "AFTER UPDATE OF state, sealed_at, expunged_at ON arrests FOR EACH ROW "
            "WHEN OLD.state IS NOT NEW.state OR OLD.sealed_at IS NOT NEW.sealed_at "
            "OR OLD.expunged_at IS NOT NEW.expunged_at",
            _sqlite_body(
                "SELECT person_id FROM involvements WHERE arrest_id = NEW.id", remove=True
            ),
        ),
        # A new charge can narrow too: a new approved revision supersedes the charges that
        # were current (records.charges).
        "visibility_charge_insert": (
            "AFTER INSERT ON charges",
            _sqlite_body(of_arrest.format(row="NEW"), remove=True),
        ),
        "visibility_charge_update": (
            "AFTER UPDATE ON charges",
            _sqlite_body(
                f"{of_arrest.format(row='OLD')} UNION {of_arrest.format(row='NEW')}", remove=True
            ),
        ),
        "visibility_charge_delete": (
            "AFTER DELETE ON charges",
            _sqlite_body(of_arrest.format(row="OLD"), remove=True),
        ),
        # Any change of a person: a set row carries a copy of its columns.
        "visibility_person_update": (
            "AFTER UPDATE ON persons",
            _sqlite_body("SELECT NEW.id AS person_id", remove=True),
        ),
    }
    return [
        f"CREATE TRIGGER IF NOT EXISTS {name} {when}"
        + ("" if "FOR EACH ROW" in when else " FOR EACH ROW")
        + f" BEGIN {body} END"
        for name, (when, body) in triggers.items()
    ]


# PL/pgSQL: the persons an involvements trigger's statement touched, into `ids`, from its
# transition tables (both sides of an update: a person moved off an involvement changes too).
# Shared by the visibility triggers below and the floor column's (access.rls).
INVOLVEMENT_PERSON_IDS = """IF TG_OP = 'INSERT' THEN
      SELECT array_agg(DISTINCT person_id) INTO ids FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
      SELECT array_agg(DISTINCT p) INTO ids FROM (
        SELECT person_id AS p FROM old_rows UNION SELECT person_id FROM new_rows) AS c;
    ELSE
      SELECT array_agg(DISTINCT person_id) INTO ids FROM old_rows;
    END IF;"""


# PostgreSQL: statement-level triggers over transition tables, so a batch intake runs each
# once per statement. A writer locks the persons it touches (and, for involvements and
# charges, shares a lock on their arrests) before removing and marking them, so that two
# transactions changing one person's visibility are serialized and the later one recomputes
# it from the earlier one's committed state; recomputing from a stale snapshot could
# otherwise put back a person another transaction had just hidden.
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION openpars_visibility_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids integer[];
  remove boolean := TG_OP <> 'INSERT' OR TG_TABLE_NAME = 'charges';
BEGIN
  IF TG_TABLE_NAME = 'involvements' THEN
    IF TG_OP = 'INSERT' THEN
      PERFORM 1 FROM arrests WHERE id IN (SELECT arrest_id FROM new_rows) ORDER BY id FOR SHARE;
    END IF;
    {INVOLVEMENT_PERSON_IDS}
  ELSIF TG_TABLE_NAME = 'charges' THEN
    IF TG_OP = 'INSERT' THEN
      PERFORM 1 FROM arrests WHERE id IN (SELECT arrest_id FROM new_rows) ORDER BY id FOR SHARE;
      SELECT array_agg(DISTINCT i.person_id) INTO ids FROM involvements i
        WHERE i.arrest_id IN (SELECT arrest_id FROM new_rows);
    ELSIF TG_OP = 'UPDATE' THEN
      PERFORM 1 FROM arrests WHERE id IN (SELECT arrest_id FROM new_rows) ORDER BY id FOR SHARE;
      SELECT array_agg(DISTINCT i.person_id) INTO ids FROM involvements i
        WHERE i.arrest_id IN (SELECT arrest_id FROM old_rows UNION SELECT arrest_id FROM new_rows);
    ELSE
      SELECT array_agg(DISTINCT i.person_id) INTO ids FROM involvements i
        WHERE i.arrest_id IN (SELECT arrest_id FROM old_rows);
    END IF;
  ELSIF TG_TABLE_NAME = 'arrests' THEN
    SELECT array_agg(DISTINCT i.person_id) INTO ids FROM involvements i
      JOIN new_rows n ON n.id = i.arrest_id JOIN old_rows o ON o.id = n.id
      WHERE o.state IS DISTINCT FROM n.state OR o.sealed_at IS DISTINCT FROM n.sealed_at
         OR o.expunged_at IS DISTINCT FROM n.expunged_at;
  ELSE
    /* A person whose only change is floor_visible (kept by access.rls's triggers) changes in
       no set: no set row copies it. */
    SELECT array_agg(n.id) INTO ids FROM new_rows n WHERE NOT EXISTS (
      SELECT 1 FROM old_rows o WHERE o.id = n.id
        AND o.floor_visible IS DISTINCT FROM n.floor_visible
        AND to_jsonb(o) - 'floor_visible' = to_jsonb(n) - 'floor_visible');
  END IF;
  IF ids IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM 1 FROM persons WHERE id = ANY(ids) ORDER BY id FOR UPDATE;
  IF remove THEN
    DELETE FROM visible_persons WHERE person_id = ANY(ids);
  END IF;
  INSERT INTO visibility_pending (person_id) SELECT unnest(ids) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$
"""  # noqa: S608 - constants


def _pg_ddl() -> list[str]:
    statements = [" ".join(_PG_FUNCTION.split())]
    events = {
        "involvements": ("INSERT", "UPDATE", "DELETE"),
        "charges": ("INSERT", "UPDATE", "DELETE"),
        "arrests": ("UPDATE",),
        "persons": ("UPDATE",),
    }
    for table, ops in events.items():
        for op in ops:
            tables = {
                "INSERT": "NEW TABLE AS new_rows",
                "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                "DELETE": "OLD TABLE AS old_rows",
            }[op]
            statements.append(
                f"CREATE OR REPLACE TRIGGER visibility_{table}_{op.lower()} AFTER {op} ON "
                f"{table} REFERENCING {tables} FOR EACH STATEMENT "
                "EXECUTE FUNCTION openpars_visibility_changed()"
            )
    statements.append("ALTER TABLE visible_persons ALTER COLUMN name_key SET STATISTICS 1000")
    return statements


def visibility_ddl(dialect: str) -> list[str]:
    """The triggers that keep visibility sets from ever showing more than the filter allows."""
    return _pg_ddl() if dialect == "postgresql" else _sqlite_ddl()


register_schema_ddl(visibility_ddl)
