"""The demo's governance and oversight: the federal partner's reads, the detectors' flags, the
board, and a pending renewal with its oversight report and what-if replay.

Everything goes through the services a person would use, in the order it would happen:

1. the FBI analyst's reads (``access.service``: arrest searches by OTN, the arrest, its
   arrestee, warrant searches by SID, and a few name-prefix searches), each in its own external
   unit through the enforcement point, audited there;
2. the detectors over that traffic (``oversight.review.run_detectors``, as the demo's
   oversight reviewer, as ``openpars oversight detect`` runs them): the name-prefix searches are
   real findings, grouped into a review case about the analyst;
3. the board of the three owners (``governance.board.bootstrap``, the agreements officer), a
   new version of the FBI agreement (``agreements.service.update_agreement``: no misdemeanours,
   no name searches) and a renewal proposal over it (``governance.service.open_proposal``),
   which attaches the oversight report of the current term; its what-if replay is computed on
   request from the traffic above.

No row is written by hand. The reads happen at build time (the accounts are created then too),
so the replay's default window of six months covers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.access import service as reads
from openpars.access.schemas import ArrestQuery, PersonQuery, ReadContext
from openpars.agreements import service as agreements
from openpars.agreements.models import Agreement
from openpars.agreements.schemas import AgreementDocument
from openpars.db import Database, utcnow
from openpars.governance import board
from openpars.governance.quorum import ProposalAction
from openpars.governance.schemas import BoardUpdate, ProposalCreate
from openpars.governance.service import open_proposal
from openpars.identity import repository as identity_repo
from openpars.identity import service as identity
from openpars.identity.principal import Principal
from openpars.oversight import review
from openpars.oversight.explain_sql import Rules
from openpars.records.enums import ArrestState, InvolvementRole
from openpars.records.models import Arrest, Involvement, Person

# The demo's accounts (demo.seed.USERS) and the owners on the board (its agency names).
ANALYST, REVIEWER, OFFICER = "fbi", "oversight", "agreements"
OWNERS = (
    "Philadelphia District Attorney's Office",
    "First Judicial District of Pennsylvania",
    "City of Philadelphia",
)
INVESTIGATION = "criminal-investigation"
WARRANT = "fugitive-apprehension"
# Cases the analyst works (arrest search, arrest, arrestee), warrants served, name prefixes.
CASES = 8
WARRANTS = 4
PREFIXES = 3
PREFIX_LETTERS = 3  # the wildcard detector's threshold (OPENPARS_OVERSIGHT_WILDCARD_LETTERS)
VOTING_DAYS = 30
RENEWAL_YEARS = 4
READABLE_STATES = (
    ArrestState.CHARGED,
    ArrestState.ARRAIGNED,
    ArrestState.RELEASED,
    ArrestState.COMMITTED,
)


@dataclass
class OversightSummary:
    """What the governance and oversight pass created."""

    reads: int = 0
    flags: int = 0
    proposal_id: int = 0


def _principal(session: Session, username: str) -> Principal:
    user = identity_repo.get_user_by_username(session, username)
    assert user is not None, f"demo user {username} was just created"
    return identity.principal_for(session, user)


@dataclass(frozen=True)
class _Case:
    arrest_id: int
    otn: str
    sid: str | None
    family_name: str


def _cases(session: Session) -> list[_Case]:
    """Arrests the analyst works: adult arrestees of charged arrests, oldest first (the demo's
    data is fixed by its seed, so these are too)."""
    rows = session.execute(
        select(Arrest.id, Arrest.otn, Person.sid, Person.family_name)
        .join(Involvement, Involvement.arrest_id == Arrest.id)
        .join(Person, Person.id == Involvement.person_id)
        .where(
            Arrest.state.in_(READABLE_STATES),
            Arrest.sealed_at.is_(None),
            Arrest.otn.is_not(None),
            Involvement.role == InvolvementRole.ARRESTEE,
            Involvement.juvenile.is_(False),
        )
        .order_by(Arrest.id)
        .limit(CASES * 4)
    ).all()
    return [_Case(a, str(otn), sid, str(name)) for a, otn, sid, name in rows]


def _read(database: Database, call: Any, analyst: Principal, **kw: Any) -> Any:
    """One read by the analyst, in its own external unit (as an API request runs)."""
    with database.session(external=True) as session:
        return call(session, principal=analyst, **kw)


def seed_traffic(database: Database, *, analyst_name: str) -> int:
    """The analyst's reads through the enforcement point; returns how many were made."""
    with database.session() as session:
        analyst = _principal(session, analyst_name)
        cases = _cases(session)
    made = 0
    worked = 0
    for case in cases:
        if worked == CASES:
            break
        context = ReadContext(purpose=INVESTIGATION, case_number=case.otn)
        found = _read(database, reads.search_arrests, analyst, query=ArrestQuery(otn=case.otn),
                      context=context)  # fmt: skip
        made += 1
        if not found.items:
            continue  # outside the agreement (a grade it does not cover): nothing to open
        worked += 1
        arrest = _read(database, reads.get_arrest, analyst, arrest_id=case.arrest_id,
                       context=context).arrest  # fmt: skip
        made += 1
        for involvement in arrest.involvements:
            if involvement.role is InvolvementRole.ARRESTEE:
                _read(database, reads.get_person, analyst, person_id=involvement.person_id,
                      context=context)  # fmt: skip
                made += 1
    for case in [c for c in cases if c.sid][:WARRANTS]:
        _read(database, reads.search_persons, analyst, query=PersonQuery(sid=case.sid),
              context=ReadContext(purpose=WARRANT))  # fmt: skip
        made += 1
    # Misuse the detectors catch: surname prefixes, matching everyone they begin, under one
    # case's reference.
    prefixes = sorted({c.family_name[:PREFIX_LETTERS] for c in cases if c.family_name.isalpha()})
    for prefix in prefixes[:PREFIXES]:
        context = ReadContext(purpose=INVESTIGATION, case_number=cases[0].otn)
        _read(database, reads.search_persons, analyst, query=PersonQuery(name=prefix),
              context=context)  # fmt: skip
        made += 1
    return made


def run_detectors(session: Session, *, reviewer_name: str) -> int:
    """Every detector over the store, as the oversight reviewer; returns the new flags."""
    return len(review.run_detectors(session, actor=_principal(session, reviewer_name)))


def _renewed_scope(document: AgreementDocument) -> dict[str, Any]:
    """The renewal's terms: the same, without misdemeanours, and identifiers only (no name
    search), after the oversight case about name-prefix searches."""
    content = document.model_dump(mode="json")
    scope = content["scope"]
    scope["grades"] = [g for g in scope["grades"] if not g.startswith("M")]
    scope["limits"] = {**scope["limits"], "name_search": False}
    return content


def seed_renewal(
    session: Session,
    *,
    agreement_id: int,
    officer_name: str,
    owners: tuple[int, ...],
    now: datetime,
    rules: Rules,
) -> int:
    """The owners' board, the renewal's version and its open proposal; returns the proposal."""
    officer = _principal(session, officer_name)
    board.bootstrap(
        session,
        actor=officer,
        data=BoardUpdate(members=sorted(owners), quorum=2, note="the PARS owners (demo)"),
        now=now,
    )
    agreement = session.get(Agreement, agreement_id)
    assert agreement is not None
    current = agreements.document_of(agreements.current_version(session, agreement=agreement))
    renewed = AgreementDocument.model_validate(_renewed_scope(current))
    agreements.update_agreement(
        session,
        actor=officer,
        agreement_id=agreement_id,
        data=renewed,
        reason="renewal terms: felonies only, identifiers only (no name searches)",
        now=now,
    )
    expires = agreement.in_force_until or current.expires_at
    proposal = open_proposal(
        session,
        actor=officer,
        data=ProposalCreate(
            agreement_id=agreement_id,
            action=ProposalAction.RENEW,
            summary=f"Renew the FBI agreement for {RENEWAL_YEARS} more years, felonies only "
            "and identifiers only",
            deadline=now + timedelta(days=VOTING_DAYS),
            new_expires_at=expires.replace(year=expires.year + RENEWAL_YEARS),
        ),
        now=now,
        rules=rules,
    )
    return proposal.id


def seed_oversight(database: Database, *, agreement_id: int, rules: Rules) -> OversightSummary:
    """The whole pass, once the arrests are committed: the reads, each in its own unit, then
    the detectors and the renewal in one."""
    made = seed_traffic(database, analyst_name=ANALYST)
    with database.session() as session:
        flags = run_detectors(session, reviewer_name=REVIEWER)
        owners = tuple(
            agency.id
            for name in OWNERS
            if (agency := identity_repo.get_agency_by_name(session, name)) is not None
        )
        proposal_id = seed_renewal(
            session,
            agreement_id=agreement_id,
            officer_name=OFFICER,
            owners=owners,
            now=utcnow(),
            rules=rules,
        )
    return OversightSummary(reads=made, flags=flags, proposal_id=proposal_id)
