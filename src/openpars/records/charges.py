"""Which of an arrest's charges are current: the one definition, in Python and in SQL.

Charges are kept as versions (``Charge.stage``, ``Charge.revision``): police recommend a set
at intake (stage ``recommended``), and each charging decision of the DA that approves or
modifies writes a new ``approved`` revision; nothing is ever deleted. The charges **current**
on an arrest are:

* none, if the arrest is ``declined``: the DA withdrew every charge (a decline can follow an
  approval, and the approved revision stays in the history, but it is no longer in force);
* otherwise the highest ``approved`` revision, if the DA has approved or modified any;
* otherwise the highest ``recommended`` revision (awaiting the DA's decision).

So a DA's downgrade (a modified revision with lesser grades) or withdrawal (a decline) changes
what is current at once. An agreement's ``grades`` test the current charges only, an arrest
visible under it shows only its current charges in those grades, and a statute search under it
matches only those charges (``access.filters.charge_shown``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from openpars.records.enums import ArrestState, ChargeStage
from openpars.records.models import Arrest, Charge


def current_charges(state: ArrestState, charges: Iterable[Charge]) -> list[Charge]:
    """The charges current on an arrest in this state, out of all its charges (any order)."""
    if state is ArrestState.DECLINED:
        return []
    rows = list(charges)
    approved = [c for c in rows if c.stage is ChargeStage.APPROVED]
    stage_rows = approved or [c for c in rows if c.stage is ChargeStage.RECOMMENDED]
    if not stage_rows:
        return []
    latest = max(c.revision for c in stage_rows)
    return sorted((c for c in stage_rows if c.revision == latest), key=lambda c: c.sequence)


def is_current_charge(
    charge: type[Charge] = Charge, arrest: type[Arrest] = Arrest
) -> ColumnElement[bool]:
    """SQL: the charge row (``charge``, the Charge entity or an alias) is current on its arrest
    (``arrest``, the entity or an alias, which the caller joins or correlates to the charge).

    The same rule as ``current_charges``; tests/access/test_policy_differential checks the two
    agree.
    """
    other = aliased(Charge)
    latest_of_stage = (
        select(func.max(other.revision))
        .where(other.arrest_id == charge.arrest_id, other.stage == charge.stage)
        .scalar_subquery()
    )
    approved = aliased(Charge)
    any_approved = exists(
        select(approved.id).where(
            approved.arrest_id == charge.arrest_id, approved.stage == ChargeStage.APPROVED
        )
    )
    return and_(
        arrest.state != ArrestState.DECLINED,
        charge.revision == latest_of_stage,
        or_(charge.stage == ChargeStage.APPROVED, ~any_approved),
    )
