"""The logon's steps after the password, as pages: the one-time code (or enrolling an
authenticator), the system-use banner, and re-authentication before a privileged act
(docs/accounts.md). Each calls the same services as the API (identity/mfa.py, identity/logon.py),
which also enforce the order: a session still at a step can reach nothing but these pages.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, NoReturn

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from openpars.errors import Conflict
from openpars.identity import logon, mfa
from openpars.identity.mfa import Enrolment, Refusal
from openpars.identity.mfa_api import mfa_key
from openpars.identity.models import LogonSession
from openpars.text import Line
from openpars.web.context import Ctx
from openpars.web.pages.core import (
    area_router,
    current_logon_session,
    logon_page,
    page,
    render,
    safe_next,
)

router = area_router()

FormText = Annotated[Line, Form(max_length=1000)]
CODE_ERROR = (
    "That code is not right, or was already used. Type the 6 digits your authenticator shows "
    "now (or one recovery code). After 5 failed attempts in 15 minutes the account is locked."
)
STEP_PAGES = {
    logon.Stage.ONE_TIME_CODE: "/login/code",
    logon.Stage.MFA_ENROLMENT: "/login/enrol",
    logon.Stage.BANNER: "/login/banner",
}


def with_next(path: str, next_path: str) -> str:
    """A step's address carrying where the user was headed."""
    target = safe_next(next_path)
    return path if target == "/" else f"{path}?next={target}"


def step_target(found: LogonSession, next_path: str) -> str:
    """Where the logon goes now: its next step's page, or where the user was headed."""
    stage = logon.stage_of(found)
    if stage is logon.Stage.ACTIVE:
        return safe_next(next_path)
    return with_next(STEP_PAGES[stage], next_path)


def _keep_and_show(session: Session, refusal: Refusal | None) -> bool:
    """Commit a counted, audited failure; whether there was one."""
    if refusal is None:
        return False
    session.commit()
    return True


def _out_of_order(found: LogonSession, next_path: str) -> NoReturn:
    raise Conflict(
        f"this step is not the logon's next one; go to {step_target(found, next_path)}",
        code="logon_step_out_of_order",
    )


@router.get("/login/next", dependencies=[logon_page()])
def login_next(ctx: Ctx, next: str = "/") -> RedirectResponse:
    """The logon's step dispatcher: code or enrolment, then banner, then where the user was."""
    with ctx.unit() as (session, _principal):
        target = step_target(current_logon_session(session, ctx.request), next)
    return RedirectResponse(target, status_code=303)


def _code_page(request: Request, next_path: str, error: str | None, status: int) -> HTMLResponse:
    return render(
        request,
        "login_code.html",
        {"next": safe_next(next_path), "errors": {"code": error} if error else {}},
        status_code=status,
    )


@router.get("/login/code", response_class=HTMLResponse, dependencies=[logon_page()])
def code_form(ctx: Ctx, next: str = "/") -> Response:
    """Ask for the one-time code."""
    with ctx.unit() as (session, _principal):
        found = current_logon_session(session, ctx.request)
        if logon.stage_of(found) is not logon.Stage.ONE_TIME_CODE:
            return RedirectResponse(step_target(found, next), status_code=303)
    return _code_page(ctx.request, next, None, 200)


@router.post("/login/code", response_class=HTMLResponse, dependencies=[logon_page()])
def code_submit(
    ctx: Ctx, code: FormText = "", recovery_code: FormText = "", next: FormText = "/"
) -> Response:
    """Check the one-time code (or a recovery code); a wrong one counts toward the lockout."""
    typed, recovery = code.strip(), recovery_code.strip()
    if bool(typed) == bool(recovery) or (typed and not (typed.isdigit() and len(typed) == 6)):
        return _code_page(
            ctx.request,
            next,
            "Type the 6 digits your authenticator shows, or one recovery code (not both).",
            422,
        )
    with ctx.unit() as (session, _principal):
        found = current_logon_session(session, ctx.request)
        if logon.stage_of(found) is not logon.Stage.ONE_TIME_CODE:
            _out_of_order(found, next)
        refusal = mfa.verify_logon(
            session,
            logon_session=found,
            key=mfa_key(session, ctx.settings),
            code=typed or None,
            recovery_code=recovery or None,
            source_ip=ctx.source_ip,
        )
        if _keep_and_show(session, refusal):
            return _code_page(ctx.request, next, CODE_ERROR, 401)
        target = step_target(found, next)
    return RedirectResponse(target, status_code=303)


def _enrol_page(
    request: Request, enrolment: Enrolment | None, next_path: str, error: str | None, status: int
) -> HTMLResponse:
    return render(
        request,
        "login_enrol.html",
        {
            "enrolment": enrolment,
            "next": safe_next(next_path),
            "errors": {"code": error} if error else {},
        },
        status_code=status,
    )


@router.get("/login/enrol", response_class=HTMLResponse, dependencies=[logon_page()])
def enrol_form(ctx: Ctx, next: str = "/") -> Response:
    """Explain the enrolment; show the QR code again if one was started."""
    with ctx.unit() as (session, _principal):
        found = current_logon_session(session, ctx.request)
        if logon.stage_of(found) is not logon.Stage.MFA_ENROLMENT:
            return RedirectResponse(step_target(found, next), status_code=303)
        started = mfa.pending_enrolment(
            found.user, key=mfa_key(session, ctx.settings), issuer=ctx.settings.site_name
        )
    return _enrol_page(ctx.request, started, next, None, 200)


@router.post("/login/enrol", response_class=HTMLResponse, dependencies=[logon_page()])
def enrol_start(ctx: Ctx, next: FormText = "/") -> Response:
    """Generate the authenticator's secret: its QR code, shown with the form for the first code."""
    with ctx.unit() as (session, _principal):
        found = current_logon_session(session, ctx.request)
        if logon.stage_of(found) is not logon.Stage.MFA_ENROLMENT:
            _out_of_order(found, next)
        started = mfa.start_enrolment(
            session,
            logon_session=found,
            key=mfa_key(session, ctx.settings),
            issuer=ctx.settings.site_name,
            reauth_window=timedelta(minutes=ctx.settings.reauthentication_minutes),
            source_ip=ctx.source_ip,
        )
    return _enrol_page(ctx.request, started, next, None, 200)


@router.post("/login/enrol/confirm", response_class=HTMLResponse, dependencies=[logon_page()])
def enrol_confirm(ctx: Ctx, code: FormText = "", next: FormText = "/") -> Response:
    """Confirm the authenticator with its first code: the recovery codes, shown once."""
    typed = code.strip()
    with ctx.unit() as (session, _principal):
        found = current_logon_session(session, ctx.request)
        if logon.stage_of(found) is not logon.Stage.MFA_ENROLMENT:
            _out_of_order(found, next)
        key = mfa_key(session, ctx.settings)
        outcome: list[str] | Refusal | None = None
        if typed.isdigit() and len(typed) == 6:
            outcome = mfa.confirm_enrolment(
                session, logon_session=found, key=key, code=typed, source_ip=ctx.source_ip
            )
        if outcome is None or isinstance(outcome, Refusal):
            _keep_and_show(session, outcome if isinstance(outcome, Refusal) else None)
            again = mfa.pending_enrolment(found.user, key=key, issuer=ctx.settings.site_name)
            message = CODE_ERROR if outcome else "Type the 6 digits your authenticator shows."
            return _enrol_page(ctx.request, again, next, message, 401 if outcome else 422)
        target = step_target(found, next)
    return render(ctx.request, "login_recovery.html", {"codes": outcome, "target": target})


@router.get("/login/banner", response_class=HTMLResponse, dependencies=[logon_page()])
def banner_form(ctx: Ctx, next: str = "/") -> Response:
    """The system-use notice, to acknowledge."""
    with ctx.unit() as (session, _principal):
        found = current_logon_session(session, ctx.request)
        if logon.stage_of(found) is not logon.Stage.BANNER:
            return RedirectResponse(step_target(found, next), status_code=303)
    return render(
        ctx.request,
        "login_banner.html",
        {"banner": ctx.settings.banner_text, "next": safe_next(next)},
    )


@router.post("/login/banner", dependencies=[logon_page()])
def banner_submit(ctx: Ctx, next: FormText = "/") -> RedirectResponse:
    """Record the acknowledgement (audited with the text's SHA-256); on to the application."""
    with ctx.unit() as (session, _principal):
        found = current_logon_session(session, ctx.request)
        logon.acknowledge_banner(
            session, found=found, text=ctx.settings.banner_text, source_ip=ctx.source_ip
        )
        target = step_target(found, next)
    return RedirectResponse(target, status_code=303)


@router.get("/reauthenticate", response_class=HTMLResponse, dependencies=[page()])
def reauthenticate_form(request: Request, next: str = "/") -> HTMLResponse:
    """Ask for the password and code again before a privileged act."""
    return render(request, "reauthenticate.html", {"next": safe_next(next)})


@router.post("/reauthenticate", response_class=HTMLResponse, dependencies=[page()])
def reauthenticate_submit(
    ctx: Ctx,
    password: FormText = "",
    code: FormText = "",
    recovery_code: FormText = "",
    next: FormText = "/",
) -> Response:
    """Prove password and code again; privileged acts are allowed for the next few minutes."""
    typed, recovery = code.strip(), recovery_code.strip()
    if not password or bool(typed) == bool(recovery):
        errors = {"password": "Enter your password."} if not password else {}
        if bool(typed) == bool(recovery):
            errors["code"] = "Type the 6 digits your authenticator shows, or one recovery code."
        return render(
            ctx.request,
            "reauthenticate.html",
            {"next": safe_next(next), "errors": errors},
            status_code=422,
        )
    with ctx.unit() as (session, _principal):
        found = current_logon_session(session, ctx.request)
        refusal = mfa.reauthenticate(
            session,
            logon_session=found,
            key=mfa_key(session, ctx.settings),
            password=password,
            code=typed or None,
            recovery_code=recovery or None,
            source_ip=ctx.source_ip,
        )
        if _keep_and_show(session, refusal):
            return render(
                ctx.request,
                "reauthenticate.html",
                {
                    "next": safe_next(next),
                    "errors": {"code": "The password or the code is not right. " + CODE_ERROR},
                },
                status_code=401,
            )
    return RedirectResponse(safe_next(next), status_code=303)
