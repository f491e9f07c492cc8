"""The server side of the Merkle log: integration, proofs from the database, the publisher.

Requests append entries in their own transactions (the sequencer side); on PostgreSQL a trigger
queues each new entry in audit_pending, on SQLite the entries above the last integrated one are
the queue (its single writer commits in id order). The integrator gives queued entries
contiguous leaf indexes in id order (on PostgreSQL an entry whose transaction commits after a
higher id was integrated gets the next free index then: nothing is skipped, nothing waits) and
stores every completed subtree hash, so any proof costs O(log n) indexed reads. In the same
transaction it copies the batch's subjects into the subject index by person and by arrest
(repository.index_subjects), so that requests never write at random places of a large index.
Only one integrator runs at a time: PostgreSQL takes an advisory transaction lock, SQLite's
single writer (BEGIN IMMEDIATE) already serialises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from openpars.audit import by_actor, merkle, service
from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent
from openpars.audit.models import AuditCheckpoint

# Shredding lives in its own module; re-exported here, where callers have always found it.
from openpars.audit.shred import shred as shred
from openpars.config import Settings
from openpars.db import Database
from openpars.errors import InvalidInput

if TYPE_CHECKING:
    from openpars.audit.checkpoints import LogKey

log = logging.getLogger("openpars.audit.log")

INTEGRATE_BATCH = 50_000
_ZERO = bytes(merkle.HASH_SIZE)
_T = TypeVar("_T")


class PrefetchedStore:
    """A NodeStore over a dict of hashes fetched in one query."""

    def __init__(self, hashes: dict[tuple[int, int], bytes]) -> None:
        self.hashes = hashes

    def node(self, level: int, index: int) -> bytes:
        """Return a prefetched complete-subtree hash."""
        try:
            return self.hashes[(level, index)]
        except KeyError:
            raise merkle.ProofError(f"node ({level}, {index}) is not in the log") from None


class _Recorder:
    """A NodeStore that records which nodes a computation reads."""

    def __init__(self) -> None:
        self.wanted: list[tuple[int, int]] = []

    def node(self, level: int, index: int) -> bytes:
        self.wanted.append((level, index))
        return _ZERO


def _with_store(session: Session, compute: Callable[[merkle.NodeStore], _T]) -> _T:
    """Run a proof computation with every node it needs read in a single query."""
    # A dry run against a recorder learns the O(log n) coordinates without touching the
    # database; the real run then reads them all at once instead of one query per node.
    recorder = _Recorder()
    compute(recorder)
    return compute(PrefetchedStore(repo.node_hashes(session, recorder.wanted)))


def _check_size(session: Session, size: int) -> None:
    current = repo.tree_size(session)
    if size > current:
        raise InvalidInput(
            f"size {size} is larger than the log ({current} entries integrated)", field="size"
        )


def root_at(session: Session, size: int) -> bytes:
    """The root of the first `size` leaves."""
    _check_size(session, size)
    return _with_store(session, lambda store: merkle.root_from_store(store, size))


def inclusion_proof(session: Session, *, index: int, size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf `index` in the tree of `size`."""
    _check_size(session, size)
    if not 0 <= index < size:
        raise InvalidInput(f"index {index} is outside a tree of size {size}", field="index")
    return _with_store(session, lambda store: merkle.inclusion_proof(store, index, size))


def consistency_proof(session: Session, *, first: int, second: int) -> list[bytes]:
    """The RFC 9162 consistency proof from the tree of size `first` to size `second`."""
    _check_size(session, second)
    if not 0 < first <= second:
        raise InvalidInput(
            f"first ({first}) must be at least 1 and at most second ({second})", field="first"
        )
    return _with_store(session, lambda store: merkle.consistency_proof(store, first, second))


def load_frontier(session: Session, size: int) -> merkle.Frontier:
    """The right frontier of the tree of `size`, in one query."""
    coordinates = merkle.frontier_coordinates(size)
    store = PrefetchedStore(repo.node_hashes(session, coordinates))
    return merkle.frontier_from_store(store, size)


@dataclass(frozen=True, slots=True)
class Integrated:
    """What one integration pass did."""

    count: int
    size: int
    root: bytes


def integrate_batch(session: Session, *, limit: int = INTEGRATE_BATCH) -> Integrated:
    """Give up to `limit` queued entries the next leaf indexes; store the completed subtrees."""
    repo.lock_log(session)
    size = repo.tree_size(session)
    pending = repo.pending_entries(session, limit=limit)
    frontier = load_frontier(session, size)
    if not pending:
        return Integrated(0, size, merkle.root_from_frontier(frontier))
    leaves: list[tuple[int, int, bytes]] = []
    nodes: list[tuple[int, int, bytes]] = []
    hashes = list(frontier.hashes)
    leaf_hash, node_hash = merkle.leaf_hash, merkle.node_hash
    # The same merge as merkle.append_leaf, inlined: append_leaf also folds the whole root
    # after every leaf, which would cost O(log n) extra hashes per entry here.
    for offset, (entry_id, commitment) in enumerate(pending):
        index = size + offset
        current = leaf_hash(commitment)
        leaves.append((index, entry_id, current))
        level, position = 0, index
        while position & 1:
            current = node_hash(hashes.pop(), current)
            level += 1
            position >>= 1
            nodes.append((level, position, current))
        hashes.append(current)
    repo.insert_leaves(session, leaves)
    repo.insert_nodes(session, nodes)
    # With its leaves, the batch enters the subject index (repository.entries_naming).
    repo.index_subjects(session, [entry_id for entry_id, _ in pending])
    # And the index by user and by agency (audit.by_actor).
    by_actor.index_actors(session, [entry_id for entry_id, _ in pending])
    repo.dequeue(session, [entry_id for entry_id, _ in pending])
    new = merkle.Frontier(size + len(pending), tuple(hashes))
    return Integrated(len(pending), new.size, merkle.root_from_frontier(new))


def integrate(session: Session, *, limit: int = INTEGRATE_BATCH) -> int:
    """Integrate up to `limit` queued entries in this transaction; return how many."""
    return integrate_batch(session, limit=limit).count


def integrate_all(db: Database, *, batch: int = INTEGRATE_BATCH) -> int:
    """Integrate everything queued, one transaction per batch; return how many."""
    total = 0
    while True:
        with db.session() as session:
            count = integrate(session, limit=batch)
        total += count
        if count < batch:
            return total


def append_many(session: Session, events: Sequence[AuditEvent]) -> list[int]:
    """Append many entries at once (group commit); return their ids. See `service.append_many`."""
    return service.append_many_ids(session, events)


class Publisher:
    """Integrates and publishes checkpoints: at most every min interval while entries arrive,
    at least every max interval. `step` does one round and is what tests call directly."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.last_publish: float | None = None
        self.key: LogKey | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self, now: float) -> bool:
        """Whether a round should run now."""
        if self.last_publish is None:
            return True
        elapsed = now - self.last_publish
        if elapsed >= self.settings.checkpoint_max_interval_s:
            return True
        if elapsed < self.settings.checkpoint_min_interval_s:
            return False
        with self.db.session() as session:
            return repo.has_pending(session)

    def step(self, now: float | None = None) -> AuditCheckpoint | None:
        """One round: if due, integrate everything queued and publish a checkpoint."""
        # checkpoints imports this module (proofs, integration), so import it late.
        from openpars.audit.checkpoints import load_or_create_key, publish

        moment = self.clock() if now is None else now
        if not self.due(moment):
            return None
        integrate_all(self.db)
        with self.db.session() as session:
            if self.key is None:
                self.key = load_or_create_key(self.settings, session)
            checkpoint = publish(session, settings=self.settings, key=self.key)
        self.last_publish = moment
        return checkpoint

    def run(self) -> None:
        """Loop until stopped; an error is logged and retried on the next round."""
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # the loop must outlive a failed round (database restart)
                log.exception("audit log integration or checkpoint publication failed")
            self._stop.wait(self.settings.checkpoint_min_interval_s)

    def start(self) -> None:
        """Start the background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="audit-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


@asynccontextmanager
async def publisher_lifespan(app: Any) -> AsyncIterator[None]:
    """Run the publisher while the web app runs (an ASGI lifespan; `app.state` holds db)."""
    db: Database = app.state.db
    # A Database bound to one connection (tests) cannot be shared with a thread.
    publisher = Publisher(db, app.state.settings) if isinstance(db.bind, Engine) else None
    if publisher is not None:
        from openpars.audit.checkpoints import check_key

        # Before serving: a log with a history and a missing or foreign key stops the start-up
        # here (LogKeyRefused says what to do) instead of failing quietly in the thread.
        publisher.key = check_key(app.state.settings, db)
        publisher.start()
    try:
        yield
    finally:
        if publisher is not None:
            publisher.stop()
