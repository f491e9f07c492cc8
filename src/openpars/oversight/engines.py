"""Where an oversight read runs: the store itself, or DuckDB attached to it (issue 13).

The explanation, coverage and the renewal report read the same rows on either engine and give
the same answers (``tests/oversight/test_explain_duckdb.py``, ``test_report_duckdb.py``); the
request is audited in the store either way. The console (``--engine``) and the API
(``engine=``) open the reader here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import StrEnum
from pathlib import Path

from sqlalchemy.orm import Session

from openpars.config import Settings
from openpars.oversight import duck
from openpars.oversight.facts import refresh

# The reader's ``info`` key: the leaves whose facts the store had committed before DuckDB
# opened, so that its copies hold every one of them (``report._scope`` counts no leaf past it).
READ_UP_TO = "openpars_read_up_to"


class ReadEngine(StrEnum):
    """Where an oversight read runs: the store, or DuckDB attached to it (``oversight.duck``)."""

    STORE = "store"
    DUCKDB = "duckdb"


ENGINE_HELP = (
    "where the pairs are explained and counted: the store itself, or DuckDB attached to a "
    "PostgreSQL store read-only (the facts are brought up to the log and committed first; "
    "the request is audited in the store as always)"
)


@contextmanager
def reading(
    settings: Settings,
    engine: ReadEngine,
    ready: Callable[[Session], None],
    units: Callable[[], AbstractContextManager[Session]],
    kept_file: Path | None = None,
) -> Iterator[Session | None]:
    """For the store, ``ready`` and the facts' refresh committed in a transaction of their own
    (``units()``), then no reader; for DuckDB, after ``ready`` (the caller's checks of the actor
    and the arguments, so that a refused request writes nothing but its refusal) and the
    facts' refresh committed in a transaction of their own (``units()``: DuckDB reads what the
    store committed), a session of DuckDB attached to the store (``duck.reader``, the site's
    ``oversight_duckdb_memory``), in ``kept_file`` or else the site's ``oversight_duckdb_file``
    when one is set (brought up to the store: ``duck_kept``), else a temporary file; its
    ``info[READ_UP_TO]`` is the log size the refresh brought the facts up to."""
    if engine is ReadEngine.STORE:
        # The refresh committed first here too: the read itself then claims nothing
        # (``report._read_up_to_log``), and reads on one store do not wait for each other.
        with units() as session:
            ready(session)
            refresh(session)
        yield None
        return
    duck.readable(settings.database_url)
    with units() as session:
        ready(session)
        done = refresh(session)
    memory = settings.oversight_duckdb_memory
    kept = kept_file or settings.oversight_duckdb_file
    with duck.reader(settings.database_url, memory_limit=memory, kept_file=kept) as reader:
        reader.info[READ_UP_TO] = done.end
        yield reader
