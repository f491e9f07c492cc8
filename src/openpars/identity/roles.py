"""Roles and permissions: one enum each, and the single table that maps one to the other."""

from __future__ import annotations

from enum import StrEnum


class AgencyKind(StrEnum):
    """What an agency is; external agencies only ever read under an agreement."""

    POLICE = "police"
    DA = "da"
    COURT = "court"
    PRETRIAL = "pretrial"
    CITY = "city"
    DEFENDER = "defender"
    EXTERNAL = "external"


class Role(StrEnum):
    """Roles a user can hold; permissions follow from them (least privilege, CJIS AC-6)."""

    INTAKE = "intake"
    CHARGING = "charging"
    PRETRIAL = "pretrial"
    COURT = "court"
    READER = "reader"
    ADMIN = "admin"
    SEALED_ACCESS = "sealed_access"
    VOTER = "voter"
    AUDITOR = "auditor"
    EXTERNAL_QUERY = "external_query"


class Permission(StrEnum):
    """Everything openpars checks before acting."""

    ARREST_CREATE = "arrest:create"
    ARREST_AMEND = "arrest:amend"
    CHARGE_DECIDE = "charge:decide"
    BAIL_RECOMMEND = "bail:recommend"
    ARRAIGN = "arraign"
    RELEASE = "release"
    RECORD_READ = "record:read"
    RECORD_SEAL = "record:seal"
    SEALED_READ = "sealed:read"
    EXTERNAL_QUERY = "external:query"
    AGENCY_MANAGE = "agency:manage"
    USER_MANAGE = "user:manage"
    AGREEMENT_MANAGE = "agreement:manage"
    AGREEMENT_SUSPEND = "agreement:suspend"
    VOTE = "vote"
    AUDIT_READ = "audit:read"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.INTAKE: frozenset(
        {Permission.ARREST_CREATE, Permission.ARREST_AMEND, Permission.RECORD_READ}
    ),
    Role.CHARGING: frozenset(
        {Permission.CHARGE_DECIDE, Permission.ARREST_AMEND, Permission.RECORD_READ}
    ),
    Role.PRETRIAL: frozenset({Permission.BAIL_RECOMMEND, Permission.RECORD_READ}),
    Role.COURT: frozenset(
        {
            Permission.ARRAIGN,
            Permission.RELEASE,
            Permission.ARREST_AMEND,
            Permission.RECORD_SEAL,
            Permission.RECORD_READ,
        }
    ),
    Role.READER: frozenset({Permission.RECORD_READ}),
    Role.ADMIN: frozenset(
        {
            Permission.AGENCY_MANAGE,
            Permission.USER_MANAGE,
            Permission.AGREEMENT_MANAGE,
            Permission.AGREEMENT_SUSPEND,
            Permission.RECORD_READ,
        }
    ),
    Role.SEALED_ACCESS: frozenset({Permission.SEALED_READ}),
    Role.VOTER: frozenset({Permission.VOTE, Permission.AGREEMENT_SUSPEND}),
    Role.AUDITOR: frozenset({Permission.AUDIT_READ}),
    Role.EXTERNAL_QUERY: frozenset({Permission.EXTERNAL_QUERY}),
}

# Roles an external agency's user may hold: reading happens only under an agreement.
EXTERNAL_ROLES: frozenset[Role] = frozenset({Role.EXTERNAL_QUERY})


def permissions_for(roles: frozenset[Role]) -> frozenset[Permission]:
    """The union of the permissions the given roles grant."""
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)
