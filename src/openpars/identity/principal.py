"""The authenticated caller, as every service sees it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from openpars.db import utcnow
from openpars.errors import Forbidden, NotAuthenticated
from openpars.identity.roles import AgencyKind, Permission, Role, permissions_for


class Via(StrEnum):
    """How the caller authenticated: it decides what a privileged act asks of it."""

    # In the process itself: the operator's console, a job, a test.
    CONSOLE = "console"
    # An API token: a machine client, no password nor one-time code to prove again.
    TOKEN = "token"  # noqa: S105 - a kind of credential, not a secret
    # An interactive logon session (password, one-time code, banner).
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a user of an agency, with roles; ``system`` for internal jobs."""

    user_id: int | None
    username: str
    agency_id: int | None
    agency_kind: AgencyKind | None
    roles: frozenset[Role]
    # The chain of agency ids from the user's own unit up to its top-level agency.
    agency_path: tuple[int, ...] = ()
    source_ip: str | None = None
    via: Via = Via.CONSOLE
    # SESSION: until when the password and code proved in the session allow privileged acts.
    fresh_until: datetime | None = None
    # TOKEN: whether the site lets API tokens perform privileged acts (token_privileged_acts).
    tokens_privileged: bool = True
    permissions: frozenset[Permission] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "permissions", permissions_for(self.roles))

    @property
    def is_external(self) -> bool:
        """External agencies see records only under a data-sharing agreement."""
        return self.agency_kind is AgencyKind.EXTERNAL

    def can(self, permission: Permission) -> bool:
        """Whether the caller holds a permission."""
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        """Raise Forbidden unless the caller holds the permission."""
        if permission not in self.permissions:
            raise Forbidden(
                f"your account ({self.username}) lacks the permission '{permission.value}'",
                code="permission_denied",
                details={"permission": permission.value},
            )

    def require_fresh(self, *, now: datetime | None = None) -> None:
        """Refuse a privileged act (a vote, an agreement, key or user change, a shred) unless
        the caller proved password and one-time code recently (CJIS IA-11).

        An interactive session must have re-authenticated within the site's window; an API token
        passes only where the site lets tokens perform privileged acts; the console passes.
        """
        if self.via is Via.SESSION:
            if self.fresh_until is None or (now or utcnow()) >= self.fresh_until:
                raise NotAuthenticated(
                    "this act needs your password and one-time code proved within the last few "
                    "minutes: re-authenticate (POST /api/v1/sessions/current/reauthenticate), "
                    "then try again",
                    code="reauthentication_required",
                )
        elif self.via is Via.TOKEN and not self.tokens_privileged:
            raise Forbidden(
                f"this act needs an interactive logon (password and one-time code); the API "
                f"token of {self.username} may not perform it on this site "
                "(OPENPARS_TOKEN_PRIVILEGED_ACTS is false)",
                code="interactive_session_required",
            )

    def with_source(self, source_ip: str | None) -> Principal:
        """A copy recording where the request came from."""
        return replace(self, source_ip=source_ip)

    def authenticated(
        self, *, via: Via, fresh_until: datetime | None = None, tokens_privileged: bool = True
    ) -> Principal:
        """A copy recording how the caller authenticated."""
        return replace(self, via=via, fresh_until=fresh_until, tokens_privileged=tokens_privileged)


SYSTEM = Principal(
    user_id=None,
    username="system",
    agency_id=None,
    agency_kind=None,
    # The operator's console runs the site and, at the console only, its agreements too.
    roles=frozenset({Role.ADMIN, Role.AGREEMENT_ADMIN}),
)
