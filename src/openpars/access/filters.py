"""Row filters of a ReadPolicy as SQL predicates, pushed into every query."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import ColumnElement, and_, exists, select, true

from openpars.access.policy import ReadPolicy
from openpars.oversight.models import Canary
from openpars.records.charges import is_current_charge
from openpars.records.enums import Grade
from openpars.records.models import Arrest, Charge, Involvement, Person


def charge_shown(policy: ReadPolicy, arrest: type[Arrest] = Arrest) -> ColumnElement[bool]:
    """A charge row the caller is shown (and may match by statute); ``arrest`` (the entity,
    correlated, or an alias the caller joins) must be the charge's arrest.

    Under a grades-limited scope only the current charges (``records.charges``) in those
    grades; a superseded revision or a withdrawn charge is never shown, matched or counted.
    """
    if policy.grades is None:
        return true()
    return and_(Charge.grade.in_(sorted(policy.grades)), is_current_charge(Charge, arrest))


def arrest_row_filter(policy: ReadPolicy) -> ColumnElement[bool]:
    """Conditions on the arrest row itself (sealing, state, grades)."""
    conditions: list[ColumnElement[bool]] = []
    if not policy.external:
        conditions.append(_NOT_CANARY_ARREST)
    if not policy.include_sealed:
        conditions.append(Arrest.sealed_at.is_(None))
        conditions.append(Arrest.expunged_at.is_(None))
    if policy.arrest_states is not None:
        conditions.append(Arrest.state.in_(sorted(policy.arrest_states)))
    if policy.grades is not None:
        # Decided on the current charges only: a DA's downgrade or withdrawal narrows it.
        conditions.append(_has_charge_shown(policy.grades))
    return and_(true(), *conditions)


@lru_cache(maxsize=64)
def _has_charge_shown(grades: frozenset[Grade]) -> ColumnElement[bool]:
    # Built once per set of grades: the aliased subqueries of the current-charge rule cost
    # 2.7 ms to build, which every transaction that recomputes visibility paid (intake twice
    # as dear). An expression is immutable and correlated anew in each statement using it.
    policy = ReadPolicy(external=True, grades=grades)
    return exists(select(Charge.id).where(Charge.arrest_id == Arrest.id, charge_shown(policy)))


# Canary records (oversight.models) exist for no internal reader: a planted arrest and its
# synthetic person are hidden here, in the row filter every internal read, write guard and
# history carries, by one primary-key probe of the small canary table. Outside agencies see
# them exactly like real records; their reads of one raise a flag (the audit append path).
_NOT_CANARY_ARREST = ~exists(select(Canary.id).where(Canary.arrest_id == Arrest.id))
_NOT_CANARY_PERSON = ~exists(select(Canary.id).where(Canary.person_id == Person.id))


def involvement_filter(policy: ReadPolicy) -> ColumnElement[bool]:
    """Conditions on an involvement row (role, juvenile); the arrest is joined separately."""
    conditions: list[ColumnElement[bool]] = []
    if policy.roles is not None:
        conditions.append(Involvement.role.in_(sorted(policy.roles)))
    if policy.exclude_juveniles:
        # Only known adults: an unknown age (NULL) counts as juvenile here.
        conditions.append(Involvement.juvenile.is_(False))
    return and_(true(), *conditions)


def visible_involvement(policy: ReadPolicy) -> ColumnElement[bool]:
    """An involvement is visible when its own row and its arrest pass the policy."""
    return and_(
        involvement_filter(policy),
        exists(
            select(Arrest.id).where(Arrest.id == Involvement.arrest_id, arrest_row_filter(policy))
        ),
    )


def person_visible(policy: ReadPolicy) -> ColumnElement[bool]:
    """A person exists for the caller only through at least one visible involvement (and,
    for an internal reader, is no canary)."""
    visible = exists(
        select(Involvement.id)
        .join(Arrest, Arrest.id == Involvement.arrest_id)
        .where(
            Involvement.person_id == Person.id,
            involvement_filter(policy),
            arrest_row_filter(policy),
        )
    )
    return visible if policy.external else and_(_NOT_CANARY_PERSON, visible)


def arrest_visible(policy: ReadPolicy) -> ColumnElement[bool]:
    """An arrest exists for the caller if its row passes and it has a visible involvement."""
    row = arrest_row_filter(policy)
    if policy.roles is None and not policy.exclude_juveniles:
        return row
    return and_(
        row,
        exists(
            select(Involvement.id).where(
                Involvement.arrest_id == Arrest.id, involvement_filter(policy)
            )
        ),
    )
