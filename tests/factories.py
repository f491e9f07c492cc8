"""Factories shared by the tests: a typical site's agencies, users and tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from openpars.identity import service as identity
from openpars.identity.principal import SYSTEM, Principal
from openpars.identity.roles import AgencyKind, Role
from openpars.identity.schemas import AgencyCreate, UserCreate

AGENCIES: list[tuple[str, AgencyKind, str | None]] = [
    ("Philadelphia Police Department", AgencyKind.POLICE, "PAPEP0000"),
    ("District Attorney's Office", AgencyKind.DA, "PA051013A"),
    ("First Judicial District", AgencyKind.COURT, "PA051015J"),
    ("Pretrial Services", AgencyKind.PRETRIAL, None),
    ("City of Philadelphia", AgencyKind.CITY, None),
    ("Defender Association", AgencyKind.DEFENDER, None),
    ("Immigration and Customs Enforcement", AgencyKind.EXTERNAL, "DCICE0000"),
    ("Federal Bureau of Investigation", AgencyKind.EXTERNAL, "DCFBI0000"),
]

USERS: list[tuple[str, str, list[Role]]] = [
    ("intake", "Philadelphia Police Department", [Role.INTAKE]),
    ("charging", "District Attorney's Office", [Role.CHARGING, Role.READER]),
    ("pretrial", "Pretrial Services", [Role.PRETRIAL]),
    ("court", "First Judicial District", [Role.COURT]),
    ("reader", "Defender Association", [Role.READER]),
    ("clerk", "First Judicial District", [Role.COURT, Role.SEALED_ACCESS]),
    ("admin", "City of Philadelphia", [Role.ADMIN]),
    ("agreements", "City of Philadelphia", [Role.AGREEMENT_ADMIN]),
    ("ice", "Immigration and Customs Enforcement", [Role.EXTERNAL_QUERY]),
    ("fbi", "Federal Bureau of Investigation", [Role.EXTERNAL_QUERY]),
]


@dataclass
class World:
    """Ids, principals and bearer tokens of the standard test site."""

    agencies: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, username: str) -> dict[str, str]:
        """Request headers authenticating as a user."""
        return {"Authorization": f"Bearer {self.tokens[username]}"}


def build_world(session: Session) -> World:
    """Create the standard agencies and users, each with a token."""
    world = World()
    for name, kind, ori in AGENCIES:
        agency = identity.create_agency(
            session, actor=SYSTEM, data=AgencyCreate(name=name, kind=kind, ori=ori)
        )
        world.agencies[name] = agency.id
    for username, agency_name, roles in USERS:
        add_user(session, world, username, agency_name, roles)
    return world


def add_user(
    session: Session,
    world: World,
    username: str,
    agency_name: str,
    roles: list[Role],
    *,
    by: str | None = None,
) -> None:
    """Create a user of a named agency with a one-day token and record it in the world; ``by``
    names the world's account that creates it (the console's system account by default)."""
    user = identity.create_user(
        session,
        actor=world.principals[by] if by else SYSTEM,
        data=UserCreate(
            username=username,
            display_name=username.title(),
            agency_id=world.agencies[agency_name],
            roles=roles,
        ),
    )
    world.users[username] = user.id
    world.principals[username] = identity.principal_for(session, user)
    _, secret = identity.issue_token(
        session, actor=SYSTEM, user_id=user.id, name="test", lifetime=timedelta(days=1)
    )
    world.tokens[username] = secret


def city_voter(session: Session, world: World) -> str:
    """The city's voter, made by the city's own stakeholder administrator (separation of
    duties: the site administrator speaks for no stakeholder); its username."""
    if "city-voter" not in world.users:
        add_user(session, world, "city-admin", "City of Philadelphia", [Role.STAKEHOLDER_ADMIN])
        add_user(
            session, world, "city-voter", "City of Philadelphia", [Role.VOTER], by="city-admin"
        )
    return "city-voter"
