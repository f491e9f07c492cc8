"""Engine and session factories, the metadata naming convention, SQLite pragmas."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import JSON, URL, DateTime, Enum, MetaData, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect, Engine, create_engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from openpars.config import Settings
from openpars.prepared import driver_errors

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names follow NAMING_CONVENTION."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zones, so values are normalised to naive UTC on the way in and marked
    UTC on the way out; PostgreSQL stores ``timestamptz``. Naive input is refused because a
    local time without a zone is ambiguous in an audit trail.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; SQLite (and DuckDB reading a store) gets a naive UTC value."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone")
        value = value.astimezone(UTC)
        # DuckDB reading a store (oversight.duck) sees its instants as naive UTC too.
        return value.replace(tzinfo=None) if dialect.name in ("sqlite", "duckdb") else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Schema DDL that SQLAlchemy's metadata cannot express (triggers, row-level security): each
# feature registers a function of the dialect name; create_all runs them all, and the migration
# generator freezes their output into the initial revision.
SchemaDDL = Callable[[str], list[str]]
_SCHEMA_DDL: list[SchemaDDL] = []


# Indexes made by one dialect's schema DDL, not declared on the models (which cannot make an
# index for one dialect alone): the drift check (migrate.drift) leaves them out.
DIALECT_INDEXES: set[str] = set()


def register_schema_ddl(statements: SchemaDDL) -> SchemaDDL:
    """Register DDL to run after the tables are created."""
    _SCHEMA_DDL.append(statements)
    return statements


def schema_ddl(dialect: str) -> list[str]:
    """Every registered statement for a dialect, in registration order."""
    return [statement for producer in _SCHEMA_DDL for statement in producer(dialect)]


def append_only_ddl(
    dialect: str, tables: Mapping[str, tuple[str, ...]], *, function: str
) -> list[str]:
    """Triggers by which the database itself refuses the given operations on the given tables."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
            for table, ops in tables.items()
            for op in ops
        ]
    statements = [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION USING MESSAGE = "
        "TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused'; END $$"
    ]
    statements += [
        f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE {' OR '.join(ops)} ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        for table, ops in tables.items()
    ]
    return statements


def _run_schema_ddl(_target: object, connection: Connection, **_: object) -> None:
    for statement in schema_ddl(connection.dialect.name):
        connection.exec_driver_sql(statement)


event.listen(Base.metadata, "after_create", _run_schema_ddl)

# JSON documents: JSONB on PostgreSQL, JSON text on SQLite.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")


def str_enum(kind: type[StrEnum], length: int = 20) -> Enum:
    """A VARCHAR column of an enum's values (not names), checked on both dialects."""
    return Enum(
        kind,
        native_enum=False,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


def utcnow() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


# Memory-mapped reads of the SQLite file unless Settings.sqlite_mmap_mb says otherwise.
DEFAULT_SQLITE_MMAP_MB = 1024
# WAL frames (pages) after which a commit copies the WAL back into the database file (SQLite's
# automatic checkpoint, 1,000 by default). The commit that crosses the mark pays it: the copy
# and an fsync of the database file, ~3x a commit. A commit that writes more pages (an audited
# read, when this was set: its entry and content rows and the entry's indexes) crosses it
# more often (0.8% of such commits at 1,000, against 0.3% of a one-row write's), which put
# checkpoints in the audited read's p99. Ten times rarer, each checkpoint copies a page
# rewritten by every commit (the rate windows', the log's last leaves) once instead of ten
# times, and fewer than one commit in a thousand pays one. The WAL file grows to ~40 MiB (4 KiB
# pages) and is reused, not regrown; every commit still fsyncs its own frames first, so
# durability is unchanged.
SQLITE_WAL_AUTOCHECKPOINT = 10_000


def _sqlite_on_connect(
    dbapi_connection: Any, _record: Any, *, mmap_mb: int, synchronous: str
) -> None:
    # Let SQLAlchemy's begin event own transactions so BEGIN IMMEDIATE and SAVEPOINT work.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted or shrunk rows' bytes are overwritten with zeros, not left in free space:
    # shredding an audit entry's content (audit/shred.py: set to NULL in place) must leave no
    # copy in the file whatever the SQLite build's default (upstream's is off, Debian's on).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT}")
    # 64 MiB of page cache instead of SQLite's 2 MiB default: searches and capped counts touch
    # many index pages (bench/search.py halved the count time with it).
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute(f"PRAGMA mmap_size={int(mmap_mb) * 1024 * 1024}")
    cursor.close()


def _as_is(value: None) -> None:
    return value


# sqlite3 binds a parameter of any type but int, float, str and bytearray only after looking
# for an adapter to convert it with; finding none, it asks its protocol type for one, and that
# failed attribute lookup raises and formats an AttributeError inside the driver (~1,700
# instructions under callgrind) for every None and every bytes parameter. An audit entry's
# INSERT has five of them (the commitment, salt, content, and no ids), bench/
# audit_instructions.py. Adapters that return the value itself are found in the driver's
# registry at once and bind the same values: a bytes as a BLOB, None as NULL.
sqlite3.register_adapter(bytes, bytes)
sqlite3.register_adapter(type(None), _as_is)


_BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"


def _sqlite_on_begin(conn: Connection) -> None:
    # Every openpars transaction writes (each read leaves an audit entry), so take the write
    # lock up front: one writer at a time, no deadlock-prone lock upgrades.
    # On the driver's connection, not through SQLAlchemy's execution, whose per-statement work
    # cost a durable one-row transaction 20-30 µs of its ~300 µs of CPU (interleaved A/B, loaded
    # machine, docs/benchmarks.md); a driver error is still raised as SQLAlchemy's.
    with driver_errors(conn, _BEGIN_IMMEDIATE):
        conn.connection.driver_connection.execute(_BEGIN_IMMEDIATE)  # type: ignore[union-attr]


def make_engine(
    url: str,
    *,
    echo: bool = False,
    sqlite_mmap_mb: int = DEFAULT_SQLITE_MMAP_MB,
    sqlite_synchronous: str = "FULL",
) -> Engine:
    """Create an engine for SQLite (embedded) or PostgreSQL (psycopg 3)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )
        on_connect = partial(
            _sqlite_on_connect, mmap_mb=sqlite_mmap_mb, synchronous=sqlite_synchronous
        )
        event.listen(engine, "connect", on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return pooled_postgresql(url, echo=echo)


# A pooled connection idle for longer than this is pinged before it is handed out.
IDLE_PING_S = 5.0


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info["openpars_idle_since"] = time.monotonic()


def _ping_if_idle(dialect: Dialect, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection that sat idle in the pool; a dead one is replaced (the pool retries).

    A ping on every checkout (SQLAlchemy's ``pool_pre_ping``) costs every request a round trip.
    A connection in steady use was just seen alive; one idle for a while (a restarted server, a
    firewall that dropped it) is checked. If a busy connection dies all the same, its statement
    fails, the request fails with nothing returned, and SQLAlchemy discards the pool's
    connections on that disconnect error.
    """
    since = record.info.get("openpars_idle_since")
    if since is not None and time.monotonic() - since < IDLE_PING_S:
        return
    try:
        alive = dialect.do_ping(dbapi_connection)
    except Exception as exc:
        raise DisconnectionError("pooled connection found dead") from exc
    if not alive:  # pragma: no cover - psycopg's ping raises rather than returning False
        raise DisconnectionError("pooled connection found dead")


class _PipelinedBegin(psycopg.Connection[Any]):
    """A psycopg connection whose BEGIN travels with the first statements of a pipeline.

    psycopg starts a transaction by sending BEGIN before the first statement; in pipeline mode
    it then waits for the server (a Sync) before sending anything else, which costs every
    transaction that starts in a pipeline (an external read's decision) a round trip of its
    own. Here the BEGIN is handed to libpq (not yet flushed) and the statements follow it in
    the same batch: the server still runs BEGIN first, and if any of them fails the pipeline
    aborts and the transaction is rolled back as before. Outside a pipeline nothing changes.
    """

    def _start_query(self) -> Generator[Any, Any, None]:
        if self._pipeline is None or self._autocommit:
            yield from super()._start_query()
            return
        if self.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return
        yield from self._exec_command(self._get_tx_start_command())
        # Hands the BEGIN to libpq, which then reports the transaction ACTIVE, so the
        # statements that follow start no other; the output goes out with their Sync.
        yield from self._pipeline._communicate_gen()


def _connect_pipelined_begin(
    _dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> psycopg.Connection[Any]:
    return _PipelinedBegin.connect(*cargs, **cparams)


def pooled_postgresql(url: str | URL, *, echo: bool = False) -> Engine:
    """A pooled PostgreSQL engine whose connections are pinged only after sitting idle, and
    whose transactions begun in a pipeline send their BEGIN with its statements."""
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20)
    event.listen(engine, "do_connect", _connect_pipelined_begin)
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", partial(_ping_if_idle, engine.dialect))
    return engine


def make_unpooled_engine(url: str) -> Engine:
    """An engine without a pool, for one-off administrative work (create/drop database)."""
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


# Set in Session.info on a transaction that runs as the external database role (ADR 0004).
EXTERNAL_SESSION = "openpars.external_role"
# Set in Session.info on a PostgreSQL unit of one external read, whose audit entry may carry
# the unit's COMMIT in its own round trip (``audit.service.append_sending``); the append then
# sets COMMITTED_WITH_ENTRY, and the unit refuses to run anything after it.
COMMITS_WITH_ENTRY = "openpars.commits_with_entry"
COMMITTED_WITH_ENTRY = "openpars.committed_with_entry"


class UnitAlreadyCommitted(RuntimeError):
    """Code ran a statement in a unit whose audit entry had already committed it."""


@event.listens_for(Session, "after_begin")
def _one_transaction_per_read(session: Session, _transaction: Any, _connection: Any) -> None:
    """Refuse a statement after the read's entry committed its unit: it would run in a second
    transaction of the same unit (rolled back by the unit, which then fails)."""
    if session.info.get(COMMITTED_WITH_ENTRY):
        raise UnitAlreadyCommitted(
            "this unit was committed with its read's audit entry, and a statement was about to "
            "run after it; an external unit is one read: open another unit for more work"
        )


def _check_external_login(dbapi_connection: Any, _record: Any) -> None:
    """Refuse an external login that row-level security would not bind (ADR 0004)."""
    cursor = dbapi_connection.cursor()
    cursor.execute(
        "SELECT r.rolsuper OR r.rolbypassrls, "
        "pg_has_role(current_user, openpars_external_role(), 'USAGE'), "
        "pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'persons'::regclass),"
        " 'MEMBER'), current_user FROM pg_roles r WHERE r.rolname = current_user"
    )
    unbound, external, owner, user = cursor.fetchone()
    cursor.close()
    # End the implicit transaction of the check, so the first unit of work starts its own.
    dbapi_connection.rollback()
    if unbound or not external or owner:
        raise RuntimeError(
            f"the external database login '{user}' must be the role openpars_external_role() "
            "names (or a member of it), and neither a superuser, nor BYPASSRLS, nor the tables' "
            "owner: row-level security would not bind it (OPENPARS_EXTERNAL_DATABASE_URL, "
            "docs/deployment.md)"
        )


class Database:
    """Owns the engine and hands out sessions; the edge (request, command, job) commits.

    On PostgreSQL an external caller's transaction runs on a second engine logged in as the
    external database role (``external_url``, by default the main URL with that role as the
    user and no password: peer, certificate or a ``.pgpass`` entry supply it). A database bound
    to a caller's connection (tests) switches that connection with ``SET LOCAL ROLE`` instead.
    """

    def __init__(self, engine: Engine | Connection, *, external_url: str | None = None) -> None:
        self.bind = engine
        # Joining a caller's transaction (tests) turns commits into savepoint releases.
        self._factory = sessionmaker(
            bind=engine, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        self._external_url = external_url
        self._external_factory: sessionmaker[Session] | None = None
        self._external_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """Build the database handle for a site's configuration."""
        return cls(
            make_engine(
                settings.database_url,
                echo=settings.sql_echo,
                sqlite_mmap_mb=settings.sqlite_mmap_mb,
                sqlite_synchronous=settings.sqlite_synchronous,
            ),
            external_url=settings.external_database_url,
        )

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.bind.dialect.name

    def open_session(self) -> Session:
        """A new session the caller closes (the web edge, which spans a dependency)."""
        return self._factory()

    def dispose(self) -> None:
        """Close every pooled connection, the external login's included."""
        self.bind.engine.dispose()
        if self._external_factory is not None:
            external = self._external_factory.kw["bind"]
            assert isinstance(external, Engine)
            external.dispose()

    def _external_sessions(self) -> sessionmaker[Session]:
        """The external login's session factory, its engine built on first use."""
        with self._external_lock:
            if self._external_factory is None:
                url: str | URL | None = self._external_url
                if url is None:
                    with self.bind.engine.connect() as conn:
                        role = conn.exec_driver_sql("SELECT openpars_external_role()").scalar()
                    url = self.bind.engine.url.set(username=str(role), password=None)
                engine = pooled_postgresql(url)
                event.listen(engine, "connect", _check_external_login)
                self._external_factory = sessionmaker(bind=engine, expire_on_commit=False)
            return self._external_factory

    def external_engine(self) -> Engine:
        """The engine external callers' units run on: the external login's on PostgreSQL."""
        if self.dialect != "postgresql" or isinstance(self.bind, Connection):
            return self.bind.engine
        engine = self._external_sessions().kw["bind"]
        assert isinstance(engine, Engine)
        return engine

    @contextmanager
    def session(self, *, external: bool = False) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception.

        ``external``: an external caller's unit, run as the external database role on
        PostgreSQL (on SQLite, which has no roles, an ordinary unit).
        """
        switch_role = external and self.dialect == "postgresql"
        joined = isinstance(self.bind, Connection)
        factory = self._external_sessions() if switch_role and not joined else self._factory
        session = factory()
        if external:
            session.info[EXTERNAL_SESSION] = True
            # An external unit is one read: its entry's round trip may carry the COMMIT too.
            # Not in a unit joined to an outer transaction (tests), which it must not end.
            if switch_role and not joined:
                session.info[COMMITS_WITH_ENTRY] = True
        try:
            if switch_role and joined:
                # Transaction-local, and undone by a rollback of this unit's savepoint.
                session.execute(text("SELECT set_config('role', openpars_external_role(), true)"))
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            if switch_role and joined:
                # SET LOCAL outlives the savepoint this unit released: end it with the unit.
                assert isinstance(self.bind, Connection)
                self.bind.exec_driver_sql("RESET ROLE")
