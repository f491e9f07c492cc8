"""REST endpoints for agencies, users and API tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query

from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.identity import repository as repo
from openpars.identity import service
from openpars.identity.models import User
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.identity.schemas import (
    AgencyCreate,
    AgencyRead,
    PasswordSet,
    PasswordState,
    RoleChange,
    TokenCreate,
    TokenIssued,
    TokenRead,
    UserCreate,
    UserProfile,
    UserRead,
    UserRolesSet,
)
from openpars.pages import Page
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx, needs

router = APIRouter(tags=["accounts"])


def user_read(user: User) -> UserRead:
    """Shape a user for output."""
    return UserRead(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        agency_id=user.agency_id,
        roles=sorted(user.roles),
        is_active=user.is_active,
        mfa_enrolled=user.mfa_enrolled_at is not None,
    )


def account_event(principal: Principal, action: str, **params: object) -> AuditEvent:
    """The audit event of an account or token change."""
    return AuditEvent(
        kind=AuditKind.ACCOUNT,
        action=action,
        user_id=principal.user_id,
        username=principal.username,
        agency_id=principal.agency_id,
        source_ip=principal.source_ip,
        params=dict(params),
    )


@router.post(
    "/agencies",
    response_model=AgencyRead,
    status_code=201,
    dependencies=[needs(Permission.AGENCY_MANAGE)],
)
def create_agency(body: AgencyCreate, ctx: Ctx) -> AgencyRead:
    """Register an agency or sub-unit (admin)."""
    with ctx.unit() as (session, principal):
        agency = service.create_agency(session, actor=principal, data=body)
        append(session, account_event(principal, "agency.create", agency_id=agency.id))
        result = AgencyRead.model_validate(agency)
    return result


@router.get(
    "/agencies", response_model=Page[AgencyRead], dependencies=[needs(Permission.RECORD_READ)]
)
def list_agencies(
    ctx: Ctx, offset: Offset = 0, limit: int = Query(100, ge=1, le=500)
) -> Page[AgencyRead]:
    """All agencies, paginated."""
    with ctx.unit() as (session, principal):
        principal.require(Permission.RECORD_READ)
        rows = [
            AgencyRead.model_validate(a)
            for a in repo.list_agencies(session, offset=offset, limit=limit)
        ]
        total = repo.count_agencies(session)
        append(session, account_event(principal, "agency.list", offset=offset, limit=limit))
    return Page[AgencyRead](items=rows, total=total, offset=offset, limit=limit)


@router.post(
    "/users", response_model=UserRead, status_code=201, dependencies=[needs(Permission.USER_MANAGE)]
)
def create_user(body: UserCreate, ctx: Ctx) -> UserRead:
    """Create a user account (admin)."""
    with ctx.unit() as (session, principal):
        user = service.create_user(session, actor=principal, data=body)
        append(session, account_event(principal, "user.create", user_id=user.id, roles=body.roles))
        result = user_read(user)
    return result


@router.put(
    "/users/{user_id}/profile",
    response_model=UserProfile,
    dependencies=[needs(Permission.USER_MANAGE)],
)
def set_user_profile(user_id: RowId, body: UserProfile, ctx: Ctx) -> UserProfile:
    """Set the surname and address oversight compares the user's lookups with (admin)."""
    with ctx.unit() as (session, principal):
        user = service.set_user_profile(session, actor=principal, user_id=user_id, data=body)
        append(session, account_event(principal, "user.profile", user_id=user.id))
        result = UserProfile(family_name=user.family_name, address=user.address)
    return result


@router.put(
    "/users/{user_id}/roles",
    response_model=RoleChange,
    dependencies=[needs(Permission.USER_MANAGE)],
    responses={409: {"description": "the roles changed since expected_roles was read"}},
)
def set_user_roles(user_id: RowId, body: UserRolesSet, ctx: Ctx) -> RoleChange:
    """Replace an account's roles (an administrator of that account, never one's own): a
    privileged act, audited ``user.roles`` with the roles before and after. The account's
    logon sessions end; its holder logs on again under the new roles."""
    with ctx.unit() as (session, principal):
        changed = service.set_user_roles(
            session,
            actor=principal,
            user_id=user_id,
            roles=frozenset(body.roles),
            expected=None if body.expected_roles is None else frozenset(body.expected_roles),
        )
        result = RoleChange(
            user=user_read(changed.user),
            before=sorted(changed.before),
            after=sorted(changed.after),
            sessions_ended=changed.sessions_ended,
        )
    return result


@router.put("/users/{user_id}/password", response_model=PasswordState, dependencies=[needs()])
def set_password(user_id: RowId, body: PasswordSet, ctx: Ctx) -> PasswordState:
    """Change your own password (send the current one) or reset another user's (admin).

    A reset by an administrator makes the user choose a new password at the next logon.
    """
    with ctx.unit() as (session, principal):
        user = service.set_password(
            session,
            actor=principal,
            user_id=user_id,
            new_password=body.new_password,
            current_password=body.current_password,
            min_length=ctx.settings.password_min_length,
        )
        own = principal.user_id == user.id
        action = "user.password.change" if own else "user.password.reset"
        append(session, account_event(principal, action, user_id=user.id))
        assert user.password_changed_at is not None
        result = PasswordState(
            user_id=user.id,
            password_changed_at=user.password_changed_at,
            must_change_password=user.must_change_password,
        )
    return result


@router.get("/users/me", response_model=UserRead, dependencies=[needs()])
def whoami(ctx: Ctx) -> UserRead:
    """The account behind the presented token."""
    with ctx.unit() as (session, principal):
        assert principal.user_id is not None
        user = repo.get_user(session, principal.user_id)
        assert user is not None
        append(session, account_event(principal, "user.me"))
        result = user_read(user)
    return result


@router.post(
    "/users/{user_id}/tokens", response_model=TokenIssued, status_code=201, dependencies=[needs()]
)
def issue_token(user_id: RowId, body: TokenCreate, ctx: Ctx) -> TokenIssued:
    """Issue an API token; the secret is in this response only."""
    with ctx.unit() as (session, principal):
        days = body.lifetime_days or ctx.settings.token_lifetime_days
        token, secret = service.issue_token(
            session, actor=principal, user_id=user_id, name=body.name, lifetime=timedelta(days=days)
        )
        append(session, account_event(principal, "token.issue", token_id=token.id, user=user_id))
        result = TokenIssued(**TokenRead.model_validate(token).model_dump(), token=secret)
    return result


@router.delete("/tokens/{token_id}", response_model=TokenRead, dependencies=[needs()])
def revoke_token(token_id: RowId, ctx: Ctx) -> TokenRead:
    """Revoke a token at once."""
    with ctx.unit() as (session, principal):
        token = service.revoke_token(session, actor=principal, token_id=token_id)
        append(session, account_event(principal, "token.revoke", token_id=token_id))
        result = TokenRead.model_validate(token)
    return result
