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
    # Drafts, proposes and suspends agreements and the site floor (they take effect only by the
    # board's signed quorum); never administers accounts, and appointed only at the console.
    AGREEMENT_ADMIN = "agreement_admin"
    STAKEHOLDER_ADMIN = "stakeholder_admin"
    SEALED_ACCESS = "sealed_access"
    VOTER = "voter"
    AUDITOR = "auditor"
    # Reviews how outside agencies use their access (issue 13): explanations, flags, cases.
    OVERSIGHT = "oversight"
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
    KEY_MANAGE = "key:manage"
    OVERSIGHT_READ = "oversight:read"
    OVERSIGHT_REVIEW = "oversight:review"


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
    # The site administrator: agencies and accounts, never agreements nor votes.
    Role.ADMIN: frozenset(
        {Permission.AGENCY_MANAGE, Permission.USER_MANAGE, Permission.RECORD_READ}
    ),
    Role.AGREEMENT_ADMIN: frozenset(
        {Permission.AGREEMENT_MANAGE, Permission.AGREEMENT_SUSPEND, Permission.RECORD_READ}
    ),
    # A stakeholder's own administrator: its users and its voting keys, nothing of anyone else's.
    Role.STAKEHOLDER_ADMIN: frozenset({Permission.USER_MANAGE, Permission.KEY_MANAGE}),
    Role.SEALED_ACCESS: frozenset({Permission.SEALED_READ}),
    Role.VOTER: frozenset({Permission.VOTE, Permission.AGREEMENT_SUSPEND}),
    Role.AUDITOR: frozenset({Permission.AUDIT_READ}),
    Role.OVERSIGHT: frozenset({Permission.OVERSIGHT_READ, Permission.OVERSIGHT_REVIEW}),
    Role.EXTERNAL_QUERY: frozenset({Permission.EXTERNAL_QUERY}),
}

# Roles an external agency's user may hold: reading happens only under an agreement.
EXTERNAL_ROLES: frozenset[Role] = frozenset({Role.EXTERNAL_QUERY})


# Roles that carry voting rights: only the stakeholder's own administrator (or the operator's
# console bootstrap) grants them, never the site administrator.
VOTING_ROLES: frozenset[Role] = frozenset({Role.VOTER, Role.STAKEHOLDER_ADMIN})

# Separation of duties (CJIS AC-5): whoever administers accounts or watches the audit log
# (ADMINISTRATION) never changes agreements nor votes (GOVERNANCE). No role holds both, and
# EXCLUSIVE_ROLES keeps any two roles that would give both out of one account
# (tests/identity/test_duties.py checks every pair).
ADMINISTRATION: frozenset[Permission] = frozenset(
    {
        Permission.AGENCY_MANAGE,
        Permission.USER_MANAGE,
        Permission.KEY_MANAGE,
        Permission.AUDIT_READ,
    }
)
GOVERNANCE: frozenset[Permission] = frozenset(
    {Permission.AGREEMENT_MANAGE, Permission.AGREEMENT_SUSPEND, Permission.VOTE}
)

# Which roles exclude which (symmetric): no account may hold both roles of a pair. Beyond the
# rule above: the site administrator must not also hold the auditor's watch over itself, nor
# review (oversight) how accounts, its own included, use their access; a stakeholder's
# administrator registers the keys its voters sign with, so it does not sign itself; an
# external agency's user only reads under agreements.
EXCLUSIVE_ROLES: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset(
        {
            Role.AGREEMENT_ADMIN,
            Role.VOTER,
            Role.STAKEHOLDER_ADMIN,
            Role.AUDITOR,
            Role.OVERSIGHT,
        }
    ),
    Role.AGREEMENT_ADMIN: frozenset({Role.ADMIN, Role.STAKEHOLDER_ADMIN, Role.AUDITOR}),
    Role.STAKEHOLDER_ADMIN: frozenset({Role.ADMIN, Role.AGREEMENT_ADMIN, Role.VOTER}),
    Role.VOTER: frozenset({Role.ADMIN, Role.STAKEHOLDER_ADMIN, Role.AUDITOR}),
    Role.AUDITOR: frozenset({Role.ADMIN, Role.AGREEMENT_ADMIN, Role.VOTER}),
    Role.OVERSIGHT: frozenset({Role.ADMIN}),
    Role.EXTERNAL_QUERY: frozenset(set(Role) - {Role.EXTERNAL_QUERY}),
}
# Roles only the operator's console grants or administers: an account that changes agreements
# must not be one the site administrator could take over by resetting its password and MFA.
CONSOLE_ROLES: frozenset[Role] = frozenset({Role.AGREEMENT_ADMIN})


def exclusive_pair(roles: frozenset[Role]) -> tuple[Role, Role] | None:
    """The first pair of mutually exclusive roles among ``roles`` (sorted), if any."""
    for role in sorted(roles):
        for other in sorted(EXCLUSIVE_ROLES.get(role, frozenset()) & roles):
            return role, other
    return None


def permissions_for(roles: frozenset[Role]) -> frozenset[Permission]:
    """The union of the permissions the given roles grant."""
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)
