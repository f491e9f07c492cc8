"""Write a demo site through the same services the API uses: agencies, users, tokens, arrests."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.demo.oversight import OversightSummary
from openpars.demo.plan import Plan, PlannedArrest
from openpars.errors import Conflict
from openpars.identity import mfa
from openpars.identity import repository as identity_repo
from openpars.identity import service as identity
from openpars.identity.principal import SYSTEM, Principal
from openpars.identity.roles import AgencyKind, Role
from openpars.identity.schemas import AgencyCreate, UserCreate
from openpars.records import service as records

PPD = "Philadelphia Police Department"
DA = "Philadelphia District Attorney's Office"
COURT = "First Judicial District of Pennsylvania"
PRETRIAL = "Pretrial Services Division"
CITY = "City of Philadelphia"
DEFENDER = "Defender Association of Philadelphia"
IMMIGRATION = "U.S. Immigration and Customs Enforcement, Philadelphia"
FBI = "Federal Bureau of Investigation, Philadelphia Field Office"

# ORIs: the police ORI is Philadelphia's; the others follow the 9-character NCIC shape (state,
# county 051 = Philadelphia, agency suffix) and are illustrative.
AGENCIES: tuple[tuple[str, AgencyKind, str | None], ...] = (
    (PPD, AgencyKind.POLICE, "PAPEP0000"),
    (DA, AgencyKind.DA, "PA051013A"),
    (COURT, AgencyKind.COURT, "PA051015J"),
    (PRETRIAL, AgencyKind.PRETRIAL, "PA051025G"),
    (CITY, AgencyKind.CITY, None),
    (DEFENDER, AgencyKind.DEFENDER, None),
    (IMMIGRATION, AgencyKind.EXTERNAL, "PAICE0100"),
    (FBI, AgencyKind.EXTERNAL, "PAFBIPH00"),
)

USERS: tuple[tuple[str, str, str, tuple[Role, ...]], ...] = (
    ("booking", "PPD booking system (machine account)", PPD, (Role.INTAKE,)),
    ("officer", "PPD booking officer", PPD, (Role.INTAKE,)),
    ("charging", "DA Charging Unit", DA, (Role.CHARGING, Role.READER)),
    ("pretrial", "Pretrial Services officer", PRETRIAL, (Role.PRETRIAL, Role.READER)),
    ("court", "Arraignment Court clerk", COURT, (Role.COURT, Role.READER)),
    ("reader", "Assistant defender", DEFENDER, (Role.READER,)),
    ("clerk", "Records clerk (sealed records)", COURT, (Role.COURT, Role.SEALED_ACCESS)),
    ("admin", "City IT administrator", CITY, (Role.ADMIN,)),
    # Drafts and proposes agreements; appointed at the console (separation of duties).
    ("agreements", "City agreements officer", CITY, (Role.AGREEMENT_ADMIN,)),
    # Each stakeholder's own administrator (its users and voting keys), bootstrapped by the
    # console before its voters, whom it creates (separation of duties).
    ("da-admin", "DA PARS administrator", DA, (Role.STAKEHOLDER_ADMIN,)),
    ("court-admin", "Courts PARS administrator", COURT, (Role.STAKEHOLDER_ADMIN,)),
    ("city-admin", "City PARS administrator", CITY, (Role.STAKEHOLDER_ADMIN,)),
    ("da-voter", "District Attorney (PARS owner)", DA, (Role.VOTER,)),
    ("court-voter", "Court Administrator (PARS owner)", COURT, (Role.VOTER,)),
    ("city-voter", "Managing Director (PARS owner)", CITY, (Role.VOTER,)),
    ("auditor", "City privacy officer", CITY, (Role.AUDITOR, Role.READER)),
    # Reviews the detectors' flags about outside agencies' use of their access.
    ("oversight", "City oversight reviewer", CITY, (Role.OVERSIGHT,)),
    ("ice", "ICE analyst", IMMIGRATION, (Role.EXTERNAL_QUERY,)),
    ("fbi", "FBI task-force analyst", FBI, (Role.EXTERNAL_QUERY,)),
)


# Accounts that only ever call the API (no password, no browser logon).
MACHINE_ACCOUNTS = frozenset({"booking"})


@dataclass
class Credential:
    """One demo account, its freshly issued token and password (None: a machine account)."""

    username: str
    agency: str
    roles: list[str]
    token: str
    password: str | None = None
    # The TOTP secret an authenticator app would hold (docs/accounts.md), new at every run.
    totp_secret: str = ""
    otpauth_uri: str = ""


@dataclass
class SeedSummary:
    """What the arrests pass created."""

    arrests: int = 0
    persons: int = 0
    states: Counter[str] = field(default_factory=Counter)
    sealed: int = 0
    # The governance and oversight pass (demo.oversight), once the arrests are committed.
    oversight: OversightSummary | None = None


def _audit(session: Session, kind: AuditKind, action: str, **params: object) -> None:
    append(
        session,
        AuditEvent(
            kind=kind, action=action, username=SYSTEM.username, params={"via": "demo", **params}
        ),
    )


def demo_state(session: Session) -> str:
    """``empty``, ``demo`` (seeded before) or ``other`` (holds agencies that are not the demo's)."""
    if identity_repo.get_agency_by_name(session, PPD) is not None and all(
        identity_repo.get_user_by_username(session, u[0]) is not None for u in USERS
    ):
        return "demo"
    if identity_repo.list_agencies(session, offset=0, limit=1):
        return "other"
    return "empty"


def create_accounts(session: Session) -> None:
    """The demo's agencies and users, each act audited as the console's ``system``."""
    ids: dict[str, int] = {}
    for name, kind, ori in AGENCIES:
        agency = identity.create_agency(
            session, actor=SYSTEM, data=AgencyCreate(name=name, kind=kind, ori=ori)
        )
        _audit(session, AuditKind.ACCOUNT, "agency.create", agency=agency.id)
        ids[name] = agency.id
    stakeholder_admins: dict[str, Principal] = {}
    for username, display, agency_name, roles in USERS:
        data = UserCreate(
            username=username, display_name=display, agency_id=ids[agency_name], roles=list(roles)
        )
        # Voters are created by their own stakeholder's administrator, never by the console.
        actor = stakeholder_admins[agency_name] if Role.VOTER in roles else SYSTEM
        user = identity.create_user(session, actor=actor, data=data)
        if Role.STAKEHOLDER_ADMIN in roles:
            stakeholder_admins[agency_name] = identity.principal_for(session, user)
        if actor is SYSTEM:
            _audit(session, AuditKind.ACCOUNT, "user.create", user=user.id)
        else:
            append(
                session,
                AuditEvent(
                    kind=AuditKind.ACCOUNT,
                    action="user.create",
                    user_id=actor.user_id,
                    username=actor.username,
                    agency_id=actor.agency_id,
                    params={"via": "demo", "user": user.id},
                ),
            )


def issue_tokens(session: Session, *, lifetime: timedelta) -> list[Credential]:
    """A new token and password for every demo user (secrets are never stored, so a re-run
    issues new ones); the machine account gets no password: it never logs on in a browser."""
    credentials = []
    for username, _, agency_name, roles in USERS:
        user = identity_repo.get_user_by_username(session, username)
        if user is None:
            raise Conflict(f"demo user '{username}' is missing", field="username")
        token, secret = identity.issue_token(
            session, actor=SYSTEM, user_id=user.id, name="demo", lifetime=lifetime
        )
        _audit(session, AuditKind.TOKEN, "token.issue", token=token.id, user=user.id)
        password = None
        if username not in MACHINE_ACCOUNTS:
            password = secrets.token_urlsafe(12)
            _set_password(session, user.id, password)
        credentials.append(
            Credential(username, agency_name, [r.value for r in roles], secret, password)
        )
    return credentials


def enrol_authenticators(
    session: Session, credentials: list[Credential], *, key: bytes, issuer: str
) -> None:
    """Enrol a new authenticator for every demo account that logs on as a person (the
    console's acts, audited), so each can log on with the secret in the credentials file."""
    for credential in credentials:
        if credential.password is None:
            continue
        user = identity_repo.get_user_by_username(session, credential.username)
        if user is None:
            raise Conflict(f"demo user '{credential.username}' is missing", field="username")
        started = mfa.console_start(session, actor=SYSTEM, user_id=user.id, key=key, issuer=issuer)
        mfa.console_confirm(session, actor=SYSTEM, user_id=user.id, key=key, code=None)
        credential.totp_secret = started.secret
        credential.otpauth_uri = started.uri


def _set_password(session: Session, user_id: int, password: str) -> None:
    """Give a demo account a password (reset by whoever administers it), audited."""
    user = identity_repo.get_user(session, user_id)
    assert user is not None
    actor = SYSTEM
    if Role.VOTER in user.roles:
        # A voter's account is administered by its own stakeholder's administrator.
        admin = next(
            u
            for u, _, agency, roles in USERS
            if Role.STAKEHOLDER_ADMIN in roles and agency == user.agency.name
        )
        found = identity_repo.get_user_by_username(session, admin)
        assert found is not None
        actor = identity.principal_for(session, found)
    identity.set_password(
        session, actor=actor, user_id=user_id, new_password=password, force_change=False
    )
    append(
        session,
        AuditEvent(
            kind=AuditKind.ACCOUNT,
            action="user.password.reset",
            user_id=actor.user_id,
            username=actor.username,
            agency_id=actor.agency_id,
            params={"via": "demo", "user": user_id},
        ),
    )


def workflow_principals(session: Session) -> dict[str, Principal]:
    """The accounts that carry arrests through the workflow, by demo username."""
    found = {}
    for username in ("booking", "charging", "pretrial", "court"):
        user = identity_repo.get_user_by_username(session, username)
        assert user is not None, f"demo user {username} was just created"
        found[username] = identity.principal_for(session, user)
    return found


def seed_arrests(
    session: Session, plan: Plan, *, on_arrest: Callable[[], None] = lambda: None
) -> SeedSummary:
    """Enter every planned arrest and walk it through the workflow, as each agency would."""
    actors = workflow_principals(session)
    person_ids: dict[str, int] = {}
    summary = SeedSummary()
    sealing: list[tuple[int, PlannedArrest]] = []
    for planned in plan.arrests:
        arrest_id = _enter(session, actors, planned, person_ids, plan)
        state = _advance(session, actors, planned, arrest_id)
        summary.arrests += 1
        summary.states[state] += 1
        if planned.seal is not None:
            sealing.append((arrest_id, planned))
        # Everything is flushed; a small identity map keeps each flush cheap on large demos.
        session.expunge_all()
        on_arrest()
    # Sealing comes last so no later arrest of the same person meets a hidden record.
    for arrest_id, planned in sealing:
        assert planned.seal is not None
        records.seal_arrest(
            session,
            actor=actors["court"],
            arrest_id=arrest_id,
            data=planned.seal,
            now=planned.seal_at,
        )
        summary.sealed += 1
    summary.persons = len(set(person_ids.values()))
    return summary


def _enter(
    session: Session,
    actors: dict[str, Principal],
    planned: PlannedArrest,
    person_ids: dict[str, int],
    plan: Plan,
) -> int:
    payload = planned.payload(person_ids, plan.persons)
    result = records.submit_arrest(
        session, actor=actors["booking"], data=payload, now=planned.arrested_at
    )
    for involvement, person_id in zip(planned.involvements, result.person_ids, strict=True):
        person_ids.setdefault(involvement.key, person_id)
    return result.arrest_id


def _advance(
    session: Session, actors: dict[str, Principal], planned: PlannedArrest, arrest_id: int
) -> str:
    """Run the planned workflow steps; returns the state the arrest ends in."""
    state = "entered"
    if planned.charging is not None:
        arrest = records.decide_charges(
            session,
            actor=actors["charging"],
            arrest_id=arrest_id,
            data=planned.charging,
            now=planned.charging_at,
        )
        state = arrest.state.value
    if planned.bail is not None:
        records.recommend_bail(
            session,
            actor=actors["pretrial"],
            arrest_id=arrest_id,
            data=planned.bail,
            now=planned.bail_at,
        )
    if planned.arraignment is not None:
        arrest = records.arraign(
            session,
            actor=actors["court"],
            arrest_id=arrest_id,
            data=planned.arraignment,
            now=planned.arraignment.arraigned_at,
        )
        state = arrest.state.value
    if planned.custody is not None:
        arrest = records.record_custody(
            session,
            actor=actors["court"],
            arrest_id=arrest_id,
            data=planned.custody,
            now=planned.custody.at,
        )
        state = arrest.state.value
    return state
