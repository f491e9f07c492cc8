"""Build an agreement in force for an external agency, the way governance will activate it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.agreements import lifecycle
from openpars.agreements import service as agreements
from openpars.agreements.models import Agreement, LifecycleAction
from openpars.agreements.schemas import AgreementDocument
from openpars.identity.principal import SYSTEM
from tests.factories import World

EFFECTIVE = datetime(2025, 1, 1, tzinfo=UTC)
EXPIRES = datetime(2027, 8, 31, 4, 0, tzinfo=UTC)


def default_scope(**overrides: Any) -> dict[str, Any]:
    """An arrestees-only scope like the 2010 condition on ICE's access."""
    scope: dict[str, Any] = {
        "roles": ["arrestee"],
        "person_fields": {
            "family_name": "visible",
            "given_name": "visible",
            "birth_date": "year_only",
            "sid": "visible",
            "fbi_number": "show_last_4",
            "phone": "redact",
        },
        "arrest_fields": {
            "otn": "visible",
            "arrested_at": "visible",
            "state": "visible",
            "docket_number": "visible",
            "charges": "visible",
            "arraignment": "nullify",
        },
        "arrest_states": ["entered", "charged", "arraigned", "released", "committed"],
        "grades": ["F1", "F2", "F3", "M1", "M2", "M3"],
        "exclude_juveniles": True,
        "include_sealed": False,
        "purposes": [
            {"purpose": "criminal-investigation", "case_reference_required": True},
            {"purpose": "warrant-service"},
        ],
        "limits": {
            "exact_identifiers_only": False,
            "name_search": True,
            "max_results": 25,
            "rate_per_user_per_minute": 30,
            "rate_per_agency_per_minute": 300,
        },
    }
    scope.update(overrides)
    return scope


def activate(
    session: Session,
    world: World,
    *,
    grantee: str = "Immigration and Customs Enforcement",
    effective_at: datetime = EFFECTIVE,
    expires_at: datetime = EXPIRES,
    **document: Any,
) -> Agreement:
    """Create, propose and adopt an agreement (the governance decision, applied directly)."""
    body: dict[str, Any] = {
        "name": f"{grantee} data-use agreement",
        "grantee_agency_id": world.agencies[grantee],
        "all_units": True,
        "legal_basis": "Memorandum of understanding, renewed yearly",
        "parties": [
            world.agencies["District Attorney's Office"],
            world.agencies["First Judicial District"],
            world.agencies["City of Philadelphia"],
        ],
        "scope": default_scope(),
        "effective_at": effective_at.isoformat(),
        "expires_at": expires_at.isoformat(),
    }
    body.update(document)
    doc = AgreementDocument.model_validate(body)
    agreement = agreements.create_agreement(session, actor=SYSTEM, data=doc, now=EFFECTIVE)
    lifecycle.propose(session, actor=SYSTEM, agreement_id=agreement.id, now=EFFECTIVE)
    version = agreements.current_version(session, agreement=agreement)
    return lifecycle.apply_decision(
        session,
        agreement_id=agreement.id,
        content_hash=version.content_hash,
        action=LifecycleAction.ADOPT,
        effective_at=EFFECTIVE,
        decided_by="test: quorum DA + courts",
    )
