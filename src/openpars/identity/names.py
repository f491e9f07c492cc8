"""Names for the agency and account ids a page shows, in one statement for the whole page.

The services return ids (the API's contract); a person reads names. A page collects every id it
is about to show and asks once: agencies by name, accounts by display name and username. An id
that names nothing (an account or agency removed, or an id from an old record) is shown as the
id, never dropped. Names of agencies and accounts are the site's directory, shown to every
signed-on user in the page header already; reading them is not a record read and is not
audited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import literal, select, union_all
from sqlalchemy.orm import Session

from openpars.identity.models import Agency, User

_AGENCY, _USER = "a", "u"


@dataclass(frozen=True)
class Names:
    """Agency and account names by id, for one page."""

    agencies: dict[int, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)

    def agency(self, agency_id: int | None) -> str:
        """The agency's name ("agency 7" when none is known)."""
        if agency_id is None:
            return ""
        return self.agencies.get(agency_id) or f"agency {agency_id}"

    def user(self, user_id: int | None) -> str:
        """The account's display name and username ("user 7" when none is known)."""
        if user_id is None:
            return ""
        return self.users.get(user_id) or f"user {user_id}"


def _ids(values: Iterable[int | None]) -> list[int]:
    return sorted({v for v in values if v is not None})


def names_of(
    session: Session,
    *,
    agencies: Iterable[int | None] = (),
    users: Iterable[int | None] = (),
) -> Names:
    """The names of these agencies and accounts: one statement (none when there are no ids)."""
    agency_ids, user_ids = _ids(agencies), _ids(users)
    parts = []
    if agency_ids:
        parts.append(
            select(literal(_AGENCY).label("kind"), Agency.id, Agency.name, literal("")).where(
                Agency.id.in_(agency_ids)
            )
        )
    if user_ids:
        parts.append(
            select(literal(_USER).label("kind"), User.id, User.display_name, User.username).where(
                User.id.in_(user_ids)
            )
        )
    if not parts:
        return Names()
    statement = parts[0] if len(parts) == 1 else union_all(*parts)
    found = Names()
    for kind, row_id, name, username in session.execute(statement).all():
        if kind == _AGENCY:
            found.agencies[int(row_id)] = str(name)
        else:
            found.users[int(row_id)] = f"{name} ({username})"
    return found
