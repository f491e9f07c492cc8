"""Matching a person being entered against existing persons: candidates, never silent merges.

A candidate has the same name (or an alias) and the same birth date; or the same name with a
birth date missing on one side; or the same birth date and a family name that starts alike.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from openpars.audit.events import AuditKind
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.records import repository as repo
from openpars.records.models import Person
from openpars.records.schemas import CandidateRead, PersonIn
from openpars.records.validation import name_key
from openpars.records.versions import audit_write, person_visible

CANDIDATE_SCAN = 500  # rows examined per matching rule; bounds the cost of very common names


def find_candidates(session: Session, person: PersonIn, *, limit: int) -> list[CandidateRead]:
    """Existing persons who may be this one, best first (no permission check, no audit)."""
    short = name_key(person.family_name, person.given_name)
    family = name_key(person.family_name)
    keys = [short] + [name_key(a.family_name, a.given_name) for a in person.aliases]
    pool: dict[int, Person] = {}
    for key in dict.fromkeys(keys):
        for found in repo.persons_by_name_key(session, key, limit=CANDIDATE_SCAN):
            pool[found.id] = found
        for found in repo.persons_by_alias_key(session, key, limit=CANDIDATE_SCAN):
            pool[found.id] = found
    if person.birth_date is not None:
        for found in repo.persons_born_on(session, person.birth_date, limit=CANDIDATE_SCAN):
            pool[found.id] = found
    scored = [c for p in pool.values() if (c := _score(p, person, set(keys), family)) is not None]
    scored.sort(key=lambda c: (-c.score, c.person_id))
    return scored[:limit]


def _score(existing: Person, person: PersonIn, keys: set[str], family: str) -> CandidateRead | None:
    """Apply the matching rules to one existing person; None when it is not a candidate."""
    names = {name_key(existing.family_name, existing.given_name)}
    names |= {a.name_key for a in existing.aliases}
    same_name = bool(names & keys)
    born, wanted = existing.birth_date, person.birth_date
    if same_name and born is not None and born == wanted:
        score, reason = 1.0, "same name and birth date"
    elif same_name and (born is None or wanted is None):
        score, reason = 0.6, "same name; birth date unknown on one side"
    elif born is not None and born == wanted and _family_prefix(existing, family):
        score, reason = 0.5, "same birth date and a family name starting alike"
    else:
        return None
    return CandidateRead(
        person_id=existing.id,
        family_name=existing.family_name,
        given_name=existing.given_name,
        birth_date=existing.birth_date,
        score=score,
        reason=reason,
    )


def _family_prefix(existing: Person, family: str) -> bool:
    """One family name key is a prefix of the other ('garcia' and 'garcia lopez')."""
    other = name_key(existing.family_name)
    return bool(other and family) and (other.startswith(family) or family.startswith(other))


def match_candidates(
    session: Session, *, actor: Principal, person: PersonIn, limit: int = 10
) -> list[CandidateRead]:
    """Existing persons who may be the person being entered, for intake to choose from."""
    actor.require(Permission.ARREST_CREATE)
    candidates = [
        c
        for c in find_candidates(session, person, limit=max(1, min(limit, 50)) * 2)
        if person_visible(session, actor, c.person_id)
    ][:limit]
    audit_write(
        session,
        actor,
        "person.match",
        kind=AuditKind.SEARCH,
        person_ids=[c.person_id for c in candidates],
        limit=limit,
        returned=len(candidates),
    )
    return candidates
