"""The server side of the log: integration, proofs from the database, checkpoints, witnesses."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from openpars.audit import checkpoints, log, merkle, notes, service, witness
from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.models import AuditEntry, AuditLeaf
from openpars.audit.service import append, commitment_of
from openpars.config import Settings
from openpars.db import Database
from openpars.errors import Conflict, Forbidden, InvalidInput, NotFound
from openpars.identity.principal import SYSTEM, Principal
from openpars.identity.roles import Role
from tests.audit import records

ORIGIN = "openpars.example/audit"
COURT = Principal(
    user_id=None, username="judge", agency_id=None, agency_kind=None, roles=frozenset({Role.COURT})
)


def log_settings(tmp_path: Path, url: str = "sqlite://") -> Settings:
    """Settings with the log key in the test's own directory."""
    return Settings(database_url=url, log_origin=ORIGIN, log_key_path=tmp_path / "log.key")


def add_entries(db: Database, count: int, *, arrest_id: int | None = None) -> list[int]:
    """Append `count` entries, each in its own transaction; return their ids."""
    ids = []
    for i in range(count):
        with db.session() as session:
            event = AuditEvent(
                kind=AuditKind.READ,
                action="arrest.read",
                params={"i": i},
                arrest_ids=[arrest_id] if arrest_id is not None else [],
            )
            ids.append(append(session, event).id)
    return ids


def append_then_fail(db: Database) -> None:
    """A request that appends its entry and then fails, so its transaction rolls back."""
    with db.session() as session:
        append(session, AuditEvent(kind=AuditKind.READ, action="rolled.back"))
        raise RuntimeError("the request failed")


def leaf_hashes(session: Session) -> list[bytes]:
    """Every integrated leaf hash, recomputed from the entries' commitments."""
    rows = session.execute(
        select(AuditEntry.commitment)
        .join(AuditLeaf, AuditLeaf.entry_id == AuditEntry.id)
        .order_by(AuditLeaf.leaf_index)
    )
    return [merkle.leaf_hash(c) for (c,) in rows]


def witness_keys(name: str) -> tuple[notes.Signer, str]:
    """A witness signer and its vkey string."""
    skey, vkey = notes.generate_keys(name, algorithm=notes.ALG_COSIGNATURE_V1)
    return notes.parse_signer_key(skey), vkey


def cosignature_line(note: str, signer: notes.Signer, timestamp: int = 1_700_000_000) -> str:
    """The signature line a witness would submit."""
    return notes.cosign(note, signer, timestamp).line()


def test_integration_gives_contiguous_indexes_in_id_order(db: Database) -> None:
    with db.session() as session:
        start = repo.tree_size(session)
    ids = add_entries(db, 20)
    # A request that fails after appending rolls its entry back (a gap in ids on PostgreSQL).
    with pytest.raises(RuntimeError):
        append_then_fail(db)
    ids += add_entries(db, 3)
    counts = []
    while True:
        with db.session() as session:
            counts.append(log.integrate(session, limit=5))
        if counts[-1] == 0:
            break
    assert counts == [5, 5, 5, 5, 3, 0]
    with db.session() as session:
        rows = session.execute(
            select(AuditLeaf.leaf_index, AuditLeaf.entry_id).order_by(AuditLeaf.leaf_index)
        ).all()
        assert not repo.has_pending(session)
    assert [i for i, _ in rows] == list(range(start + 23))
    assert [e for _, e in rows][start:] == ids


@pytest.mark.parametrize("batches", [[1] * 17, [17], [3, 5, 1, 8], [16, 1], [2, 2, 4, 8, 1]])
def test_proofs_from_the_database_verify_and_match_a_from_scratch_root(
    db: Database, batches: list[int]
) -> None:
    sizes = []
    for batch in batches:
        add_entries(db, batch)
        with db.session() as session:
            log.integrate(session)
            sizes.append(repo.tree_size(session))
    with db.session() as session:
        hashes = leaf_hashes(session)
        for size in range(1, sizes[-1] + 1):
            root = log.root_at(session, size)
            assert root == merkle.root_from_leaf_hashes(hashes[:size])
            for index in range(size):
                proof = log.inclusion_proof(session, index=index, size=size)
                merkle.verify_inclusion(hashes[index], index, size, proof, root)
            for first in range(1, size + 1):
                old = merkle.root_from_leaf_hashes(hashes[:first])
                proof = log.consistency_proof(session, first=first, second=size)
                merkle.verify_consistency(first, size, proof, old, root)


def test_proof_requests_beyond_the_log_are_refused(db: Database) -> None:
    add_entries(db, 3)
    with db.session() as session:
        log.integrate(session)
        size = repo.tree_size(session)
        with pytest.raises(InvalidInput, match="larger than the log"):
            log.inclusion_proof(session, index=0, size=size + 1)
        with pytest.raises(InvalidInput, match="outside a tree"):
            log.inclusion_proof(session, index=size, size=size)
        with pytest.raises(InvalidInput, match="at least 1"):
            log.consistency_proof(session, first=0, second=size)


def test_checkpoint_is_signed_verifies_and_is_published_once_per_size(
    db: Database, tmp_path: Path
) -> None:
    settings = log_settings(tmp_path)
    add_entries(db, 5)
    with db.session() as session:
        log.integrate(session)
        first = checkpoints.publish(session, settings=settings)
        assert first is not None
        again = checkpoints.publish(session, settings=settings)
    assert again is None
    key = checkpoints.check_key(settings, db)
    assert stat.S_IMODE((tmp_path / "log.key").stat().st_mode) == 0o600
    parsed = notes.verify_checkpoint(first.note, key.signer.verifier())
    with db.session() as session:
        assert parsed.size == first.size == repo.tree_size(session)
        assert parsed.root_hash == first.root == merkle.root_from_leaf_hashes(leaf_hashes(session))
        keys = session.scalars(select(AuditEntry.action).where(AuditEntry.kind == AuditKind.KEY))
        # The generated key was announced in an entry the first checkpoint already covers.
        assert list(keys) == ["audit.log_key.generated"]


def test_cosignature_quorum_makes_a_checkpoint_final(db: Database, tmp_path: Path) -> None:
    settings = log_settings(tmp_path)
    keys = [witness_keys(f"witness-{n}.example") for n in ("da", "court", "city")]
    with db.session() as session:
        for _, vkey in keys:
            witness.install(session, vkey=vkey)
        add_entries(db, 2)
        log.integrate(session)
        cp = checkpoints.publish(session, settings=settings)
        assert cp is not None
        first = witness.submit_cosignature(
            session, size=cp.size, cosignature=cosignature_line(cp.note, keys[0][0]), quorum=2
        )
        assert (first.cosigners, first.final) == (1, False)
        # The same witness twice is still one witness.
        again = witness.submit_cosignature(
            session, size=cp.size, cosignature=cosignature_line(cp.note, keys[0][0]), quorum=2
        )
        assert (again.cosigners, again.final) == (1, False)
        second = witness.submit_cosignature(
            session, size=cp.size, cosignature=cosignature_line(cp.note, keys[1][0]), quorum=2
        )
        assert (second.cosigners, second.final) == (2, True)
        assert checkpoints.is_final(session, cp, quorum=2)
        cosigned = checkpoints.cosigned_note(session, cp)
    verifiers = [notes.parse_verifier_key(v) for _, v in keys]
    log_key = checkpoints.check_key(settings, db).signer.verifier()
    notes.verify_checkpoint(cosigned, log_key, witnesses=verifiers, quorum=2)
    with pytest.raises(notes.NoteError, match="quorum is 3"):
        notes.verify_checkpoint(cosigned, log_key, witnesses=verifiers, quorum=3)


def test_bad_or_unknown_cosignatures_are_refused(db: Database, tmp_path: Path) -> None:
    settings = log_settings(tmp_path)
    signer, vkey = witness_keys("witness-da.example")
    stranger, _ = witness_keys("stranger.example")
    with db.session() as session:
        registered = witness.install(session, vkey=vkey)
        cp = checkpoints.publish(session, settings=settings)
        assert cp is not None
        # A signature over a different checkpoint body.
        other = notes.Checkpoint(ORIGIN, cp.size + 1, bytes(32)).body() + "\n— x AAAAAAA=\n"
        forged = cosignature_line(other, signer)
        with pytest.raises(InvalidInput, match="does not verify"):
            witness.submit_cosignature(session, size=cp.size, cosignature=forged, quorum=2)
        with pytest.raises(Forbidden, match="not a registered witness"):
            witness.submit_cosignature(
                session, size=cp.size, cosignature=cosignature_line(cp.note, stranger), quorum=2
            )
        with pytest.raises(InvalidInput, match="malformed"):
            witness.submit_cosignature(session, size=cp.size, cosignature="— nonsense", quorum=2)
        good = cosignature_line(cp.note, signer)
        witness.submit_cosignature(session, size=cp.size, cosignature=good, quorum=1)
        assert checkpoints.cosigner_count(session, cp) == 1
        # A removed witness no longer counts towards a quorum.
        witness.retire(session, name=registered.name)
        assert checkpoints.cosigner_count(session, cp) == 0
        with pytest.raises(Forbidden):
            witness.submit_cosignature(session, size=cp.size, cosignature=good, quorum=1)


def test_witness_keys_must_be_cosignature_keys(db: Database) -> None:
    _, note_vkey = notes.generate_keys("not-a-witness")
    with db.session() as session, pytest.raises(InvalidInput, match="type 0x04"):
        witness.install(session, vkey=note_vkey)


IMMUTABLE = [
    "UPDATE audit_entries SET action = 'x'",
    "DELETE FROM audit_entries",
    "UPDATE audit_entries SET person_ids = NULL",
    "UPDATE audit_entries SET arrest_ids = NULL",
    "UPDATE audit_entries SET content = content",
    "UPDATE audit_entries SET salt = NULL, content = NULL",
    "UPDATE audit_leaves SET leaf_hash = leaf_hash",
    "DELETE FROM audit_leaves",
    "UPDATE audit_nodes SET hash = hash",
    "DELETE FROM audit_nodes",
    "UPDATE audit_checkpoints SET note = 'x'",
    "DELETE FROM audit_checkpoints",
    "UPDATE audit_cosignatures SET line = 'x'",
    "DELETE FROM audit_cosignatures",
]


@pytest.mark.parametrize("statement", IMMUTABLE)
def test_the_database_refuses_update_and_delete(
    db: Database, tmp_path: Path, statement: str
) -> None:
    signer, vkey = witness_keys("witness-da.example")
    add_entries(db, 4, arrest_id=3)
    with db.session() as session:
        witness.install(session, vkey=vkey)
        log.integrate(session)
        cp = checkpoints.publish(session, settings=log_settings(tmp_path))
        assert cp is not None
        witness.submit_cosignature(
            session, size=cp.size, cosignature=cosignature_line(cp.note, signer), quorum=1
        )
    with db.session() as session:
        savepoint = session.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        savepoint.rollback()


def test_shredding_erases_contents_keeps_the_tree_and_is_audited(db: Database) -> None:
    sealed = add_entries(db, 3, arrest_id=41)
    kept = add_entries(db, 2, arrest_id=42)
    with db.session() as session:
        records.arrest(session, 41, order="CP-51-MD-1-2026", person_ids=[1])
        records.arrest(session, 42, person_ids=[2])
        log.integrate(session)
        before = log.root_at(session, repo.tree_size(session))
        with pytest.raises(Forbidden):
            log.shred(session, actor=SYSTEM, order_reference="CP-51-MD-1-2026", arrest_id=41)
        with pytest.raises(InvalidInput, match="exactly one"):
            log.shred(session, actor=COURT, order_reference="x", arrest_id=41, person_id=1)
        # The attacker's tries: no order on an ordinary record, another record's order, an
        # order for a record that does not exist, a person whose record is not sealed.
        with pytest.raises(Conflict, match="neither sealed nor expunged"):
            log.shred(session, actor=COURT, order_reference="CP-51-MD-1-2026", arrest_id=42)
        with pytest.raises(Conflict, match="not 'MC-9'"):
            log.shred(session, actor=COURT, order_reference="MC-9", arrest_id=41)
        with pytest.raises(NotFound, match="arrest 43"):
            log.shred(session, actor=COURT, order_reference="CP-51-MD-1-2026", arrest_id=43)
        with pytest.raises(Conflict, match="neither sealed nor expunged"):
            log.shred(session, actor=COURT, order_reference="CP-51-MD-1-2026", person_id=2)
        with pytest.raises(NotFound, match="person 77 has no arrest"):
            log.shred(session, actor=COURT, order_reference="CP-51-MD-1-2026", person_id=77)
        assert (
            len(set(session.scalars(select(AuditEntry.id).where(AuditEntry.content.is_not(None)))))
            >= 5
        )
        shredded = log.shred(session, actor=COURT, order_reference="CP-51-MD-1-2026", arrest_id=41)
        assert shredded == sealed
        remaining = set(
            session.scalars(select(AuditEntry.id).where(AuditEntry.content.is_not(None)))
        )
        assert not remaining & set(sealed) and set(kept) <= remaining
        size = repo.tree_size(session)
        assert log.root_at(session, size) == before
        assert merkle.root_from_leaf_hashes(leaf_hashes(session)) == before
        record = session.scalars(select(AuditEntry).where(AuditEntry.action == "audit.shred")).one()
        assert record.user_id is None and record.kind is AuditKind.WRITE
        params = json.loads(service_content(session, record.id))["params"]
        assert params["order_reference"] == "CP-51-MD-1-2026" and params["entry_ids"] == sealed
        commitments = {
            e.id: e.commitment.hex()
            for e in session.scalars(select(AuditEntry).where(AuditEntry.id.in_(sealed)))
        }
        assert params["commitments"] == [commitments[i] for i in sealed]


def service_content(session: Session, entry_id: int) -> bytes:
    """The committed content of an entry."""
    entry = session.get(AuditEntry, entry_id)
    assert entry is not None and entry.content is not None
    return entry.content


def test_publisher_step_respects_min_and_max_intervals(db: Database, tmp_path: Path) -> None:
    settings = log_settings(tmp_path)
    publisher = log.Publisher(db, settings, clock=lambda: 0.0)
    assert publisher.step(100.0) is not None  # the first round always runs
    assert publisher.step(100.5) is None  # nothing pending
    add_entries(db, 2)
    assert publisher.step(100.5) is None  # pending, but within the min interval
    published = publisher.step(101.2)
    assert published is not None
    with db.session() as session:
        assert published.size == repo.tree_size(session) and not repo.has_pending(session)
    assert publisher.step(130.0) is None
    assert not publisher.due(160.0)
    assert publisher.due(161.5)  # the max interval forces a round even when idle


def test_the_background_publisher_starts_and_stops(fresh_db: Database, tmp_path: Path) -> None:
    settings = log_settings(tmp_path).model_copy(update={"checkpoint_min_interval_s": 0.01})
    publisher = log.Publisher(fresh_db, settings)
    publisher.start()
    try:
        for _ in range(500):  # the first round runs at once; wait at most ~5 s for it
            with fresh_db.session() as session:
                if repo.latest_checkpoint(session) is not None:
                    break
            publisher._stop.wait(0.01)
    finally:
        publisher.stop()
    assert publisher._thread is None
    with fresh_db.session() as session:
        assert repo.latest_checkpoint(session) is not None


def test_an_empty_group_commit_writes_nothing(db: Database) -> None:
    with db.session() as session:
        before = session.scalar(select(func.count()).select_from(AuditEntry))
        assert log.append_many(session, []) == []
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_append_many_writes_what_append_writes(db: Database) -> None:
    events = [
        AuditEvent(
            kind=AuditKind.FEED, action="feed.deliver", person_ids=[i, i + 1], arrest_ids=[i]
        )
        for i in range(40)
    ]
    with db.session() as session:
        ids = log.append_many(session, events)
        assert ids == sorted(ids) and len(set(ids)) == 40
        assert log.integrate(session) >= 40
        for entry_id in (ids[0], ids[-1]):
            entry = content = session.get(AuditEntry, entry_id)
            assert entry is not None and content is not None
            assert (
                merkle.leaf_hash(entry.commitment)
                == repo.leaf_of_entry(session, entry_id).leaf_hash
            )  # type: ignore[union-attr]
            assert commitment_of(content.salt, content.content) == entry.commitment
        records.arrest(session, 9001, order="MC-1", person_ids=[40])
        assert log.shred(session, actor=COURT, order_reference="MC-1", person_id=40) == [ids[-1]]


def test_entries_with_more_subjects_than_one_insert_statement_takes(db: Database) -> None:
    """Subjects go in as multi-row INSERTs of bounded size; none is lost at the boundaries."""
    persons, arrests = list(range(1, 1202)), list(range(1, 400))
    with db.session() as session:
        export = append(
            session,
            AuditEvent(kind=AuditKind.EXPORT, action="export", person_ids=[*persons, 5, 5]),
        )
        ids = log.append_many(
            session,
            [
                AuditEvent(kind=AuditKind.FEED, action="feed", person_ids=[p, p + 2000])
                for p in range(7000, 7700)
            ]
            + [AuditEvent(kind=AuditKind.READ, action="arrests", arrest_ids=arrests)],
        )

        def subjects(first: int, last: int) -> list[tuple[int, int | None, int | None]]:
            rows = session.execute(
                select(AuditEntry.id, AuditEntry.person_ids, AuditEntry.arrest_ids)
                .where(AuditEntry.id.between(first, last))
                .order_by(AuditEntry.id)
            )
            out: list[tuple[int, int | None, int | None]] = []
            for e, ps, ars in rows:
                ps, ars = (json.loads(x) if isinstance(x, str) else x for x in (ps, ars))
                out += [(int(e), int(p), None) for p in ps or []]
                out += [(int(e), None, int(a)) for a in ars or []]
            return out

        assert subjects(export.id, export.id) == [(export.id, p, None) for p in persons]
        feed = subjects(ids[0], ids[-2])
        assert len(feed) == 1400 and {e for e, _, _ in feed} == set(ids[:-1])
        assert subjects(ids[-1], ids[-1]) == [(ids[-1], None, a) for a in arrests]
        assert log.integrate(session) >= 702
        records.arrest(session, 9002, order="MC-2", expunged=True, person_ids=[1200])
        records.arrest(session, 399, order="MC-3")
        assert log.shred(session, actor=COURT, order_reference="MC-2", person_id=1200) == [
            export.id
        ]
        assert log.shred(session, actor=COURT, order_reference="MC-3", arrest_id=399) == [ids[-1]]


def test_an_instant_in_another_zone_is_stored_in_utc_and_committed_as_given(
    db: Database,
) -> None:
    at = datetime(2026, 11, 28, 8, 0, 0, 5, tzinfo=timezone(timedelta(hours=-5)))
    with db.session() as session:
        written = service.append_many(
            session, [AuditEvent(kind=AuditKind.READ, action="r")] * 2, at=at
        )
        assert [w.at for w in written] == [at, at]
        for w in written:
            entry = content = session.get(AuditEntry, w.id)
            assert entry is not None and content is not None
            assert entry.at == at and entry.at.utcoffset() == timedelta(0)
            assert json.loads(content.content)["at"] == "2026-11-28T08:00:00.000005-05:00"
        assert service.append_many(session, []) == []
