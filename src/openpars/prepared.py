"""Hot read statements compiled once per key and dialect, then run at the driver level.

A search request used to rebuild its SQLAlchemy statement from the policy, generate its cache
key, expand the policy's IN lists and load ORM objects: several times the cost of the SQL
itself. Here a statement is built once (for searches, from the same predicates as every read,
``access.filters``), compiled once for a dialect with its constant values fixed, and kept; a
request only binds its own values (an identifier, a name range, a page, an instant) and reads
plain rows. Whatever the statement depends on is part of its key (for searches, the policy's
row filter), so two policies never share a statement.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy import BindParameter, Connection, Dialect, Float, Numeric, Select
from sqlalchemy import Enum as SAEnum
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.types import TypeEngine

Processor = Callable[[Any], Any]
# A SELECT of any columns.
AnySelect = Select[*tuple[Any, ...]]

# Distinct statements kept per process: (policy row filter x query shape x projection) stays
# small in practice (a few agreements, a handful of query shapes); the bound keeps a leak finite.
CACHE_SIZE = 512


class _Typed(Protocol):
    @property
    def type(self) -> TypeEngine[Any]: ...


def param(name: str, column: _Typed) -> BindParameter[Any]:
    """A per-request value bound to a prepared statement, typed like the column it meets."""
    return BindParameter(name, None, type_=column.type, required=False)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One compiled statement: its SQL, constant policy values and per-column converters."""

    sql: str
    # Parameter names in placeholder order for positional drivers (SQLite); None for named.
    order: tuple[str, ...] | None
    constants: Mapping[str, Any]
    binders: Mapping[str, Processor]
    columns: tuple[str, ...]
    # (name, converter) of the result columns that need one (the names are distinct).
    converted_names: tuple[tuple[str, Processor], ...]
    # PostgreSQL: every int is sent as this one type (see _int_type).
    int_type: Processor | None = None

    def _bound(self, values: Mapping[str, Any]) -> Any:
        params = dict(self.constants)
        binders, widen = self.binders, self.int_type
        # Only the request's values: the constants were converted (and widened) when compiled.
        for name, value in values.items():
            if value is not None:
                binder = binders.get(name)
                if binder is not None:
                    value = binder(value)
                if widen is not None and type(value) is int:
                    value = widen(value)
            params[name] = value
        return params if self.order is None else tuple(map(params.__getitem__, self.order))

    def rows(self, session: Session, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run with this request's values; rows as dicts keyed by column name."""
        return self.send(session, values).rows()

    def send(self, session: Session, values: Mapping[str, Any]) -> Pending:
        """Run on the driver's own cursor and read the rows later: inside ``pipeline`` the
        statement goes to PostgreSQL with the others and waits for none of them.

        The driver's cursor, not SQLAlchemy's execution: for a statement of a few tens of µs
        its per-statement work cost several times the statement (bench/search.py). A driver
        error still surfaces as SQLAlchemy's (``driver_errors``).
        """
        connection = connection_of(session)
        with driver_errors(connection, self.sql):
            cursor = connection.connection.cursor()
            cursor.execute(self.sql, self._bound(values))
        return Pending(self, cursor, connection)

    def read(self, raw: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name, each value converted as the column reads."""
        columns = self.columns
        out = [dict(zip(columns, row, strict=True)) for row in raw]
        # A column at a time: one loop per converted column instead of one per row.
        for name, read in self.converted_names:
            for values in out:
                value = values[name]
                if value is not None:
                    values[name] = read(value)
        return out

    def scalar(self, session: Session, values: Mapping[str, Any]) -> Any:
        """Run with this request's values and return the first column of the first row."""
        rows = self.rows(session, values)
        return next(iter(rows[0].values())) if rows else None


class Rows(Protocol):
    """Anything answering a statement's rows as ``Pending.rows`` does."""

    def rows(self) -> list[dict[str, Any]]:
        """The rows, as dicts keyed by column name."""
        ...


@dataclass(frozen=True, slots=True)
class Pending:
    """A statement sent; its rows are read (waiting for the server, if need be) on demand."""

    statement: Prepared
    cursor: Any
    connection: Connection
    # The rows once read: a statement whose rows answer two questions is read once.
    fetched: list[list[dict[str, Any]]] = field(default_factory=list, compare=False, repr=False)

    def rows(self) -> list[dict[str, Any]]:
        """The statement's rows, as ``Prepared.rows`` returns them (read once, then kept)."""
        if self.fetched:
            return self.fetched[0]
        with driver_errors(self.connection, self.statement.sql):
            raw = self.cursor.fetchall()
        rows = self.statement.read(raw)
        self.fetched.append(rows)
        return rows


def driver_errors(connection: Connection, statement: str) -> _DriverErrors:
    """Raise a driver error as SQLAlchemy raises it (OperationalError, IntegrityError...), and
    invalidate the connection if the error says it is gone, as SQLAlchemy's execution does."""
    return _DriverErrors(connection, statement)


class _DriverErrors:
    """``driver_errors``: a class, not a generator, as it wraps every statement of a request
    (a dozen or more) and a ``contextmanager`` costs several times as much to enter and leave."""

    __slots__ = ("connection", "statement")

    def __init__(self, connection: Connection, statement: str) -> None:
        self.connection = connection
        self.statement = statement

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        connection = self.connection
        dialect = connection.dialect
        if not isinstance(exc, dialect.loaded_dbapi.Error):
            return
        gone = dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
        if gone:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            self.statement, None, exc, dialect.loaded_dbapi.Error, connection_invalidated=gone
        ) from exc


_CONNECTION = "openpars.prepared.connection"


def connection_of(session: Session) -> Connection:
    """``session.connection()``, looked up once per transaction: a request's path asks for it
    a dozen times, and SQLAlchemy's lookup (state checks, the bind, the transaction's map)
    costs several times this one.

    Kept against the session's innermost transaction, which must still be active: a savepoint
    (``begin_nested``) is a new transaction, so its first lookup goes through SQLAlchemy,
    which begins the savepoint on the connection; a transaction ended, rolled back or failed
    is never matched, and SQLAlchemy refuses or begins a new one as it always did.
    """
    transaction = _innermost(session)
    if transaction is not None and transaction.is_active:
        cached = session.info.get(_CONNECTION)
        if cached is not None and cached[0] is transaction:
            return cached[1]  # type: ignore[no-any-return]
    connection = session.connection()
    session.info[_CONNECTION] = (_innermost(session), connection)
    return connection


def _innermost(session: Session) -> SessionTransaction | None:
    """The session's innermost transaction (its savepoint, if one is open), by the public API."""
    return session.get_nested_transaction() or session.get_transaction()


def pipeline(session: Session) -> AbstractContextManager[None]:
    """Statements sent inside travel to PostgreSQL together, in one round trip with the first
    read of a result (psycopg's pipeline mode); elsewhere this does nothing.

    Only driver-level statements belong inside (``Prepared.send`` and the audit append):
    SQLAlchemy reads a statement's result description as soon as it has run it, which a
    pipeline does not have yet.
    """
    connection = connection_of(session)
    if connection.dialect.name != "postgresql":
        return _NOTHING
    return _pipeline(connection)


_NOTHING: AbstractContextManager[None] = nullcontext()


@contextmanager
def _pipeline(connection: Connection) -> Iterator[None]:
    with (
        driver_errors(connection, "(pipeline)"),
        connection.connection.driver_connection.pipeline(),  # type: ignore[union-attr]
    ):
        yield


_GENERIC = "SET LOCAL plan_cache_mode = force_generic_plan"
_CUSTOM = "SET LOCAL plan_cache_mode TO DEFAULT"


# A column that turns generic plans on for the rest of the transaction, carried by a
# statement sent anyway (the rate claim, ``access.decision``): ``generic_plans`` then sends
# nothing. PostgreSQL picks a prepared statement's plan when it binds it, after the statements
# before it in a pipeline have run.
GENERIC_PLANS_COLUMN = "set_config('plan_cache_mode', 'force_generic_plan', true)"
_GENERIC_ON = "openpars.prepared.generic_on"


def generic_plans_carried(session: Session) -> None:
    """Record that a statement of this transaction carried ``GENERIC_PLANS_COLUMN``: generic
    plans hold until the transaction ends or ``plans_by_values`` ends them."""
    session.info[_GENERIC_ON] = _innermost(session)


def _generic_on(session: Session) -> bool:
    transaction: SessionTransaction | None = session.info.get(_GENERIC_ON)
    return transaction is not None and transaction is _innermost(session) and transaction.is_active


def plans_by_values(session: Session) -> None:
    """End generic plans turned on for the rest of the transaction (``generic_plans_carried``):
    what runs next is planned for its values again, as by default. Nothing otherwise."""
    if not _generic_on(session):
        return
    del session.info[_GENERIC_ON]
    connection = connection_of(session)
    with driver_errors(connection, _CUSTOM):
        connection.connection.cursor().execute(_CUSTOM)


def generic_plans(session: Session) -> AbstractContextManager[None]:
    """On PostgreSQL, statements sent inside run on their prepared generic plan; elsewhere this
    does nothing. Inside ``pipeline`` the two settings travel with the statements; where a
    statement of the transaction already turned generic plans on for the rest of it
    (``generic_plans_carried``), nothing is sent.

    PostgreSQL plans a prepared statement again for its values (a custom plan) whenever that
    plan's estimated cost is well under the generic plan's. Row-level security makes every
    candidate row cost a sub-plan, so the generic plan of a search page, estimating more rows
    in an unknown name range, never won, and every page was planned again: 0.7 ms of planning
    as the external role against 0.5 ms of execution (EXPLAIN ANALYZE, a name page at 50,000
    persons), for the same plan (the set's name index, walked in order). Only statements whose
    plan does not depend on their values belong inside.
    """
    connection = connection_of(session)
    if connection.dialect.name != "postgresql" or _generic_on(session):
        return _NOTHING
    return _generic_plans(connection)


@contextmanager
def _generic_plans(connection: Connection) -> Iterator[None]:
    cursor = connection.connection.cursor()
    with driver_errors(connection, _GENERIC):
        cursor.execute(_GENERIC)
    yield
    with driver_errors(connection, _CUSTOM):
        cursor.execute(_CUSTOM)


def _plain(value: Any) -> Any:
    # Policy constants are enums; drivers take their stored string values.
    return value.value if isinstance(value, Enum) else value


def compile_statement(stmt: AnySelect, dialect: Dialect) -> Prepared:
    """Compile a statement once: the policy's IN lists expanded, request values left open."""
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    binders: dict[str, Processor] = {}
    constants: dict[str, Any] = {}
    for name, value in compiled.params.items():
        bind = compiled.binds.get(name)
        if bind is not None and not bind.required and bind.value is None:
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                binders[name] = processor
        else:
            constants[name] = _plain(value)
    readers = tuple(_reader(column.type, dialect) for column in stmt.selected_columns)
    columns = tuple(str(c.key) for c in stmt.selected_columns)
    if len(set(columns)) != len(columns):
        raise ValueError(f"a prepared statement's columns must have distinct names: {columns}")
    positional = compiled.positiontup
    int_type = _int_type() if dialect.name == "postgresql" else None
    if int_type is not None:
        constants = {
            name: int_type(value) if type(value) is int else value
            for name, value in constants.items()
        }
    return Prepared(
        sql=compiled.string,
        order=tuple(positional) if positional is not None else None,
        constants=constants,
        binders=binders,
        columns=columns,
        converted_names=tuple(
            (name, read) for name, read in zip(columns, readers, strict=True) if read is not None
        ),
        int_type=int_type,
    )


def _int_type() -> Processor:
    """psycopg sends a Python int as smallint, integer or bigint by its value, and keys its
    prepared statements by the parameters' types too: a page's aliases, read by 10 to 50 person
    ids on both sides of 32,767, made a new key nearly every time, so the statement was parsed
    and planned again on every page (as the external role, row-level security in every plan)
    and the churn pushed other statements out of psycopg's cache of 100. One type for every
    int keeps one key per statement; every placeholder carries its column's cast (SQLAlchemy's
    psycopg dialect renders ``$1::INTEGER``), so what the server compares is unchanged."""
    from psycopg.types.numeric import Int8

    return Int8


def _reader(kind: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    # Enumerated columns stay as their stored strings: the enums are StrEnums, so the values
    # compare equal and the response models validate them, without a lookup per value here.
    if isinstance(kind, SAEnum):
        return None
    if (
        dialect.name == "postgresql"
        and isinstance(kind, Numeric)
        and not isinstance(kind, Float)
        and kind.asdecimal
    ):
        # psycopg reads a numeric as a Decimal itself (SQLAlchemy's processor needs the
        # result's type to say so, which a statement compiled ahead has not seen).
        return None
    return kind.dialect_impl(dialect).result_processor(dialect, None)


Builder = Callable[[], AnySelect]


_CACHE: dict[tuple[Dialect, Hashable], Prepared] = {}


def prepared(session: Session, key: Hashable, build: Builder) -> Prepared:
    """The compiled statement for `key` on the session's dialect, built on first use.

    `key` must capture everything `build` depends on (policy row filter, query shape, columns).
    """
    dialect = session.get_bind().dialect
    found = _CACHE.get((dialect, key))
    if found is None:
        if len(_CACHE) >= CACHE_SIZE:
            _CACHE.clear()
        found = _CACHE[(dialect, key)] = compile_statement(build(), dialect)
    return found
