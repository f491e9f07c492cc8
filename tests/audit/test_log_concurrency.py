"""Concurrent appends and integrators never leave gaps or duplicate leaf indexes."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select

from openpars.audit import log, merkle
from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.models import AuditEntry, AuditLeaf
from openpars.audit.service import append
from openpars.db import Database, make_engine
from openpars.models import load_all_models
from tests.conftest import BACKEND

THREADS = 8
PER_THREAD = 25


def append_many(db: Database, count: int, tag: str, *, integrate_every: int = 0) -> None:
    """Append entries one transaction each; optionally integrate now and then as well."""
    for i in range(count):
        with db.session() as session:
            append(session, AuditEvent(kind=AuditKind.READ, action="t", params={"w": tag, "i": i}))
        if integrate_every and i % integrate_every == 0:
            with db.session() as session:
                log.integrate(session, limit=7)


def check_log(db: Database) -> int:
    """Integrate the rest, then check contiguity, uniqueness and the root; return the size."""
    log.integrate_all(db)
    with db.session() as session:
        leaves = session.execute(
            select(AuditLeaf.leaf_index, AuditLeaf.entry_id, AuditEntry.commitment)
            .join(AuditEntry, AuditEntry.id == AuditLeaf.entry_id)
            .order_by(AuditLeaf.leaf_index)
        ).all()
        entry_ids = set(session.scalars(select(AuditEntry.id)))
        size = repo.tree_size(session)
        root = log.root_at(session, size)
        assert not repo.has_pending(session)
    assert [i for i, _, _ in leaves] == list(range(len(leaves)))
    assert sorted(e for _, e, _ in leaves) == sorted(entry_ids)
    assert root == merkle.root_from_leaf_hashes([merkle.leaf_hash(c) for _, _, c in leaves])
    return size


def run_threads(targets: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def guard(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guard(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors


def test_threads_appending_and_integrating_leave_no_gaps(fresh_db: Database) -> None:
    stop = threading.Event()

    def integrator() -> None:
        while not stop.is_set():
            with fresh_db.session() as session:
                log.integrate(session, limit=5)

    background = threading.Thread(target=integrator)
    background.start()
    try:
        run_threads(
            [
                lambda n=n: append_many(fresh_db, PER_THREAD, f"t{n}", integrate_every=4 * (n % 2))
                for n in range(THREADS)
            ]
        )
    finally:
        stop.set()
        background.join(60)
    assert check_log(fresh_db) == THREADS * PER_THREAD


def _worker(url: str, tag: str, count: int) -> None:
    """A separate OS process: its own engine, appending and integrating."""
    load_all_models()
    engine = make_engine(url)
    try:
        append_many(Database(engine), count, tag, integrate_every=3)
    finally:
        engine.dispose()


@pytest.mark.skipif(BACKEND != "postgresql", reason="several server processes need PostgreSQL")
def test_processes_appending_and_integrating_leave_no_gaps(fresh_db: Database) -> None:
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(url, f"p{n}", 60)) for n in range(2)]
    for worker in workers:
        worker.start()
    # Threads in this process append and integrate at the same time as the two processes.
    run_threads(
        [lambda n=n: append_many(fresh_db, 30, f"m{n}", integrate_every=2) for n in range(3)]
    )
    for worker in workers:
        worker.join(180)
        assert worker.exitcode == 0
    assert check_log(fresh_db) == 2 * 60 + 3 * 30
