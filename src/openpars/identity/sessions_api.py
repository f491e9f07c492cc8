"""REST endpoints for logon, logoff, sessions and unlocking accounts (docs/accounts.md)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.service import append
from openpars.errors import InvalidInput, NotAuthenticated, NotFound
from openpars.identity import duties, logon
from openpars.identity import repository as repo
from openpars.identity.api import account_event, user_read
from openpars.identity.mfa_api import current_logon
from openpars.identity.models import User
from openpars.identity.roles import Permission
from openpars.identity.schemas import (
    LogonRequest,
    SessionOpened,
    SessionRead,
    SessionsEnded,
    UserRead,
)
from openpars.pages import Page
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx, logon_step, needs, public, source_ip

router = APIRouter(tags=["sessions"])


def set_session_cookie(response: Response, secret: str) -> None:
    """The logon session's cookie: Secure, HttpOnly, SameSite=Strict, for the session's life."""
    response.set_cookie(
        logon.COOKIE_NAME,
        secret,
        max_age=int(logon.ABSOLUTE_LIMIT.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response) -> None:
    """Tell the browser to forget the logon session's cookie."""
    response.delete_cookie(
        logon.COOKIE_NAME, path="/", secure=True, httponly=True, samesite="strict"
    )


def _failed(
    session: Session,
    user: User | None,
    *,
    username: str,
    source_ip: str | None,
    reason: str | None,
    error_code: str,
) -> None:
    append(
        session,
        AuditEvent(
            kind=AuditKind.LOGIN_FAILED,
            action="logon.failed",
            outcome=Outcome.REFUSED,
            user_id=user.id if user else None,
            username=user.username if user else None,
            agency_id=user.agency_id if user else None,
            source_ip=source_ip,
            params={"username": username[:100], "reason": reason},
            error_code=error_code,
        ),
    )


def audit_refused_replacement(
    session: Session, refused: InvalidInput, *, username: str, source_ip: str | None
) -> None:
    """The failed logon of a right password whose required replacement (an administrator
    reset it) was missing or refused: no session opened, no failure counted towards the lock.
    The password was right, so the entry names the account and the rule (``refused.code``);
    a stranger without the password cannot write it. Call after rolling the logon back."""
    user = repo.get_user_by_username(session, username)
    _failed(session, user, username=username, source_ip=source_ip, reason=refused.code,
            error_code=refused.code)  # fmt: skip


def audit_logon_failure(
    session: Session, outcome: logon.LogonOutcome, *, username: str, source_ip: str | None
) -> None:
    """The audit entries of a refused logon: the failure, and the lock it caused if any."""
    user = outcome.user
    _failed(session, user, username=username, source_ip=source_ip, reason=outcome.failure,
            error_code="logon_failed")  # fmt: skip
    if outcome.locked_now and user is not None:
        append(
            session,
            AuditEvent(
                kind=AuditKind.ACCOUNT,
                action="account.lock",
                user_id=user.id,
                username=user.username,
                agency_id=user.agency_id,
                source_ip=source_ip,
                params={"failed_logons": user.failed_logons},
            ),
        )


def audit_logon(session: Session, outcome: logon.LogonOutcome, *, source_ip: str | None) -> None:
    """The audit entry of a logon that opened a session."""
    user, opened = outcome.user, outcome.logon_session
    assert user is not None
    assert opened is not None
    append(
        session,
        AuditEvent(
            kind=AuditKind.LOGIN,
            action="logon",
            user_id=user.id,
            username=user.username,
            agency_id=user.agency_id,
            source_ip=source_ip,
            params={"session_id": opened.id, "stage": logon.stage_of(opened).value},
        ),
    )


@router.post("/sessions", response_model=SessionOpened, status_code=201, dependencies=[public()])
def open_session(
    body: LogonRequest, request: Request, response: Response, ctx: Ctx
) -> SessionOpened:
    """Log on with a username and password: a session, as a cookie and as a bearer token.

    The session is pending until its logon is finished: the one-time code (or, for an account
    not enrolled yet, the MFA enrolment), then the system-use banner; ``stage`` names the next
    step. Until then it may only finish the logon (or log off). A failure answers the same
    for an unknown user, a wrong password and a locked or disabled account. Five failures
    within 15 minutes lock the account until an administrator unlocks it.
    """
    ip = source_ip(request)
    with ctx.anonymous_unit() as session:
        try:
            outcome = logon.logon(
                session,
                username=body.username,
                password=body.password,
                new_password=body.new_password,
                source_ip=ip,
                user_agent=request.headers.get("user-agent"),
                min_length=ctx.settings.password_min_length,
            )
        except InvalidInput as refused:
            # A public route's refusals are not audited (web/errors.py); this one follows a
            # right password, so it is, as a failed logon.
            session.rollback()
            audit_refused_replacement(session, refused, username=body.username, source_ip=ip)
            session.commit()
            raise
        user = outcome.user
        if outcome.failure is not None:
            audit_logon_failure(session, outcome, username=body.username, source_ip=ip)
            session.commit()
            raise NotAuthenticated(logon.FAILED_MESSAGE, code="logon_failed")
        opened, secret = outcome.logon_session, outcome.secret
        assert user is not None
        assert opened is not None
        assert secret is not None
        audit_logon(session, outcome, source_ip=ip)
        result = SessionOpened(
            **SessionRead.model_validate(opened).model_dump(),
            token=secret,
            stage=logon.stage_of(opened).value,
            banner=ctx.settings.banner_text,
        )
    set_session_cookie(response, secret)
    return result


@router.delete("/sessions/current", response_model=SessionRead, dependencies=[logon_step()])
def end_current_session(response: Response, ctx: Ctx) -> SessionRead:
    """Log off: end the session this request came with (the cookie or bearer)."""
    with ctx.unit() as (session, principal):
        found = current_logon(session, ctx, hint="revoke tokens with DELETE /api/v1/tokens/{id}")
        logon.end_session(session, actor=principal, session_id=found.id, reason="logoff")
        append(session, account_event(principal, "session.end", session_id=found.id))
        result = SessionRead.model_validate(found)
    clear_session_cookie(response)
    return result


@router.delete(
    "/sessions/others",
    response_model=SessionsEnded,
    dependencies=[needs()],
    responses={409: {"description": "the request came with an API token, not a logon session"}},
)
def end_other_sessions(ctx: Ctx) -> SessionsEnded:
    """End every other open session of yours (a browser left logged on elsewhere), keeping
    the one this request came with."""
    with ctx.unit() as (session, principal):
        found = current_logon(session, ctx, hint="there is no current session to keep; end "
                              "sessions one by one with DELETE /api/v1/sessions/{id}")  # fmt: skip
        ended = logon.end_all_sessions(
            session, user_id=found.user_id, reason="ended_by_owner", except_id=found.id
        )
        append(session, account_event(principal, "session.end_others", sessions_ended=ended))
    return SessionsEnded(ended=ended)


@router.delete("/sessions/{session_id}", response_model=SessionRead, dependencies=[needs()])
def end_session(session_id: RowId, ctx: Ctx) -> SessionRead:
    """End a session at once: your own, or any of an account you administer."""
    with ctx.unit() as (session, principal):
        found = logon.end_session(session, actor=principal, session_id=session_id)
        append(session, account_event(principal, "session.end", session_id=session_id))
        result = SessionRead.model_validate(found)
    return result


@router.get("/users/{user_id}/sessions", response_model=Page[SessionRead], dependencies=[needs()])
def list_sessions(
    user_id: RowId, ctx: Ctx, offset: Offset = 0, limit: int = Query(50, ge=1, le=500)
) -> Page[SessionRead]:
    """A user's sessions, newest first: your own, or those of an account you administer."""
    with ctx.unit() as (session, principal):
        if principal.user_id != user_id:
            principal.require(Permission.USER_MANAGE)
            user = repo.get_user(session, user_id)
            if user is None:
                raise NotFound(f"user {user_id} does not exist", field="user_id")
            duties.require_account_authority(session, principal, user.agency, user.roles)
        rows = repo.list_logon_sessions(session, user_id=user_id, offset=offset, limit=limit)
        total = repo.count_logon_sessions(session, user_id=user_id)
        items = [SessionRead.model_validate(row) for row in rows]
        append(session, account_event(principal, "session.list", user_id=user_id))
    return Page[SessionRead](items=items, total=total, offset=offset, limit=limit)


@router.post(
    "/users/{user_id}/unlock", response_model=UserRead, dependencies=[needs(Permission.USER_MANAGE)]
)
def unlock_user(user_id: RowId, ctx: Ctx) -> UserRead:
    """Release an account locked after failed logons (an administrator of that account)."""
    with ctx.unit() as (session, principal):
        user = logon.unlock(session, actor=principal, user_id=user_id)
        append(session, account_event(principal, "account.unlock", user_id=user.id))
        result = user_read(user)
    return result
