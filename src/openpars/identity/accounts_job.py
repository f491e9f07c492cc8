"""The accounts' share of the governance ticker: disable accounts unused for 90 days."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.governance.schemas import GovernanceEvent
from openpars.identity import logon
from openpars.identity.principal import SYSTEM


def disable_dormant_accounts(session: Session, *, now: datetime) -> list[GovernanceEvent]:
    """Disable dormant accounts; one audit entry naming them when any were (none otherwise)."""
    disabled = logon.disable_dormant(session, now=now)
    if not disabled:
        return []
    append(
        session,
        AuditEvent(
            kind=AuditKind.ACCOUNT,
            action="account.disable.dormant",
            user_id=SYSTEM.user_id,
            username=SYSTEM.username,
            params={
                "now": now.isoformat(),
                "users": [{"id": u.id, "username": u.username} for u in disabled],
                "unused_days": logon.DORMANT_AFTER.days,
            },
        ),
    )
    return [
        GovernanceEvent(
            kind="account.disabled",
            at=now,
            agreement_id=None,
            detail=f"{user.username} unused for {logon.DORMANT_AFTER.days} days",
        )
        for user in disabled
    ]
