"""Rules for agencies, users and tokens. Services flush, never commit."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from openpars.audit.events import AuditKind, event_by
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound
from openpars.identity import duties, logon, passwords
from openpars.identity import repository as repo
from openpars.identity.models import Agency, ApiToken, LogonSession, User, UserRole
from openpars.identity.principal import Principal
from openpars.identity.roles import EXTERNAL_ROLES, AgencyKind, Permission, Role, exclusive_pair
from openpars.identity.schemas import AgencyCreate, UserCreate, UserProfile

TOKEN_PREFIX = "opt_"  # noqa: S105 - a public marker, not a secret


def hash_token(secret: str) -> str:
    """SHA-256 of a token secret; tokens carry 256 bits of entropy, so no slow hash is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_agency(session: Session, *, actor: Principal, data: AgencyCreate) -> Agency:
    """Register an agency or a sub-unit of one."""
    actor.require(Permission.AGENCY_MANAGE)
    actor.require_fresh()
    if repo.get_agency_by_name(session, data.name) is not None:
        raise Conflict(f"an agency named '{data.name}' already exists", field="name")
    if data.ori is not None and repo.get_agency_by_ori(session, data.ori) is not None:
        raise Conflict(f"ORI {data.ori} is already registered", field="ori")
    if data.parent_id is not None:
        parent = repo.get_agency(session, data.parent_id)
        if parent is None:
            raise InvalidInput(f"parent agency {data.parent_id} does not exist", field="parent_id")
        if parent.kind is not data.kind:
            raise InvalidInput(
                "a sub-unit must be of the same kind as its parent agency", field="kind"
            )
    agency = Agency(name=data.name, kind=data.kind, ori=data.ori, parent_id=data.parent_id)
    session.add(agency)
    session.flush()
    return agency


def create_user(session: Session, *, actor: Principal, data: UserCreate) -> User:
    """Create a user in an agency with the given roles (separation of duties: identity/duties)."""
    actor.require(Permission.USER_MANAGE)
    if repo.get_user_by_username(session, data.username) is not None:
        raise Conflict(f"username '{data.username}' is taken", field="username")
    agency = repo.get_agency(session, data.agency_id)
    if agency is None:
        raise InvalidInput(f"agency {data.agency_id} does not exist", field="agency_id")
    roles = set(data.roles)
    if agency.kind is AgencyKind.EXTERNAL and not roles <= EXTERNAL_ROLES:
        raise InvalidInput(
            "users of an external agency may only hold the role 'external_query'", field="roles"
        )
    duties.refuse_exclusive(frozenset(roles))
    duties.require_account_authority(session, actor, agency, frozenset(roles), granting=True)
    actor.require_fresh()
    user = User(username=data.username, display_name=data.display_name, agency_id=agency.id)
    user.role_grants = [UserRole(role=role) for role in sorted(roles)]
    session.add(user)
    session.flush()
    return user


def set_user_active(session: Session, *, actor: Principal, user_id: int, active: bool) -> User:
    """Enable or disable an account; disabling also stops its tokens from working."""
    actor.require(Permission.USER_MANAGE)
    user = repo.get_user(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    duties.require_account_authority(session, actor, user.agency, user.roles, granting=active)
    actor.require_fresh()
    user.is_active = active
    user.disabled_at = None if active else utcnow()
    if active:
        user.enabled_at = utcnow()
    session.flush()
    return user


@dataclass(frozen=True, slots=True)
class RolesChanged:
    """The outcome of set_user_roles: the account, its roles before and after, sessions ended."""

    user: User
    before: frozenset[Role]
    after: frozenset[Role]
    sessions_ended: int


def set_user_roles(
    session: Session,
    *,
    actor: Principal,
    user_id: int,
    roles: frozenset[Role],
    expected: frozenset[Role] | None = None,
    now: datetime | None = None,
) -> RolesChanged:
    """Replace an existing account's roles: a privileged act, audited with before and after.

    Whoever changes them must administer the account both as it is and as it will be
    (identity/duties.py), so the site administrator neither removes nor grants a stakeholder's
    voting rights, and ``agreement_admin`` stays appointed at the console. Nobody changes
    their own roles. The account's logon sessions end, so its holder logs on again under the
    new roles (its API tokens already act under them: a token's roles are read at each use).
    """
    actor.require(Permission.USER_MANAGE)
    user = repo.get_user(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    if actor.user_id is not None and actor.user_id == user.id:
        raise Forbidden(
            "roles: nobody changes their own roles (separation of duties); another "
            "administrator of your account must",
            code="own_roles",
            field="roles",
        )
    before = user.roles
    # Nothing of the account is told (not even its roles) to who does not administer it.
    duties.require_account_authority(session, actor, user.agency, before)
    if expected is not None and expected != before:
        raise Conflict(
            f"roles: the roles of {user.username} changed since the form was shown (now "
            f"{', '.join(role_names(before))}); nothing was changed, look again and retry",
            code="roles_changed_meanwhile",
            field="roles",
        )
    if roles == before:
        raise InvalidInput(
            f"roles: {user.username} already holds exactly these roles; nothing to change",
            code="roles_unchanged",
            field="roles",
        )
    if user.agency.kind is AgencyKind.EXTERNAL and not roles <= EXTERNAL_ROLES:
        raise InvalidInput(
            "roles: users of an external agency may only hold the role 'external_query'",
            field="roles",
        )
    duties.refuse_exclusive(roles)
    # Authority over the account as it would stand too; what is added is a grant
    # (the console only bootstraps: it grants no vote, nor a second stakeholder administrator).
    duties.require_account_authority(session, actor, user.agency, roles)
    duties.require_account_authority(session, actor, user.agency, roles - before, granting=True)
    actor.require_fresh()
    kept = [grant for grant in user.role_grants if grant.role in roles]
    added = [UserRole(role=role) for role in sorted(roles - before)]
    user.role_grants = kept + added
    moment = now or utcnow()
    ended = logon.end_all_sessions(session, user_id=user.id, reason="roles_changed", now=moment)
    append(
        session,
        event_by(
            actor,
            kind=AuditKind.ACCOUNT,
            action="user.roles",
            params={
                "user_id": user.id,
                "before": role_names(before),
                "after": role_names(roles),
                "sessions_ended": ended,
            },
        ),
    )
    session.flush()
    return RolesChanged(user=user, before=before, after=roles, sessions_ended=ended)


def set_user_profile(
    session: Session, *, actor: Principal, user_id: int, data: UserProfile
) -> User:
    """Set (or clear) the surname and address oversight compares the user's lookups with."""
    actor.require(Permission.USER_MANAGE)
    user = repo.get_user(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    duties.require_account_authority(session, actor, user.agency, user.roles)
    actor.require_fresh()
    user.family_name = data.family_name
    user.address = data.address
    session.flush()
    return user


def set_password(
    session: Session,
    *,
    actor: Principal,
    user_id: int,
    new_password: str,
    current_password: str | None = None,
    min_length: int = passwords.DEFAULT_MIN_LENGTH,
    force_change: bool | None = None,
    now: datetime | None = None,
) -> User:
    """Change one's own password (the current one required) or reset another's (admin).

    A reset by an administrator forces a change at the next logon unless ``force_change`` is
    False (the console bootstrapping an account the operator will hand over in person). The
    password itself is never stored, logged or returned; only its Argon2id hash is kept.
    """
    own = actor.user_id is not None and actor.user_id == user_id
    if not own:
        actor.require(Permission.USER_MANAGE)
    user = repo.get_user(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    if own:
        if user.password_hash is not None:
            if current_password is None:
                raise InvalidInput(
                    "changing your own password needs your current password",
                    code="current_password_missing",
                    field="current_password",
                )
            if not passwords.verify_password(user.password_hash, current_password):
                raise Forbidden(
                    "the current password is not right; the password was not changed",
                    code="current_password_wrong",
                    field="current_password",
                )
            if passwords.verify_password(user.password_hash, new_password):
                raise InvalidInput(
                    "the new password is the same as the current one; choose a different one",
                    code="password_reused",
                    field="new_password",
                )
        must_change = False
    else:
        duties.require_account_authority(session, actor, user.agency, user.roles)
        actor.require_fresh()
        must_change = True if force_change is None else force_change
    passwords.check_policy(new_password, username=user.username, min_length=min_length)
    moment = now or utcnow()
    user.password_hash = passwords.hash_password(new_password)
    user.password_changed_at = moment
    user.must_change_password = must_change
    if not own:
        # A reset answers a forgotten or stolen password: whoever holds a session now is out.
        session.execute(
            update(LogonSession)
            .where(LogonSession.user_id == user.id, LogonSession.ended_at.is_(None))
            .values(ended_at=moment, end_reason="password_reset")
        )
    session.flush()
    return user


def issue_token(
    session: Session,
    *,
    actor: Principal,
    user_id: int,
    name: str,
    lifetime: timedelta,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token for a user; returns the row and the secret, which is never stored."""
    if actor.user_id != user_id:
        actor.require(Permission.USER_MANAGE)
    user = repo.get_user(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    if actor.user_id != user_id:
        # A token for someone else is that person's voice: only who administers them issues it.
        duties.require_account_authority(session, actor, user.agency, user.roles)
    # A token skips the one-time code: minting one is a credential change, proved first.
    actor.require_fresh()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    issued_at = now or utcnow()
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(secret),
        created_at=issued_at,
        expires_at=issued_at + lifetime,
    )
    session.add(token)
    session.flush()
    return token, secret


def revoke_token(session: Session, *, actor: Principal, token_id: int) -> ApiToken:
    """Revoke a token at once; later requests with it are refused."""
    token = repo.get_token(session, token_id)
    if token is None or (actor.user_id != token.user_id and not actor.can(Permission.USER_MANAGE)):
        raise NotFound(f"token {token_id} does not exist", field="token_id")
    if actor.user_id != token.user_id:
        duties.require_account_authority(session, actor, token.user.agency, token.user.roles)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


def authenticate_token(session: Session, secret: str, *, now: datetime | None = None) -> Principal:
    """Resolve a bearer token to the principal it stands for, or raise NotAuthenticated."""
    token = repo.get_token_by_hash(session, hash_token(secret))
    moment = now or utcnow()
    if token is None:
        raise NotAuthenticated("the API token is not recognised", code="token_invalid")
    if token.revoked_at is not None:
        raise NotAuthenticated("the API token was revoked", code="token_revoked")
    if token.expires_at <= moment:
        raise NotAuthenticated(
            f"the API token expired at {token.expires_at.isoformat()}", code="token_expired"
        )
    user = token.user
    if not user.is_active:
        raise NotAuthenticated(f"the account {user.username} is disabled", code="account_disabled")
    token.last_used_at = moment
    return principal_for(session, user)


def principal_for(session: Session, user: User) -> Principal:
    """Build the principal of a user, with the chain of its agency's parents.

    An account holding two roles that exclude each other (written outside the services, say
    by hand in the database) acts as neither: it is refused here, before any act.
    """
    pair = exclusive_pair(user.roles)
    if pair is not None:
        raise Forbidden(
            f"the account {user.username} holds the roles '{pair[0].value}' and "
            f"'{pair[1].value}', which exclude each other (separation of duties): it may do "
            "nothing until an administrator removes one",
            code="roles_exclusive",
        )
    path: list[int] = []
    agency: Agency | None = user.agency
    while agency is not None:
        path.append(agency.id)
        agency = repo.get_agency(session, agency.parent_id) if agency.parent_id else None
    top_kind = user.agency.kind
    return Principal(
        user_id=user.id,
        username=user.username,
        agency_id=user.agency_id,
        agency_kind=top_kind,
        roles=user.roles,
        agency_path=tuple(path),
    )


def role_names(roles: frozenset[Role]) -> list[str]:
    """Roles as sorted strings, for display."""
    return sorted(role.value for role in roles)
