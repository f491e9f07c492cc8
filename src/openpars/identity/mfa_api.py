"""REST endpoints that finish a logon and keep it proved: one-time codes, MFA enrolment, the
system-use banner, re-authentication, and an administrator's MFA reset (docs/accounts.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from fastapi import APIRouter
from sqlalchemy.orm import Session

from openpars.config import Settings
from openpars.errors import Conflict
from openpars.identity import logon, mfa
from openpars.identity import mfa_crypto as crypto
from openpars.identity import repository as repo
from openpars.identity.api import user_read
from openpars.identity.mfa import Refusal
from openpars.identity.models import LogonSession
from openpars.identity.roles import Permission
from openpars.identity.schemas import (
    CodeProof,
    EnrolmentConfirm,
    EnrolmentDone,
    EnrolmentStarted,
    LogonState,
    Reauthentication,
    UserRead,
)
from openpars.ranges import RowId
from openpars.web.context import Ctx, bearer_token, logon_step, needs

router = APIRouter(tags=["sessions"])


LOGON_HINT = (
    "tokens have no one-time code, banner or re-authentication (log on with POST /api/v1/sessions)"
)


def current_logon(session: Session, ctx: Ctx, *, hint: str = LOGON_HINT) -> LogonSession:
    """The logon session this request came with; Conflict for an API token, ending with
    ``hint`` (what to do instead)."""
    secret = bearer_token(ctx.request)
    found = repo.logon_session_by_secret_hash(session, logon.hash_secret(secret))
    if found is None:
        raise Conflict(
            f"this request came with an API token, not a logon session: {hint}",
            code="not_a_session",
        )
    return found


def mfa_key(session: Session, settings: Settings) -> bytes:
    """The site's MFA key; created on first use only while no account is enrolled."""
    return crypto.load_key(settings, may_create=not mfa.any_enrolled(session))


def logon_state(session: Session, found: LogonSession, settings: Settings) -> LogonState:
    """Where a logon stands, for its user."""
    stage = logon.stage_of(found)
    window = timedelta(minutes=settings.reauthentication_minutes)
    return LogonState(
        session_id=found.id,
        user_id=found.user_id,
        username=found.user.username,
        stage=stage.value,
        next_step=logon.STAGE_HINTS.get(stage),
        banner=settings.banner_text,
        proved_at=found.proved_at,
        privileged_until=found.proved_at + window if found.proved_at else None,
        recovery_codes_left=mfa.remaining_recovery_codes(session, found.user_id),
    )


def _refused(session: Session, refusal: Refusal) -> NoReturn:
    """Keep the counted, audited failure, then refuse."""
    session.commit()
    raise refusal.error


@router.get(
    "/sessions/current",
    response_model=LogonState,
    dependencies=[logon_step()],
    responses={409: {"description": "the request came with an API token, not a logon session"}},
)
def show_current_session(ctx: Ctx) -> LogonState:
    """Where this logon stands: its next step, the banner text, until when it may act as
    privileged."""
    with ctx.unit() as (session, _principal):
        result = logon_state(session, current_logon(session, ctx), ctx.settings)
    return result


@router.post("/sessions/current/mfa", response_model=LogonState, dependencies=[logon_step()])
def verify_code(body: CodeProof, ctx: Ctx) -> LogonState:
    """The logon's second step: the authenticator's 6-digit code, or a recovery code.

    A wrong or reused code counts toward the lockout like a wrong password."""
    with ctx.unit() as (session, _principal):
        found = current_logon(session, ctx)
        refusal = mfa.verify_logon(
            session,
            logon_session=found,
            key=mfa_key(session, ctx.settings),
            code=body.code,
            recovery_code=body.recovery_code,
            source_ip=ctx.source_ip,
        )
        if refusal is not None:
            _refused(session, refusal)
        result = logon_state(session, found, ctx.settings)
    return result


@router.post(
    "/sessions/current/mfa/enrolment",
    response_model=EnrolmentStarted,
    status_code=201,
    dependencies=[logon_step()],
)
def start_enrolment(ctx: Ctx) -> EnrolmentStarted:
    """Start enrolling an authenticator: a new secret, shown once, with a QR code to scan.

    Open to a logon at its enrolment step; an enrolled user replacing the authenticator needs a
    recently re-authenticated session. The enrolment takes effect when confirmed with a code."""
    with ctx.unit() as (session, _principal):
        found = current_logon(session, ctx)
        if logon.stage_of(found) is logon.Stage.ONE_TIME_CODE:
            raise Conflict(
                "this account is enrolled: send its one-time code first "
                "(POST /api/v1/sessions/current/mfa)",
                code="logon_step_out_of_order",
            )
        started = mfa.start_enrolment(
            session,
            logon_session=found,
            key=mfa_key(session, ctx.settings),
            issuer=ctx.settings.site_name,
            reauth_window=timedelta(minutes=ctx.settings.reauthentication_minutes),
            source_ip=ctx.source_ip,
        )
        result = EnrolmentStarted(
            secret=started.secret, otpauth_uri=started.uri, qr_svg=started.qr_svg
        )
    return result


@router.post(
    "/sessions/current/mfa/enrolment/confirm",
    response_model=EnrolmentDone,
    dependencies=[logon_step()],
)
def confirm_enrolment(body: EnrolmentConfirm, ctx: Ctx) -> EnrolmentDone:
    """Confirm the new authenticator with the code it shows: ten recovery codes, shown once."""
    with ctx.unit() as (session, _principal):
        found = current_logon(session, ctx)
        outcome = mfa.confirm_enrolment(
            session,
            logon_session=found,
            key=mfa_key(session, ctx.settings),
            code=body.code,
            source_ip=ctx.source_ip,
        )
        if isinstance(outcome, Refusal):
            _refused(session, outcome)
        result = EnrolmentDone(recovery_codes=outcome, stage=logon.stage_of(found).value)
    return result


@router.post("/sessions/current/banner", response_model=LogonState, dependencies=[logon_step()])
def acknowledge_banner(ctx: Ctx) -> LogonState:
    """Acknowledge the system-use notice (CJIS AC-8): the last step of every logon."""
    with ctx.unit() as (session, _principal):
        found = current_logon(session, ctx)
        logon.acknowledge_banner(
            session, found=found, text=ctx.settings.banner_text, source_ip=ctx.source_ip
        )
        result = logon_state(session, found, ctx.settings)
    return result


@router.post("/sessions/current/reauthenticate", response_model=LogonState, dependencies=[needs()])
def reauthenticate(body: Reauthentication, ctx: Ctx) -> LogonState:
    """Prove password and one-time code again: privileged acts (votes, agreement, key and user
    changes, shreds) are allowed for the next ``OPENPARS_REAUTHENTICATION_MINUTES`` minutes."""
    with ctx.unit() as (session, _principal):
        found = current_logon(session, ctx)
        refusal = mfa.reauthenticate(
            session,
            logon_session=found,
            key=mfa_key(session, ctx.settings),
            password=body.password,
            code=body.code,
            recovery_code=body.recovery_code,
            source_ip=ctx.source_ip,
        )
        if refusal is not None:
            _refused(session, refusal)
        result = logon_state(session, found, ctx.settings)
    return result


@router.delete(
    "/users/{user_id}/mfa", response_model=UserRead, dependencies=[needs(Permission.USER_MANAGE)]
)
def reset_mfa(user_id: RowId, ctx: Ctx) -> UserRead:
    """Clear an account's MFA (a lost phone): it enrols again at its next logon, and its open
    sessions end. Only an administrator of that account (separation of duties)."""
    with ctx.unit() as (session, principal):
        user = mfa.reset(session, actor=principal, user_id=user_id)
        result = user_read(user)
    return result
