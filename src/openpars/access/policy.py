"""A read policy compiled once per request: who may see which rows and which fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from openpars.audit.canonical import canonical_text
from openpars.records.enums import ArrestState, Grade, InvolvementRole

# A column transform, chosen once per request from the field policy; None means "as stored".
Mask = Callable[[Any], Any]


def year_only(value: Any) -> Any:
    """The YEAR_ONLY mask: a date or time shown as its year alone (\"1987\")."""
    # A datetime is a date too.
    return str(value.year) if isinstance(value, date) else None


def last_4(value: Any) -> Any:
    """The SHOW_LAST_4 mask: every character but the last four shown as x."""
    text = str(value)
    return "x" * max(0, len(text) - 4) + text[-4:]


# A mask over one field of a page of rows (dicts), in place; None values stay None.
RowsMask = Callable[[list[dict[str, Any]]], None]


def rows_mask(name: str, mask: Mask) -> RowsMask:
    """The mask of one field compiled for a page: a loop over the rows, the mask inlined for
    the masks search pages apply most (``year_only``, ``last_4``); the same values as
    ``mask`` on each row's value that is not None."""
    if mask is year_only:

        def years(rows: list[dict[str, Any]]) -> None:
            for row in rows:
                value = row.get(name)
                if value is not None:
                    row[name] = str(value.year) if isinstance(value, date) else None

        return years
    if mask is last_4:

        def lasts(rows: list[dict[str, Any]]) -> None:
            for row in rows:
                value = row.get(name)
                if value is not None:
                    text = str(value)
                    row[name] = "x" * max(0, len(text) - 4) + text[-4:]

        return lasts

    def each(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            value = row.get(name)
            if value is not None:
                row[name] = mask(value)

    return each


@dataclass(frozen=True, slots=True)
class FieldProjection:
    """Which fields of a record a caller receives, and how each is masked."""

    # None: every field, unmasked (internal readers).
    allowed: frozenset[str] | None = None
    masks: Mapping[str, Mask] = field(default_factory=dict)
    # Sub-fields of granted parts withheld anyway ("arraignment.conditions"): the floor's.
    withheld: frozenset[str] = frozenset()
    # The agreement's rule behind each mask ("hash", "year_only" ...), for refusals that name it.
    rules: Mapping[str, str] = field(default_factory=dict)
    # The masks as (field, mask) pairs, and each compiled for a page of rows, made once (a
    # projection is compiled once per agreement version): shaping runs them on every row.
    mask_list: tuple[tuple[str, Mask], ...] = field(init=False, repr=False, compare=False)
    rows_masks: tuple[RowsMask, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask_list", tuple(self.masks.items()))
        rows = tuple(rows_mask(name, mask) for name, mask in self.mask_list)
        object.__setattr__(self, "rows_masks", rows)

    def shows(self, name: str) -> bool:
        """Whether the field is returned at all."""
        return self.allowed is None or name in self.allowed

    def withholds(self, part: str, name: str) -> bool:
        """Whether a sub-field of a granted part is withheld (returned as null)."""
        return f"{part}.{name}" in self.withheld

    def plain(self, name: str) -> bool:
        """Whether the field is returned whole, unmasked: only such a field may be searched by
        or sorted on, since a criterion or an order would disclose what the mask hides."""
        return self.shows(name) and name not in self.masks

    def shows_year(self, name: str) -> bool:
        """Whether at least the year of a date field is returned (whole, or year only)."""
        return self.shows(name) and self.masks.get(name, year_only) is year_only

    def apply(self, name: str, value: Any) -> Any:
        """The value the caller receives for one visible field."""
        mask = self.masks.get(name)
        return mask(value) if mask is not None and value is not None else value


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    """Row filters and field projections for one caller at one instant.

    Row filters become SQL predicates (``access.filters``); projections are applied to the
    selected columns only. Nothing here is evaluated per row by a policy engine.
    """

    external: bool
    # None: every role (internal readers); otherwise only involvements in these roles exist.
    roles: frozenset[InvolvementRole] | None = None
    include_sealed: bool = False
    exclude_juveniles: bool = False
    arrest_states: frozenset[ArrestState] | None = None
    grades: frozenset[Grade] | None = None
    person_fields: FieldProjection = field(default_factory=FieldProjection)
    arrest_fields: FieldProjection = field(default_factory=FieldProjection)
    # Query-shape limits of external agreements.
    exact_identifiers_only: bool = False
    name_search: bool = True
    max_results: int | None = None
    rate_per_user: int | None = None
    rate_per_agency: int | None = None
    # The agreement behind the decision, for the audit entry and the explanation.
    agreement_id: int | None = None
    agreement_version: int | None = None
    agreement_hash: str | None = None
    clauses: tuple[str, ...] = ()
    # The canonical JSON of explain(), written on first use (``explained``).
    _explained: str | None = field(default=None, init=False, repr=False, compare=False)

    def row_key(self) -> tuple[Any, ...]:
        """Everything the row filter depends on: statements are prepared per distinct key."""
        return (
            self.roles,
            self.include_sealed,
            self.exclude_juveniles,
            self.arrest_states,
            self.grades,
            # Internal readers never see canary records (access.filters); outsiders do.
            self.external,
        )

    def explain(self) -> dict[str, Any]:
        """Which agreement version and which clauses shaped this read."""
        return {
            "external": self.external,
            "agreement_id": self.agreement_id,
            "agreement_version": self.agreement_version,
            "agreement_hash": self.agreement_hash,
            "clauses": list(self.clauses),
        }

    def explained(self) -> str:
        """``explain()`` as canonical JSON (``audit.canonical``), the text every audit entry of
        a read under this policy carries as its decision: written once per policy, which is
        immutable (a policy is compiled once per agreement version and floor), on first use."""
        text = self._explained
        if text is None:
            text = canonical_text(self.explain())
            object.__setattr__(self, "_explained", text)
        return text


def internal_policy(*, sealed_access: bool) -> ReadPolicy:
    """Internal readers see every role and field; sealed records only with sealed access."""
    # Two policies in all, each built once: a policy is immutable, and building one (two
    # field projections and their compiled masks) cost an internal read 20-25 us.
    return _INTERNAL[sealed_access]


def _internal(sealed_access: bool) -> ReadPolicy:
    clauses = ["internal reader: all roles and fields"]
    clauses.append(
        "sealed and expunged records included (sealed_access)"
        if sealed_access
        else "sealed and expunged records excluded"
    )
    return ReadPolicy(external=False, include_sealed=sealed_access, clauses=tuple(clauses))


_INTERNAL = {sealed: _internal(sealed) for sealed in (False, True)}
