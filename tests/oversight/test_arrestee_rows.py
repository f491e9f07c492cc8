"""The arrestee rows population_skew counts its baseline from (``facts.ArresteeArrest``).

The arrestees of a window, by attribute, read from the rows the refresh keeps (plus the persons
the log's tail names, counted live) must equal a count from the records themselves, each person
once: after arrests, re-arrests, two arrests at one instant, a long gap between two arrests,
amendments of a person's attributes and of an arrest's instant; before the log integrates the
writes, after it does, and after the refresh reads them. The rows the refresh keeps one write at
a time must equal the rows built from scratch.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from openpars.audit import log
from openpars.db import Database, utcnow
from openpars.oversight import detectors as d
from openpars.oversight import facts
from openpars.oversight.detection import DetectionPeriod, FlagDraft, Thresholds
from openpars.oversight.flags import DETECTORS, run_detectors
from openpars.records.amendments import amend_arrest, amend_person
from openpars.records.intake import submit_arrest
from openpars.records.models import Arrest
from openpars.records.schemas import ArrestAmend, ArrestCreate, PersonAmend
from tests.conftest import BACKEND
from tests.factories import World
from tests.records.factories import arrest_payload, person_payload

T0 = datetime(2025, 6, 2, 12, tzinfo=UTC)
STEP = timedelta(microseconds=1)


class Records:
    """Arrests entered through intake, persons amended: every write audited as in service."""

    def __init__(self, db: Database, world: World) -> None:
        self.db, self.world, self.n = db, world, 900_000

    def arrest(self, at: datetime, person: int | dict[str, Any], *, witness: bool = True) -> int:
        self.n += 1
        arrestee: dict[str, Any] = (
            {"role": "arrestee", "person_id": person}
            if isinstance(person, int)
            else {"role": "arrestee", "person": person}
        )
        others = [{"role": "witness", "person": person_payload(self.n, offset=3)}]
        payload = arrest_payload(
            report_id=f"PPD-A-{self.n:08d}",
            otn=f"A{self.n:08d}-{self.n % 10}",
            incident_number=f"2025{self.n:08d}",
            arrested_at=at.isoformat(),
            involvements=[arrestee, *(others if witness else [])],
        )
        with self.db.session() as s:
            created = submit_arrest(
                s,
                actor=self.world.principals["intake"],
                data=ArrestCreate.model_validate(payload),
                now=utcnow(),
            )
        self.last_person = created.person_ids[0]
        return created.arrest_id

    def person(self, citizenship: str, place: str) -> dict[str, Any]:
        self.n += 1
        return person_payload(
            self.n,
            sid=f"{self.n % 1000:03d}-{self.n // 1000 % 1000:03d}-{self.n % 97:02d}",
            fbi_number=f"{self.n:08d}A",
            citizenship=citizenship,
            place_of_birth=place,
        )

    def amend_person(self, person_id: int, **changes: Any) -> None:
        data = PersonAmend.model_validate({"reason": "booking error", **changes})
        with self.db.session() as s:
            amend_person(s, actor=self.world.principals["intake"], person_id=person_id, data=data)

    def move_arrest(self, arrest_id: int, at: datetime) -> None:
        data = ArrestAmend.model_validate({"reason": "booking error", "arrested_at": at})
        with self.db.session() as s:
            amend_arrest(s, actor=self.world.principals["intake"], arrest_id=arrest_id, data=data)


def _midnights(at: datetime) -> set[datetime]:
    """The midnights (UTC) of an instant's day and of the next (a daily run's bounds)."""
    day = datetime.combine(at.astimezone(UTC).date(), datetime.min.time(), UTC)
    return {day, day + timedelta(days=1)}


def _windows(session: Session) -> list[tuple[datetime, datetime]]:
    """Windows bounded by every arrest instant, a microsecond either side, the midnights of
    its day and of the next (read from the day counts when both bounds are), and far bounds."""
    arrests = list(session.scalars(select(Arrest.arrested_at)))
    instants = {at + delta for at in arrests for delta in (-STEP, timedelta(0), STEP)}
    midnights = {m for at in arrests for m in _midnights(at)}
    far = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    return list(combinations(sorted(instants | midnights | set(far)), 2))


def _agree(db: Database) -> int:
    """The rows' counts equal the records' for every window; returns the windows tested, at
    least one of them bounded by midnights."""
    with db.session() as s:
        windows = _windows(s)
        for since, end in windows:
            assert d.arrestee_counts(s, since, end) == d.arrestees_live(s, since, end), (
                since,
                end,
            )
    assert any(d._utc_midnight(since) and d._utc_midnight(end) for since, end in windows)
    return len(windows)


def _days(session: Session) -> list[tuple[Any, ...]]:
    """The day counts summed by key (their changes summed), zeros left out."""
    keys = "day, prev_day, citizenship, place_of_birth, race, sex"
    return [
        tuple(r)
        for r in session.execute(
            text(
                f"SELECT {keys}, SUM(n) FROM oversight_arrestee_days GROUP BY {keys} "
                f"HAVING SUM(n) <> 0 ORDER BY {keys}"
            )
        )
    ]


def _rows(session: Session) -> list[tuple[Any, ...]]:
    a = facts.ArresteeArrest
    return [
        tuple(r)
        for r in session.execute(
            select(
                a.person_id, a.arrest_id, a.at, a.prev_at, a.citizenship, a.race, a.sex
            ).order_by(a.person_id, a.arrest_id)
        )
    ]


def _refresh(db: Database) -> None:
    with db.session() as s:
        log.integrate(s)
    with db.session() as s:
        facts.refresh(s)


def test_the_rows_count_each_arrestee_once_as_the_records_do(db: Database, world: World) -> None:
    records = Records(db, world)
    # Two arrests in most windows (counted once), and a third a year later.
    records.arrest(T0, records.person("US", "Philadelphia, PA"))
    twice = records.last_person
    records.arrest(T0 + timedelta(days=10), twice)
    records.arrest(T0 + timedelta(days=400), twice)
    # Two arrests at one instant.
    records.arrest(T0 + timedelta(days=5), records.person("MX", "Puebla, MX"))
    same = records.last_person
    records.arrest(T0 + timedelta(days=5), same, witness=False)
    # A gap of more than two years between two arrests: out of a window inside the gap.
    gap_arrest = records.arrest(T0 - timedelta(days=800), records.person("DO", "Santo Domingo"))
    gap = records.last_person
    records.arrest(T0 + timedelta(days=300), gap)
    _refresh(db)
    assert _agree(db) > 100
    with db.session() as s:
        # Every arrestee involvement has a row; witnesses have none.
        assert len(_rows(s)) == 7

    # Writes the log has not integrated yet (the tail past the last leaf): counted live.
    records.arrest(T0 + timedelta(days=1), same)
    records.arrest(T0 + timedelta(days=2), records.person("VN", "Hanoi, VN"))
    records.amend_person(twice, citizenship="CA", place_of_birth="Toronto, CA")
    records.move_arrest(gap_arrest, T0 + timedelta(days=3))
    with db.session() as s:
        stale = s.execute(
            select(func.count())
            .select_from(facts.ArresteeArrest)
            .where(facts.ArresteeArrest.person_id == gap, facts.ArresteeArrest.at > T0)
        ).scalar_one()
        assert stale == 1  # the rows still say the old instant
    _agree(db)
    # Integrated but not read by the refresh (past the facts' watermark): counted live.
    with db.session() as s:
        log.integrate(s)
    _agree(db)
    # Read: the rows are current and equal rows built from scratch.
    with db.session() as s:
        facts.refresh(s)
    _agree(db)
    with db.session() as s:
        kept, days = _rows(s), _days(s)
        s.execute(text("DELETE FROM oversight_watermarks WHERE name = :n"),
                  {"n": facts.ARRESTEES_INVOLVEMENTS})  # fmt: skip
        facts.refresh(s)  # no rows' watermark: every row built again
        assert _rows(s) == kept
        assert len(kept) == 9
        # The day counts kept one refresh at a time equal those built from the rows.
        assert _days(s) == days
        assert sum(r[-1] for r in days) == 9
        s.rollback()


def test_a_person_amended_twice_between_refreshes(db: Database, world: World) -> None:
    records = Records(db, world)
    records.arrest(T0, records.person("US", "Philadelphia, PA"))
    person = records.last_person
    _refresh(db)
    records.amend_person(person, citizenship="GT")
    _refresh(db)
    records.amend_person(person, citizenship="HN", place_of_birth="Tegucigalpa, HN")
    _agree(db)
    _refresh(db)
    _agree(db)
    with db.session() as s:
        assert [r[4] for r in _rows(s) if r[0] == person] == ["HN"]


def test_a_refresh_reads_the_writes_content_once_and_never_the_subjects(
    db: Database, world: World
) -> None:
    """The persons and arrests the new leaves' write entries name are read from their content
    by one statement, for the timeline and the arrestee rows alike; the audit subjects are not
    read (their indexes are not the refresh's to rely on)."""
    records = Records(db, world)
    arrest = records.arrest(T0, records.person("US", "Philadelphia, PA"))
    person = records.last_person
    _refresh(db)
    records.amend_person(person, citizenship="GT")
    records.move_arrest(arrest, T0 + timedelta(days=2))
    records.arrest(T0 + timedelta(days=1), records.person("MX", "Puebla, MX"))
    with db.session() as s:
        log.integrate(s)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.bind, "before_cursor_execute", seen)
    try:
        with db.session() as s:
            facts.refresh(s)
    finally:
        event.remove(db.bind, "before_cursor_execute", seen)
    # Neither the subject index nor the ids carried on the entries' rows (the content's JSON
    # keys '$.person_ids' / 'person_ids' are what the refresh reads).
    column = re.compile(r"(?<!\$\.)(?<!')\b(person|arrest)_ids\b|audit_(person|arrest)_entries")
    assert not [x for x in statements if column.search(x)]
    writes = [x for x in statements if "e.content" in x and "'write'" in x]
    assert len(writes) == 1, writes
    _agree(db)
    with db.session() as s:
        assert [r[4] for r in _rows(s) if r[0] == person] == ["GT"]
        assert [r[2] for r in _rows(s) if r[1] == arrest] == [T0 + timedelta(days=2)]


def test_population_skew_reads_the_rows_and_the_records_alike(db: Database, world: World) -> None:
    """The detector's baseline is the same counted from the rows or from the records (the
    rows' watermark removed: counted live, as before the rows are first built)."""
    records = Records(db, world)
    for n in range(12):
        place = ("Puebla, MX", "MX") if n % 3 else ("Philadelphia, PA", "US")
        records.arrest(T0 + timedelta(days=n), records.person(place[1], place[0]))
    _refresh(db)
    period = DetectionPeriod(start=T0 + timedelta(days=6), end=T0 + timedelta(days=7))
    since = T0 + timedelta(days=6) - timedelta(days=730)
    with db.session() as s:
        maintained = d.arrestee_counts(s, since, period.end)
        s.execute(text("DELETE FROM oversight_watermarks WHERE name = :n"),
                  {"n": facts.ARRESTEES_INVOLVEMENTS})  # fmt: skip
        assert d.arrestee_counts(s, since, period.end) == maintained
        assert sum(maintained["citizenship"].values()) == 7
        s.rollback()


@pytest.mark.skipif(BACKEND != "postgresql", reason="JIT is PostgreSQL's")
def test_the_daily_run_turns_jit_off_and_leaves_the_setting_as_it_was(
    db: Database, world: World
) -> None:
    records = Records(db, world)
    records.arrest(T0, records.person("US", "Philadelphia, PA"))
    day = DetectionPeriod(start=T0, end=T0 + timedelta(days=1))
    jit = text("SELECT current_setting('jit')")
    seen: list[str] = []

    def probe(session: Session, period: Any, limits: Any) -> list[FlagDraft]:
        seen.append(session.execute(jit).scalar_one())
        return []

    with db.session() as s:
        s.execute(text("SELECT set_config('jit', 'on', true)"))
        with facts.without_jit(s):
            assert s.execute(jit).scalar_one() == "off"
        assert s.execute(jit).scalar_one() == "on"
        # A period's detectors run without JIT; the setting is back after the run, and after
        # a whole-store run (which keeps JIT) too.
        run_detectors(s, [probe], day)
        assert seen == ["off"]
        assert s.execute(jit).scalar_one() == "on"
        run_detectors(s, [probe, *DETECTORS], None, Thresholds())
        assert seen == ["off", "on"]
        assert s.execute(jit).scalar_one() == "on"
        s.rollback()


def test_the_day_counts_kept_through_compactions_equal_counts_built_afresh(
    db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day counts, kept as changes and compacted whenever they double, stay those of the
    rows: after late arrests (entered after later ones), re-arrests, amended persons and
    moved arrests; a midnight-bounded window reads them (``_agree``)."""
    monkeypatch.setattr(facts, "COMPACT_MIN", 0)
    records = Records(db, world)
    records.arrest(T0, records.person("US", "Philadelphia, PA"))
    first = records.last_person
    late = records.arrest(T0 + timedelta(days=3), records.person("MX", "Puebla, MX"))
    second = records.last_person
    _refresh(db)
    compactions = 0
    for n in range(1, 6):
        records.arrest(T0 - timedelta(days=40 * n), first)  # entered late: before the others
        records.amend_person(second, citizenship=("GT", "HN")[n % 2])
        records.move_arrest(late, T0 + timedelta(days=3 + n))
        records.arrest(T0 + timedelta(days=n), records.person("VN", "Hanoi, VN"))
        _refresh(db)
        with db.session() as s:
            raw = s.execute(text("SELECT COUNT(*) FROM oversight_arrestee_days")).scalar_one()
            mark = s.execute(
                text("SELECT size FROM oversight_watermarks WHERE name = :n"),
                {"n": facts.ARRESTEE_DAYS},
            ).scalar_one()
            assert raw <= 2 * mark
            compactions += raw == mark
        _agree(db)
    assert compactions >= 2
    with db.session() as s:
        days = _days(s)
        assert sum(r[-1] for r in days) == len(_rows(s)) == 12
        s.execute(text("DELETE FROM oversight_watermarks WHERE name = :n"),
                  {"n": facts.ARRESTEES_INVOLVEMENTS})  # fmt: skip
        facts.refresh(s)  # the rows and their day counts built again
        assert _days(s) == days
        s.rollback()


def test_a_midnight_bounded_day_reads_the_day_counts(db: Database, world: World) -> None:
    """A daily run's window (bounded by midnights) is summed from the day counts, not counted
    from the rows; the same counts as the records'."""
    records = Records(db, world)
    for n in range(6):
        records.arrest(T0 + timedelta(days=n), records.person("MX", "Puebla, MX"))
    _refresh(db)
    since, end = min(_midnights(T0)), datetime(2025, 6, 8, tzinfo=UTC)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with db.session() as s:
        event.listen(db.bind, "before_cursor_execute", seen)
        try:
            counted = d.arrestee_counts(s, since, end)
        finally:
            event.remove(db.bind, "before_cursor_execute", seen)
        assert counted == d.arrestees_live(s, since, end)
        assert sum(counted["citizenship"].values()) == 6
    assert any("FROM oversight_arrestee_days" in x for x in statements)
