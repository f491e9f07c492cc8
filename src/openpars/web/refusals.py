"""The one audit path of a refused request, for the error handlers and the pages alike.

A refusal raised out of a route is audited by the app's error handlers (web/errors.py); a
refusal a page catches to show beside a form's field (a stale form, a service's rule) is audited
here too, with the same entry, so no refusal goes unrecorded because a page chose to show it
in its form rather than as an error page.
"""

from __future__ import annotations

import logging

from fastapi import Request

from openpars.access.enforcement import count_refused
from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.service import append
from openpars.db import Database, utcnow
from openpars.errors import DomainError, NotAuthenticated
from openpars.identity.principal import Principal

log = logging.getLogger("openpars.web")


def record_refusal(request: Request, exc: DomainError) -> int | None:
    """Audit a refused request in its own transaction (the request's own was rolled back);
    the entry's id, or None if it could not be written (reported loudly, the refusal still goes
    out)."""
    db: Database = request.app.state.db
    principal: Principal | None = getattr(request.state, "principal", None)
    kind = AuditKind.LOGIN_FAILED if isinstance(exc, NotAuthenticated) else AuditKind.REFUSED
    event = AuditEvent(
        kind=kind,
        action=f"{request.method} {request.url.path}",
        outcome=Outcome.REFUSED,
        user_id=principal.user_id if principal else None,
        username=principal.username if principal else None,
        agency_id=principal.agency_id if principal else None,
        source_ip=request.client.host if request.client else None,
        params={"query": dict(request.query_params), "status": exc.status},
        error_code=exc.code,
    )
    try:
        with db.session() as session:
            entry_id = append(session, event).id
            if principal is not None:
                count_refused(session, principal, at=utcnow())
            return entry_id
    except Exception:
        log.exception("could not write the audit entry of a refused request (%s)", exc.code)
        return None


def record_service_refusal(
    request: Request, refused: DomainError, form_errors: dict[str, str]
) -> int | None:
    """Audit a refusal a page shows in its form, unless it is the page's own "the form has
    errors" for fields its schema refused before any service ran (``form_errors``): a typing
    mistake, which the API's 422 for a body that does not validate does not audit either."""
    if form_errors:
        return None
    return record_refusal(request, refused)
