"""An administrator's changes to an existing account from its page: its roles, and a reset of
its MFA (docs/web.md, "Administration").

Both are privileged acts (re-authentication first), each one service call that applies the
separation of duties, writes its audit entry and ends the account's sessions, exactly as the
API's ``PUT /api/v1/users/{id}/roles`` and ``DELETE /api/v1/users/{id}/mfa``.
"""

from __future__ import annotations

from fastapi.responses import HTMLResponse, RedirectResponse, Response

from openpars.errors import Conflict, InvalidInput
from openpars.identity import mfa, service
from openpars.identity.schemas import UserRolesSet
from openpars.ranges import RowId
from openpars.web.context import Ctx
from openpars.web.pages.admin import MANAGE, show_user
from openpars.web.pages.core import area_router, domain_errors, form_values, parse_form
from openpars.web.refusals import record_refusal, record_service_refusal

router = area_router()


@router.post("/admin/users/{user_id}/roles", response_class=HTMLResponse, dependencies=[MANAGE])
def set_roles(user_id: RowId, ctx: Ctx) -> Response:
    """Replace the account's roles (``service.set_user_roles``, audited ``user.roles``).

    The form carries the roles it was shown with (``expected_roles``): if they changed since,
    the change is refused 409 and the page shows the roles as they are now.
    """
    values = form_values(ctx.request)
    body, errors = parse_form(ctx.request, UserRolesSet, lists=("roles", "expected_roles"))
    try:
        with ctx.unit() as (session, principal):
            if body is None:
                raise InvalidInput("the form has errors", field="form")
            service.set_user_roles(
                session,
                actor=principal,
                user_id=user_id,
                roles=frozenset(body.roles),
                # A form without the roles it was shown with is treated as out of date.
                expected=frozenset(body.expected_roles or ()),
            )
    except Conflict as stale:
        record_refusal(ctx.request, stale)
        return show_user(ctx, user_id, errors=domain_errors(stale), status=409)
    except InvalidInput as refused:
        record_service_refusal(ctx.request, refused, errors)
        return show_user(
            ctx, user_id, errors=errors or domain_errors(refused), values=values, status=422
        )
    return RedirectResponse(f"/admin/users/{user_id}?done=roles", status_code=303)


@router.post("/admin/users/{user_id}/mfa/reset", response_class=HTMLResponse, dependencies=[MANAGE])
def reset_mfa(user_id: RowId, ctx: Ctx) -> Response:
    """Clear the account's authenticator and recovery codes (``mfa.reset``, audited
    ``mfa.reset``); it enrols again at its next logon, and its sessions end now."""
    try:
        with ctx.unit() as (session, principal):
            mfa.reset(session, actor=principal, user_id=user_id)
    except InvalidInput as refused:
        # Nothing enrolled (any more): reset meanwhile, or never enrolled.
        record_refusal(ctx.request, refused)
        return show_user(
            ctx, user_id, errors={"mfa": domain_errors(refused)["user_id"]}, status=409
        )
    return RedirectResponse(f"/admin/users/{user_id}?done=mfa", status_code=303)
