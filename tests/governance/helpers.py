"""Builders for governance tests: a board with voters and keys, agreements, signed votes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openpars.agreements import service as agreements
from openpars.agreements.models import Agreement
from openpars.agreements.schemas import AgreementDocument
from openpars.db import Database, utcnow
from openpars.governance import board, signing
from openpars.governance.models import (
    BoardConfig,
    Proposal,
    RenewalNotice,
    StakeholderKey,
    Vote,
)
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.schemas import KeyCreate, ProposalCreate, SignedVote
from openpars.governance.service import open_proposal
from openpars.identity import service as identity
from openpars.identity.principal import SYSTEM, Principal
from openpars.identity.roles import Role
from openpars.identity.schemas import UserCreate
from tests.factories import World

ICE = "Immigration and Customs Enforcement"
OWNERS = {
    "da": "District Attorney's Office",
    "court": "First Judicial District",
    "city": "City of Philadelphia",
    # Not on the default board; used when it grows to five.
    "pretrial": "Pretrial Services",
    "defender": "Defender Association",
}
GOVERNANCE_TABLES: tuple[type[Any], ...] = (
    BoardConfig,
    StakeholderKey,
    Proposal,
    Vote,
    RenewalNotice,
)


def scope() -> dict[str, Any]:
    """A scope above the default floor: arrestees only."""
    return {
        "roles": ["arrestee"],
        "person_fields": {"family_name": "visible"},
        "arrest_fields": {"otn": "visible"},
        "arrest_states": ["charged", "arraigned"],
        "grades": ["F1", "F2"],
        "purposes": [{"purpose": "criminal-investigation"}],
    }


def document(world: World, *, start: datetime, end: datetime, **extra: Any) -> AgreementDocument:
    """An ICE agreement document for the whole agency."""
    doc: dict[str, Any] = {
        "name": "ICE data-use agreement",
        "grantee_agency_id": world.agencies[ICE],
        "all_units": True,
        "legal_basis": "yearly data-use agreement",
        "terms": "Arrestees only.",
        "parties": [world.agencies[OWNERS[k]] for k in ("da", "court", "city")],
        "scope": scope(),
        "effective_at": start.isoformat(),
        "expires_at": end.isoformat(),
    }
    doc.update(extra)
    return AgreementDocument.model_validate(doc)


@dataclass
class Gov:
    """A site with the default board, one voter and one key per stakeholder, one draft agreement."""

    world: World
    db: Database
    t0: datetime
    agreement_id: int
    voters: dict[str, Principal] = field(default_factory=dict)
    admins: dict[str, Principal] = field(default_factory=dict)
    admin_tokens: dict[str, str] = field(default_factory=dict)
    agencies: dict[str, int] = field(default_factory=dict)
    keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        """Headers authenticating as a stakeholder's voter."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def admin_auth(self, who: str) -> dict[str, str]:
        """Headers authenticating as a stakeholder's own administrator."""
        return {"Authorization": f"Bearer {self.admin_tokens[who]}"}

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work."""
        with self.db.session() as session:
            yield session

    def at(self, **delta: float) -> datetime:
        """An instant relative to the test's start."""
        return self.t0 + timedelta(**delta)

    def content_hash(self) -> str:
        """The agreement's current version hash."""
        with self.session() as session:
            agreement = agreements.get_agreement(session, agreement_id=self.agreement_id)
            return agreements.current_version(session, agreement=agreement).content_hash

    def propose(
        self,
        action: ProposalAction = ProposalAction.ADOPT,
        *,
        now: datetime | None = None,
        deadline: datetime | None = None,
        actor: Principal | None = None,
        **extra: Any,
    ) -> int:
        """Open a proposal on the agreement; returns its id."""
        moment = now or self.t0
        with self.session() as session:
            proposal = open_proposal(
                session,
                actor=actor or self.voters["da"],
                data=ProposalCreate(
                    agreement_id=self.agreement_id,
                    action=action,
                    summary=f"{action.value} the ICE agreement",
                    deadline=deadline or moment + timedelta(days=14),
                    **extra,
                ),
                now=moment,
            )
            return proposal.id

    def ballot(
        self,
        proposal_id: int,
        who: str,
        choice: Choice,
        at: datetime,
        *,
        rationale: str = "reviewed the evidence",
        key: str | None = None,
        **overrides: Any,
    ) -> SignedVote:
        """A vote signed offline with a stakeholder's key (or another's, with ``key``).

        ``overrides`` replace lines of the statement (``version_hash``, ``action``,
        ``effective_at``, ``stakeholder_id``, ...) as an attacker or a careless signer would.
        """
        private = self.keys[key or who]
        with self.session() as session:
            proposal = session.get(Proposal, proposal_id)
            assert proposal is not None
            statement = signing.statement_for(
                proposal,
                # Someone who is no stakeholder's voter (an administrator with a stolen key)
                # signs for the stakeholder whose key it holds.
                stakeholder_id=(self.voters.get(who) or self.voters[key or who]).agency_id or 0,
                key_fingerprint=signing.fingerprint(signing.public_raw(private)),
                choice=choice,
                rationale=rationale,
                at=at,
            )
        statement = dataclasses.replace(statement, **overrides)
        document = signing.sign_vote(private, statement, rationale)
        return SignedVote.model_validate(document)


def add_voter(
    session: Session, world: World, who: str, *, role: Role = Role.VOTER, by: Principal = SYSTEM
) -> Principal:
    """A user with the voter role (or another) in a stakeholder agency, made by ``by``."""
    suffix = "voter" if role is Role.VOTER else role.value.replace("_", "-")
    user = identity.create_user(
        session,
        actor=by,
        data=UserCreate(
            username=f"{who}-{suffix}",
            display_name=f"{who} {suffix}",
            agency_id=world.agencies[OWNERS[who]],
            roles=[role],
        ),
    )
    return identity.principal_for(session, user)


def register(session: Session, gov: Gov, who: str) -> None:
    """Give a stakeholder its administrator (console bootstrap), a voter and a registered key."""
    gov.agencies[who] = gov.world.agencies[OWNERS[who]]
    # Separation of duties: the console bootstraps the stakeholder's own administrator, who
    # then creates the voter and registers the key.
    gov.admins[who] = add_voter(session, gov.world, who, role=Role.STAKEHOLDER_ADMIN)
    gov.voters[who] = add_voter(session, gov.world, who, by=gov.admins[who])
    gov.keys[who] = Ed25519PrivateKey.generate()
    for holder, tokens in ((gov.voters[who], gov.tokens), (gov.admins[who], gov.admin_tokens)):
        _, tokens[who] = identity.issue_token(
            session,
            actor=SYSTEM,
            user_id=holder.user_id or 0,
            name="test",
            lifetime=timedelta(days=1),
        )
    board.register_key(
        session,
        actor=gov.admins[who],
        data=KeyCreate(
            public_key=signing.public_pem(gov.keys[who]).decode(), label=f"{who} board key"
        ),
    )


def build_gov(db: Database, world: World, *, days: int = 365) -> Gov:
    """The default board (DA, courts, city) with keys, and a draft agreement."""
    t0 = utcnow().replace(microsecond=0)
    with db.session() as session:
        agreement = agreements.create_agreement(
            session,
            actor=SYSTEM,
            data=document(world, start=t0, end=t0 + timedelta(days=days)),
            now=t0,
        )
        gov = Gov(world=world, db=db, t0=t0, agreement_id=agreement.id)
        for who in ("da", "court", "city"):
            register(session, gov, who)
    return gov


def rows(session: Session) -> dict[str, int]:
    """Row counts of every governance table."""
    return {
        m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0
        for m in GOVERNANCE_TABLES
    }


def agreement(session: Session, gov: Gov) -> Agreement:
    """The test agreement, fresh from the database."""
    found = session.get(Agreement, gov.agreement_id)
    assert found is not None
    session.refresh(found)
    return found
