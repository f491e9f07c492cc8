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

from sqlalchemy.orm import Session

from openpars.identity import repository as repo


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
    found_agencies, found_users = repo.names_by_id(
        session, agency_ids=_ids(agencies), user_ids=_ids(users)
    )
    return Names(
        agencies=found_agencies,
        users={i: f"{name} ({username})" for i, (name, username) in found_users.items()},
    )
