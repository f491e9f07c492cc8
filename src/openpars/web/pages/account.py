"""The signed-in person's own account: their logon sessions, listed and ended (docs/web.md,
"Your sessions"; linked from the header, beside the user's name).

The same services as ``GET /api/v1/users/{own id}/sessions``, ``DELETE /api/v1/sessions/{id}``
and ``DELETE /api/v1/sessions/others``, with the same audit entries. Only one's own sessions
are shown or ended here, whatever one's permissions: an administrator ends another account's
sessions from that account's page.
"""

from __future__ import annotations

from fastapi.responses import HTMLResponse, RedirectResponse, Response

from openpars.audit.service import append
from openpars.identity import logon
from openpars.identity import repository as repo
from openpars.identity.api import account_event
from openpars.identity.schemas import SessionRead
from openpars.identity.sessions_api import clear_session_cookie
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx
from openpars.web.pages.core import (
    area_router,
    current_logon_session,
    login_url,
    page,
    render,
)

router = area_router()

PAGE_SIZE = 20
DONE: dict[str, str] = {
    "ended": "The session was ended; that browser is logged out at its next request.",
    "others": "Every other session of yours was ended; this one stays open.",
}


@router.get("/account/sessions", response_class=HTMLResponse, dependencies=[page()])
def sessions(ctx: Ctx, offset: Offset = 0, done: str | None = None) -> HTMLResponse:
    """Your sessions, newest first: started, last used, from where, how far the logon went."""
    with ctx.unit() as (session, principal):
        assert principal.user_id is not None
        current = current_logon_session(session, ctx.request)
        rows = repo.list_logon_sessions(
            session, user_id=principal.user_id, offset=offset, limit=PAGE_SIZE
        )
        shown = [
            {"session": SessionRead.model_validate(row), "stage": logon.stage_of(row).value}
            for row in rows
        ]
        total = repo.count_logon_sessions(session, user_id=principal.user_id)
        append(
            session,
            account_event(principal, "session.list", user_id=principal.user_id, offset=offset),
        )
        current_id = current.id
    return render(
        ctx.request,
        "account/sessions.html",
        {
            "sessions": shown,
            "current_id": current_id,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "total": total,
            "done": DONE.get(done or ""),
        },
    )


@router.post(
    "/account/sessions/{session_id}/end", response_class=HTMLResponse, dependencies=[page()]
)
def end_one(session_id: RowId, ctx: Ctx) -> Response:
    """End one of your sessions; another's answers 404 like a missing one (audited)."""
    with ctx.unit() as (session, principal):
        current_id = current_logon_session(session, ctx.request).id
        logon.end_own_session(session, actor=principal, session_id=session_id)
        append(session, account_event(principal, "session.end", session_id=session_id))
    if session_id == current_id:
        # Ending the session one is using is logging off.
        response = RedirectResponse(login_url(reason="logged_out"), status_code=303)
        clear_session_cookie(response)
        return response
    return RedirectResponse("/account/sessions?done=ended", status_code=303)


@router.post("/account/sessions/end-others", response_class=HTMLResponse, dependencies=[page()])
def end_others(ctx: Ctx) -> Response:
    """End every other open session of yours, keeping this one."""
    with ctx.unit() as (session, principal):
        keep = current_logon_session(session, ctx.request)
        ended = logon.end_all_sessions(
            session, user_id=keep.user_id, reason="ended_by_owner", except_id=keep.id
        )
        append(session, account_event(principal, "session.end_others", sessions_ended=ended))
    return RedirectResponse("/account/sessions?done=others", status_code=303)
