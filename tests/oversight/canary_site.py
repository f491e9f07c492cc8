"""A site for the canary and review tests: an agreement in force, reviewers, a canary, a twin.

The canary and its real twin are entered the same way (police intake's payload), one planted
by a reviewer, the other by the intake user, so any difference an outside agency could see
between them is a leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.db import Database
from openpars.identity.roles import Role
from openpars.oversight.models import Flag
from tests.access.agreements import activate
from tests.factories import World, add_user

CITY = "City of Philadelphia"
PURPOSE = {"purpose": "warrant-service"}
OVERSIGHT = "/api/v1/oversight"


def arrest(n: int, family: str, given: str, *, sid: str) -> dict[str, Any]:
    """An arrest of one adult arrestee, as police intake sends it."""
    return {
        "report_id": f"PPD-2025-9{n:06d}",
        "otn": f"N9{n:06d}-{n % 10}",
        "incident_number": f"202517{n:06d}",
        "ori": "PAPEP0000",
        "arresting_officer": f"P/O Brennan #{4100 + n}",
        "arrested_at": f"2025-06-1{n % 9}T03:2{n % 9}:00+00:00",
        "location": f"{1400 + n} Kensington Ave, Philadelphia, PA",
        "arrest_type": "on_view",
        "narrative": "Stopped on a warrant check; a quantity of packets recovered.",
        "involvements": [
            {
                "role": "arrestee",
                "person": {
                    "family_name": family,
                    "given_name": given,
                    "birth_date": f"198{n % 9}-0{n % 9 + 1}-1{n % 9}",
                    "sex": "M",
                    "race": "W",
                    "address": f"{200 + n} Castor Ave, Philadelphia, PA 19149",
                    "phone": f"215-555-{7000 + n:04d}",
                    "place_of_birth": "Philadelphia, PA",
                    "citizenship": "US",
                    "sid": sid,
                    "fbi_number": f"{n:07d}CD{n % 10}",
                },
            }
        ],
        "charges": [
            {"statute": "18 § 3921(a)", "description": "Theft by unlawful taking", "grade": "M1"},
        ],
    }


@dataclass
class Site:
    """Ids of what ``build`` made."""

    agreement_id: int
    canary_id: int
    canary_person: int
    canary_arrest: int
    canary_sid: str
    twin_person: int
    twin_arrest: int
    twin_sid: str


def add_reviewers(db: Database, world: World) -> None:
    """Two oversight reviewers of the city."""
    with db.session() as s:
        for name in ("overseer", "overseer2"):
            add_user(s, world, name, CITY, [Role.OVERSIGHT])


def build(client: TestClient, db: Database, world: World) -> Site:
    """Agreement for ICE, two reviewers, a planted canary and its real twin."""
    with db.session() as s:
        agreement = activate(s, world)
    add_reviewers(db, world)
    body = {"label": "fishing tripwire", "arrest": arrest(1, "Zbrozek", "Halina", sid="CAN-0001")}
    planted = client.post(f"{OVERSIGHT}/canaries", json=body, headers=world.auth("overseer"))
    assert planted.status_code == 201, planted.text
    assert planted.json()["pending"] is True and planted.json()["person_id"] is None
    confirmed = client.post(
        f"{OVERSIGHT}/canaries/{planted.json()['id']}/confirm", headers=world.auth("overseer2")
    )
    assert confirmed.status_code == 200, confirmed.text
    twin_body = arrest(2, "Zbrozek", "Marek", sid="CAN-0002")
    twin = client.post("/api/v1/arrests", json=twin_body, headers=world.auth("intake"))
    assert twin.status_code == 201, twin.text
    c = confirmed.json()
    return Site(
        agreement_id=agreement.id,
        canary_id=c["id"],
        canary_person=c["person_id"],
        canary_arrest=c["arrest_id"],
        canary_sid="CAN-0001",
        twin_person=twin.json()["person_ids"][0],
        twin_arrest=twin.json()["arrest_id"],
        twin_sid="CAN-0002",
    )


def flags(db: Database) -> list[Flag]:
    """Every stored flag, oldest first."""
    with db.session() as s:
        rows = list(s.scalars(select(Flag).order_by(Flag.id)))
        s.expunge_all()
        return rows
