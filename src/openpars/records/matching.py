"""Matching a person being entered against existing persons: candidates, never silent merges.

A candidate has the same name (or an alias) and the same birth date; or the same name with a
birth date missing on one side; or the same birth date and a family name that starts alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from openpars.audit.events import AuditKind
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.records import repository as repo
from openpars.records.models import Person
from openpars.records.schemas import CandidateRead, PersonIn
from openpars.records.validation import name_key
from openpars.records.versions import audit_write, person_visible

# Rows examined per person being matched; bounds the cost of very common names.
CANDIDATE_SCAN = 500


def find_candidates(session: Session, person: PersonIn, *, limit: int) -> list[CandidateRead]:
    """Existing persons who may be this one, best first (no permission check, no audit)."""
    return find_candidates_many(session, [person], limit=limit)[0]


def find_candidates_many(
    session: Session, persons: Sequence[PersonIn], *, limit: int
) -> list[list[CandidateRead]]:
    """Candidates for each of several persons, from one query over all their names and dates."""
    wanted = [(person, _keys(person), name_key(person.family_name)) for person in persons]
    pool = repo.persons_resembling(
        session,
        name_keys=[key for _, keys, _ in wanted for key in keys],
        birth_dates=[p.birth_date for p in persons if p.birth_date is not None],
        limit=CANDIDATE_SCAN * max(1, len(persons)),
    )
    results: list[list[CandidateRead]] = []
    for person, keys, family in wanted:
        scored = [c for p in pool if (c := _score(p, person, keys, family)) is not None]
        scored.sort(key=lambda c: (-c.score, c.person_id))
        results.append(scored[:limit])
    return results


def _keys(person: PersonIn) -> set[str]:
    """The name keys a person is known by: family and given name, and each alias."""
    keys = {name_key(person.family_name, person.given_name)}
    return keys | {name_key(a.family_name, a.given_name) for a in person.aliases}


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
