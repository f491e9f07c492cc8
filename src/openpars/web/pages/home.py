"""The home page: what the logged-in user can do here, by their permissions."""

from __future__ import annotations

from fastapi.responses import HTMLResponse

from openpars.identity.roles import Permission
from openpars.web.context import Ctx
from openpars.web.pages.core import area_router, page, render

router = area_router()

# What each permission lets a person do, in the words of the people who hold it.
CAN_DO: tuple[tuple[Permission, str], ...] = (
    (Permission.ARREST_CREATE, "Enter an arrest with its people, roles and charges."),
    (Permission.ARREST_AMEND, "Amend an arrest record, giving the reason."),
    (Permission.CHARGE_DECIDE, "Approve, decline or modify charges in the charging queue."),
    (Permission.BAIL_RECOMMEND, "Recommend bail before arraignment."),
    (Permission.ARRAIGN, "Arraign: set bail and the docket number."),
    (Permission.RELEASE, "Record a release from custody."),
    (Permission.RECORD_READ, "Search and read arrest and person records of your agency's scope."),
    (Permission.RECORD_SEAL, "Seal and unseal records by court order."),
    (Permission.SEALED_READ, "Read sealed records."),
    (Permission.EXTERNAL_QUERY, "Search records under your agency's data-sharing agreement."),
    (Permission.AGENCY_MANAGE, "Manage agencies."),
    (Permission.USER_MANAGE, "Manage user accounts, their roles and sessions."),
    (Permission.AGREEMENT_MANAGE, "Propose and change data-sharing agreements."),
    (Permission.AGREEMENT_SUSPEND, "Suspend a data-sharing agreement."),
    (Permission.VOTE, "Vote on proposed agreements for your agency."),
    (Permission.AUDIT_READ, "Read the audit log, its checkpoints and proofs."),
    (Permission.KEY_MANAGE, "Manage signing keys and witnesses."),
    (Permission.OVERSIGHT_READ, "Read the oversight reports of outside agencies' access."),
    (Permission.OVERSIGHT_REVIEW, "Review flags raised on outside agencies' access."),
)


@router.get("/", response_class=HTMLResponse, dependencies=[page()])
def home(ctx: Ctx) -> HTMLResponse:
    """What the user can do, one line per permission they hold."""
    with ctx.unit() as (_, principal):
        abilities = [text for permission, text in CAN_DO if principal.can(permission)]
    return render(ctx.request, "home.html", {"abilities": abilities})
