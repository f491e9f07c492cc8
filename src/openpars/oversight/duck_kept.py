"""The DuckDB file of ``--engine duckdb`` kept between runs and brought up to the store (issue 13).

Without it the reader copies its tables (``duck.DEFAULT_COPIED``) into a temporary file at
every run: 47 s at 10M entries before the first statement (docs/benchmarks.md). With the
setting ``oversight_duckdb_file`` the copy is kept, and each run reads only what the store
changed since the copy was last brought up to it, in one DuckDB transaction (a crash or an
error leaves the file as it was) over one snapshot of the store (the scanner reads every table
of a DuckDB transaction in one REPEATABLE READ transaction of PostgreSQL):

- the log, append-only: the entries past the highest id copied, the leaves past the count
  copied, and the entries of those leaves not copied yet (an entry that committed after one
  with a higher id, caught once integrated); the entries a new ``audit.shred`` entry names are
  read again (their content is NULL now);
- the access facts, appended by id, less the facts of the entries named by the shredding
  entries of the leaves the facts refresh read since (``facts._purge_sql``: the refresh drops
  them when it reads the shredding entry's leaf); the per-day rows of the days of those
  leaves' entries read again (the refresh merges into them);
- the charge timeline and the arrestee rows, which the refresh rebuilds per arrest and per
  person: those of the arrests and persons it may have rebuilt (past its watermarks, or named
  by the records' write entries of the leaves it read: ``facts._refresh_timeline``) read again;
- the records (persons, arrests, involvements): the rows past the highest id copied, and the
  rows the records' write entries among the new entries name read again (every write to the
  records is audited in its transaction, with the persons and arrests it touched on the
  entry's row). A change made to the records without its audit entry (by hand, in SQL) is not
  seen: delete the file and it is built again.

The file belongs to one store: it keeps the log's size and the hash of its last leaf when it
was brought up, and a store that lacks that leaf with that hash (another store, or a log
rewritten or restored from an older backup) is refused, naming the setting. A file made under
another definition (this format's version, the copied tables and the columns read of each) is
built again, in the same transaction.
"""

# Every statement here is built from catalogue names, enum values and integers read from the
# databases, never from a caller's input.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openpars.audit.events import AuditKind, Outcome
from openpars.errors import InvalidInput
from openpars.oversight import facts
from openpars.records.enums import InvolvementRole

# The layout of the file (its metadata and how each table is caught up); a file of another
# version is built again.
FORMAT = 1
SETTING = "oversight_duckdb_file"
# The file's metadata: one row per key.
META = "openpars_kept_copy"
# Keys read again by list at most; past it the table is copied whole (the list is sent to
# PostgreSQL in the statement's text).
REREAD_LIMIT = 50_000
# The store's watermarks the derived tables are caught up by (oversight_watermarks).
_MARKS = {
    "facts_leaves": facts.WATERMARK,
    "timeline_decisions": facts.TIMELINE_DECISIONS,
    "timeline_charges": facts.TIMELINE_CHARGES,
    "arrestee_involvements": facts.ARRESTEES_INVOLVEMENTS,
}
_DERIVED = (
    "oversight_access_facts",
    "oversight_user_days",
    "oversight_charge_timeline",
    "oversight_arrestee_arrests",
)
_RECORDS = ("persons", "arrests", "involvements")
_OK = Outcome.OK.value
_WRITE = AuditKind.WRITE.value


@dataclass(frozen=True, slots=True)
class BroughtUp:
    """What opening the file did: ``built`` (copied whole) or caught up, and the log's size."""

    built: bool
    leaves: int
    entries_read: int


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def definition(reads: Mapping[str, str]) -> str:
    """The SHA-256 of what the file holds: the format, the copied tables and each one's read."""
    canonical = json.dumps({"format": FORMAT, "reads": dict(sorted(reads.items()))})
    return hashlib.sha256(canonical.encode()).hexdigest()


def _scalar(con: Any, sql: str, *params: Any) -> Any:
    row = con.execute(sql, list(params)).fetchone()
    return None if row is None else row[0]


def _ints(con: Any, sql: str) -> list[int]:
    return sorted({int(r[0]) for r in con.execute(sql).fetchall() if r[0] is not None})


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, field=SETTING, code="duckdb_file_refused")


class _Copy:
    """The statements of one bring-up: ``reads`` maps each copied table to its select list."""

    def __init__(self, con: Any, reads: Mapping[str, str]) -> None:
        self.con, self.reads = con, reads

    def source(self, table: str) -> str:
        """The table's copied columns of all the store's rows (the scanner's parallel scan)."""
        return f"SELECT {self.reads[table]} FROM store.public.{_q(table)}"

    def where(self, table: str, condition: str) -> str:
        """The table's copied columns of the store's rows that ``condition`` (PostgreSQL's
        SQL) keeps, in PostgreSQL's own statement (``_in_store``): read by its index."""
        rows = _in_store(f"SELECT * FROM {_q(table)} WHERE {condition}")
        return f"SELECT {self.reads[table]} FROM {rows}"

    def by_keys(self, table: str, column: str, keys: Iterable[int | str]) -> str:
        """The table's copied columns of the store's rows whose ``column`` is one of ``keys``."""
        values = sorted(set(keys))
        if all(isinstance(v, int) for v in values):
            array = "'{" + ",".join(str(int(v)) for v in values) + "}'::bigint[]"
        else:
            array = "ARRAY[" + ",".join("'" + str(v).replace("'", "''") + "'" for v in values)
            array += "]::text[]"
        return self.where(table, f"{_q(column)} = ANY({array})")

    def whole(self, table: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS main.{_q(table)}")
        self.con.execute(f"CREATE TABLE main.{_q(table)} AS {self.source(table)}")

    def reread(self, table: str, column: str, keys: list[int] | list[str]) -> None:
        """The rows of ``keys`` as the store has them now (gone if it has none)."""
        if not keys:
            return
        if len(keys) > REREAD_LIMIT:
            self.whole(table)
            return
        listed = ",".join(str(k) if isinstance(k, int) else "'" + k + "'" for k in keys)
        self.con.execute(f"DELETE FROM main.{_q(table)} WHERE {_q(column)} IN ({listed})")
        self.con.execute(f"INSERT INTO main.{_q(table)} {self.by_keys(table, column, keys)}")

    def append(self, table: str, key: str) -> None:
        """The store's rows past the highest ``key`` copied."""
        top = _scalar(self.con, f"SELECT COALESCE(MAX({_q(key)}), -1) FROM main.{_q(table)}")
        self.con.execute(
            f"INSERT INTO main.{_q(table)} {self.where(table, f'{_q(key)} > {int(top)}')}"
        )


def _in_store(sql: str) -> str:
    """A FROM-clause item of the rows of ``sql`` run by PostgreSQL as it is
    (``postgres_query``, in the DuckDB transaction's snapshot of the store): a condition on
    an indexed key is an index scan there, where the scanner's own scan of the attached table
    reads the table's pages in ranges and filters them (at 10M entries, 4.3 s for a day's
    27,000 entries)."""
    return "postgres_query('store', '" + sql.replace("'", "''") + "')"


def _store_marks(con: Any) -> dict[str, int]:
    rows = dict(con.execute("SELECT name, size FROM store.public.oversight_watermarks").fetchall())
    return {key: int(rows.get(name) or 0) for key, name in _MARKS.items()}


def _leaf_hash(con: Any, table: str | None, index: int) -> str:
    """The leaf's entry id and hash ('<id>:<hex>') in the copy's ``table``, or the store's
    (None); '' when there is no such leaf."""
    if index < 0:
        return ""
    sql = f"SELECT entry_id, leaf_hash FROM {table or 'audit_leaves'} WHERE leaf_index = {index}"
    found = con.execute(sql if table else f"SELECT * FROM {_in_store(sql)}").fetchone()
    return "" if found is None else f"{int(found[0])}:{bytes(found[1]).hex()}"


def _meta(con: Any) -> dict[str, str] | None:
    """The file's metadata; None for a file with no table; InvalidInput for a DuckDB file
    openpars did not make (tables, no metadata)."""
    tables = _tables(con)
    if META not in tables:
        if tables:
            raise _refused(
                f"{SETTING}: the DuckDB file holds tables ({', '.join(sorted(tables)[:5])}) but "
                "is not a copy openpars made; give a new path or an openpars copy"
            )
        return None
    return {str(k): str(v) for k, v in con.execute(f"SELECT key, value FROM {META}").fetchall()}


def _check_store(meta: Mapping[str, str], con: Any) -> None:
    """Refuse a file whose log is not a prefix of the store's (another store, or a log
    rewritten): the store must hold the file's last leaf with the same hash."""
    leaves = int(meta.get("leaves", "0"))
    if leaves == 0:
        return
    found = _leaf_hash(con, None, leaves - 1)
    if found != meta.get("head_hash"):
        raise _refused(
            f"{SETTING}: the DuckDB file was made from a log whose leaf {leaves - 1} is "
            f"(entry:hash) {meta.get('head_hash', '')[:24]}..., and this store's log "
            + (f"has {found[:24]}... there" if found else f"has fewer than {leaves} leaves")
            + ": it is another store's copy, or this store's log was rewritten. Give another "
            "path (or delete the file to build it again from this store)"
        )


def bring_up(con: Any, reads: Mapping[str, str]) -> BroughtUp:
    """Bring the kept copy in ``con`` (the store attached as ``store``) up to the store, in
    one transaction; build it when new or of another definition. ``reads``: each copied
    table's select list over the store's columns."""
    wanted = definition(reads)
    con.execute("BEGIN TRANSACTION")
    try:
        meta = _meta(con)
        if meta is not None:
            _check_store(meta, con)
            _tidy(con, reads)
        copy = _Copy(con, reads)
        marks = _store_marks(con)
        if (
            meta is None
            or meta.get("definition") != wanted
            or int(meta.get("leaves", "0")) == 0
            or not set(reads) <= _tables(con)
        ):
            for table in reads:
                copy.whole(table)
            done = BroughtUp(built=True, leaves=0, entries_read=0)
        else:
            done = _catch_up(copy, meta, marks)
        leaves, head = _store_leaves_copied(con)
        _write_meta(
            con,
            {
                "definition": wanted,
                "leaves": str(leaves),
                "head_hash": head,
                **{k: str(v) for k, v in marks.items()},
            },
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return BroughtUp(built=done.built, leaves=leaves, entries_read=done.entries_read)


def _tidy(con: Any, reads: Mapping[str, str]) -> None:
    """Drop the tables a previous run's readers left in the file (the detectors' work tables
    are tables of the file on DuckDB: ``detectors._temporary``)."""
    for table in sorted(_tables(con) - set(reads) - {META}):
        con.execute(f"DROP TABLE main.{_q(table)}")


def _tables(con: Any) -> set[str]:
    return {
        str(r[0])
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema = 'main'"
        ).fetchall()
    }


def _store_leaves_copied(con: Any) -> tuple[int, str]:
    """The copy's log size and last leaf's hash (the store's, read in the same snapshot)."""
    size = int(_scalar(con, "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM main.audit_leaves"))
    return size, _leaf_hash(con, "main.audit_leaves", size - 1)


def _write_meta(con: Any, values: Mapping[str, str]) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {META} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute(f"DELETE FROM {META}")
    con.executemany(f"INSERT INTO {META} VALUES (?, ?)", sorted(values.items()))


def _catch_up(copy: _Copy, meta: Mapping[str, str], marks: Mapping[str, int]) -> BroughtUp:
    con = copy.con
    leaves = int(meta["leaves"])
    new = _catch_up_log(copy, leaves)
    _catch_up_records(copy, new)
    seen = {key: int(meta.get(key, "0")) for key in _MARKS}
    if seen["facts_leaves"] == 0 or any(marks[k] < seen[k] for k in _MARKS):
        # The refresh read the log from its first leaf (and rebuilt every derived row), or
        # its watermarks went back: the derived tables copied whole.
        for table in _DERIVED:
            copy.whole(table)
    else:
        _catch_up_derived(copy, seen, marks)
    con.execute("DROP TABLE IF EXISTS kept_new")
    return BroughtUp(built=False, leaves=leaves, entries_read=new)


def _catch_up_log(copy: _Copy, leaves: int) -> int:
    """The new entries and leaves; the entries the new shredding entries name read again.
    The ids of the entries read are left in the temporary table ``kept_new``."""
    con = copy.con
    top = int(_scalar(con, "SELECT COALESCE(MAX(id), 0) FROM main.audit_entries"))
    con.execute("CREATE OR REPLACE TEMPORARY TABLE kept_new (id BIGINT)")
    copy.append("audit_entries", "id")
    copy.append("audit_leaves", "leaf_index")
    late = _ints(
        con,
        f"SELECT l.entry_id FROM main.audit_leaves l WHERE l.leaf_index >= {leaves} "
        f"AND l.entry_id <= {top} AND NOT EXISTS "
        "(SELECT 1 FROM main.audit_entries e WHERE e.id = l.entry_id)",
    )
    if late:
        copy.reread("audit_entries", "id", late)
        con.execute(f"INSERT INTO kept_new VALUES {','.join(f'({i})' for i in late)}")
    con.execute(f"INSERT INTO kept_new SELECT id FROM main.audit_entries WHERE id > {top}")
    shredded = _ints(
        con,
        "SELECT unnest(CAST(json_extract(decode(e.content), '$.params.entry_ids') AS BIGINT[])) "
        "FROM main.audit_entries e JOIN kept_new n ON n.id = e.id "
        f"WHERE e.action = 'audit.shred' AND e.outcome = '{_OK}' AND e.content IS NOT NULL",
    )
    copy.reread("audit_entries", "id", shredded)
    return int(_scalar(con, "SELECT count(*) FROM kept_new"))


def _named(con: Any, column: str, entries: str) -> list[int]:
    """The ids in ``column`` (person_ids or arrest_ids) of the records' write entries among
    ``entries`` (a FROM-clause item ``x`` with an ``id`` column)."""
    return _ints(
        con,
        f"SELECT unnest(e.{column}) FROM main.audit_entries e JOIN {entries} ON x.id = e.id "
        f"WHERE e.kind = '{_WRITE}'",
    )


def _catch_up_records(copy: _Copy, new: int) -> None:
    """The records: new rows by id, and the rows the new write entries name read again."""
    con = copy.con
    persons = _named(con, "person_ids", "kept_new x") if new else []
    arrests = _named(con, "arrest_ids", "kept_new x") if new else []
    for table in _RECORDS:
        copy.append(table, "id")
    copy.reread("persons", "id", persons)
    copy.reread("arrests", "id", arrests)
    copy.reread("involvements", "arrest_id", arrests)
    copy.reread("involvements", "person_id", persons)


def _catch_up_derived(copy: _Copy, seen: Mapping[str, int], marks: Mapping[str, int]) -> None:
    """The derived tables as the refreshes since the last bring-up left them."""
    con = copy.con
    lo, hi = seen["facts_leaves"], marks["facts_leaves"]
    read = (
        f"(SELECT l.entry_id AS id FROM main.audit_leaves l "
        f"WHERE l.leaf_index >= {lo} AND l.leaf_index < {hi}) AS x"
    )
    copy.append("oversight_access_facts", "id")
    purged = _ints(
        con,
        "SELECT unnest(CAST(json_extract(decode(e.content), '$.params.entry_ids') AS BIGINT[])) "
        f"FROM main.audit_entries e JOIN {read} ON x.id = e.id "
        f"WHERE e.action = 'audit.shred' AND e.outcome = '{_OK}' AND e.content IS NOT NULL",
    )
    if purged:
        listed = ",".join(map(str, purged))
        con.execute(f"DELETE FROM main.oversight_access_facts WHERE entry_id IN ({listed})")
    days = sorted(
        str(r[0])
        for r in con.execute(
            f"SELECT DISTINCT strftime(e.at, '%Y-%m-%d') FROM main.audit_entries e "
            f"JOIN {read} ON x.id = e.id"
        ).fetchall()
    )
    copy.reread("oversight_user_days", "day", days)
    named_arrests = _named(con, "arrest_ids", read) if hi > lo else []
    named_persons = _named(con, "person_ids", read) if hi > lo else []
    arrests = sorted(
        set(named_arrests)
        | set(
            _ints(
                con,
                "SELECT arrest_id FROM "
                + _in_store(
                    f"SELECT arrest_id FROM charging_decisions WHERE id > "
                    f"{seen['timeline_decisions']} UNION SELECT arrest_id FROM charges "
                    f"WHERE id > {seen['timeline_charges']}"
                ),
            )
        )
    )
    copy.reread("oversight_charge_timeline", "arrest_id", arrests)
    arrestee = InvolvementRole.ARRESTEE.value
    persons = set(named_persons) | set(
        _ints(
            con,
            "SELECT person_id FROM "
            + _in_store(
                f"SELECT person_id FROM involvements WHERE id > "
                f"{seen['arrestee_involvements']} AND role = '{arrestee}'"
            ),
        )
    )
    if named_arrests:
        listed = ",".join(map(str, named_arrests))
        persons |= set(
            _ints(
                con,
                "SELECT person_id FROM main.involvements "
                f"WHERE role = '{arrestee}' AND arrest_id IN ({listed})",
            )
        )
    copy.reread("oversight_arrestee_arrests", "person_id", sorted(persons))
