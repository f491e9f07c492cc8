"""Administration pages: agencies, users (create, profile, unlock, password reset), their
sessions, and the witnesses (docs/web.md, "Administration"); an account's roles and MFA reset
are changed from its page by pages/admin_acts.py.

Every act calls the service the API calls (identity.service, identity.logon, audit.witness) and
writes the same audit entry; separation of duties is enforced by those services
(identity/duties.py), so a page only hides what its user cannot do, and a refusal from a service
is shown as the page answers it (403 with the reason, audited by the app's error handlers).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from openpars.audit import witness
from openpars.audit.api import audit_event
from openpars.audit.events import AuditKind
from openpars.audit.schemas import WitnessRead
from openpars.audit.service import append
from openpars.errors import Conflict, InvalidInput, NotFound
from openpars.identity import duties, logon, service
from openpars.identity import repository as repo
from openpars.identity.api import account_event
from openpars.identity.models import User
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission, Role
from openpars.identity.schemas import (
    AgencyCreate,
    AgencyRead,
    PasswordSet,
    SessionRead,
    UserCreate,
    UserProfile,
)
from openpars.ranges import Offset, RowId
from openpars.web.context import Ctx
from openpars.web.pages.core import (
    NAV,
    NavLink,
    area_router,
    domain_errors,
    form_values,
    page,
    parse_form,
    render,
)
from openpars.web.refusals import record_refusal, record_service_refusal

router = area_router()
NAV.append(
    NavLink(
        "Administration",
        "/admin",
        frozenset({Permission.USER_MANAGE, Permission.AGENCY_MANAGE}),
    )
)

MANAGE = page(Permission.USER_MANAGE)
PAGE_SIZE = 100
SESSIONS_PAGE = 20
# What the page says after an act, by a fixed key in the address (never free text).
DONE: dict[str, str] = {
    "created": "The account was created. Reset its password so its holder can log in.",
    "unlocked": "The account was unlocked; its holder can log in again.",
    "password": "The password was reset; its holder must choose a new one at the next logon.",
    "profile": "The profile was saved.",
    "session": "The session was ended; its holder is logged out at their next request.",
    "agency": "The agency was registered.",
    "roles": "The roles were changed; the holder's open sessions were ended.",
    "mfa": "The MFA was reset; its holder enrols an authenticator at the next logon.",
}


def _done(key: str | None) -> str | None:
    return DONE.get(key or "")


def _agency_options(session: Session) -> list[tuple[str, str]]:
    return [("", "Choose an agency")] + [
        (str(a.id), a.name) for a in repo.list_agencies(session, offset=0, limit=500)
    ]


def _role_options() -> list[tuple[str, str]]:
    return [(r.value, r.value.replace("_", " ")) for r in Role]


def _administered(session: Session, principal: Principal, user_id: int) -> User:
    """The user, if ``principal`` administers that account (separation of duties)."""
    principal.require(Permission.USER_MANAGE)
    user = repo.get_user(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    duties.require_account_authority(session, principal, user.agency, user.roles)
    return user


@router.get("/admin", response_class=HTMLResponse, dependencies=[MANAGE])
def users(ctx: Ctx, offset: Offset = 0, done: str | None = None) -> HTMLResponse:
    """The accounts this user administers, with agency, roles and state; links to each."""
    with ctx.unit() as (session, principal):
        principal.require(Permission.USER_MANAGE)
        listed = repo.list_users(session, agency_id=None, offset=offset, limit=PAGE_SIZE)
        # The authority of each listed account is decided from one read of the site (the
        # board's stakeholders, the agencies' parents), not from queries per account; the
        # accounts come with their agency joined and their roles in one more query.
        scope = duties.AuthorityScope.read(session, principal)
        rows = [
            {
                "id": u.id,
                "username": u.username,
                "display_name": u.display_name,
                "agency": u.agency.name,
                "roles": service.role_names(u.roles),
                "active": u.is_active,
                "locked": u.locked_at is not None,
            }
            for u in listed
            if scope.may_administer(u)
        ]
        append(session, account_event(principal, "user.list", offset=offset, limit=PAGE_SIZE))
    return render(
        ctx.request,
        "admin/users.html",
        {
            "users": rows,
            "offset": offset,
            "page_size": PAGE_SIZE,
            # A page of accounts the viewer does not administer may list none and still have
            # more after it: the next page follows the accounts read, not those shown.
            "next_offset": offset + PAGE_SIZE if len(listed) == PAGE_SIZE else None,
            "done": _done(done),
        },
    )


def _new_user_form(
    ctx: Ctx, session: Session, values: dict[str, Any], errors: dict[str, str], status: int
) -> HTMLResponse:
    chosen = values.get("roles", [])
    return render(
        ctx.request,
        "admin/user_new.html",
        {
            "agencies": _agency_options(session),
            "roles": _role_options(),
            "chosen_roles": chosen if isinstance(chosen, list) else [chosen],
            "values": values,
            "errors": errors,
        },
        status_code=status,
    )


@router.get("/admin/users/new", response_class=HTMLResponse, dependencies=[MANAGE])
def new_user(ctx: Ctx) -> HTMLResponse:
    """The form of a new account."""
    with ctx.unit() as (session, _):
        return _new_user_form(ctx, session, {}, {}, 200)


@router.post("/admin/users", response_class=HTMLResponse, dependencies=[MANAGE])
def create_user(ctx: Ctx) -> Response:
    """Create an account (the service applies separation of duties to its roles)."""
    values = form_values(ctx.request)
    body, errors = parse_form(ctx.request, UserCreate, lists=("roles",))
    try:
        with ctx.unit() as (session, principal):
            if body is None:
                raise InvalidInput("the form has errors", field="form")
            user = service.create_user(session, actor=principal, data=body)
            append(
                session, account_event(principal, "user.create", user_id=user.id, roles=body.roles)
            )
            user_id = user.id
    except (InvalidInput, Conflict) as refused:
        record_service_refusal(ctx.request, refused, errors)
        with ctx.unit() as (session, _):
            return _new_user_form(ctx, session, values, errors or domain_errors(refused), 422)
    return RedirectResponse(f"/admin/users/{user_id}?done=created", status_code=303)


def show_user(
    ctx: Ctx,
    user_id: int,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
    sessions_offset: int = 0,
) -> HTMLResponse:
    """The account's page, with what a refused form sent and its errors if any."""
    with ctx.unit() as (session, principal):
        user = _administered(session, principal, user_id)
        sessions = [
            SessionRead.model_validate(s)
            for s in repo.list_logon_sessions(
                session, user_id=user_id, offset=sessions_offset, limit=SESSIONS_PAGE
            )
        ]
        sessions_total = repo.count_logon_sessions(session, user_id=user_id)
        shown = {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "agency": user.agency.name,
            "roles": service.role_names(user.roles),
            "active": user.is_active,
            "locked_at": user.locked_at,
            "failed_logons": user.failed_logons,
            "must_change_password": user.must_change_password,
            "family_name": user.family_name or "",
            "address": user.address or "",
            "mfa_enrolled_at": user.mfa_enrolled_at,
            "mfa_pending": user.mfa_pending_secret is not None,
            "own": user.id == principal.user_id,
        }
        append(
            session,
            account_event(principal, "session.list", user_id=user_id, offset=sessions_offset),
        )
    return render(
        ctx.request,
        "admin/user.html",
        {
            "user": shown,
            "roles": _role_options(),
            "sessions": sessions,
            "sessions_offset": sessions_offset,
            "sessions_page": SESSIONS_PAGE,
            "sessions_total": sessions_total,
            "done": _done(done),
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status,
    )


@router.get("/admin/users/{user_id}", response_class=HTMLResponse, dependencies=[MANAGE])
def user_page(
    user_id: RowId, ctx: Ctx, done: str | None = None, sessions_offset: Offset = 0
) -> HTMLResponse:
    """One account: its state, roles, MFA, profile, password reset, sessions (paginated)."""
    return show_user(ctx, user_id, done=done, sessions_offset=sessions_offset)


@router.post("/admin/users/{user_id}/unlock", response_class=HTMLResponse, dependencies=[MANAGE])
def unlock(user_id: RowId, ctx: Ctx) -> Response:
    """Release an account locked after failed logons (as POST /api/v1/users/{id}/unlock)."""
    try:
        with ctx.unit() as (session, principal):
            user = logon.unlock(session, actor=principal, user_id=user_id)
            append(session, account_event(principal, "account.unlock", user_id=user.id))
    except InvalidInput as refused:
        # Not locked (any more): someone released it since the page was shown.
        record_refusal(ctx.request, refused)
        return show_user(ctx, user_id, errors=domain_errors(refused), status=409)
    return RedirectResponse(f"/admin/users/{user_id}?done=unlocked", status_code=303)


@router.post("/admin/users/{user_id}/password", response_class=HTMLResponse, dependencies=[MANAGE])
def reset_password(user_id: RowId, ctx: Ctx) -> Response:
    """Reset another account's password (its holder must choose a new one at the next logon)."""
    body, errors = parse_form(ctx.request, PasswordSet)
    try:
        with ctx.unit() as (session, principal):
            if body is None:
                raise InvalidInput("the form has errors", field="form")
            if principal.user_id == user_id:
                raise InvalidInput(
                    "change your own password on the logon page, giving the current one",
                    field="new_password",
                )
            user = service.set_password(
                session,
                actor=principal,
                user_id=user_id,
                new_password=body.new_password,
                min_length=ctx.settings.password_min_length,
            )
            append(session, account_event(principal, "user.password.reset", user_id=user.id))
    except InvalidInput as refused:
        record_service_refusal(ctx.request, refused, errors)
        return show_user(ctx, user_id, errors=errors or domain_errors(refused), status=422)
    return RedirectResponse(f"/admin/users/{user_id}?done=password", status_code=303)


@router.post("/admin/users/{user_id}/profile", response_class=HTMLResponse, dependencies=[MANAGE])
def set_profile(user_id: RowId, ctx: Ctx) -> Response:
    """Set the surname and address oversight compares the user's lookups with."""
    values = form_values(ctx.request)
    body, errors = parse_form(ctx.request, UserProfile)
    try:
        with ctx.unit() as (session, principal):
            if body is None:
                raise InvalidInput("the form has errors", field="form")
            user = service.set_user_profile(session, actor=principal, user_id=user_id, data=body)
            append(session, account_event(principal, "user.profile", user_id=user.id))
    except InvalidInput as refused:
        record_service_refusal(ctx.request, refused, errors)
        return show_user(
            ctx, user_id, errors=errors or domain_errors(refused), values=values, status=422
        )
    return RedirectResponse(f"/admin/users/{user_id}?done=profile", status_code=303)


@router.post("/admin/sessions/{session_id}/end", response_class=HTMLResponse, dependencies=[MANAGE])
def end_session(session_id: RowId, ctx: Ctx) -> Response:
    """End a session at once (as DELETE /api/v1/sessions/{id})."""
    with ctx.unit() as (session, principal):
        found = logon.end_session(session, actor=principal, session_id=session_id)
        append(session, account_event(principal, "session.end", session_id=session_id))
        user_id = found.user_id
    return RedirectResponse(f"/admin/users/{user_id}?done=session", status_code=303)


def _agencies_page(
    ctx: Ctx,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with ctx.unit() as (session, principal):
        principal.require(Permission.AGENCY_MANAGE)
        rows = [
            AgencyRead.model_validate(a) for a in repo.list_agencies(session, offset=0, limit=500)
        ]
        append(session, account_event(principal, "agency.list", offset=0, limit=500))
    return render(
        ctx.request,
        "admin/agencies.html",
        {
            "agencies": rows,
            "names": {a.id: a.name for a in rows},
            "kinds": [("", "Choose a kind")] + [(k.value, k.value) for k in AgencyKind],
            "parents": [("", "None (a top-level agency)")] + [(str(a.id), a.name) for a in rows],
            "done": _done(done),
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status,
    )


@router.get(
    "/admin/agencies", response_class=HTMLResponse, dependencies=[page(Permission.AGENCY_MANAGE)]
)
def agencies(ctx: Ctx, done: str | None = None) -> HTMLResponse:
    """Every agency and sub-unit; the form of a new one."""
    return _agencies_page(ctx, done=done)


@router.post(
    "/admin/agencies", response_class=HTMLResponse, dependencies=[page(Permission.AGENCY_MANAGE)]
)
def create_agency(ctx: Ctx) -> Response:
    """Register an agency or a sub-unit (as POST /api/v1/agencies)."""
    values = form_values(ctx.request)
    body, errors = parse_form(ctx.request, AgencyCreate)
    try:
        with ctx.unit() as (session, principal):
            if body is None:
                raise InvalidInput("the form has errors", field="form")
            agency = service.create_agency(session, actor=principal, data=body)
            append(session, account_event(principal, "agency.create", agency_id=agency.id))
    except (InvalidInput, Conflict) as refused:
        record_service_refusal(ctx.request, refused, errors)
        return _agencies_page(
            ctx, errors=errors or domain_errors(refused), values=values, status=422
        )
    return RedirectResponse("/admin/agencies?done=agency", status_code=303)


@router.get("/admin/witnesses", response_class=HTMLResponse, dependencies=[page(*witness.READERS)])
def witnesses(ctx: Ctx) -> HTMLResponse:
    """The registered witnesses, removed ones included (as GET /api/v1/audit/witnesses).

    Witnesses are added and removed only by the board's signed votes, never here."""
    with ctx.unit() as (session, principal):
        rows = [
            WitnessRead.model_validate(w) for w in witness.list_witnesses(session, actor=principal)
        ]
        append(session, audit_event(principal, AuditKind.AUDIT_READ, "audit.witnesses.list"))
    return render(ctx.request, "admin/witnesses.html", {"witnesses": rows})
