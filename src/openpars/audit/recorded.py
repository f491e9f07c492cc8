"""Which audit entries a request wrote: the ids its committed transactions appended.

The audit path (`service.append*`) notes each new id on the session, tagged with the
transaction it was written in. When that session's transaction commits, the ids move to the
collector of the current request (a context variable the web edge opens once per request);
when the transaction, or the savepoint the entry was written in, rolls back, they are dropped,
since those entries no longer exist. So a response names exactly the entries that are durable
when it leaves, whatever endpoint, service or error handler wrote them.

Worker threads (FastAPI runs synchronous endpoints in a pool) see a copy of the request's
context, which holds the same list object, so their commits land in the request's collector.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

# Session.info key: the (transaction, ids) pairs appended in the session's open transaction.
_PENDING = "openpars.audit_pending_ids"

_collector: ContextVar[list[int] | None] = ContextVar("openpars_audit_entry_ids", default=None)


def note_appended(session: Session, ids: Sequence[int]) -> None:
    """Remember ids appended in the session's current transaction (or savepoint)."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((transaction, list(ids)))


@contextmanager
def collecting() -> Iterator[list[int]]:
    """Collect the ids of every entry committed inside the block, in commit order."""
    ids: list[int] = []
    token = _collector.set(ids)
    try:
        yield ids
    finally:
        _collector.reset(token)


def collected() -> list[int]:
    """The ids committed so far in the current collecting block (empty outside one)."""
    return list(_collector.get() or ())


def _committed(session: Session) -> None:
    # Releasing a savepoint fires this too; its entries are durable only with the outermost.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING, None)
    ids = _collector.get()
    if pending and ids is not None:
        for _, appended in pending:
            ids.extend(appended)


def _inside(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def _rolled_back(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        kept = [(t, ids) for t, ids in pending if not _inside(t, previous)]
        session.info[_PENDING] = kept


event.listen(Session, "after_commit", _committed)
event.listen(Session, "after_soft_rollback", _rolled_back)
