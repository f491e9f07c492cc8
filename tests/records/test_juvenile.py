"""Age and juvenile derivation against a reference count of birthdays (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from hypothesis import given
from hypothesis import strategies as st

from openpars.records.versions import SITE_TZ, age_on, is_juvenile

DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))


def _reference_age(born: date, on: date) -> int:
    """Count the birthdays that have passed; a 29 February birthday falls on 1 March."""
    age = 0
    for year in range(born.year + 1, on.year + 1):
        try:
            birthday = born.replace(year=year)
        except ValueError:  # 29 February in a common year
            birthday = date(year, 3, 1)
        if birthday <= on:
            age += 1
    return age


@given(born=DATES, on=DATES)
def test_age_matches_counting_birthdays(born: date, on: date) -> None:
    if on >= born:
        assert age_on(born, on) == _reference_age(born, on)


@given(born=st.dates(min_value=date(1950, 1, 1), max_value=date(2030, 1, 1)), on=DATES)
def test_juvenile_means_under_18_on_the_local_arrest_date(born: date, on: date) -> None:
    # 23:30 in Philadelphia is already the next day in UTC: the local date must decide.
    arrested_at = datetime.combine(on, time(23, 30), tzinfo=SITE_TZ).astimezone(UTC)
    if on >= born:
        assert is_juvenile(born, arrested_at) == (_reference_age(born, on) < 18)


def test_unknown_birth_date_is_unknown_not_adult() -> None:
    # Neither adult (external scopes would show it) nor juvenile (internal readers would be
    # told an adult is a minor): unknown.
    assert is_juvenile(None, datetime(2025, 1, 1, tzinfo=UTC)) is None
