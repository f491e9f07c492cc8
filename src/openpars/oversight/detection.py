"""What every detector shares: the draft of a flag, the period it reads and its thresholds.

A detector reads the store in the caller's transaction with set-based SQL and returns
``FlagDraft``s; ``flags.run_detectors`` stores them once each (by detector and dedupe key).
Detectors take the period to judge (``DetectionPeriod``, whole UTC days in practice) and read
only the history they need before it, so a daily run reads one day plus its baselines. Without a
period a detector judges everything in the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from openpars.config import Settings


@dataclass(frozen=True, slots=True)
class FlagDraft:
    """A finding as a detector returns it, before it is stored."""

    detector: str
    dedupe_key: str
    rule: str
    threshold: float | None
    subject_user_id: int | None
    subject_agency_id: int | None
    subject_agreement_id: int | None
    entry_ids: tuple[int, ...]
    raised_at: datetime


@dataclass(frozen=True, slots=True)
class DetectionPeriod:
    """The accesses to judge: at in [start, end), both aware UTC instants."""

    start: datetime
    end: datetime

    def label(self) -> str:
        """The period as it appears in the keys of period-wide findings."""
        return f"{self.start:%Y-%m-%d}/{self.end:%Y-%m-%d}"


# The whole store: every instant an entry can carry.
EVERYTHING = DetectionPeriod(
    start=datetime(1970, 1, 1, tzinfo=UTC), end=datetime(9999, 1, 1, tzinfo=UTC)
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every detector's threshold; the defaults are Settings' (``OPENPARS_OVERSIGHT_*``)."""

    burst_z: float = 5.0
    burst_min_queries: int = 20
    burst_history: timedelta = timedelta(days=28)
    burst_min_history_days: int = 7
    wildcard_letters: int = 3
    sequential_run: int = 5
    zero_hit_min_queries: int = 10
    zero_hit_share: float = 0.5
    date_sweep_queries: int = 5
    shared_case_persons: int = 5
    shared_case_window: timedelta = timedelta(days=30)
    person_many_users: int = 5
    person_window: timedelta = timedelta(hours=24)
    skew_z: float = 3.0
    skew_ratio: float = 1.5
    skew_min_count: int = 5
    skew_min_persons: int = 30
    skew_population: timedelta = timedelta(days=730)
    home_citizenship: str = "US"
    never_charged_user_min: int = 3
    never_charged_user_share: float = 0.2
    never_charged_agency_min: int = 10
    never_charged_agency_share: float = 0.1
    off_hours_min_queries: int = 3
    off_hours_share: float = 0.1
    off_hours_history: timedelta = timedelta(days=28)
    off_hours_min_days: int = 15
    dormant: timedelta = timedelta(days=60)


def thresholds_from(settings: Settings) -> Thresholds:
    """The thresholds configured for the site."""
    s = settings
    return Thresholds(
        burst_z=s.oversight_burst_z,
        burst_min_queries=s.oversight_burst_min_queries,
        burst_history=timedelta(days=s.oversight_burst_history_days),
        burst_min_history_days=s.oversight_burst_min_history_days,
        wildcard_letters=s.oversight_wildcard_letters,
        sequential_run=s.oversight_sequential_run,
        zero_hit_min_queries=s.oversight_zero_hit_min_queries,
        zero_hit_share=s.oversight_zero_hit_share,
        date_sweep_queries=s.oversight_date_sweep_queries,
        shared_case_persons=s.oversight_shared_case_persons,
        shared_case_window=timedelta(days=s.oversight_shared_case_days),
        person_many_users=s.oversight_person_many_users,
        person_window=timedelta(hours=s.oversight_person_window_hours),
        skew_z=s.oversight_skew_z,
        skew_ratio=s.oversight_skew_ratio,
        skew_min_count=s.oversight_skew_min_count,
        skew_min_persons=s.oversight_skew_min_persons,
        skew_population=timedelta(days=s.oversight_skew_population_days),
        home_citizenship=s.oversight_home_citizenship,
        never_charged_user_min=s.oversight_never_charged_user_min,
        never_charged_user_share=s.oversight_never_charged_user_share,
        never_charged_agency_min=s.oversight_never_charged_agency_min,
        never_charged_agency_share=s.oversight_never_charged_agency_share,
        off_hours_min_queries=s.oversight_off_hours_min_queries,
        off_hours_share=s.oversight_off_hours_share,
        off_hours_history=timedelta(days=s.oversight_off_hours_history_days),
        off_hours_min_days=s.oversight_off_hours_min_days,
        dormant=timedelta(days=s.oversight_dormant_days),
    )


class Detector(Protocol):
    """A detector: reads the store in the caller's transaction, returns its findings.

    Called with the session alone it judges the whole store with the default thresholds.
    """

    __name__: str

    def __call__(
        self,
        session: Session,
        period: DetectionPeriod | None = None,
        limits: Thresholds | None = None,
    ) -> list[FlagDraft]: ...
