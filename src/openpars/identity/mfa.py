"""Multi-factor authentication: enrolment, one-time codes, recovery codes, reset. Flush only.

Every interactive account proves a TOTP code (or spends a recovery code) after its password
(docs/accounts.md). A wrong code counts toward the lockout exactly like a wrong password, so
guessing codes locks the account after 5 tries. Each act writes its audit entry here, in the
caller's transaction, so the API and the CLI record the same thing. A refused code must be
recorded although the caller is refused: those functions return the refusal for the caller to
commit, then raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent, AuditKind, Outcome, event_by
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound
from openpars.identity import duties, logon, passwords
from openpars.identity import mfa_crypto as crypto
from openpars.identity import repository as repo
from openpars.identity.models import LogonSession, RecoveryCode, User
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission

WRONG_CODE_MESSAGE = (
    "the one-time code or recovery code is not right, or was already used (after 5 failed "
    "attempts in 15 minutes the account is locked until an administrator releases it)"
)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A started enrolment: the secret, shown this once, as text, URI and QR code."""

    secret: str
    uri: str
    qr_svg: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused code, already counted and audited: commit, then raise ``error``."""

    error: NotAuthenticated


def _event(user: User, action: str, source_ip: str | None, **params: object) -> AuditEvent:
    return AuditEvent(
        kind=AuditKind.ACCOUNT,
        action=action,
        user_id=user.id,
        username=user.username,
        agency_id=user.agency_id,
        source_ip=source_ip,
        params=dict(params),
    )


def _begin(user: User, *, key: bytes, issuer: str) -> Enrolment:
    """A new secret, pending on the account until a code confirms it."""
    secret = crypto.new_secret()
    user.mfa_pending_secret = crypto.encrypt(key, user.id, secret)
    uri = crypto.provisioning_uri(secret, username=user.username, issuer=issuer)
    return Enrolment(secret=secret, uri=uri, qr_svg=crypto.qr_svg(uri))


def _pending_step(user: User, *, key: bytes, code: str | None, moment: datetime) -> int | None:
    """The time step of ``code`` under the pending secret (None: wrong)."""
    if user.mfa_pending_secret is None:
        raise Conflict(
            "no enrolment is pending: start one first "
            "(POST /api/v1/sessions/current/mfa/enrolment, or openpars user mfa enrol)",
            code="mfa_enrolment_not_started",
        )
    secret = crypto.decrypt(key, user.id, user.mfa_pending_secret)
    return crypto.matching_step(secret, (code or "").strip(), at=moment)


def _complete(session: Session, user: User, step: int | None, moment: datetime) -> list[str]:
    """The pending secret becomes the account's; ten fresh recovery codes replace the old."""
    user.mfa_secret = user.mfa_pending_secret
    user.mfa_pending_secret = None
    user.mfa_enrolled_at = moment
    user.mfa_last_step = step
    return _replace_recovery_codes(session, user, moment)


def pending_enrolment(user: User, *, key: bytes, issuer: str) -> Enrolment | None:
    """The enrolment this account has started and not confirmed, shown again to its owner."""
    if user.mfa_pending_secret is None:
        return None
    secret = crypto.decrypt(key, user.id, user.mfa_pending_secret)
    uri = crypto.provisioning_uri(secret, username=user.username, issuer=issuer)
    return Enrolment(secret=secret, uri=uri, qr_svg=crypto.qr_svg(uri))


def start_enrolment(
    session: Session,
    *,
    logon_session: LogonSession,
    key: bytes,
    issuer: str,
    reauth_window: timedelta,
    source_ip: str | None,
    now: datetime | None = None,
) -> Enrolment:
    """Generate a new TOTP secret for the session's user, pending until a code confirms it.

    An enrolled user re-enrols (a new phone) only from a complete, recently proved session.
    """
    user = logon_session.user
    if user.mfa_enrolled_at is not None:
        logon.require_fresh_session(logon_session, window=reauth_window, now=now or utcnow())
    started = _begin(user, key=key, issuer=issuer)
    append(session, _event(user, "mfa.enrol.start", source_ip, session_id=logon_session.id))
    session.flush()
    return started


def confirm_enrolment(
    session: Session,
    *,
    logon_session: LogonSession,
    key: bytes,
    code: str,
    source_ip: str | None,
    now: datetime | None = None,
) -> list[str] | Refusal:
    """Confirm the pending secret with its first code; the ten recovery codes, shown once."""
    moment = now or utcnow()
    user = logon_session.user
    step = _pending_step(user, key=key, code=code, moment=moment)
    if step is None:
        return _refuse(session, user, "wrong_code", source_ip, moment)
    codes = _complete(session, user, step, moment)
    _passed(user, logon_session, moment)
    append(session, _event(user, "mfa.enrol", source_ip, session_id=logon_session.id))
    session.flush()
    return codes


def _console_user(session: Session, actor: Principal, user_id: int) -> User:
    if not duties.is_console(actor):
        raise Forbidden(
            "only the operator's console enrols an authenticator for someone else; a person "
            "enrols their own at logon",
            code="console_only",
        )
    user = repo.get_user(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    return user


def console_start(
    session: Session, *, actor: Principal, user_id: int, key: bytes, issuer: str
) -> Enrolment:
    """The console starts an enrolment for an account (handing a phone over in person)."""
    user = _console_user(session, actor, user_id)
    started = _begin(user, key=key, issuer=issuer)
    append(
        session,
        event_by(
            actor, kind=AuditKind.ACCOUNT, action="mfa.enrol.start", params={"user_id": user.id}
        ),
    )
    session.flush()
    return started


def console_confirm(
    session: Session,
    *,
    actor: Principal,
    user_id: int,
    key: bytes,
    code: str | None,
    now: datetime | None = None,
) -> list[str]:
    """The console confirms an enrolment with the authenticator's code, or without one
    (``code`` None: a scripted set-up such as the demo, recorded as unconfirmed)."""
    moment = now or utcnow()
    user = _console_user(session, actor, user_id)
    step = None
    if code is not None:
        step = _pending_step(user, key=key, code=code, moment=moment)
        if step is None:
            raise InvalidInput(
                "the code does not match the new secret: check the authenticator's clock and "
                "type the code it shows now; nothing was enrolled",
                code="code_wrong",
                field="code",
            )
    elif user.mfa_pending_secret is None:
        _pending_step(user, key=key, code=None, moment=moment)
    codes = _complete(session, user, step, moment)
    append(
        session,
        event_by(
            actor,
            kind=AuditKind.ACCOUNT,
            action="mfa.enrol",
            params={"user_id": user.id, "confirmed": code is not None},
        ),
    )
    session.flush()
    return codes


def _replace_recovery_codes(session: Session, user: User, moment: datetime) -> list[str]:
    session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        .values(used_at=moment)
    )
    codes = crypto.new_recovery_codes()
    for code in codes:
        session.add(
            RecoveryCode(
                user_id=user.id, code_hash=crypto.hash_recovery_code(code), created_at=moment
            )
        )
    return codes


def prove(
    session: Session,
    *,
    user: User,
    key: bytes,
    code: str | None,
    recovery_code: str | None,
    source_ip: str | None,
    now: datetime,
) -> Refusal | None:
    """Check a one-time code or a recovery code of an enrolled user; count a wrong one."""
    # Locked and re-read (PostgreSQL): two logons racing with the same code cannot both see the
    # step as unused, and concurrent wrong codes are all counted.
    session.execute(select(User.id).where(User.id == user.id).with_for_update())
    session.refresh(user)
    if user.mfa_secret is None or user.mfa_enrolled_at is None:
        raise Conflict(
            f"the account {user.username} has no MFA enrolled: enrol first "
            "(POST /api/v1/sessions/current/mfa/enrolment)",
            code="mfa_not_enrolled",
        )
    if (code is None) == (recovery_code is None):
        raise InvalidInput(
            "send exactly one of code (the 6 digits your authenticator shows) and "
            "recovery_code (one of the ten codes given at enrolment)",
            code="one_code_required",
            field="code",
        )
    if code is not None:
        secret = crypto.decrypt(key, user.id, user.mfa_secret)
        step = crypto.matching_step(secret, code.strip(), at=now)
        if step is None:
            return _refuse(session, user, "wrong_code", source_ip, now)
        if user.mfa_last_step is not None and step <= user.mfa_last_step:
            return _refuse(session, user, "code_reused", source_ip, now)
        user.mfa_last_step = step
        return None
    assert recovery_code is not None
    found = session.scalars(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == crypto.hash_recovery_code(recovery_code),
            RecoveryCode.used_at.is_(None),
        )
    ).one_or_none()
    if found is None:
        return _refuse(session, user, "wrong_recovery_code", source_ip, now)
    found.used_at = now
    session.flush()
    left = remaining_recovery_codes(session, user.id)
    append(session, _event(user, "mfa.recovery_code.use", source_ip, remaining=left))
    return None


def remaining_recovery_codes(session: Session, user_id: int) -> int:
    """How many unused recovery codes an account has."""
    rows = session.scalars(
        select(RecoveryCode.id).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    return len(rows)


def _refuse(
    session: Session, user: User, reason: str, source_ip: str | None, moment: datetime
) -> Refusal:
    """Count a wrong code toward the lockout (AC-7) and audit it, and the lock if it locked."""
    locked = logon.count_failure(user, moment)
    append(
        session,
        AuditEvent(
            kind=AuditKind.LOGIN_FAILED,
            action="logon.failed",
            outcome=Outcome.REFUSED,
            user_id=user.id,
            username=user.username,
            agency_id=user.agency_id,
            source_ip=source_ip,
            params={"username": user.username, "reason": reason},
            error_code="code_wrong",
        ),
    )
    if locked:
        append(session, _event(user, "account.lock", source_ip, failed_logons=user.failed_logons))
    session.flush()
    return Refusal(NotAuthenticated(WRONG_CODE_MESSAGE, code="code_wrong", field="code"))


def _passed(user: User, logon_session: LogonSession, moment: datetime) -> None:
    user.failed_logons = 0
    user.failed_logons_since = None
    logon_session.mfa_at = logon_session.mfa_at or moment
    logon_session.proved_at = moment


def verify_logon(
    session: Session,
    *,
    logon_session: LogonSession,
    key: bytes,
    code: str | None,
    recovery_code: str | None,
    source_ip: str | None,
    now: datetime | None = None,
) -> Refusal | None:
    """The logon's second step: the code (or a recovery code) after the password."""
    moment = now or utcnow()
    if logon_session.mfa_at is not None:
        raise Conflict("this session already proved its one-time code", code="mfa_already_done")
    return _second_factor(
        session, logon_session, "logon.mfa", key=key, code=code,
        recovery_code=recovery_code, source_ip=source_ip, moment=moment,
    )  # fmt: skip


def _second_factor(
    session: Session,
    logon_session: LogonSession,
    action: str,
    *,
    key: bytes,
    code: str | None,
    recovery_code: str | None,
    source_ip: str | None,
    moment: datetime,
) -> Refusal | None:
    """Prove the code (or a recovery code); on success mark the session proved and write
    ``action``'s entry. A refusal is returned (recorded by ``prove``), not raised."""
    user = logon_session.user
    refusal = prove(
        session,
        user=user,
        key=key,
        code=code,
        recovery_code=recovery_code,
        source_ip=source_ip,
        now=moment,
    )
    if refusal is not None:
        return refusal
    _passed(user, logon_session, moment)
    append(session, _event(user, action, source_ip, session_id=logon_session.id))
    session.flush()
    return None


def reauthenticate(
    session: Session,
    *,
    logon_session: LogonSession,
    key: bytes,
    password: str,
    code: str | None,
    recovery_code: str | None,
    source_ip: str | None,
    now: datetime | None = None,
) -> Refusal | None:
    """Prove password and code again in a complete session, for the privileged acts after it."""
    moment = now or utcnow()
    user = logon_session.user
    if user.password_hash is None or not passwords.verify_password(user.password_hash, password):
        return _refuse(session, user, "wrong_password", source_ip, moment)
    return _second_factor(
        session, logon_session, "session.reauthenticate", key=key, code=code,
        recovery_code=recovery_code, source_ip=source_ip, moment=moment,
    )  # fmt: skip


def reset(session: Session, *, actor: Principal, user_id: int, now: datetime | None = None) -> User:
    """An administrator clears an account's MFA: it enrols again at its next logon.

    The same authority as a password reset (identity/duties.py), so a site administrator cannot
    reset a voter's second factor. The account's open sessions end at once.
    """
    moment = now or utcnow()
    actor.require(Permission.USER_MANAGE)
    user = repo.get_user(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    duties.require_account_authority(session, actor, user.agency, user.roles)
    actor.require_fresh()
    if user.mfa_enrolled_at is None and user.mfa_pending_secret is None:
        raise InvalidInput(
            f"the account {user.username} has no MFA enrolled; nothing to reset",
            code="mfa_not_enrolled",
            field="user_id",
        )
    user.mfa_secret = None
    user.mfa_pending_secret = None
    user.mfa_enrolled_at = None
    user.mfa_last_step = None
    session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        .values(used_at=moment)
    )
    ended = logon.end_all_sessions(session, user_id=user.id, reason="mfa_reset", now=moment)
    append(
        session,
        event_by(
            actor,
            kind=AuditKind.ACCOUNT,
            action="mfa.reset",
            params={"user_id": user.id, "sessions_ended": ended},
        ),
    )
    session.flush()
    return user


def any_enrolled(session: Session) -> bool:
    """Whether any account has a secret under the MFA key (then the key must not change)."""
    found = session.scalars(
        select(User.id)
        .where((User.mfa_secret.is_not(None)) | (User.mfa_pending_secret.is_not(None)))
        .limit(1)
    ).first()
    return found is not None
