"""All SQL of the audit feature."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CompoundSelect,
    Connection,
    Select,
    false,
    func,
    literal,
    select,
    true,
    union,
)
from sqlalchemy.orm import Session

from openpars.audit.models import (
    AuditArrestEntry,
    AuditCheckpoint,
    AuditCosignature,
    AuditEntry,
    AuditLeaf,
    AuditPending,
    AuditPersonEntry,
    AuditWitness,
)

# pg_advisory_xact_lock key of the integrator and publisher: "opaudit" in ASCII.
LOG_LOCK_KEY = 0x6F7061756469
# The hot paths (group-commit appends, integration, proof reads) use driver-level SQL: for
# them SQLAlchemy's per-statement and per-row processing costs more than the database work.
# Row values per IN list; SQLite allows 32766 bound parameters, PostgreSQL 65535.
_CHUNK = 5000


def notify_appended(session: Session) -> None:
    """Mark the session as having appended entries, for the checkpoint publisher."""
    session.info["audit_appended"] = session.info.get("audit_appended", 0) + 1


def lock_log(session: Session) -> None:
    """Serialise integrators and publishers across processes until the transaction ends."""
    # SQLite needs nothing: every transaction begins IMMEDIATE and so holds the write lock.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(LOG_LOCK_KEY)))


def _driver_sql(session: Session, statement: str) -> str:
    """A qmark statement in the driver's own parameter style (psycopg takes %s)."""
    if session.get_bind().dialect.paramstyle == "qmark":
        return statement
    return statement.replace("?", "%s")


class EntryRow(NamedTuple):
    """One entry's rows before it has an id.

    entry is (at, kind, action, outcome, user_id, agency_id, agreement_id, commitment), with
    enum values as strings and `at` as the driver stores a UTCDateTime (naive UTC text on
    SQLite, an aware datetime on PostgreSQL); persons and arrests are the subject ids. All of
    it, salt and content included, goes on the entry's one row.
    """

    entry: tuple[Any, ...]
    salt: bytes
    content: bytes
    persons: list[int]
    arrests: list[int]


_ENTRY_COLUMNS = (
    "at, kind, action, outcome, user_id, agency_id, agreement_id, commitment, person_ids, "
    "arrest_ids, salt, content"
)
_ENTRIES = f"audit_entries (id, {_ENTRY_COLUMNS})"
_NEW_ENTRY = f"audit_entries ({_ENTRY_COLUMNS})"
# One round trip for the single append on PostgreSQL: the entry, with its subjects, salt and
# content, in one row, returning the new id. psycopg prepares it on the server after a few
# uses per connection.
_PG_INSERT_ENTRY = (
    f"INSERT INTO audit_entries ({_ENTRY_COLUMNS}) "  # noqa: S608 - constants
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::bigint[], %s::bigint[], %s, %s) RETURNING id"
)
# The same with an id reserved from the sequence (the group commit).
_PG_INSERT_ENTRY_WITH_ID = _PG_INSERT_ENTRY.replace(
    f"audit_entries ({_ENTRY_COLUMNS}) VALUES (",
    f"audit_entries (id, {_ENTRY_COLUMNS}) VALUES (%s, ",
).removesuffix(" RETURNING id")
_PG_RESERVE_IDS = (
    "SELECT nextval(pg_get_serial_sequence('audit_entries', 'id')) FROM generate_series(1, %s)"
)
# Rows per multi-row INSERT on SQLite: 500 rows of at most 13 values stay far below its limit
# of 32766 bound parameters, and few statement shapes recur (500 rows, and a remainder).
_SQLITE_ROWS_PER_INSERT = 500


@lru_cache(maxsize=256)
def _values_insert(target: str, width: int, rows: int, mark: str) -> str:
    """INSERT INTO target VALUES (...), (...) with `rows` rows of `width` placeholders."""
    row = "(" + ", ".join([mark] * width) + ")"
    return f"INSERT INTO {target} VALUES " + ", ".join([row] * rows)  # noqa: S608 - constants


# The single append's statements on SQLite, built once.
_SQLITE_INSERT_ENTRY = _values_insert(_NEW_ENTRY, 12, 1, "?")


def _sqlite_insert(cursor: Any, target: str, width: int, values: list[Any]) -> None:
    """Insert rows given as one flat list of values, in multi-row INSERTs.

    SQLite opens the table's and its indexes' cursors once per statement, so this costs less
    than an executemany, which runs the statement (and opens them) once per row.
    """
    step = _SQLITE_ROWS_PER_INSERT * width
    for start in range(0, len(values), step):
        chunk = values[start : start + step]
        cursor.execute(_values_insert(target, width, len(chunk) // width, "?"), chunk)


def _sqlite_ids(ids: list[int]) -> str | None:
    """Subject ids as SQLite stores them on the entry: the text of a JSON array, or NULL.

    The list's own repr: an int prints as its digits. A bool or a float would print as
    something json_each reads as no integer id; the type says ints, and every caller builds
    the lists from the ids of rows it read."""
    return repr(ids) if ids else None


def insert_entry(connection: Connection, row: EntryRow) -> int:
    """Insert one entry (one row: its subjects, salt and content too); return its id.

    The request path: the DB-API cursor directly, because SQLAlchemy's per-statement work
    would cost more than the inserts. On SQLite the id is the new rowid (the transaction began
    IMMEDIATE, so it holds the only write lock); on PostgreSQL it comes from the sequence.
    """
    if connection.dialect.name == "sqlite":
        # The driver's own execute (a cursor of its own), without the pool proxy's cursor().
        persons, arrests = row.persons, row.arrests
        cursor = connection.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            _SQLITE_INSERT_ENTRY,
            # _sqlite_ids, inline.
            (*row.entry, repr(persons) if persons else None, repr(arrests) if arrests else None,
             row.salt, row.content),
        )  # fmt: skip
        return int(cursor.lastrowid)
    return send_entry(connection, row)()


def send_entry(connection: Connection, row: EntryRow) -> Callable[[], int]:
    """``insert_entry`` whose id is read later: on PostgreSQL the statement is sent and its
    result left on the wire, so inside a pipeline it travels with the statements around it.
    SQLite runs it at once."""
    if connection.dialect.name == "sqlite":
        entry_id = insert_entry(connection, row)
        return lambda: entry_id
    cursor = connection.connection.cursor()
    cursor.execute(
        _PG_INSERT_ENTRY,
        (*row.entry, _pg_ids(row.persons), _pg_ids(row.arrests), row.salt, row.content),
    )
    return lambda: int(cursor.fetchone()[0])  # type: ignore[index]


def _insert_entries_postgresql(cursor: Any, rows: Sequence[EntryRow]) -> list[int]:
    """The group commit on PostgreSQL: ids from the sequence, then each entry's one row,
    all of them pipelined by the executemany: one round trip."""
    cursor.execute(_PG_RESERVE_IDS, (len(rows),))
    ids = [int(i) for (i,) in cursor.fetchall()]
    cursor.executemany(
        _PG_INSERT_ENTRY_WITH_ID,
        [
            (i, *r.entry, _pg_ids(r.persons), _pg_ids(r.arrests), r.salt, r.content)
            for i, r in zip(ids, rows, strict=True)
        ],
    )
    return ids


def _pg_ids(ids: list[int]) -> str | None:
    """Subject ids as the text of a bigint[] (the statement casts it), or NULL for none:
    psycopg would dump a list of ints element by element in Python, which cost more than the
    rest of the append's parameters together.

    The text is the list's own repr: an int prints as its digits, and anything else (a bool,
    a float, a string, which prints quoted) fails the cast, so no id can be misread."""
    return "{" + repr(ids)[1:-1] + "}" if ids else None


def insert_entries_bulk(connection: Connection, rows: Sequence[EntryRow]) -> list[int]:
    """Insert many entries, a few statements per table (group commit); return their ids."""
    cursor = connection.connection.cursor()
    if connection.dialect.name != "sqlite":
        return _insert_entries_postgresql(cursor, rows)
    # The transaction holds SQLite's only write lock, so max + 1 onwards is ours.
    cursor.execute("SELECT max(id) FROM audit_entries")
    top = int(cursor.fetchone()[0] or 0)  # type: ignore[index]
    ids = list(range(top + 1, top + 1 + len(rows)))
    entries: list[Any] = []
    for entry_id, row in zip(ids, rows, strict=True):
        entries += (
            entry_id, *row.entry, _sqlite_ids(row.persons), _sqlite_ids(row.arrests), row.salt,
            row.content,
        )  # fmt: skip
    _sqlite_insert(cursor, _ENTRIES, 13, entries)
    return ids


# --- the tree ---------------------------------------------------------------------------


def tree_size(session: Session) -> int:
    """The number of integrated leaves (leaf indexes are contiguous from 0)."""
    top = session.connection().exec_driver_sql("SELECT max(leaf_index) FROM audit_leaves").scalar()
    return 0 if top is None else int(top) + 1


# On SQLite the entries not yet integrated are those above the last integrated one: its single
# writer hands out ids and commits in the same order, so no entry can commit below a leaf.
_SQLITE_LAST_INTEGRATED = (
    "coalesce((SELECT entry_id FROM audit_leaves ORDER BY leaf_index DESC LIMIT 1), 0)"
)


def _queued_by_trigger(session: Session) -> bool:
    """Whether the audit_pending queue is in use (PostgreSQL; see AuditPending)."""
    return session.get_bind().dialect.name != "sqlite"


def has_pending(session: Session) -> bool:
    """Whether any appended entry is still waiting for a leaf index."""
    if _queued_by_trigger(session):
        return session.scalar(select(AuditPending.entry_id).limit(1)) is not None
    return (
        session.connection()
        .exec_driver_sql(
            "SELECT 1 FROM audit_entries "  # noqa: S608 - a constant
            f"WHERE id > {_SQLITE_LAST_INTEGRATED} LIMIT 1"
        )
        .first()
        is not None
    )


def pending_entries(session: Session, *, limit: int) -> list[tuple[int, bytes]]:
    """(entry id, commitment) of entries waiting for a leaf, in id order, at most `limit`."""
    if _queued_by_trigger(session):
        statement = (
            "SELECT p.entry_id, e.commitment FROM audit_pending p "  # noqa: S608 - an integer
            "JOIN audit_entries e ON e.id = p.entry_id "
            f"ORDER BY p.entry_id LIMIT {int(limit)}"
        )
    else:
        statement = (
            "SELECT id, commitment FROM audit_entries "  # noqa: S608 - an integer
            f"WHERE id > {_SQLITE_LAST_INTEGRATED} ORDER BY id LIMIT {int(limit)}"
        )
    rows = session.connection().exec_driver_sql(statement)
    return [(int(entry_id), bytes(commitment)) for entry_id, commitment in rows]


def insert_leaves(session: Session, rows: Sequence[tuple[int, int, bytes]]) -> None:
    """Insert leaves: (leaf_index, entry_id, leaf_hash)."""
    if rows:
        statement = "INSERT INTO audit_leaves (leaf_index, entry_id, leaf_hash) VALUES (?, ?, ?)"
        session.connection().exec_driver_sql(_driver_sql(session, statement), list(rows))


def insert_nodes(session: Session, rows: Sequence[tuple[int, int, bytes]]) -> None:
    """Insert complete-subtree hashes above level 0: (level, index, hash)."""
    if rows:
        statement = 'INSERT INTO audit_nodes (level, "index", hash) VALUES (?, ?, ?)'
        session.connection().exec_driver_sql(_driver_sql(session, statement), list(rows))


def dequeue(session: Session, entry_ids: Sequence[int]) -> None:
    """Remove integrated entries from the queue (by id: a range could catch a late commit)."""
    if not _queued_by_trigger(session):
        return
    for start in range(0, len(entry_ids), _CHUNK):
        chunk = _int_list(entry_ids[start : start + _CHUNK])
        session.connection().exec_driver_sql(
            f"DELETE FROM audit_pending WHERE entry_id IN ({chunk})"  # noqa: S608 - integers
        )


_SUBJECT_INDEX = (("audit_person_entries", "person_id"), ("audit_arrest_entries", "arrest_id"))


def index_subjects(session: Session, entry_ids: Sequence[int]) -> None:
    """Copy the subjects of a batch being integrated into the subject index, in the
    transaction that writes the batch's leaves (so an entry is in the index exactly when it
    has a leaf: see entries_naming). One sorted INSERT ... SELECT per table, over the ids
    carried on the batch's entries (found by primary key)."""
    if not entry_ids:
        return
    connection = session.connection()
    params: tuple[Any, ...] = ()
    if _queued_by_trigger(session):
        # A batch on PostgreSQL is the queue's lowest ids, not a range: an entry committed
        # late may sit between them, integrated already or not in this batch.
        where, params = "e.id = ANY(%s::bigint[])", ([int(i) for i in entry_ids],)
        expand = "unnest(e.{ids}) AS s (value)"
    else:
        # On SQLite the batch is every entry above the last integrated one up to its last id.
        # json_each's integers only: a value of any other type (which no append writes) is
        # left out rather than stored as a wrong id.
        where = f"e.id BETWEEN {int(min(entry_ids))} AND {int(max(entry_ids))}"
        expand = "json_each(e.{ids}) AS s"
        where += " AND s.type = 'integer'"
    for table, column in _SUBJECT_INDEX:
        connection.exec_driver_sql(
            f"INSERT INTO {table} ({column}, entry_id) "  # noqa: S608 - constants and integers
            f"SELECT DISTINCT s.value, e.id FROM audit_entries e "
            f"CROSS JOIN {expand.format(ids=column + 's')} "
            f"WHERE {where} AND s.value IS NOT NULL ORDER BY 1, 2",
            params,
        )


def _tail_naming(session: Session, column: str, ids: list[int]) -> Select[int]:
    """The entries not integrated yet whose subject ids (``column``: person_ids or
    arrest_ids) include any of ``ids``, as a select of one column ``entry_id``."""
    entry = AuditEntry.__table__
    if _queued_by_trigger(session):
        # = ANY(ARRAY(subquery)): the queue is read once (an InitPlan) and each of its ids
        # looked up in the primary key. As an IN (subquery) PostgreSQL may join the queue to
        # a sequential scan of the log.
        queue = func.array(select(AuditPending.entry_id).scalar_subquery())
        wanted = literal(ids, ARRAY(BigInteger()))
        return select(entry.c.id.label("entry_id")).where(
            entry.c.id == func.any(queue), entry.c[column].op("&&")(wanted)
        )
    last = (
        select(AuditLeaf.entry_id).order_by(AuditLeaf.leaf_index.desc()).limit(1).scalar_subquery()
    )
    each = func.json_each(entry.c[column]).table_valued("value", "type").alias("s")
    return (
        select(entry.c.id.label("entry_id"))
        .select_from(entry)
        .join(each, true())
        .where(
            entry.c.id > func.coalesce(last, 0),
            each.c.type == "integer",
            each.c.value.in_(ids),
        )
    )


def entries_naming(
    session: Session, *, person_ids: Iterable[int] = (), arrest_ids: Iterable[int] = ()
) -> Select[int] | CompoundSelect[int]:
    """The ids of every entry naming any of these persons or arrests, as one selectable.

    The one way to look entries up by subject. Integrated entries are found in the subject
    index the integrator keeps (AuditPersonEntry, AuditArrestEntry), the others by the ids
    carried on their own rows (SQLite: the entries above the last integrated one, by rowid;
    PostgreSQL: the entries in audit_pending). The integrator writes an entry's index rows and
    its leaf (and takes it off the queue) in one transaction, so one statement's snapshot
    finds every entry in exactly one of the two places: nothing appended a moment ago is
    missed. Its column is ``entry_id``.
    """
    persons, arrests = sorted({int(i) for i in person_ids}), sorted({int(i) for i in arrest_ids})
    parts: list[Select[int]] = []
    if persons:
        parts.append(
            select(AuditPersonEntry.entry_id).where(AuditPersonEntry.person_id.in_(persons))
        )
        parts.append(_tail_naming(session, "person_ids", persons))
    if arrests:
        parts.append(
            select(AuditArrestEntry.entry_id).where(AuditArrestEntry.arrest_id.in_(arrests))
        )
        parts.append(_tail_naming(session, "arrest_ids", arrests))
    if not parts:
        return select(AuditPersonEntry.entry_id).where(false())
    return union(*parts)


def _int_list(values: Iterable[int]) -> str:
    return ",".join(str(int(v)) for v in values)


def node_hashes(
    session: Session, coordinates: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """Stored hashes of complete subtrees by (level, index), in one query.

    Level 0 comes from the leaves. Proofs are the hot read path (O(log n) nodes each), so the
    statement is plain driver SQL: building it with the expression language costs more than
    running it. Only integers are formatted into it; one primary-key lookup list per level,
    because a row-value IN list is not index-assisted on SQLite.
    """
    by_level: dict[int, set[int]] = {}
    for level, index in coordinates:
        by_level.setdefault(int(level), set()).add(int(index))
    if not by_level:
        return {}
    parts = []
    if 0 in by_level:
        parts.append(
            "SELECT 0, leaf_index, leaf_hash FROM audit_leaves "  # noqa: S608 - integers only
            f"WHERE leaf_index IN ({_int_list(by_level.pop(0))})"
        )
    if by_level:
        clauses = " OR ".join(
            f'(level = {level} AND "index" IN ({_int_list(indexes)}))'
            for level, indexes in by_level.items()
        )
        parts.append(f'SELECT level, "index", hash FROM audit_nodes WHERE {clauses}')  # noqa: S608
    rows = session.connection().exec_driver_sql(" UNION ALL ".join(parts))
    return {(int(lv), int(i)): bytes(h) for lv, i, h in rows}


def leaf_of_entry(session: Session, entry_id: int) -> AuditLeaf | None:
    """The leaf of an entry, if it has been integrated."""
    return session.scalar(select(AuditLeaf).where(AuditLeaf.entry_id == entry_id))


# --- checkpoints and witnesses -------------------------------------------------------------


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    """The checkpoint of the largest size."""
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1))


def checkpoint_of_size(session: Session, size: int) -> AuditCheckpoint | None:
    """The checkpoint of exactly this size."""
    return session.scalar(select(AuditCheckpoint).where(AuditCheckpoint.size == size))


def latest_checkpoint_at_most(session: Session, size: int) -> AuditCheckpoint | None:
    """The largest checkpoint whose size is at most `size`."""
    return session.scalar(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.size <= size)
        .order_by(AuditCheckpoint.size.desc())
        .limit(1)
    )


def checkpoints_between(session: Session, first: int, last: int) -> list[AuditCheckpoint]:
    """Checkpoints with first <= size <= last, smallest first."""
    return list(
        session.scalars(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.size >= first, AuditCheckpoint.size <= last)
            .order_by(AuditCheckpoint.size)
        )
    )


def newest_checkpoints_from(session: Session, size: int, *, limit: int) -> list[AuditCheckpoint]:
    """Up to `limit` checkpoints of at least `size`, newest first."""
    return list(
        session.scalars(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.size >= size)
            .order_by(AuditCheckpoint.size.desc())
            .limit(limit)
        )
    )


def add(session: Session, row: object) -> None:
    """Insert one ORM row and flush, so its id and constraints are checked now."""
    session.add(row)
    session.flush()


def active_witnesses(session: Session) -> list[AuditWitness]:
    """Registered witnesses that have not been removed, oldest first."""
    return list(
        session.scalars(
            select(AuditWitness).where(AuditWitness.removed_at.is_(None)).order_by(AuditWitness.id)
        )
    )


def all_witnesses(session: Session) -> list[AuditWitness]:
    """Every witness ever registered, oldest first."""
    return list(session.scalars(select(AuditWitness).order_by(AuditWitness.id)))


def witness_by_name(session: Session, name: str) -> AuditWitness | None:
    """A witness by key name, removed or not."""
    return session.scalar(select(AuditWitness).where(AuditWitness.name == name))


def witness_by_id(session: Session, witness_id: int) -> AuditWitness | None:
    """A witness by id."""
    return session.get(AuditWitness, witness_id)


def cosignatures_of(session: Session, checkpoint_id: int) -> list[AuditCosignature]:
    """The stored cosignatures of a checkpoint, in arrival order."""
    return list(
        session.scalars(
            select(AuditCosignature)
            .where(AuditCosignature.checkpoint_id == checkpoint_id)
            .order_by(AuditCosignature.id)
        )
    )


def cosignature_of(
    session: Session, checkpoint_id: int, witness_id: int
) -> AuditCosignature | None:
    """A witness's cosignature of a checkpoint, if it gave one."""
    return session.scalar(
        select(AuditCosignature).where(
            AuditCosignature.checkpoint_id == checkpoint_id,
            AuditCosignature.witness_id == witness_id,
        )
    )


# --- entries -------------------------------------------------------------------------------


def get_entry(session: Session, entry_id: int) -> AuditEntry | None:
    """An entry by id."""
    return session.get(AuditEntry, entry_id)


class StoredContent(NamedTuple):
    """The salt and canonical content behind an entry's commitment."""

    salt: bytes
    content: bytes


def stored_content(entry: AuditEntry) -> StoredContent | None:
    """The salt and content of an entry, unless it was shredded."""
    return _stored(entry.salt, entry.content)


def _stored(salt: bytes | None, content: bytes | None) -> StoredContent | None:
    """Salt and content as read, or None for a shredded entry (both NULL)."""
    if salt is None or content is None:
        return None
    return StoredContent(bytes(salt), bytes(content))


def list_entries(
    session: Session, *, after_id: int, limit: int
) -> list[tuple[AuditEntry, StoredContent | None, int | None]]:
    """Entries with id > after_id in id order, with content (or None) and leaf index."""
    rows = session.execute(
        select(AuditEntry, AuditLeaf.leaf_index)
        .outerjoin(AuditLeaf, AuditLeaf.entry_id == AuditEntry.id)
        .where(AuditEntry.id > after_id)
        .order_by(AuditEntry.id)
        .limit(limit)
    )
    return [(e, _stored(e.salt, e.content), None if i is None else int(i)) for e, i in rows]


def export_rows(
    session: Session, *, start: int, end: int
) -> list[tuple[int, bytes, bytes | None, bytes | None]]:
    """(leaf index, commitment, salt, content) for leaves [start, end); salt None if shredded."""
    rows = session.execute(
        select(AuditLeaf.leaf_index, AuditEntry.commitment, AuditEntry.salt, AuditEntry.content)
        .join(AuditEntry, AuditEntry.id == AuditLeaf.entry_id)
        .where(AuditLeaf.leaf_index >= start, AuditLeaf.leaf_index < end)
        .order_by(AuditLeaf.leaf_index)
    )
    return [
        (int(i), bytes(c), None if s is None else bytes(s), None if t is None else bytes(t))
        for i, c, s, t in rows
    ]


def entries_to_shred(
    session: Session, *, arrest_id: int | None, person_id: int | None
) -> list[tuple[int, bytes]]:
    """(id, commitment) of every entry touching the record whose content is still there."""
    if arrest_id is not None:
        subjects = entries_naming(session, arrest_ids=[arrest_id])
    else:
        subjects = entries_naming(session, person_ids=[] if person_id is None else [person_id])
    return sorted(
        (int(i), bytes(c))
        for i, c in session.execute(
            select(AuditEntry.id, AuditEntry.commitment).where(
                AuditEntry.id.in_(subjects), AuditEntry.content.is_not(None)
            )
        )
    )


# PostgreSQL's guard on shredding (audit.models.shredding_ddl) finds the shredding entry by
# this transaction-local setting; SQLite's takes the newest entry, which it is there.
SHREDDING_ENTRY_SETTING = "openpars.shredding_entry"


def shred_contents(session: Session, *, shredding_entry: int, entry_ids: Sequence[int]) -> None:
    """Set salt and content to NULL on these entries, which ``shredding_entry`` (an
    ``audit.shred`` entry appended in this transaction) names: the one UPDATE the database
    lets through on the log."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(
            select(func.set_config(SHREDDING_ENTRY_SETTING, str(int(shredding_entry)), true()))
        )
    for start in range(0, len(entry_ids), _CHUNK):
        chunk = _int_list(entry_ids[start : start + _CHUNK])
        connection.exec_driver_sql(
            "UPDATE audit_entries SET salt = NULL, content = NULL "  # noqa: S608 - integers
            f"WHERE id IN ({chunk})"
        )
