"""The demo's data-sharing agreements: the federal partner has one in force, ICE has none.

That is where Philadelphia stood after 31 August 2018: the immigration agency's access ended
when the owners declined to renew, other federal partners kept theirs. The FBI's agreement is
adopted through the same lifecycle call a stakeholder vote applies.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from openpars.agreements import lifecycle
from openpars.agreements import service as agreements
from openpars.agreements.models import LifecycleAction
from openpars.agreements.schemas import AgreementDocument
from openpars.identity import repository as identity_repo
from openpars.identity.principal import SYSTEM

EFFECTIVE = datetime(2025, 1, 1, 5, 0, tzinfo=UTC)
EXPIRES = datetime(2029, 9, 1, 4, 0, tzinfo=UTC)


def _agency_id(session: Session, name: str) -> int:
    agency = identity_repo.get_agency_by_name(session, name)
    assert agency is not None, f"demo agency {name!r} missing"
    return agency.id


def seed_agreements(session: Session, *, grantee: str, owners: tuple[str, ...]) -> int:
    """Create and adopt the federal partner's arrestees-only agreement; returns its id."""
    document = AgreementDocument.model_validate(
        {
            "name": "FBI Philadelphia task-force data-use agreement",
            "grantee_agency_id": _agency_id(session, grantee),
            "all_units": True,
            "legal_basis": "Data-use agreement between the PARS owners and the FBI field office",
            "fee": {"amount": "5500.00", "currency": "USD", "period": "yearly"},
            "terms": "Arrestees only; never victims, witnesses or complainants.",
            "parties": sorted(_agency_id(session, owner) for owner in owners),
            "scope": {
                "roles": ["arrestee"],
                "person_fields": {
                    "family_name": "visible",
                    "given_name": "visible",
                    "middle_name": "visible",
                    "birth_date": "year_only",
                    "sex": "visible",
                    "sid": "visible",
                    "fbi_number": "visible",
                },
                "arrest_fields": {
                    "otn": "visible",
                    "arrested_at": "visible",
                    "state": "visible",
                    "docket_number": "visible",
                    "charges": "visible",
                },
                "arrest_states": ["charged", "arraigned", "released", "committed"],
                "grades": ["F1", "F2", "F3", "M1"],
                "exclude_juveniles": True,
                "include_sealed": False,
                "purposes": [
                    {"purpose": "criminal-investigation", "case_reference_required": True},
                    {"purpose": "fugitive-apprehension"},
                ],
                "limits": {
                    "exact_identifiers_only": False,
                    "name_search": True,
                    "max_results": 25,
                    "rate_per_user_per_minute": 60,
                    "rate_per_agency_per_minute": 600,
                },
            },
            "effective_at": EFFECTIVE.isoformat(),
            "expires_at": EXPIRES.isoformat(),
        }
    )
    return adopt_without_vote(
        session,
        document,
        at=EFFECTIVE,
        decided_by="demo: adopted by the District Attorney and the courts (2 of 3)",
    )


def adopt_without_vote(
    session: Session, document: AgreementDocument, *, at: datetime, decided_by: str
) -> int:
    """Create, propose and adopt an agreement through the call a quorum's decision makes.

    For synthetic sites only (the demo, benchmarks): on a real site only governance applies
    decisions, after the board's quorum has voted. Returns the agreement's id.
    """
    agreement = agreements.create_agreement(session, actor=SYSTEM, data=document, now=at)
    lifecycle.propose(session, actor=SYSTEM, agreement_id=agreement.id, now=at)
    version = agreements.current_version(session, agreement=agreement)
    lifecycle.apply_decision(
        session,
        agreement_id=agreement.id,
        content_hash=version.content_hash,
        action=LifecycleAction.ADOPT,
        effective_at=at,
        decided_by=decided_by,
    )
    return agreement.id
