"""Turn selected rows into response shapes through the caller's field projection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from openpars.access.policy import FieldProjection, ReadPolicy
from openpars.records.charges import current_charges
from openpars.records.models import Arrest, Involvement, Person
from openpars.records.schemas import (
    AliasRead,
    ArraignmentRead,
    ArrestRead,
    BailRecommendationRead,
    ChargeRead,
    ChargingDecisionRead,
    CustodyRead,
    InvolvementRead,
    PersonDetail,
    PersonRead,
)

# Every field of a person a reader can be shown, as the response model declares them.
PERSON_SCALARS = tuple(name for name in PersonRead.model_fields if name not in ("id", "aliases"))
ARREST_SCALARS = (
    "otn",
    "incident_number",
    "ori",
    "arrested_at",
    "arrest_type",
    "state",
    "docket_number",
    "report_id",
    "arresting_officer",
    "location",
    "narrative",
    "version",
)
ARREST_SUMMARY_SCALARS = ARREST_SCALARS[:7]
_PartT = TypeVar("_PartT", bound=BaseModel)
# Parts of an arrest an agreement can grant or withhold as a whole.
ARREST_PARTS = ("charges", "charging_decisions", "bail_recommendations", "arraignment", "custody")


def _project(obj: Any, names: tuple[str, ...], projection: FieldProjection) -> dict[str, Any]:
    return {
        name: projection.apply(name, getattr(obj, name)) for name in names if projection.shows(name)
    }


def person_read(person: Person, policy: ReadPolicy) -> PersonRead:
    """A person with only the fields the policy shows, masked as it says."""
    values = _project(person, PERSON_SCALARS, policy.person_fields)
    if policy.person_fields.shows("aliases"):
        # Masked like any field: an agreement that nullifies aliases gets null, not the list.
        values["aliases"] = policy.person_fields.apply(
            "aliases",
            [AliasRead(family_name=a.family_name, given_name=a.given_name) for a in person.aliases],
        )
    return PersonRead(id=person.id, **values)


def person_rows(
    rows: list[dict[str, Any]], aliases: dict[int, list[dict[str, Any]]] | None, policy: ReadPolicy
) -> list[dict[str, Any]]:
    """Search rows (only the shown columns were selected), masked as the policy says, with
    their aliases if shown; the rows are changed in place and returned.

    Plain values: the page model validates a whole page of them in one call, which costs a
    fraction of building one model per row.
    """
    fields = policy.person_fields
    _mask_rows(rows, fields)
    if aliases is not None:
        # Masked like any field (FieldProjection.apply): a list is never None.
        mask = fields.masks.get("aliases")
        for row in rows:
            found = aliases.get(row["id"], [])
            row["aliases"] = found if mask is None else mask(found)
    return rows


def _mask_rows(rows: list[dict[str, Any]], fields: FieldProjection) -> None:
    # Only the masked fields are touched, a column at a time (each mask compiled for a page
    # with its projection); the rest were selected as shown.
    for mask in fields.rows_masks:
        mask(rows)


def arrest_row(row: dict[str, Any], policy: ReadPolicy) -> dict[str, Any]:
    """A search row of an arrest, masked as the policy says (plain values, as person_rows)."""
    values = {n: v for n, v in row.items() if n not in ("sealed_at", "expunged_at")}
    for name, mask in policy.arrest_fields.mask_list:
        value = values.get(name)
        if value is not None:
            values[name] = mask(value)
    values["sealed"] = row["sealed_at"] is not None or row["expunged_at"] is not None
    return values


def involvement_read(
    involvement: Involvement, policy: ReadPolicy, *, with_person: bool
) -> InvolvementRead:
    """An involvement, optionally with its (projected) person."""
    return InvolvementRead(
        id=involvement.id,
        arrest_id=involvement.arrest_id,
        person_id=involvement.person_id,
        role=involvement.role,
        juvenile=involvement.juvenile,
        person=person_read(involvement.person, policy) if with_person else None,
    )


def person_detail(
    person: Person, involvements: list[Involvement], policy: ReadPolicy
) -> PersonDetail:
    """A person with their visible involvements."""
    base = person_read(person, policy)
    return PersonDetail(
        **base.model_dump(exclude_unset=True),
        involvements=[involvement_read(i, policy, with_person=False) for i in involvements],
    )


def _part(value: _PartT, part: str, fields: FieldProjection) -> _PartT:
    """A granted part with the sub-fields the floor withholds (free text) set to null."""
    withheld = {name: None for name in type(value).model_fields if fields.withholds(part, name)}
    return value.model_copy(update=withheld) if withheld else value


def shown_charges(
    arrest: Arrest, policy: ReadPolicy, charges: Sequence[Any] | None = None
) -> list[Any]:
    """The charges of an arrest the caller is shown, out of ``charges`` (its every charge,
    ``arrest.charges`` if not given): every version to a reader without a grades limit; under
    one, only the current charges in its grades (as ``filters.charge_shown`` selects in SQL)."""
    every = arrest.charges if charges is None else charges
    if policy.grades is None:
        return list(every)
    current = current_charges(arrest.state, every)
    return [c for c in current if c.grade in policy.grades]


def shown_parts(policy: ReadPolicy) -> tuple[str, ...]:
    """The parts of an arrest a fetch under this policy shows, and so the only ones it reads."""
    return tuple(p for p in ARREST_PARTS if policy.arrest_fields.shows(p))


def arrest_read(
    arrest: Arrest,
    involvements: list[Involvement],
    policy: ReadPolicy,
    read: Mapping[str, Sequence[Any]] | None = None,
) -> ArrestRead:
    """An arrest with its visible involvements and the parts the policy grants: those in
    ``read`` (each part's rows, as ``repository.send_arrest_parts`` reads them), else the
    arrest's own. A part the policy does not show is never looked at."""
    fields = policy.arrest_fields

    def rows(part: str) -> Sequence[Any]:
        return getattr(arrest, part) if read is None else read[part]

    def one(part: str) -> Any:
        if read is None:
            return getattr(arrest, part)
        found = read[part]
        return found[0] if found else None

    values = _project(arrest, ARREST_SCALARS, fields)
    parts: dict[str, Any] = {}
    if fields.shows("charges"):
        charges = shown_charges(arrest, policy, rows("charges"))
        parts["charges"] = [ChargeRead.model_validate(c) for c in charges]
    if fields.shows("charging_decisions"):
        parts["charging_decisions"] = [
            _part(ChargingDecisionRead.model_validate(d), "charging_decisions", fields)
            for d in rows("charging_decisions")
        ]
    if fields.shows("bail_recommendations"):
        parts["bail_recommendations"] = [
            _part(BailRecommendationRead.model_validate(b), "bail_recommendations", fields)
            for b in rows("bail_recommendations")
        ]
    # Optional parts may also be nullified by the agreement.
    arraignment_row = one("arraignment") if fields.shows("arraignment") else None
    if arraignment_row is not None:
        arraignment = ArraignmentRead.model_validate(arraignment_row)
        parts["arraignment"] = fields.apply(
            "arraignment", _part(arraignment, "arraignment", fields)
        )
    custody_row = one("custody") if fields.shows("custody") else None
    if custody_row is not None:
        parts["custody"] = fields.apply("custody", CustodyRead.model_validate(custody_row))
    return ArrestRead(
        id=arrest.id,
        sealed=arrest.is_sealed,
        involvements=[involvement_read(i, policy, with_person=True) for i in involvements],
        **values,
        **parts,
    )
