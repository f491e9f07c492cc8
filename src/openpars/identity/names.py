"""The names people read in place of the ids of users and agencies, for a whole page at once.

A page lists rows naming users (who changed a version, who made an audit entry) and agencies
(by id or by ORI); it collects every id first and asks for all the names in one query, never
one per row. Only names are looked up, never used to decide anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from openpars.identity import repository as repo


@dataclass(frozen=True, slots=True)
class Names:
    """Users and agencies by id (and agencies by ORI), as a person reads them."""

    users: dict[int, str] = field(default_factory=dict)
    agencies: dict[int, str] = field(default_factory=dict)
    oris: dict[str, str] = field(default_factory=dict)

    def user(self, user_id: int | None) -> str:
        """``Display Name (username)``; the id itself for an account that no longer exists,
        and "" for none (the console's system principal)."""
        if user_id is None:
            return ""
        return self.users.get(user_id, f"user {user_id}")

    def agency(self, agency_id: int | None) -> str:
        """The agency's name; its id for one that is not registered, "" for none."""
        if agency_id is None:
            return ""
        return self.agencies.get(agency_id, f"agency {agency_id}")

    def ori(self, ori: str | None) -> str:
        """``Agency name (ORI)``, or the ORI alone when no registered agency has it."""
        if not ori:
            return ""
        name = self.oris.get(ori)
        return f"{name} ({ori})" if name else ori


def names_of(
    session: Session,
    *,
    user_ids: Iterable[int | None] = (),
    agency_ids: Iterable[int | None] = (),
    oris: Iterable[str | None] = (),
) -> Names:
    """The names of these users and agencies, in one query (none when there is nothing to
    name)."""
    found = Names()
    rows = repo.names_by_id(
        session,
        user_ids=sorted({i for i in user_ids if i is not None}),
        agency_ids=sorted({i for i in agency_ids if i is not None}),
        oris=sorted({o for o in oris if o}),
    )
    for kind, key, name, extra in rows:
        if kind == "user":
            found.users[int(key)] = f"{name} ({extra})" if name != extra else name
        else:
            found.agencies[int(key)] = name
            if extra:
                found.oris[extra] = name
    return found
