"""Query and result shapes of the read endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from openpars.records.enums import ArrestState
from openpars.records.schemas import ArrestRead, ArrestSummary, PersonDetail, PersonRead


@dataclass(frozen=True, slots=True)
class ReadContext:
    """What the caller declares about a read: why, for which case, for whom."""

    purpose: str | None = None
    case_number: str | None = None
    on_behalf_of: str | None = None

    def __post_init__(self) -> None:
        # Surrounding blanks are dropped and a blank declaration is no declaration: a case
        # reference of " " must not satisfy a purpose that requires one.
        for name in ("purpose", "case_number", "on_behalf_of"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, value.strip() or None)

    def as_params(self) -> dict[str, Any]:
        """The declaration as audit parameters."""
        return {
            "purpose": self.purpose,
            "case_number": self.case_number,
            "on_behalf_of": self.on_behalf_of,
        }


@dataclass(frozen=True, slots=True)
class PersonQuery:
    """Person search criteria; at least one is required."""

    name: str | None = None
    birth_date: date | None = None
    # Persons born in this year: the criterion of a caller shown the year of birth only.
    birth_year: int | None = None
    sid: str | None = None
    fbi_number: str | None = None
    offset: int = 0
    # None: the default page size, capped by the agreement's maximum.
    limit: int | None = None
    # Count the visible rows (up to a cap) even when the page does not tell the total.
    count: bool = False


@dataclass(frozen=True, slots=True)
class ArrestQuery:
    """Arrest search criteria; at least one is required."""

    otn: str | None = None
    incident_number: str | None = None
    docket_number: str | None = None
    arrested_from: datetime | None = None
    arrested_to: datetime | None = None
    statute: str | None = None
    state: ArrestState | None = None
    offset: int = 0
    # None: the default page size, capped by the agreement's maximum.
    limit: int | None = None
    # Count the visible rows (up to a cap) even when the page does not tell the total.
    count: bool = False
    # Oldest first (a work queue, e.g. the DA's charging queue); None or False: newest first.
    oldest_first: bool | None = None


DEFAULT_LIMIT = 50
# The page window every reader may ask for (an outside agency's is narrower, see criteria).
PAGE_MAX = 500
OFFSET_MAX = 100_000


def effective_limit(requested: int | None, maximum: int | None) -> int:
    """The page size to use: as requested, or the default capped by the agreement."""
    if requested is not None:
        return requested
    return min(DEFAULT_LIMIT, maximum) if maximum is not None else DEFAULT_LIMIT


class Decision(BaseModel):
    """Why the caller saw what it saw: the agreement version and the clauses applied."""

    external: bool
    agreement_id: int | None = None
    agreement_version: int | None = None
    agreement_hash: str | None = None
    clauses: list[str] = Field(default_factory=list)


TOTAL_DOC = (
    "visible rows in all when total_is_exact; otherwise at least this many. Exact when the "
    "last page is reached, or with count=true up to 200"
)


class PersonPage(BaseModel):
    """A page of persons; totals count only what the caller may see."""

    items: list[PersonRead]
    total: int = Field(description=TOTAL_DOC)
    total_is_exact: bool
    has_more: bool = Field(description="whether visible rows follow this page")
    offset: int
    limit: int
    decision: Decision


class ArrestPage(BaseModel):
    """A page of arrests; totals count only what the caller may see."""

    items: list[ArrestSummary]
    total: int = Field(description=TOTAL_DOC)
    total_is_exact: bool
    has_more: bool = Field(description="whether visible rows follow this page")
    offset: int
    limit: int
    decision: Decision


class PersonResult(BaseModel):
    """One person with their visible involvements and the decision."""

    person: PersonDetail
    decision: Decision


class ArrestResult(BaseModel):
    """One arrest with everything visible in it and the decision."""

    arrest: ArrestRead
    decision: Decision
