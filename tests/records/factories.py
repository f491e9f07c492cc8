"""Realistic Philadelphia arrest payloads for tests, demos and benchmarks.

Every call gets a fresh report id, OTN, incident number, SID and FBI number, and names and birth
dates that rotate, so payloads built in a row neither replay each other nor stop on
``person_match_required`` (for a few thousand calls). Pass overrides to change any top-level
field; build people with ``person_payload``.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

_counter = itertools.count(1)

FAMILY_NAMES = [
    "Washington", "Rodriguez", "Nguyen", "O'Brien", "Kowalski", "Jackson", "Williams",
    "Santiago", "Johnson", "Brown", "Rivera", "Green", "Pham", "Murphy", "Ortiz", "Harris",
    "Davis", "Cruz", "Thompson", "Kim", "Ramos", "Lee", "Walker", "Diaz", "Robinson",
    "Morales", "Sullivan", "Torres", "Young", "Flores", "Mitchell", "Reyes", "Coleman",
]  # fmt: skip
GIVEN_NAMES = [
    "Marcus", "José", "Tamika", "Kevin", "Aaliyah", "Brian", "Luz", "Tyrone", "Mei", "Sean",
    "Jasmine", "Hector", "Danielle", "Andre", "María", "Patrick", "Keisha", "Anthony", "Linh",
    "Shanice", "Jamal", "Rosa", "Darnell", "Erin", "Miguel", "Nadia", "Terrence", "Grace",
]  # fmt: skip
STREETS = [
    "N Broad St", "Germantown Ave", "Kensington Ave", "S 52nd St", "Frankford Ave",
    "W Lehigh Ave", "Market St", "Girard Ave", "Castor Ave", "Woodland Ave",
]  # fmt: skip

# Real Pennsylvania citations with the grades they usually carry.
SIMPLE_ASSAULT = {"statute": "18 § 2701", "description": "Simple assault", "grade": "M2"}
THEFT = {"statute": "18 § 3921(a)", "description": "Theft by unlawful taking", "grade": "M1"}
RECEIVING = {"statute": "18 § 3925(a)", "description": "Receiving stolen property", "grade": "M1"}
# Possession with intent to deliver is an ungraded felony in the statute; F3 is the closest
# grade the system's list offers.
PWID = {
    "statute": "35 § 780-113(a)(30)",
    "description": "Manufacture, delivery, or possession with intent to deliver",
    "grade": "F3",
}
POSSESSION = {
    "statute": "35 § 780-113(a)(16)",
    "description": "Knowing and intentional possession of a controlled substance",
    "grade": "M3",
}
DUI = {"statute": "75 § 3802(a)(1)", "description": "DUI: general impairment", "grade": "M3"}


def _name(n: int, offset: int) -> tuple[str, str]:
    family = FAMILY_NAMES[(n * 7 + offset) % len(FAMILY_NAMES)]
    given = GIVEN_NAMES[(n * 5 + offset * 3) % len(GIVEN_NAMES)]
    return family, given


def person_payload(n: int | None = None, *, offset: int = 0, **overrides: Any) -> dict[str, Any]:
    """A person as a booking system sends it; ``n`` and ``offset`` pick the rotating values."""
    n = next(_counter) if n is None else n
    family, given = _name(n, offset)
    # Birth dates differ per (n, offset) so repeated payloads do not resemble each other.
    born = date(1958, 1, 1) + timedelta(days=(n * 3 + offset * 1009) % 15000)
    person: dict[str, Any] = {
        "family_name": family,
        "given_name": given,
        "birth_date": born.isoformat(),
        "sex": "M" if (n + offset) % 3 else "F",
        "race": "BWAWBU"[(n + offset) % 6],
        "address": f"{100 + (n * 37) % 4800} {STREETS[(n + offset) % len(STREETS)]}, "
        "Philadelphia, PA 191" + f"{(n + offset) % 50 + 1:02d}",
        "phone": f"215-555-{(n * 13 + offset) % 10000:04d}",
        "place_of_birth": ["Philadelphia, PA", "San Juan, PR", "Santo Domingo, DO",
                           "Camden, NJ", "Ho Chi Minh City, VN", "Lagos, NG"][(n + offset) % 6],
    }  # fmt: skip
    person.update(overrides)
    return person


def arrest_payload(**overrides: Any) -> dict[str, Any]:
    """A valid ArrestCreate JSON: an arrestee (with SID and FBI number), a victim, a witness."""
    n = next(_counter)
    arrested_at = datetime(2025, 3, 14, 2, 40, tzinfo=UTC) + timedelta(hours=(n * 7) % 8760)
    arrestee = person_payload(
        n,
        offset=0,
        sid=f"{n % 1000:03d}-{n // 1000 % 100:02d}-{n % 100:02d}-{n % 10}",
        fbi_number=f"{n:07d}AB{n % 10}",
        citizenship="US",
        aliases=[{"family_name": _name(n, 0)[0], "given_name": "Lil " + _name(n, 0)[1]}],
    )
    payload: dict[str, Any] = {
        "report_id": f"PPD-2025-{n:07d}",
        "otn": f"N{n:07d}-{n % 10}",
        "incident_number": f"2025{n % 39 + 1:02d}{n:06d}",
        "ori": "PAPEP0000",
        "arresting_officer": f"P/O {_name(n, 5)[0]} #{4000 + n % 5000}",
        "arrested_at": arrested_at.isoformat(),
        "location": f"{1200 + n % 800} {STREETS[n % len(STREETS)]}, Philadelphia, PA",
        "arrest_type": ["on_view", "warrant", "summons"][n % 3],
        "narrative": "Complainant reported that the defendant struck her and took her purse; "
        "the defendant was stopped two blocks away with the purse and a quantity of "
        "packets of alleged cocaine.",
        "involvements": [
            {"role": "arrestee", "person": arrestee},
            {"role": "victim", "person": person_payload(n, offset=1)},
            {"role": "witness", "person": person_payload(n, offset=2)},
        ],
        "charges": [dict(SIMPLE_ASSAULT), dict(THEFT), dict(PWID)],
    }
    payload.update(overrides)
    return payload
