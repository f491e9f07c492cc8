"""Key notices: every other stakeholder is told when a stakeholder registers or revokes a key.

The same channel as renewal notices: a row per stakeholder told, listed newest first, each read
audited. The rows are append-only (in code and in the database), so a notice cannot be withdrawn.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.audit.events import AuditKind, event_by
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.governance.models import KeyNotice, StakeholderKey
from openpars.governance.schemas import KeyNoticeRead
from openpars.identity import duties
from openpars.identity.principal import Principal
from openpars.pages import Page, count_of


def notify_others(session: Session, *, key: StakeholderKey, action: str, actor: Principal) -> None:
    """One notice to each stakeholder other than the key's own, in the act's transaction."""
    at = utcnow()
    for stakeholder in sorted(duties.stakeholder_ids(session) - {key.agency_id}):
        session.add(
            KeyNotice(
                stakeholder_id=stakeholder,
                key_id=key.id,
                key_stakeholder_id=key.agency_id,
                action=action,
                fingerprint=key.fingerprint,
                opened_at=at,
                opened_by=actor.username,
            )
        )
    session.flush()


def list_key_notices(
    session: Session, *, actor: Principal, stakeholder_id: int | None, offset: int, limit: int
) -> Page[KeyNoticeRead]:
    """A page of key notices newest first, optionally for one stakeholder, audited as one
    read."""
    # Imported here: board imports this module to send notices.
    from openpars.governance.board import require_reader

    require_reader(actor)
    query = select(KeyNotice).order_by(KeyNotice.id.desc())
    if stakeholder_id is not None:
        query = query.where(KeyNotice.stakeholder_id == stakeholder_id)
    rows = session.scalars(query.offset(offset).limit(limit)).all()
    total = count_of(session, query)
    result = [KeyNoticeRead.model_validate(n) for n in rows]
    append(
        session,
        event_by(
            actor,
            kind=AuditKind.KEY,
            action="key_notice.list",
            params={"stakeholder": stakeholder_id, "returned": [n.id for n in result]},
        ),
    )
    return Page[KeyNoticeRead](items=result, total=total, offset=offset, limit=limit)
