"""Logging in and out of the web application (docs/web.md, docs/accounts.md).

``POST /login`` checks the password with the logon service (lockout after 5 failures, each
failure and lock audited as the API audits them) and sets the same session cookie as
``POST /api/v1/sessions``; it then sends the browser to ``/login/next``, the dispatcher of the
logon's further steps (the one-time code or the enrolment, then the banner:
``pages/logon_steps.py``). Logging out is open to a logon not yet finished.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from openpars.audit.service import append
from openpars.errors import InvalidInput
from openpars.identity import logon
from openpars.identity.api import account_event
from openpars.identity.sessions_api import (
    audit_logon,
    audit_logon_failure,
    audit_refused_replacement,
    clear_session_cookie,
    set_session_cookie,
)
from openpars.text import Line
from openpars.web.context import Ctx, source_ip
from openpars.web.pages.core import (
    LOGIN_CSRF_COOKIE,
    area_router,
    check_csrf,
    current_logon_session,
    login_url,
    logon_page,
    new_login_csrf,
    render,
    safe_next,
)

router = area_router()

# Why the visitor was sent to the login page, by the refusal's code; never the raw text.
REASONS: dict[str, str] = {
    "token_missing": "Log in to continue.",
    "session_invalid": "Your session is not recognised. Log in again.",
    "session_ended": "Your session was ended. Log in again.",
    "session_expired": "Your session is 12 hours old and has ended. Log in again.",
    "session_idle": "Your session was locked after 30 minutes without activity. Log in again.",
    "account_disabled": "Your account is disabled or locked. Ask an administrator.",
    "logged_out": "You have logged out.",
}

# The logon service's words written for the API, as the login page says them.
PAGE_WORDS: dict[str, str] = {
    "password_change_required": (
        "An administrator reset your password: enter it above and choose a new one here."
    ),
}

FormText = Annotated[Line, Form(max_length=1000)]


def _login_page(
    request: Request,
    *,
    next_path: str,
    status_code: int = 200,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    username: str = "",
    ask_new_password: bool = False,
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    reason = request.query_params.get("reason", "")
    response = render(
        request,
        "login.html",
        {
            "csrf_token": token,
            "next": safe_next(next_path),
            "notice": REASONS.get(reason),
            "message": message,
            "errors": errors or {},
            "values": {"username": username},
            "ask_new_password": ask_new_password,
        },
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, path="/login", secure=True, httponly=True, samesite="strict"
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    """The login form."""
    return _login_page(request, next_path=next)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    ctx: Ctx,
    username: FormText = "",
    password: FormText = "",
    new_password: FormText = "",
    next: FormText = "/",
    csrf_token: FormText = "",
) -> Response:
    """Check the password; open a logon session and go to the logon's next step."""
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token)
    errors = {}
    if not username.strip():
        errors["username"] = "Enter your username."
    if not password:
        errors["password"] = "Enter your password."  # noqa: S105 - a message
    if errors:
        return _login_page(
            request, next_path=next, status_code=422, errors=errors, username=username
        )
    ip = source_ip(request)
    with ctx.anonymous_unit() as session:
        try:
            outcome = logon.logon(
                session,
                username=username.strip(),
                password=password,
                new_password=new_password or None,
                source_ip=ip,
                user_agent=request.headers.get("user-agent"),
                min_length=ctx.settings.password_min_length,
            )
        except InvalidInput as refused:
            # The password was right; the replacement an administrator's reset requires was
            # missing or refused (policy, reuse): a failed logon, audited as the API does.
            session.rollback()
            audit_refused_replacement(session, refused, username=username.strip(), source_ip=ip)
            session.commit()
            return _login_page(
                request,
                next_path=next,
                status_code=422,
                errors={refused.field or "password": PAGE_WORDS.get(refused.code, refused.message)},
                username=username,
                ask_new_password=True,
            )
        if outcome.failure is not None:
            audit_logon_failure(session, outcome, username=username, source_ip=ip)
            session.commit()
            return _login_page(
                request,
                next_path=next,
                status_code=401,
                message=logon.FAILED_MESSAGE,
                username=username,
            )
        audit_logon(session, outcome, source_ip=ip)
        secret = outcome.secret
    assert secret is not None
    response = RedirectResponse(
        "/login/next?next=" + safe_next(next) if safe_next(next) != "/" else "/login/next",
        status_code=303,
    )
    set_session_cookie(response, secret)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login", secure=True, httponly=True)
    return response


@router.post("/logout", dependencies=[logon_page()])
def logout(ctx: Ctx) -> RedirectResponse:
    """End this logon session; back to the login page."""
    with ctx.unit() as (session, principal):
        found = current_logon_session(session, ctx.request)
        logon.end_session(session, actor=principal, session_id=found.id, reason="logoff")
        append(session, account_event(principal, "session.end", session_id=found.id))
    response = RedirectResponse(login_url(reason="logged_out"), status_code=303)
    clear_session_cookie(response)
    return response
