"""Interactive logon: password check, lockout, server-side sessions. Services flush only.

CJIS v5.9.5: lock after 5 failed logons within 15 minutes until an administrator releases it
(AC-7); lock a session idle for 30 minutes (AC-11); re-authenticate after 12 hours (IA-11).
A failed logon answers the same whether the user is unknown, the password wrong, or the account
locked or disabled, and costs the same time (a dummy hash is checked for an unknown user).
A failure must be recorded even though the caller is refused, so ``logon`` returns the outcome
instead of raising: the caller commits it, then refuses.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from openpars.identity import duties, passwords
from openpars.identity import repository as repo
from openpars.identity.models import ApiToken, LogonSession, User
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission

SESSION_PREFIX = "ops_"
COOKIE_NAME = "openpars_session"
MAX_FAILED_LOGONS = 5
FAILED_LOGON_WINDOW = timedelta(minutes=15)
IDLE_LIMIT = timedelta(minutes=30)
ABSOLUTE_LIMIT = timedelta(hours=12)
DORMANT_AFTER = timedelta(days=90)
# A logon whose password was right has this long to finish its one-time code and banner steps.
PENDING_LIMIT = timedelta(minutes=10)


class Stage(StrEnum):
    """Where a logon session stands: only ``active`` may do anything but finish the logon."""

    ONE_TIME_CODE = "one_time_code"
    MFA_ENROLMENT = "mfa_enrolment"
    BANNER = "banner"
    ACTIVE = "active"


STAGE_HINTS = {
    Stage.ONE_TIME_CODE: "send the one-time code: POST /api/v1/sessions/current/mfa",
    Stage.MFA_ENROLMENT: (
        "enrol an authenticator first: POST /api/v1/sessions/current/mfa/enrolment, then "
        "confirm it with a code"
    ),
    Stage.BANNER: "acknowledge the system-use notice: POST /api/v1/sessions/current/banner",
}

FAILED_MESSAGE = (
    "logon refused: the username or password is not right, or the account is locked or "
    "disabled (after 5 failed logons an administrator must release it)"
)


def banner_digest(text: str) -> str:
    """SHA-256 of the banner's text, kept with each acknowledgement: which notice was shown."""
    return hashlib.sha256(text.encode()).hexdigest()


def hash_secret(secret: str) -> str:
    """SHA-256 of a session secret (256 random bits: no slow hash needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LogonOutcome:
    """What a logon attempt did. ``failure`` None: ``logon_session`` and ``secret`` are set."""

    user: User | None
    failure: str | None = None
    locked_now: bool = False
    logon_session: LogonSession | None = None
    secret: str | None = None


def logon(
    session: Session,
    *,
    username: str,
    password: str,
    new_password: str | None = None,
    source_ip: str | None,
    user_agent: str | None,
    min_length: int = passwords.DEFAULT_MIN_LENGTH,
    now: datetime | None = None,
) -> LogonOutcome:
    """Check a username and password; open a session, or count the failure (and maybe lock).

    A password reset by an administrator must be replaced in the same request
    (``new_password``); without it the logon is refused with ``password_change_required``.
    """
    moment = now or utcnow()
    # Locked (PostgreSQL) so that concurrent guesses are all counted.
    user = session.scalars(
        select(User).where(User.username == username).with_for_update(of=User)
    ).one_or_none()
    if user is None or user.password_hash is None:
        passwords.burn_time(password)
        return LogonOutcome(user=user, failure="unknown_user" if user is None else "no_password")
    right = passwords.verify_password(user.password_hash, password)
    if user.locked_at is not None:
        return LogonOutcome(user=user, failure="locked")
    if not right:
        locked = count_failure(user, moment)
        session.flush()
        return LogonOutcome(user=user, failure="wrong_password", locked_now=locked)
    if not user.is_active:
        return LogonOutcome(user=user, failure="disabled")
    if user.must_change_password:
        if new_password is None:
            raise InvalidInput(
                "an administrator reset this password: send a new one as new_password to log on",
                code="password_change_required",
                field="new_password",
            )
        if passwords.verify_password(user.password_hash, new_password):
            raise InvalidInput(
                "the new password is the same as the one being replaced; choose another",
                code="password_reused",
                field="new_password",
            )
        passwords.check_policy(new_password, username=user.username, min_length=min_length)
        user.password_hash = passwords.hash_password(new_password)
        user.password_changed_at = moment
        user.must_change_password = False
    elif passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.failed_logons = 0
    user.failed_logons_since = None
    user.last_logon_at = moment
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    opened = LogonSession(
        user_id=user.id,
        secret_hash=hash_secret(secret),
        created_at=moment,
        last_seen_at=moment,
        expires_at=moment + ABSOLUTE_LIMIT,
        source_ip=source_ip,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(opened)
    session.flush()
    return LogonOutcome(user=user, logon_session=opened, secret=secret)


def count_failure(user: User, moment: datetime) -> bool:
    """Count one failed logon; lock at the limit. Whether the account was locked now."""
    since = user.failed_logons_since
    if since is None or moment - since > FAILED_LOGON_WINDOW:
        user.failed_logons = 1
        user.failed_logons_since = moment
    else:
        user.failed_logons += 1
    if user.failed_logons >= MAX_FAILED_LOGONS:
        user.locked_at = moment
        return True
    return False


def stage_of(found: LogonSession) -> Stage:
    """The step the logon has reached: code (or enrolment), then banner, then active."""
    if found.mfa_at is None:
        enrolled = found.user.mfa_enrolled_at is not None
        return Stage.ONE_TIME_CODE if enrolled else Stage.MFA_ENROLMENT
    if found.banner_at is None:
        return Stage.BANNER
    return Stage.ACTIVE


def require_fresh_session(found: LogonSession, *, window: timedelta, now: datetime) -> None:
    """Refuse unless password and code were proved in this session within ``window``."""
    if found.proved_at is None or now - found.proved_at > window:
        minutes = int(window.total_seconds() // 60)
        raise NotAuthenticated(
            f"this act needs your password and one-time code proved within the last {minutes} "
            "minutes: re-authenticate (POST /api/v1/sessions/current/reauthenticate), then "
            "try again",
            code="reauthentication_required",
        )


def acknowledge_banner(
    session: Session,
    *,
    found: LogonSession,
    text: str,
    source_ip: str | None,
    now: datetime | None = None,
) -> None:
    """Record that the session's user acknowledged the system-use notice (CJIS AC-8): on the
    session, and in an audit entry carrying the SHA-256 of the text shown."""
    stage = stage_of(found)
    if stage is not Stage.BANNER:
        raise Conflict(
            f"the banner is acknowledged after the one-time code; this logon is at '{stage}'"
            + (f": {STAGE_HINTS[stage]}" if stage in STAGE_HINTS else ""),
            code="logon_step_out_of_order",
        )
    found.banner_at = now or utcnow()
    user = found.user
    append(
        session,
        AuditEvent(
            kind=AuditKind.LOGIN,
            action="logon.banner",
            user_id=user.id,
            username=user.username,
            agency_id=user.agency_id,
            source_ip=source_ip,
            params={"session_id": found.id, "banner_sha256": banner_digest(text)},
        ),
    )
    session.flush()


def end_all_sessions(
    session: Session,
    *,
    user_id: int,
    reason: str,
    now: datetime | None = None,
    except_id: int | None = None,
) -> int:
    """End every open session of an account at once but ``except_id`` (the one asking, when
    the owner ends their other sessions); how many were ended."""
    query = select(LogonSession).where(
        LogonSession.user_id == user_id, LogonSession.ended_at.is_(None)
    )
    if except_id is not None:
        query = query.where(LogonSession.id != except_id)
    rows = session.scalars(query).all()
    now = now or utcnow()
    for row in rows:
        row.ended_at = now
        row.end_reason = reason
    session.flush()
    return len(rows)


def authenticate_session(
    session: Session,
    secret: str,
    *,
    allow_pending: bool = False,
    now: datetime | None = None,
    touch: bool = True,
) -> tuple[LogonSession, User]:
    """The live session behind a secret, its last use moved to now; else NotAuthenticated.

    A session still at its one-time code, enrolment or banner step is refused unless
    ``allow_pending`` (the routes that finish a logon), and expires 10 minutes after the password.
    ``touch=False`` (a page's automatic refresh, not the user's doing) leaves the last use as
    it was, so a screen left open still locks after 30 minutes idle.
    """
    moment = now or utcnow()
    found = repo.logon_session_by_secret_hash(session, hash_secret(secret))
    if found is None:
        raise NotAuthenticated(
            "the session is not recognised; log on again", code="session_invalid"
        )
    if found.ended_at is not None:
        raise NotAuthenticated("the session was ended; log on again", code="session_ended")
    if moment >= found.expires_at:
        raise NotAuthenticated(
            "the session is 12 hours old; log on again to re-authenticate",
            code="session_expired",
        )
    if moment - found.last_seen_at > IDLE_LIMIT:
        raise NotAuthenticated(
            "the session was locked after 30 minutes idle; log on again", code="session_idle"
        )
    user = found.user
    if not user.is_active or user.locked_at is not None:
        raise NotAuthenticated(
            f"the account {user.username} is disabled or locked", code="account_disabled"
        )
    stage = stage_of(found)
    if stage is not Stage.ACTIVE:
        if moment - found.created_at > PENDING_LIMIT:
            raise NotAuthenticated(
                "the logon was not finished within 10 minutes of the password; log on again",
                code="session_expired",
            )
        if not allow_pending:
            raise NotAuthenticated(
                f"the logon is not finished: {STAGE_HINTS[stage]}",
                code="logon_incomplete",
                details={"stage": stage.value},
            )
    if touch:
        found.last_seen_at = moment
    return found, user


def end_session(
    session: Session,
    *,
    actor: Principal,
    session_id: int,
    reason: str = "logoff",
    now: datetime | None = None,
) -> LogonSession:
    """End a session at once: the user's own, or anyone's by who administers that account."""
    found = session.get(LogonSession, session_id)
    mine = found is not None and actor.user_id == found.user_id
    if found is None or (not mine and not actor.can(Permission.USER_MANAGE)):
        raise NotFound(f"session {session_id} does not exist", field="session_id")
    if not mine:
        duties.require_account_authority(session, actor, found.user.agency, found.user.roles)
        reason = "ended_by_admin"
    if found.ended_at is None:
        found.ended_at = now or utcnow()
        found.end_reason = reason
        session.flush()
    return found


def end_own_session(
    session: Session, *, actor: Principal, session_id: int, now: datetime | None = None
) -> LogonSession:
    """End one of the actor's own sessions (another device, say); another's answers as missing,
    even to an administrator: their sessions are ended from the account's page (end_session)."""
    found = session.get(LogonSession, session_id)
    if found is None or actor.user_id is None or found.user_id != actor.user_id:
        raise NotFound(f"session {session_id} does not exist", field="session_id")
    return end_session(
        session, actor=actor, session_id=session_id, reason="ended_by_owner", now=now
    )


def unlock(session: Session, *, actor: Principal, user_id: int) -> User:
    """Release an account locked by failed logons (an administrator of that account)."""
    actor.require(Permission.USER_MANAGE)
    user = repo.get_user(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    duties.require_account_authority(session, actor, user.agency, user.roles)
    actor.require_fresh()
    if user.locked_at is None:
        raise InvalidInput(f"the account {user.username} is not locked", code="not_locked")
    user.locked_at = None
    user.failed_logons = 0
    user.failed_logons_since = None
    session.flush()
    return user


def disable_dormant(session: Session, *, now: datetime) -> list[User]:
    """Disable every active account unused for 90 days (CJIS AC-2(3)); the accounts disabled.

    Used means: created, enabled by an administrator, logged on, or one of its API tokens
    presented, within the 90 days. Run by the governance ticker (governance/jobs.py).
    """
    cutoff = now - DORMANT_AFTER
    recent_token = exists().where(
        ApiToken.user_id == User.id,
        ApiToken.last_used_at.is_not(None),
        ApiToken.last_used_at >= cutoff,
    )
    dormant = session.scalars(
        select(User)
        .where(
            User.is_active,
            User.created_at < cutoff,
            or_(User.last_logon_at.is_(None), User.last_logon_at < cutoff),
            or_(User.enabled_at.is_(None), User.enabled_at < cutoff),
            ~recent_token,
        )
        .order_by(User.id)
        .with_for_update(of=User)
    ).all()
    for user in dormant:
        user.is_active = False
        user.disabled_at = now
    session.flush()
    return list(dormant)
