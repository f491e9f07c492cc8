"""The in-force lookup answered from this process's copy (agreements.in_force): never a grant
the database no longer gives.

The copy is kept under the database's governance generation, which the database's own triggers
move at every change of the tables the lookup reads. The changes here are written by raw SQL,
past the application, and each is obeyed by the very next lookup of a process holding a copy.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from openpars.agreements import in_force
from openpars.agreements import repository as repo
from openpars.agreements.grants import grant_for
from openpars.agreements.models import Agreement, Resumption, Suspension, SuspensionTarget
from openpars.db import Database, utcnow
from openpars.identity.principal import Principal
from tests.agreements.helpers import activate, add_unit, create
from tests.conftest import BACKEND
from tests.factories import World, build_world

US = timedelta(microseconds=1)
# A past instant, written as a literal both engines read as a timestamp.
PAST = "'2000-01-01 00:00:00.000000'"


def _generation(connection: Connection) -> tuple[int, bytes]:
    row = connection.exec_driver_sql(
        "SELECT generation, token FROM governance_generation WHERE id = 1"
    ).one()
    return int(row[0]), bytes(row[1])


def _kept(principal: Principal) -> bool:
    key = (principal.agency_path[-1], tuple(principal.agency_path), principal.user_id)
    return key in in_force._COPIES


def _adopted(session: Session, world: World) -> tuple[Agreement, Principal, datetime]:
    agreement = activate(session, create(session, world))
    ice = world.principals["ice"]
    now = utcnow()
    assert grant_for(session, principal=ice, at=now) is not None
    assert _kept(ice)  # the copy the next lookup is answered from
    return agreement, ice, now


@pytest.mark.parametrize("target", list(SuspensionTarget))
def test_a_suspension_written_by_hand_cuts_off_the_next_lookup(
    db: Database, world: World, target: SuspensionTarget
) -> None:
    with db.session() as session:
        agreement, ice, now = _adopted(session, world)
        target_id = {
            SuspensionTarget.AGREEMENT: agreement.id,
            SuspensionTarget.UNIT: ice.agency_path[0],
            SuspensionTarget.ACCOUNT: ice.user_id,
        }[target]
    # Another transaction, past the application: raw SQL.
    with db.session() as session:
        session.connection().exec_driver_sql(
            "INSERT INTO agreement_suspensions (agreement_id, target_kind, target_id, reason, "
            f"suspended_by, suspended_at) VALUES ({agreement.id}, '{target.value}', "
            f"{target_id}, 'by hand', 'operator', {PAST})"
        )
    with db.session() as session:
        assert grant_for(session, principal=ice, at=now) is None


def test_a_lift_written_by_hand_lets_the_next_lookup_through(db: Database, world: World) -> None:
    with db.session() as session:
        agreement, ice, now = _adopted(session, world)
        cut = Suspension(
            agreement_id=agreement.id,
            target_kind=SuspensionTarget.AGREEMENT,
            target_id=agreement.id,
            reason="kill switch",
            suspended_by="board",
            suspended_at=now - timedelta(hours=1),
        )
        session.add(cut)
        session.flush()
        assert grant_for(session, principal=ice, at=now) is None
    with db.session() as session:
        session.connection().exec_driver_sql(
            "INSERT INTO agreement_resumptions (suspension_id, reason, resumed_by, resumed_at) "
            f"VALUES ({cut.id}, 'by hand', 'operator', {PAST})"
        )
    with db.session() as session:
        assert grant_for(session, principal=ice, at=now) is not None


@pytest.mark.parametrize(
    "change",
    [
        "status = 'terminated'",
        f"in_force_until = {PAST}",
        "active_version = NULL",
        "grantee_agency_id = (SELECT min(id) FROM agencies WHERE id <> grantee_agency_id)",
    ],
)
def test_an_agreement_changed_by_hand_is_read_again(
    db: Database, world: World, change: str
) -> None:
    with db.session() as session:
        agreement, ice, now = _adopted(session, world)
    with db.session() as session:
        session.connection().exec_driver_sql(
            f"UPDATE agreements SET {change} WHERE id = {agreement.id}"
        )
    with db.session() as session:
        assert grant_for(session, principal=ice, at=now) is None


def test_a_new_version_written_by_hand_is_the_one_in_force(db: Database, world: World) -> None:
    with db.session() as session:
        agreement, ice, now = _adopted(session, world)
        connection = session.connection()
        connection.exec_driver_sql(
            "INSERT INTO agreement_versions (agreement_id, version, content, content_hash, "
            "effective_at, expires_at, created_by, created_at, reason, mask_key) "
            "SELECT agreement_id, 2, content, content_hash, effective_at, expires_at, "
            "created_by, created_at, reason, mask_key FROM agreement_versions "
            f"WHERE agreement_id = {agreement.id} AND version = 1"
        )
        connection.exec_driver_sql(
            f"UPDATE agreements SET active_version = 2 WHERE id = {agreement.id}"
        )
    with db.session() as session:
        grant = grant_for(session, principal=ice, at=now)
        assert grant is not None and grant.version == 2


def test_a_floor_written_by_hand_is_the_floor_read(db: Database, world: World) -> None:
    def floor(session: Session, ice: Principal, at: datetime) -> str | None:
        sent = in_force.send_in_force(
            session,
            grantee_agency_id=ice.agency_path[-1],
            unit_ids=ice.agency_path,
            user_id=ice.user_id,
            at=at,
            with_floor=True,
        )
        return repo.floor_of(sent)

    with db.session() as session:
        _, ice, now = _adopted(session, world)
        before = floor(session, ice, now)
    with db.session() as session:
        session.connection().exec_driver_sql(
            "INSERT INTO site_floor_versions (version, content, content_hash, changed_by, "
            "changed_at, reason) VALUES ((SELECT coalesce(max(version), 0) + 1 FROM "
            "site_floor_versions), '{}', 'by-hand', 'operator', " + PAST + ", 'by hand')"
        )
    with db.session() as session:
        assert floor(session, ice, now) == "by-hand" != before


def test_an_expiry_is_obeyed_without_any_write(db: Database, world: World) -> None:
    with db.session() as session:
        agreement, ice, _ = _adopted(session, world)
        assert agreement.in_force_until is not None
        end = agreement.in_force_until
        before = _generation(session.connection())
        assert grant_for(session, principal=ice, at=end - US) is not None
        assert grant_for(session, principal=ice, at=end) is None
        assert _generation(session.connection()) == before  # answered from the copy


def test_the_generation_only_goes_up_and_is_never_deleted(db: Database, world: World) -> None:
    with db.session() as session:
        connection = session.connection()
        before = _generation(connection)
        refused = [
            "UPDATE governance_generation SET generation = generation - 1",
            "UPDATE governance_generation SET generation = generation",
            "UPDATE governance_generation SET generation = NULL",
            "DELETE FROM governance_generation",
        ]
        if connection.dialect.name == "postgresql":
            refused.append("TRUNCATE governance_generation")
    for statement in refused:
        with pytest.raises(DBAPIError, match="only goes up"), db.session() as session:
            session.connection().exec_driver_sql(statement)
    with db.session() as session:
        assert _generation(session.connection()) == before


def test_an_earlier_generation_cannot_be_written_back(db: Database, world: World) -> None:
    # The attack: a copy kept under a generation, a kill switch moves it, then the earlier
    # generation is written back so that the copy would answer again.
    with db.session() as session:
        agreement, ice, now = _adopted(session, world)
        kept = _generation(session.connection())
    with db.session() as session:
        session.connection().exec_driver_sql(
            "INSERT INTO agreement_suspensions (agreement_id, target_kind, target_id, reason, "
            f"suspended_by, suspended_at) VALUES ({agreement.id}, 'agreement', {agreement.id}, "
            f"'kill switch', 'board', {PAST})"
        )
    with pytest.raises(DBAPIError, match="only goes up"), db.session() as session:
        session.execute(
            text("UPDATE governance_generation SET generation = :n, token = :t"),
            {"n": kept[0], "t": kept[1]},
        )
    with db.session() as session:
        assert grant_for(session, principal=ice, at=now) is None


def test_the_same_number_in_another_state_is_another_generation(db: Database, world: World) -> None:
    # A transaction rolled back (or another database) reaches the generation number the copy
    # was kept under, with other rows: the token tells them apart.
    with db.session() as session:
        agreement = create(session, world)
        ice = world.principals["ice"]
        savepoint = session.begin_nested()
        activate(session, agreement)
        now = utcnow()
        assert grant_for(session, principal=ice, at=now) is not None
        number, _ = _generation(session.connection())
        savepoint.rollback()
        session.expire_all()
        session.connection().exec_driver_sql(
            f"UPDATE governance_generation SET generation = {number}"
        )
        assert _generation(session.connection())[0] == number
        assert grant_for(session, principal=ice, at=now) is None


def test_the_copies_stay_bounded(
    db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(in_force, "_COPIES", {})
    monkeypatch.setattr(in_force, "_COPIES_MAX", 1)
    with db.session() as session:
        activate(session, create(session, world))
        unit = add_unit(session, world, "ICE HSI Philadelphia")
        now = utcnow()
        for principal in (world.principals["ice"], unit.principal, world.principals["ice"]):
            assert grant_for(session, principal=principal, at=now) is not None
            assert len(in_force._COPIES) == 1


def test_the_copy_answers_as_the_lookup_statement_at_every_boundary(
    db: Database, world: World
) -> None:
    with db.session() as session:
        unit = add_unit(session, world, "ICE HSI Philadelphia")
        agreement = activate(session, create(session, world))
        assert agreement.in_force_from is not None and agreement.in_force_until is not None
        start, end = agreement.in_force_from, agreement.in_force_until
        t = [start + timedelta(hours=h) for h in range(1, 8)]
        cuts = [
            (SuspensionTarget.AGREEMENT, agreement.id, t[0], t[1]),
            (SuspensionTarget.UNIT, unit.agency_id, t[2], t[3]),
            (SuspensionTarget.ACCOUNT, unit.user_id, t[4], None),
            (SuspensionTarget.UNIT, world.agencies["Federal Bureau of Investigation"], t[5], None),
            (SuspensionTarget.AGREEMENT, agreement.id, t[6], t[6]),
        ]
        for kind, target, cut, back in cuts:
            suspension = Suspension(
                agreement_id=agreement.id,
                target_kind=kind,
                target_id=target,
                reason="test",
                suspended_by="board",
                suspended_at=cut,
            )
            session.add(suspension)
            session.flush()
            if back is not None:
                session.add(
                    Resumption(
                        suspension_id=suspension.id,
                        reason="test",
                        resumed_by="board",
                        resumed_at=back,
                    )
                )
        session.flush()
        edges = {start, end, *t}
        instants = sorted({e + d for e in edges for d in (-US, timedelta(0), US)})
        callers = (world.principals["ice"], unit.principal, world.principals["fbi"])
        compared = 0
        for principal in callers:
            if not principal.agency_path:
                continue
            for at in instants:
                values = {
                    "grantee_agency_id": principal.agency_path[-1],
                    "unit_ids": principal.agency_path,
                    "user_id": principal.user_id,
                    "at": at,
                    "with_floor": True,
                }
                statement = repo.send_in_force(session, **values)  # type: ignore[arg-type]
                kept = in_force.send_in_force(session, **values)  # type: ignore[arg-type]
                assert kept.rows() == statement.rows(), (principal, at)
                compared += 1
        assert compared >= 2 * len(instants)


def test_a_lookup_under_an_unmoved_generation_reads_no_rows(
    db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The copy is what answers (the point of it): the rows are read once per generation.
    reads: list[object] = []
    read = in_force._read

    def counted(*args: object) -> object:
        reads.append(args)
        return read(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(in_force, "_read", counted)
    with db.session() as session:
        agreement, ice, now = _adopted(session, world)
    reads.clear()
    for _ in range(3):
        with db.session() as session:
            assert grant_for(session, principal=ice, at=now) is not None
    assert reads == []
    with db.session() as session:
        session.connection().exec_driver_sql(
            f"UPDATE agreements SET updated_at = updated_at WHERE id = {agreement.id}"
        )
    with db.session() as session:
        assert grant_for(session, principal=ice, at=now) is not None
    assert len(reads) == 1


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite has one writer: no lock order")
def test_governance_writers_take_the_generation_first_and_never_deadlock(
    fresh_db: Database,
) -> None:
    # One writer holds an agreement's row (a kill switch's get_agreement) and then writes;
    # another changes another agreement by hand, then wants the first one's row. Had the
    # generation been locked after the rows (an AFTER trigger, get_agreement not taking it),
    # each would wait for the other: PostgreSQL would abort one as a deadlock.
    with fresh_db.session() as session:
        world = build_world(session)
        first = activate(session, create(session, world))
        second = activate(
            session,
            create(
                session,
                world,
                grantee_agency_id=world.agencies["Federal Bureau of Investigation"],
                name="FBI data-use agreement",
            ),
        )
        ids = (first.id, second.id)
    holding, changed = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def kill_switch() -> None:
        try:
            with fresh_db.session() as session:
                repo.get_agreement(session, ids[1], for_update=True)
                holding.set()
                changed.wait(timeout=2)  # set only if the other could write meanwhile
                session.connection().exec_driver_sql(
                    "INSERT INTO agreement_suspensions (agreement_id, target_kind, target_id, "
                    f"reason, suspended_by, suspended_at) VALUES ({ids[1]}, 'agreement', "
                    f"{ids[1]}, 'kill switch', 'board', {PAST})"
                )
        except BaseException as exc:
            errors.append(exc)

    def by_hand() -> None:
        try:
            holding.wait(timeout=10)
            with fresh_db.session() as session:
                session.connection().exec_driver_sql(
                    f"UPDATE agreements SET updated_at = updated_at WHERE id = {ids[0]}"
                )
                changed.set()
                repo.get_agreement(session, ids[1], for_update=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=kill_switch), threading.Thread(target=by_hand)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
