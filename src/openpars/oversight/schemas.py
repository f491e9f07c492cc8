"""Pydantic contracts of the oversight API: canaries, flags, cases and the acts on them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from openpars.oversight.models import CaseAct, CaseState, Finding
from openpars.records.schemas import ArrestCreate
from openpars.text import Line, Prose

T = TypeVar("T")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CanaryCreate(_Input):
    """A canary to plant: a label for the reviewers and an arrest of one new, adult arrestee."""

    label: Line = Field(min_length=1, max_length=200, description="what this canary is for")
    arrest: ArrestCreate = Field(
        description="an arrest as police intake would enter it, with exactly one involvement: "
        "a new person as the arrestee"
    )


class CanaryRead(_Output):
    """A planted canary (oversight only) and how many flags it has raised."""

    id: int
    label: str
    pending: bool = Field(
        description="true until a second reviewer confirms it; no record exists until then"
    )
    arrest: ArrestCreate = Field(description="the arrest intake enters (entered on confirming)")
    person_id: int | None = Field(description="the canary person; null while pending")
    arrest_id: int | None = Field(description="the canary arrest; null while pending")
    planted_by_id: int
    planted_at: datetime
    confirmed_by_id: int | None
    confirmed_at: datetime | None
    flags: int = 0


class FlagRead(_Output):
    """A detector finding with the audit entries that fired it."""

    id: int
    detector: str
    rule: str
    threshold: float | None
    subject_user_id: int | None
    subject_agency_id: int | None
    subject_agreement_id: int | None
    raised_at: datetime
    case_id: int | None
    entry_ids: list[int] = Field(default_factory=list)


class CaseEventRead(_Output):
    """One act in a case's append-only history."""

    id: int
    at: datetime
    act: CaseAct
    actor_id: int | None
    assignee_id: int | None
    finding: Finding | None
    flag_id: int | None
    note: str | None


class CaseRead(_Output):
    """A review case: the flags of one detector about one subject."""

    id: int
    detector: str
    subject_user_id: int | None
    subject_agency_id: int | None
    state: CaseState
    assignee_id: int | None
    finding: Finding | None
    opened_at: datetime
    closed_at: datetime | None
    flags: int = 0


class CaseDetail(CaseRead):
    """A case with its flags and its whole history."""

    flag_list: list[FlagRead] = Field(default_factory=list)
    history: list[CaseEventRead] = Field(default_factory=list)


class CaseAssign(_Input):
    """Assign a case to a reviewer (an account holding the oversight role)."""

    assignee: Line = Field(min_length=1, max_length=100, description="the reviewer's username")


class CaseNote(_Input):
    """A note added to a case; notes are never edited, only added."""

    note: Prose = Field(min_length=1, max_length=10000)


class CaseClose(_Input):
    """Close a case with a finding, and optionally a last note."""

    finding: Finding
    note: Prose | None = Field(default=None, max_length=10000)


class OversightPage(BaseModel, Generic[T]):
    """One page of results."""

    items: list[T]
    total: int
    offset: int
    limit: int


class DetectorRun(BaseModel):
    """What a run of the detectors stored."""

    new_flags: list[int]


class DetectionRequest(BaseModel):
    """Which days to judge (UTC, both included); neither: the whole store."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date | None = Field(default=None, alias="from", description="first day, YYYY-MM-DD")
    to: date | None = Field(default=None, description="last day, YYYY-MM-DD")


class DetectionResult(BaseModel):
    """What a detection run stored: the new flags (none when the period was judged before)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date | None = Field(alias="from")
    to: date | None
    new_flags: list[int]
