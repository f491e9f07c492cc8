"""The oversight pass's reads on DuckDB attached to the PostgreSQL store (issue 13).

DuckDB (PyPI ``duckdb``, through the SQLAlchemy dialect of PyPI ``duckdb-engine``, dialect name
``duckdb``) loads the PostgreSQL scanner shipped by PyPI ``duckdb-extension-postgres-scanner``
of the same version, by path (nothing is downloaded), and ATTACHes the store READ_ONLY. Each of
the store's tables is then a view of DuckDB's own catalogue under the same name, so the
detectors' statements (their DuckDB spellings: ``oversight.detectors``, dialect ``duckdb``) read
it unchanged. The views give every ``timestamptz`` column as a naive UTC ``TIMESTAMP``
(``db.UTCDateTime`` binds naive UTC on this dialect and marks results UTC): DuckDB's Python
client converts a ``TIMESTAMPTZ`` result through ``pytz``, which the project does not depend on.

``copied`` tables are read once into DuckDB's own columnar storage instead (only the columns the
readers use where ``COPIED_COLUMNS`` names them): a column scan of a copy against the scanner's
row-by-row COPY from PostgreSQL at every statement (docs/benchmarks.md, branch h13duck2).

Only reads run here: nothing is ever written to the store through DuckDB (READ_ONLY). The
flags the detectors find are stored by the caller in the store's own transaction
(``flags.run_detectors`` with ``reader``). DuckDB reads what the store had committed: the facts
must be brought up to the log (``facts.refresh``) and committed before.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import re
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from openpars.errors import InvalidInput
from openpars.oversight import duck_kept

# What is copied of a table where not every column (the store's column names; instants converted
# as the views do). Of the entries, the columns the oversight readers use, and of the content
# (some 400 bytes an entry: 4 GB at 10M) only what they parse: the search query of the searches
# (``detectors._param``: wildcards, date sweeps), the whole document of the records' writes
# (``facts.named_sql``: the persons and arrests they name), and for every other entry the empty
# document ``{}``, which keeps "not shredded" (``content IS NOT NULL``) as it is.
_PARSED = (
    "kind = 'write' OR action IN ('person.search', 'arrest.search') "
    "OR (kind = 'refused' AND action LIKE 'GET %/arrests')"
)
COPIED_COLUMNS: dict[str, str] = {
    "audit_entries": (
        'id, timezone(\'UTC\', "at") AS "at", user_id, agency_id, agreement_id, kind, action, '
        "person_ids, arrest_ids, "
        "outcome, CASE WHEN content IS NULL THEN NULL "
        f"WHEN kind = 'write' THEN content WHEN {_PARSED} THEN encode(CAST(json_object('params', "
        "json_object('query', json_extract(decode(content), '$.params.query'))) AS VARCHAR)) "
        "ELSE encode('{}') END AS content"
    ),
}
# Columns of a copied table left out of its copy: ``persons.floor_visible`` is kept by the
# database's triggers (access.rls) for every person a sealing or a new floor changes, with no
# audit entry naming them, so a kept copy (``duck_kept``) could not tell which rows to read
# again; no oversight reader reads it.
NOT_COPIED: dict[str, frozenset[str]] = {"persons": frozenset({"floor_visible"})}
# The tables the oversight pass reads most, copied into DuckDB by default (the others are read
# through the scanner at each statement: small, or read by few).
DEFAULT_COPIED = (
    "audit_entries",
    "oversight_access_facts",
    "audit_leaves",
    "oversight_user_days",
    "persons",
    "arrests",
    "involvements",
    "oversight_charge_timeline",
    "oversight_arrestee_arrests",
)
# The modules engine duckdb imports (PyPI duckdb, duckdb-engine, duckdb-extension-postgres-scanner).
_NEEDED = ("duckdb", "duckdb_engine", "duckdb_extension_postgres_scanner")
DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_THREADS = 2
_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?[KMGT]i?B")
# DuckDB's optimizer that swaps a hash join's sides by the cardinality estimates
# (``duckdb_optimizers()``): off for the statements ``joins_as_written`` runs.
BUILD_SIDE_OPTIMIZER = "build_side_probe_side"


@compiles(DateTime, "duckdb")
def _naive_instant(type_: DateTime, compiler: Any, **kw: Any) -> str:
    """An instant on DuckDB reading a store is a naive UTC ``TIMESTAMP``, as the views give
    them (``db.UTCDateTime`` binds naive UTC there and marks results UTC): a ``TIMESTAMPTZ``
    column, as a temporary table of ``UTCDateTime`` columns would otherwise have, comes back
    through ``pytz``, which the project does not depend on."""
    return "TIMESTAMP"


def scanner_path() -> Path:
    """The PostgreSQL scanner shipped by the PyPI package for this DuckDB version."""
    import duckdb

    root = importlib.resources.files("duckdb_extension_postgres_scanner") / "extensions"
    found = Path(str(root)) / f"v{duckdb.__version__}" / "postgres_scanner.duckdb_extension"
    if not found.is_file():
        raise InvalidInput(
            f"engine duckdb: no PostgreSQL scanner for DuckDB {duckdb.__version__} at {found}; "
            "install duckdb-extension-postgres-scanner of the same version as duckdb",
            field="engine",
            code="duckdb_scanner_missing",
        )
    return found


def _libpq(url: URL) -> str:
    parts = {
        "host": url.host or "127.0.0.1",
        "port": str(url.port or 5432),
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _prepare(
    con: Any,
    store: URL,
    copied: Collection[str],
    memory_limit: str,
    threads: int,
    spill: Path,
    *,
    kept: bool = False,
) -> None:
    """Load the scanner, attach the store and name its tables in DuckDB's catalogue: the
    ``copied`` ones copied (``kept``: the file's copy brought up to the store,
    ``duck_kept``), the others views of the store (temporary ones in a kept file)."""
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{spill}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"LOAD '{scanner_path()}'")
    con.execute(f"ATTACH '{_libpq(store)}' AS store (TYPE postgres, READ_ONLY)")
    columns = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = 'store' AND table_schema = 'public' "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in columns:
        tables.setdefault(str(table), []).append((str(column), str(kind)))
    reads = {table: _read(table, cols, copied) for table, cols in tables.items()}
    if kept:
        duck_kept.bring_up(con, {t: reads[t] for t in copied if t in reads})
    for table, read in reads.items():
        source = f"SELECT {read} FROM store.public.{_quoted(table)}"  # noqa: S608 - catalogue names
        if kept and table not in copied:
            con.execute(f"CREATE OR REPLACE TEMPORARY VIEW {_quoted(table)} AS {source}")
        elif not kept:
            kind = "TABLE" if table in copied else "VIEW"
            con.execute(f"CREATE {kind} main.{_quoted(table)} AS {source}")


def _read(table: str, cols: list[tuple[str, str]], copied: Collection[str]) -> str:
    """The select list a table is read with: its instants as naive UTC, and of a copied table
    the columns ``COPIED_COLUMNS`` names where it names them."""
    if table in copied and table in COPIED_COLUMNS:
        return COPIED_COLUMNS[table]
    left = NOT_COPIED.get(table, frozenset()) if table in copied else frozenset()
    return ", ".join(
        f"timezone('UTC', {_quoted(c)}) AS {_quoted(c)}"
        if k.upper() == "TIMESTAMP WITH TIME ZONE"
        else _quoted(c)
        for c, k in cols
        if c not in left
    )


def readable(store_url: str | URL) -> URL:
    """The store's URL if DuckDB can attach it (PostgreSQL), else InvalidInput naming the
    engine: checked before anything is written to the store."""
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise InvalidInput(
            f"engine duckdb needs the Python packages {', '.join(missing)}, which are not "
            "installed here (they come with openpars' dev extra: pip install -e '.[dev]'); "
            "or run the detectors on the store itself (--engine store)",
            field="engine",
            code="duckdb_not_installed",
        )
    store = make_url(store_url)
    if store.get_backend_name() != "postgresql":
        raise InvalidInput(
            f"engine duckdb reads a PostgreSQL store; this store is {store.get_backend_name()}: "
            "run the detectors on the store itself (--engine store)",
            field="engine",
            code="duckdb_needs_postgresql",
        )
    return store


def reader_engine(
    store_url: str | URL,
    *,
    copied: Collection[str] = DEFAULT_COPIED,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int = DEFAULT_THREADS,
    folder: Path,
    kept_file: Path | None = None,
) -> Engine:
    """An engine on one DuckDB attached to the PostgreSQL store ``store_url``, its database
    file and its spills in ``folder``: the copied tables are buffer-managed (evicted to the
    file past ``memory_limit``; an in-memory DuckDB ran out of memory copying 10M entries).
    ``kept_file``: the database is that file, kept and brought up to the store when a
    connection opens (``duck_kept``), not a new one in ``folder``."""
    if not _MEMORY.fullmatch(memory_limit):
        raise InvalidInput(
            f"memory limit {memory_limit!r} is not an amount such as 1500MB or 1.5GiB",
            field="memory_limit",
            code="invalid_memory_limit",
        )
    store = readable(store_url)
    if kept_file is not None and set(copied) != set(DEFAULT_COPIED):
        raise InvalidInput(
            f"{duck_kept.SETTING}: a kept DuckDB file holds the default copied tables "
            f"({', '.join(DEFAULT_COPIED)}), not another set",
            field=duck_kept.SETTING,
            code="duckdb_file_copied",
        )
    database = kept_file if kept_file is not None else folder / "reader.duckdb"
    engine = create_engine(f"duckdb:///{database}", poolclass=StaticPool)
    # ``at`` is a keyword to DuckDB's parser (AT TIME ZONE), not in the dialect's reserved
    # words: quoted where SQLAlchemy names it bare (a temporary table's column, as the pairs'
    # ``at`` in ``explain._prepare``).
    preparer = engine.dialect.identifier_preparer
    preparer.reserved_words = {*preparer.reserved_words, "at"}

    @event.listens_for(engine, "connect")
    def _attach(dbapi_connection: Any, _record: Any) -> None:
        _prepare(
            dbapi_connection,
            store,
            copied,
            memory_limit,
            threads,
            folder / "spill",
            kept=kept_file is not None,
        )

    return engine


@contextmanager
def joins_as_written(reader: Session) -> Iterator[None]:
    """Run the reader's statements inside with each hash join built on the side the statement
    joins (the right side of a join as written), not the side DuckDB's estimates call smaller.

    For the explanation (``explain_sql.explanations``): the facts joined to the sets made of
    them (charge states, cited references, sweeps), each set on the right and narrower than
    the facts. DuckDB estimates the materialised facts CTE at a fraction of its rows (at 10M
    entries 0.5-1.3 million for 10 million: the default selectivities of its filters), so
    it built the hash of the left join to the charge states on the facts, 10M rows of 16
    columns, against 8M groups: over its 1 GB limit on a kept file reopened and on the one
    the process had just built (docs/benchmarks.md, branch h13mem). The estimates differ
    between the two (the statistics a reopened file loads are not those the building process
    held), hence a pass that finished in one and not the other. Not undone if a statement
    inside fails: the reader is then closed by its caller (``reader``)."""
    reader.execute(text(f"SET disabled_optimizers = '{BUILD_SIDE_OPTIMIZER}'"))
    yield
    reader.execute(text("RESET disabled_optimizers"))


def _in_use(error: DBAPIError, path: Path) -> InvalidInput | None:
    """The error to raise when DuckDB could not lock the kept file (another run holds it)."""
    if "lock" not in str(error.orig).lower():
        return None
    return InvalidInput(
        f"{duck_kept.SETTING}: the DuckDB file {path} is in use by another run (DuckDB lets "
        f"one process write a file; {error.orig}); wait for it to end, or give another path",
        field=duck_kept.SETTING,
        code="duckdb_file_in_use",
    )


@contextmanager
def reader(
    store_url: str | URL,
    *,
    copied: Collection[str] = DEFAULT_COPIED,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int = DEFAULT_THREADS,
    kept_file: Path | None = None,
) -> Iterator[Session]:
    """A session reading the store through DuckDB; closed on exit, and DuckDB's file (in a
    temporary folder) removed with it. ``copied``: by default the tables the oversight pass
    reads most (``DEFAULT_COPIED``); through views alone the detectors took 659 s at 1M
    entries against 11 s (docs/benchmarks.md, branch h13duck2). ``kept_file``: DuckDB's file
    is that one, kept, its copy brought up to the store on opening (``duck_kept``)."""
    with tempfile.TemporaryDirectory(prefix="openpars-duckdb-") as folder:
        engine = reader_engine(
            store_url,
            copied=copied,
            memory_limit=memory_limit,
            threads=threads,
            folder=Path(folder),
            kept_file=kept_file,
        )
        try:
            with Session(engine) as session:
                try:
                    session.connection()
                except DBAPIError as error:
                    in_use = None if kept_file is None else _in_use(error, kept_file)
                    if in_use is None:
                        raise
                    raise in_use from error
                try:
                    yield session
                except DBAPIError as error:
                    exhausted = _out_of_memory(error, memory_limit)
                    if exhausted is None:
                        raise
                    raise exhausted from error
                session.rollback()
        finally:
            engine.dispose()


def _out_of_memory(error: DBAPIError, memory_limit: str) -> InvalidInput | None:
    """DuckDB out of its ``memory_limit`` as an error naming the setting that raises it (not
    the console's "the database could not be used", which would send the reader to --db)."""
    if type(error.orig).__name__ != "OutOfMemoryException":
        return None
    return InvalidInput(
        f"DuckDB ran out of its memory limit ({memory_limit}) reading the store: "
        "raise OPENPARS_OVERSIGHT_DUCKDB_MEMORY (e.g. 1500MB; the process uses about that "
        "much more besides) or run with --engine store; the run stored nothing",
        field="oversight_duckdb_memory",
        code="duckdb_out_of_memory",
    )
