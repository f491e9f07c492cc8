"""The authenticated caller, as every service sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

from openpars.errors import Forbidden
from openpars.identity.roles import AgencyKind, Permission, Role, permissions_for


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

    def with_source(self, source_ip: str | None) -> Principal:
        """A copy recording where the request came from."""
        return Principal(
            user_id=self.user_id,
            username=self.username,
            agency_id=self.agency_id,
            agency_kind=self.agency_kind,
            roles=self.roles,
            agency_path=self.agency_path,
            source_ip=source_ip,
        )


SYSTEM = Principal(
    user_id=None,
    username="system",
    agency_id=None,
    agency_kind=None,
    roles=frozenset({Role.ADMIN}),
)
