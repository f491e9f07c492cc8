"""An external agency, its reader and an adopted agreement, for the service-level figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from openpars.agreements.schemas import AgreementDocument
from openpars.demo.agreements import adopt_without_vote
from openpars.identity.models import Agency, User, UserRole
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Role

PURPOSE = "criminal-investigation"
# An arrestees-only scope like the one the FBI holds in the demo: adults, unsealed, four states,
# five grades, seven person fields of which the birth date is year-only and the FBI number last-4.
SCOPE: dict[str, Any] = {
    "roles": ["arrestee"],
    "person_fields": {
        "family_name": "visible",
        "given_name": "visible",
        "middle_name": "visible",
        "aliases": "visible",
        "birth_date": "year_only",
        "sex": "visible",
        "race": "visible",
        "sid": "visible",
        "fbi_number": "show_last_4",
    },
    "arrest_fields": {"otn": "visible", "arrested_at": "visible", "state": "visible"},
    "arrest_states": ["charged", "arraigned", "released", "committed"],
    "grades": ["F1", "F2", "F3", "M1", "M2"],
    "exclude_juveniles": True,
    "include_sealed": False,
    "purposes": [{"purpose": PURPOSE}],
    "limits": {
        "exact_identifiers_only": False,
        "name_search": True,
        "max_results": 50,
        # High enough that the benchmark's own pace never trips them; they are still checked.
        "rate_per_user_per_minute": 10_000,
        "rate_per_agency_per_minute": 100_000,
    },
}


def external_reader(engine: Engine, scope: dict[str, object]) -> Principal:
    """Create (once) a federal agency with one reader and an agreement in force for `scope`."""
    now = datetime.now(UTC)
    with Session(engine) as session:
        existing = session.query(User).filter_by(username="bench-federal").one_or_none()
        if existing is None:
            parties = [
                Agency(name=name, kind=kind)
                for name, kind in (
                    ("Bench DA", AgencyKind.DA),
                    ("Bench Courts", AgencyKind.COURT),
                    ("Bench City", AgencyKind.CITY),
                )
            ]
            federal = Agency(name="Bench Federal Partner", kind=AgencyKind.EXTERNAL)
            session.add_all([*parties, federal])
            session.flush()
            existing = User(
                username="bench-federal", display_name="Bench Federal", agency_id=federal.id
            )
            session.add(existing)
            session.flush()
            session.add(UserRole(user_id=existing.id, role=Role.EXTERNAL_QUERY))
            document = AgreementDocument.model_validate(
                {
                    "name": "Bench federal data-use agreement",
                    "grantee_agency_id": federal.id,
                    "all_units": True,
                    "legal_basis": "benchmark",
                    "parties": [p.id for p in parties],
                    "scope": scope,
                    "effective_at": (now - timedelta(days=1)).isoformat(),
                    "expires_at": (now + timedelta(days=365)).isoformat(),
                }
            )
            adopt_without_vote(session, document, at=now, decided_by="benchmark")
            session.commit()
        agency_id = existing.agency_id
        user_id = existing.id
    return Principal(
        user_id=user_id,
        username="bench-federal",
        agency_id=agency_id,
        agency_kind=AgencyKind.EXTERNAL,
        roles=frozenset({Role.EXTERNAL_QUERY}),
        agency_path=(agency_id,),
    )
