"""off_hours judges a day against the user's active days before it, counted in the database.

Each case writes one outside user's external reads at chosen instants and asks what the
detector finds over the whole store and for the judged day alone (whose history comes from the
log's tail, then, once integrated and refreshed, from the per-day rows): the history counts
days, not reads; its window is the ``off_hours_history`` days before the judged day, the first
of them in and the day itself out; a day of history needs no reads at the hour itself, one
within an hour of it (wrapping at midnight) makes the hour usual. On PostgreSQL, DuckDB reading
the store finds the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from openpars.audit import log
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.db import Database
from openpars.identity.models import User
from openpars.oversight import detectors as d
from openpars.oversight import duck, facts
from openpars.oversight.detection import DetectionPeriod, FlagDraft, Thresholds
from tests.conftest import BACKEND
from tests.factories import build_world

JUDGED = datetime(2026, 3, 30, tzinfo=UTC)  # a Monday; the day judged in each case
HISTORY = Thresholds().off_hours_history.days  # 28
MIN_DAYS = Thresholds().off_hours_min_days  # 15


def _at(days_before: int, hour: int, minute: int = 0) -> datetime:
    return JUDGED - timedelta(days=days_before) + timedelta(hours=hour, minutes=minute)


def _days(first: int, last: int, hour: int = 14, reads: int = 1) -> list[datetime]:
    """``reads`` reads at ``hour`` on each of the days ``first`` down to ``last`` days before."""
    return [_at(n, hour, m) for n in range(first, last - 1, -1) for m in range(reads)]


def _night(reads: int = 3, hour: int = 2) -> list[datetime]:
    return [_at(0, hour, 10 * m) for m in range(reads)]


def _write(db: Database, moments: Iterable[datetime]) -> tuple[int, list[int]]:
    """The outside user's external reads at ``moments``; (user id, the judged day's ids)."""
    with db.session() as session:
        world = build_world(session)
    return _write_more(db, world.users["ice"], moments)


def _write_more(db: Database, user: int, moments: Iterable[datetime]) -> tuple[int, list[int]]:
    with db.session() as session:
        agency = session.scalar(select(User.agency_id).where(User.id == user))
        ids = []
        for at in sorted(moments):
            event = AuditEvent(
                kind=AuditKind.READ,
                action="person.get",
                user_id=user,
                agency_id=agency,
                agreement_id=1,
            )
            appended = append(session, event, at=at)
            if at >= JUDGED:
                ids.append(appended.id)
    return user, ids


def _found(db: Database) -> list[list[FlagDraft]]:
    """The whole store's findings and the judged day's, from the tail then the per-day rows."""
    day = DetectionPeriod(JUDGED, JUDGED + timedelta(days=1))
    runs = []
    with db.session() as session:
        runs += [d.off_hours(session), d.off_hours(session, day)]
    with db.session() as session:
        log.integrate(session)
    with db.session() as session:
        facts.refresh(session)
    with db.session() as session:
        runs += [d.off_hours(session), d.off_hours(session, day)]
    return runs


def _one(db: Database, user: int, entries: list[int], days: int, hours: list[int]) -> None:
    for drafts in _found(db):
        assert [(f.dedupe_key, list(f.entry_ids)) for f in drafts] == [
            (f"user:{user}:day:{JUDGED:%Y-%m-%d}", entries)
        ]
        assert f"on {JUDGED:%Y-%m-%d} at UTC hours {hours}" in drafts[0].rule
        assert f"of their {days} active days" in drafts[0].rule


def _none(db: Database) -> None:
    assert _found(db) == [[], [], [], []]


def test_nights_rare_by_days_are_unusual_however_many_reads_they_had(db: Database) -> None:
    # 20 active days; on one of them 30 reads at night: most reads, but 1 day in 20 (5%).
    # (That night has one day of history: not judged itself.)
    user, ids = _write(db, _days(20, 1) + [_at(19, 2, m) for m in range(30)] + _night())
    _one(db, user, ids, 20, [2])


def test_nights_usual_by_days_are_not_flagged_however_few_reads_they_had(db: Database) -> None:
    # 20 active days of 10 reads each; one night read on 2 of them: 2 reads in 202, 2 days in 20.
    _write(db, [*_days(20, 1, reads=10), _at(17, 2), _at(9, 3), *_night()])
    _none(db)


def test_the_window_starts_on_its_first_day_and_ends_before_the_judged_day(
    db: Database,
) -> None:
    # The 15 days from HISTORY days before on: the first day is in the window, MIN_DAYS met.
    # One night among them (1 in 15, 6.7%); the judged day's own night would make it 2 in 16.
    user, ids = _write(db, [*_days(HISTORY, HISTORY - MIN_DAYS + 1), _at(HISTORY, 3), *_night()])
    _one(db, user, ids, MIN_DAYS, [2])


def test_a_day_before_the_window_is_not_history(db: Database) -> None:
    # The same 15 days a day earlier: 14 in the window, too few to judge.
    _write(db, _days(HISTORY + 1, HISTORY - MIN_DAYS + 2) + _night())
    _none(db)


def test_an_hour_is_usual_when_worked_within_an_hour_of_it_across_midnight(
    db: Database,
) -> None:
    # 20 days; 2 of them with a read at 23:00: the judged day's 00:00 reads are usual (+-1
    # wraps), its 02:00 reads are not, and the day fires on those alone.
    moments = [*_days(20, 1), _at(12, 23), _at(4, 23), *_night(3, 0), *_night(3, 2)]
    user, _ = _write(db, moments)
    for drafts in _found(db):
        assert [draft.dedupe_key for draft in drafts] == [f"user:{user}:day:{JUDGED:%Y-%m-%d}"]
        assert "at UTC hours [2]" in drafts[0].rule and len(drafts[0].entry_ids) == 3


def test_a_day_in_both_the_per_day_rows_and_the_tail_is_one_day(db: Database) -> None:
    # 20 days read by the refresh, one with a night read; then, not integrated, more reads on
    # 15 of those days, one of them that night again: still 20 days, 1 of them with a night.
    user, _ = _write(db, [*_days(20, 1), _at(10, 2)])
    with db.session() as session:
        log.integrate(session)
    with db.session() as session:
        facts.refresh(session)
    _, ids = _write_more(db, user, [*_days(20, 6, hour=15), _at(10, 2, 30), *_night()])
    day = DetectionPeriod(JUDGED, JUDGED + timedelta(days=1))
    with db.session() as session:
        for drafts in (d.off_hours(session), d.off_hours(session, day)):
            assert [list(draft.entry_ids) for draft in drafts] == [ids]
            assert "of their 20 active days" in drafts[0].rule


@pytest.mark.parametrize("history", [28, 45])
def test_an_hour_worked_on_many_days_of_a_long_window_is_usual(db: Database, history: int) -> None:
    # Every day of the window worked at 09:00, 16 of them (or 1) also at 22:00: the judged
    # day's 22:00 reads are usual (16 days of the window's count, over the 15 a small
    # integer holds), or not (1 day).
    limits = Thresholds(off_hours_history=timedelta(days=history))
    day = DetectionPeriod(JUDGED, JUDGED + timedelta(days=1))
    nights = [_at(n, 22) for n in range(history, 0, -(history // 16))][:16]
    user, _ = _write(db, [*_days(history, 1, hour=9), *nights, *_night(3, 22)])
    with db.session() as session:
        assert d.off_hours(session, day, limits) == []
        assert d.off_hours(session, limits=limits) == []
    _write_more(db, user, [_at(0, 22, 40)])  # the day's 4th read: still usual
    with db.session() as session:
        assert d.off_hours(session, day, limits) == []
        lone = Thresholds(off_hours_history=timedelta(days=history), off_hours_share=16 / history)
        # Under 16 of ``history`` days: 16 is not under, so still usual; one day fewer is.
        found = d.off_hours(session, day, lone)
        assert found == [], found[0].rule
        fewer = Thresholds(off_hours_history=timedelta(days=history), off_hours_share=17 / history)
        assert [f.dedupe_key for f in d.off_hours(session, day, fewer)] == [
            f"user:{user}:day:{JUDGED:%Y-%m-%d}"
        ]


def test_a_quiet_day_is_not_judged(db: Database) -> None:
    # Two night reads: under off_hours_min_queries (3), however unusual the hour.
    _write(db, _days(20, 1) + _night(2))
    _none(db)


@pytest.mark.skipif(BACKEND != "postgresql", reason="DuckDB attaches a PostgreSQL store")
def test_duckdb_reading_the_store_finds_the_same(fresh_db: Database) -> None:
    pytest.importorskip("duckdb_engine")
    night = [_at(5, 2, m) for m in range(30)] + _night() + _night(3, 0)
    _write(fresh_db, _days(20, 1) + _days(26, 10, hour=23) + night)
    with fresh_db.session() as session:
        log.integrate(session)
    with fresh_db.session() as session:
        facts.refresh(session)
    day = DetectionPeriod(JUDGED, JUDGED + timedelta(days=1))
    with fresh_db.session() as session:
        url = session.get_bind().url
        expected = [d.off_hours(session), d.off_hours(session, day)]
    with duck.reader(url) as reader:
        assert [d.off_hours(reader), d.off_hours(reader, day)] == expected
    assert all(expected)


def test_a_day_with_an_unusual_hour_but_too_few_reads_in_it_is_not_flagged(db: Database) -> None:
    # 20 active days at 14:00; the judged day has 3 reads (enough to be judged), 2 of them at
    # night (an unusual hour, but under the 3 reads a day it takes) and 1 at 14:00: the whole
    # store's statement counts those reads itself, a day's run counts them from the entries it
    # reads for the flag; neither fires.
    _write(db, [*_days(20, 1), *_night(reads=2), _at(0, 14)])
    _none(db)
