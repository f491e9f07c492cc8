"""The scope of a data-sharing agreement: the contract the enforcement point compiles into SQL.

Every model is frozen and refuses unknown keys. Field names and the masks each may take are
derived from the read models (``PersonRead``, ``ArrestRead``), so a field added there becomes
grantable here with the masks its type allows, and a typo can never grant anything.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from openpars.records.enums import ArrestState, Grade, InvolvementRole
from openpars.records.schemas import ArrestRead, PersonRead
from openpars.text import Line

PURPOSE_PATTERN = r"^[a-z][a-z0-9-]{2,40}$"


class FieldPolicy(StrEnum):
    """What an external caller receives for one field (Apache Ranger's mask vocabulary)."""

    VISIBLE = "visible"
    HIDDEN = "hidden"
    REDACT = "redact"  # Ranger MASK
    SHOW_LAST_4 = "show_last_4"  # Ranger MASK_SHOW_LAST_4
    HASH = "hash"  # Ranger MASK_HASH
    YEAR_ONLY = "year_only"  # Ranger MASK_DATE_SHOW_YEAR
    NULLIFY = "nullify"  # Ranger MASK_NULL


class FieldKind(StrEnum):
    """The value type of a read-model field, which decides the masks that fit it."""

    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    BOOLEAN = "boolean"
    NUMBER = "number"
    LIST = "list"
    OBJECT = "object"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One grantable field: its kind, whether it may be null, whether it accepts text."""

    name: str
    kind: FieldKind
    nullable: bool
    accepts_text: bool

    @property
    def scalar(self) -> bool:
        """Lists and nested objects are not scalar columns."""
        return self.kind not in (FieldKind.LIST, FieldKind.OBJECT)

    def allows(self, policy: FieldPolicy) -> bool:
        """Whether the mask fits the field's type (and its output fits the read model)."""
        if policy in (FieldPolicy.VISIBLE, FieldPolicy.HIDDEN):
            return True
        if policy is FieldPolicy.NULLIFY:
            return self.nullable
        if policy is FieldPolicy.YEAR_ONLY:
            # The year comes back as text ("1987"), so the read model must accept a string.
            return self.kind in (FieldKind.DATE, FieldKind.DATETIME) and self.accepts_text
        return self.kind is FieldKind.TEXT

    def allowed_policies(self) -> list[FieldPolicy]:
        """Every policy this field accepts, in declaration order."""
        return [policy for policy in FieldPolicy if self.allows(policy)]


def _classify(name: str, annotation: Any) -> FieldSpec:
    origin = get_origin(annotation)
    members = get_args(annotation) if origin in (Union, types.UnionType) else (annotation,)
    nullable = type(None) in members
    kinds = [m for m in members if m is not type(None)]
    accepts_text = str in kinds

    def has(predicate: Any) -> bool:
        return any(predicate(m) for m in kinds)

    containers: tuple[Any, ...] = (list, tuple, set, frozenset)
    if has(lambda m: get_origin(m) in containers):
        kind = FieldKind.LIST
    elif has(lambda m: isinstance(m, type) and issubclass(m, BaseModel)):
        kind = FieldKind.OBJECT
    elif dt.datetime in kinds:
        kind = FieldKind.DATETIME
    elif dt.date in kinds:
        kind = FieldKind.DATE
    elif has(lambda m: isinstance(m, type) and issubclass(m, enum.Enum)):
        kind = FieldKind.ENUM
    elif bool in kinds:
        kind = FieldKind.BOOLEAN
    elif accepts_text:
        kind = FieldKind.TEXT
    else:
        kind = FieldKind.NUMBER
    return FieldSpec(name=name, kind=kind, nullable=nullable, accepts_text=accepts_text)


def _catalogue(model: type[BaseModel], *, scalar_only: bool) -> Mapping[str, FieldSpec]:
    specs = {
        name: _classify(name, info.annotation)
        for name, info in model.model_fields.items()
        if name != "id"
    }
    return types.MappingProxyType(
        {name: spec for name, spec in specs.items() if spec.scalar or not scalar_only}
    )


# The fields an agreement may name; anything else is refused, anything unlisted is hidden.
PERSON_FIELDS: Mapping[str, FieldSpec] = _catalogue(PersonRead, scalar_only=False)
# Arrest parts (charges, decisions, bail, arraignment, custody) are granted whole; involvements
# are never a field: the scope's roles decide which exist.
ARREST_FIELDS: Mapping[str, FieldSpec] = types.MappingProxyType(
    {
        name: spec
        for name, spec in _catalogue(ArrestRead, scalar_only=False).items()
        if name != "involvements"
    }
)

# Free text inside the arrest parts an agreement grants whole: a DA's reason for a decision and
# the conditions of bail often name a complainant or a victim ("stay away from ..."). No
# agreement can name these; only the site floor can (and by default it withholds them).
FREE_TEXT_PART_FIELDS = (
    "charging_decisions.reason",
    "bail_recommendations.conditions",
    "arraignment.conditions",
)


def clause_error(rule: str, message: str, *, key: str | None = None) -> PydanticCustomError:
    """A validation error whose message names the rule; ``key`` extends the clause path."""
    context: dict[str, Any] = {"rule": message}
    if key is not None:
        context["key"] = key
    text = f"{key}: {message}" if key is not None else message
    return PydanticCustomError(rule, text.replace("{", "(").replace("}", ")"), context)


def _no_duplicates(value: Any, what: str) -> Any:
    """Refuse a list that names the same value twice (a set would hide the mistake)."""
    if isinstance(value, list | tuple):
        seen: set[Any] = set()
        for item in value:
            if item in seen:
                raise clause_error("duplicate", f"'{item}' is listed twice in {what}")
            seen.add(item)
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PurposeRule(_Frozen):
    """A purpose the grantee may query for, and whether it must cite a case reference."""

    purpose: Line = Field(examples=["criminal-investigation"])
    case_reference_required: bool = False

    @field_validator("purpose", mode="before")
    @classmethod
    def _slug(cls, value: Any) -> Any:
        if not isinstance(value, str) or re.fullmatch(PURPOSE_PATTERN, value) is None:
            raise clause_error(
                "purpose_slug",
                f"'{value}' is not a purpose slug: a lowercase letter, then 2 to 40 lowercase "
                "letters, digits or hyphens (e.g. 'criminal-investigation')",
            )
        return value


class QueryLimits(_Frozen):
    """Query-shape limits of the agreement; the site floor may tighten them further."""

    exact_identifiers_only: bool = True
    name_search: bool = False
    # Only allowed when the site floor permits wildcards (checked against the floor).
    wildcards: bool = False
    max_results: int = Field(default=25, ge=1, le=500)
    rate_per_user_per_minute: int = Field(default=30, ge=1, le=10_000)
    rate_per_agency_per_minute: int = Field(default=300, ge=1, le=100_000)

    @model_validator(mode="after")
    def _coherent(self) -> QueryLimits:
        if self.exact_identifiers_only and self.name_search:
            raise clause_error(
                "limits_conflict",
                "name_search cannot be true while exact_identifiers_only is true; set "
                "exact_identifiers_only to false to allow name search",
                key="name_search",
            )
        if self.exact_identifiers_only and self.wildcards:
            raise clause_error(
                "limits_conflict",
                "wildcards cannot be true while exact_identifiers_only is true",
                key="wildcards",
            )
        if self.rate_per_user_per_minute > self.rate_per_agency_per_minute:
            raise clause_error(
                "limits_conflict",
                f"the per-user rate ({self.rate_per_user_per_minute}/min) exceeds the "
                f"per-agency rate ({self.rate_per_agency_per_minute}/min)",
                key="rate_per_user_per_minute",
            )
        return self


def _check_fields(
    fields: dict[str, FieldPolicy], catalogue: Mapping[str, FieldSpec], what: str
) -> None:
    for name, policy in fields.items():
        spec = catalogue.get(name)
        if spec is None:
            raise clause_error(
                "unknown_field",
                f"unknown field; allowed: {', '.join(sorted(catalogue))}",
                key=name,
            )
        if not spec.allows(policy):
            allowed = ", ".join(p.value for p in spec.allowed_policies())
            raise clause_error(
                "mask_type",
                f"'{policy.value}' does not fit a {spec.kind.value} {what} field"
                f"{'' if spec.nullable else ' that cannot be null'}; allowed: {allowed}",
                key=name,
            )


class Scope(_Frozen):
    """What an agreement lets the grantee see: rows (roles, states, grades) and fields."""

    roles: frozenset[InvolvementRole] = Field(min_length=1)
    person_fields: dict[str, FieldPolicy] = Field(default_factory=dict)
    arrest_fields: dict[str, FieldPolicy] = Field(default_factory=dict)
    arrest_states: frozenset[ArrestState] = Field(min_length=1)
    # An arrest is visible if any of its current charges (records.charges) has one of these
    # grades; only those charges are shown and matched by a statute search.
    grades: frozenset[Grade] = Field(min_length=1)
    exclude_juveniles: bool = True
    include_sealed: bool = False
    purposes: tuple[PurposeRule, ...] = Field(min_length=1, max_length=50)
    limits: QueryLimits = Field(default_factory=QueryLimits)

    @field_validator("roles", "arrest_states", "grades", mode="before")
    @classmethod
    def _unique_members(cls, value: Any) -> Any:
        return _no_duplicates(value, "this set")

    @field_validator("person_fields")
    @classmethod
    def _person_fields(cls, value: dict[str, FieldPolicy]) -> dict[str, FieldPolicy]:
        _check_fields(value, PERSON_FIELDS, "person")
        return value

    @field_validator("arrest_fields")
    @classmethod
    def _arrest_fields(cls, value: dict[str, FieldPolicy]) -> dict[str, FieldPolicy]:
        _check_fields(value, ARREST_FIELDS, "arrest")
        return value

    @field_validator("purposes")
    @classmethod
    def _unique_purposes(cls, value: tuple[PurposeRule, ...]) -> tuple[PurposeRule, ...]:
        _no_duplicates([rule.purpose for rule in value], "purposes")
        return value

    @field_serializer("roles", "arrest_states", "grades")
    def _sorted(self, value: frozenset[StrEnum]) -> list[str]:
        # Sets serialise sorted so the canonical document (and its hash) is deterministic.
        return sorted(member.value for member in value)

    def policy_of_person_field(self, name: str) -> FieldPolicy:
        """The policy of a person field; unlisted fields are hidden."""
        return self.person_fields.get(name, FieldPolicy.HIDDEN)

    def policy_of_arrest_field(self, name: str) -> FieldPolicy:
        """The policy of an arrest field; unlisted fields are hidden."""
        return self.arrest_fields.get(name, FieldPolicy.HIDDEN)
