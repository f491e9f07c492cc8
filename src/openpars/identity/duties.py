"""Separation of duties: who may administer which accounts and which stakeholder's voting keys.

Each stakeholder of the board (by default the DA, the courts and the city) administers its own
users and voting keys through its own ``stakeholder_admin``; the site administrator runs the
site (agencies, other agencies' accounts, agreements) but never creates or changes anyone's
voting rights, nor touches a stakeholder's accounts or keys. The operator's console (the
``system`` principal) bootstraps each stakeholder's first administrator; that act is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.errors import Forbidden, InvalidInput
from openpars.identity import repository as repo
from openpars.identity.models import Agency, User, UserRole
from openpars.identity.principal import Principal
from openpars.identity.roles import CONSOLE_ROLES, VOTING_ROLES, Role, exclusive_pair


def is_console(actor: Principal) -> bool:
    """Whether the actor is the operator's console (``system``), not an account."""
    return actor.user_id is None and actor.username == "system"


def top_agency(session: Session, agency: Agency) -> Agency:
    """The top-level agency above a sub-unit (the agency itself if it has no parent)."""
    seen = {agency.id}
    while agency.parent_id is not None:
        parent = repo.get_agency(session, agency.parent_id)
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        agency = parent
    return agency


def stakeholder_ids(session: Session) -> frozenset[int]:
    """The board's stakeholders: members of the board in force, else the default kinds'."""
    # Imported here: governance builds on identity, not the other way round.
    from openpars.governance import repository as gov_repo

    board = gov_repo.latest_board(session)
    if board is not None:
        return frozenset(board.members)
    return frozenset(a.id for a in gov_repo.default_member_agencies(session))


def actor_stakeholder(actor: Principal) -> int | None:
    """The top-level agency a stakeholder administrator speaks for."""
    if Role.STAKEHOLDER_ADMIN not in actor.roles or not actor.agency_path:
        return None
    return actor.agency_path[-1]


def refuse_exclusive(roles: frozenset[Role]) -> None:
    """Refuse a set of roles holding two that exclude each other (identity/roles.py)."""
    pair = exclusive_pair(roles)
    if pair is not None:
        raise InvalidInput(
            f"roles: '{pair[0].value}' and '{pair[1].value}' exclude each other (separation "
            "of duties); no account may hold both",
            code="roles_exclusive",
            field="roles",
        )


def require_account_authority(
    session: Session,
    actor: Principal,
    agency: Agency,
    roles: frozenset[Role],
    *,
    granting: bool = False,
) -> None:
    """Refuse unless ``actor`` may administer an account of ``agency`` holding ``roles``.

    ``granting`` marks acts that give an account its roles (create, enable): the console may
    only bootstrap those; its other acts (tokens, disabling) are the operator's and audited.
    """
    owner = top_agency(session, agency).id
    if is_console(actor):
        if granting:
            require_console_bootstrap(session, owner, roles)
        return
    refusal = authority_refusal(actor, owner, roles, stakeholder_ids(session))
    if refusal is not None:
        raise refusal


def authority_refusal(
    actor: Principal, owner: int, roles: frozenset[Role], stakeholders: frozenset[int]
) -> Forbidden | None:
    """Why an account (not the console) may not administer an account of top-level agency
    ``owner`` holding ``roles``, or None if it may: the one decision require_account_authority
    and a list of accounts (AuthorityScope) both take."""
    console_only = sorted(r.value for r in roles & CONSOLE_ROLES)
    if console_only:
        return Forbidden(
            f"roles: accounts holding {', '.join(console_only)} are appointed and administered "
            f"only at the operator's console (separation of duties); {actor.username} may not",
            code="agreement_admin_by_console",
            field="roles",
        )
    own = actor_stakeholder(actor)
    voting = sorted(r.value for r in roles & VOTING_ROLES)
    if voting and own != owner:
        return Forbidden(
            f"roles: only agency {owner}'s own stakeholder administrator may grant or change "
            f"voting rights ({', '.join(voting)}); {actor.username} is not",
            code="voting_rights_by_own_stakeholder",
            field="roles",
        )
    if Role.ADMIN in roles and Role.ADMIN not in actor.roles:
        # A stakeholder's administrator must not mint a site administrator of its own.
        return Forbidden(
            f"roles: only the site administrator or the console may grant 'admin'; "
            f"{actor.username} may not",
            code="site_role_by_site_admin",
            field="roles",
        )
    if owner in stakeholders:
        if own != owner:
            return Forbidden(
                f"agency_id: agency {owner} is a stakeholder of the board and administers its "
                f"own users; {actor.username} is not its stakeholder administrator",
                code="other_stakeholder_account",
                field="agency_id",
            )
    elif own is not None and own != owner:
        return Forbidden(
            f"agency_id: a stakeholder administrator manages only its own stakeholder's "
            f"accounts (agency {own}), not agency {owner}'s",
            code="other_stakeholder_account",
            field="agency_id",
        )
    return None


@dataclass(frozen=True, slots=True)
class AuthorityScope:
    """What deciding account authority reads of the site, read once for a whole list of
    accounts (the board's stakeholders and every agency's parent) instead of once per account."""

    actor: Principal
    stakeholders: frozenset[int]
    parents: dict[int, int | None]

    @classmethod
    def read(cls, session: Session, actor: Principal) -> AuthorityScope:
        """The scope of ``actor``: two queries, however many accounts are then decided."""
        rows = session.execute(select(Agency.id, Agency.parent_id)).all()
        return cls(actor, stakeholder_ids(session), {row.id: row.parent_id for row in rows})

    def owner(self, agency_id: int) -> int:
        """The top-level agency above ``agency_id`` (as top_agency, from the parents read)."""
        current, seen = agency_id, {agency_id}
        while True:
            parent = self.parents.get(current)
            if parent is None or parent not in self.parents or parent in seen:
                return current
            seen.add(parent)
            current = parent

    def may_administer(self, user: User) -> bool:
        """Whether require_account_authority would let the actor administer ``user``."""
        if is_console(self.actor):
            return True
        owner = self.owner(user.agency_id)
        return authority_refusal(self.actor, owner, user.roles, self.stakeholders) is None


def active_stakeholder_admins(session: Session, owner: int) -> list[str]:
    """Usernames of the active stakeholder administrators of top-level agency ``owner``."""
    found = []
    for user in session.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(User.is_active, UserRole.role == Role.STAKEHOLDER_ADMIN)
        .order_by(User.username)
    ):
        if top_agency(session, user.agency).id == owner:
            found.append(user.username)
    return found


def require_console_bootstrap(session: Session, owner: int, roles: frozenset[Role]) -> None:
    """The console grants no vote, and a stakeholder's administrator only while it has none."""
    if Role.VOTER in roles:
        raise Forbidden(
            f"roles: the console does not grant votes; agency {owner}'s own stakeholder "
            "administrator creates its voters",
            code="voting_rights_by_own_stakeholder",
            field="roles",
        )
    if Role.STAKEHOLDER_ADMIN in roles:
        existing = active_stakeholder_admins(session, owner)
        if existing:
            raise Forbidden(
                f"roles: agency {owner} already has an active stakeholder administrator "
                f"({', '.join(existing)}); the console bootstraps only the first one, and "
                "further ones are created by that administrator",
                code="stakeholder_admin_exists",
                field="roles",
            )


def require_key_authority(session: Session, actor: Principal, stakeholder: int) -> None:
    """Refuse unless ``actor`` is ``stakeholder``'s own administrator (keys are bound to one)."""
    own = actor_stakeholder(actor)
    if own == stakeholder:
        return
    raise Forbidden(
        f"agency_id: only agency {stakeholder}'s own stakeholder administrator may register or "
        f"revoke its voting keys; {actor.username} is not (site administrators and voters "
        "never can)",
        code="key_by_own_stakeholder",
        field="agency_id",
    )
