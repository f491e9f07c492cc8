"""Pydantic shapes of the records API: XCreate for input, XRead for output."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from openpars.ranges import RowId
from openpars.records.enums import (
    ArrestState,
    ArrestType,
    BailType,
    ChangeKind,
    ChargeStage,
    ChargingOutcome,
    CustodyOutcome,
    Grade,
    InvolvementRole,
    Race,
    Sex,
)
from openpars.records.validation import (
    DOCKET_PATTERN,
    FBI_PATTERN,
    ORI_PATTERN,
    OTN_PATTERN,
    SID_PATTERN,
    STATUTE_PATTERN,
)
from openpars.text import Line, Prose

Name = Annotated[Line, Field(min_length=1, max_length=100)]
Reason = Annotated[Prose, Field(min_length=3, max_length=2000)]


class _Input(BaseModel):
    """Unknown fields are refused so a typo never silently drops data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AliasIn(_Input):
    """Another name a person is known by."""

    family_name: Name
    given_name: Name


class PersonIn(_Input):
    """A person as the booking system describes them."""

    family_name: Name
    given_name: Name
    middle_name: Line | None = Field(default=None, max_length=100)
    aliases: list[AliasIn] = Field(default_factory=list, max_length=20)
    birth_date: date | None = None
    sex: Sex | None = None
    race: Race | None = None
    address: Line | None = Field(default=None, max_length=300)
    phone: Line | None = Field(default=None, max_length=30, pattern=r"^[0-9+() .-]{3,30}$")
    place_of_birth: Line | None = Field(default=None, max_length=100)
    citizenship: Line | None = Field(default=None, max_length=100)
    sid: Line | None = Field(default=None, pattern=SID_PATTERN)
    fbi_number: Line | None = Field(default=None, pattern=FBI_PATTERN)


class InvolvementIn(_Input):
    """One person's role in the arrest: link an existing person, or describe a new one."""

    role: InvolvementRole
    person_id: RowId | None = Field(default=None, description="link to an existing person")
    person: PersonIn | None = None
    # Set when intake has seen the candidate list and still wants a new person.
    create_new_person: bool = False

    @model_validator(mode="after")
    def _one_person(self) -> InvolvementIn:
        if (self.person_id is None) == (self.person is None):
            raise ValueError("give exactly one of 'person_id' or 'person'")
        return self


class ChargeIn(_Input):
    """One charge line with its Pennsylvania statute citation and grade."""

    statute: Line = Field(pattern=STATUTE_PATTERN, examples=["18 § 2701"])
    description: Line = Field(min_length=2, max_length=200)
    grade: Grade
    counts: int = Field(default=1, ge=1, le=999)


class ArrestCreate(_Input):
    """An arrest as submitted by police intake, with everyone involved and the charges."""

    report_id: Line = Field(
        min_length=1, max_length=100, description="booking system report id (idempotency key)"
    )
    otn: Line | None = Field(default=None, pattern=OTN_PATTERN)
    incident_number: Line | None = Field(default=None, max_length=30, pattern=r"^[0-9A-Z-]{3,30}$")
    ori: Line = Field(pattern=ORI_PATTERN, description="arresting agency ORI")
    arresting_officer: Line = Field(min_length=1, max_length=100)
    arrested_at: AwareDatetime
    location: Line | None = Field(default=None, max_length=300)
    arrest_type: ArrestType
    narrative: Prose | None = Field(default=None, max_length=20000)
    involvements: list[InvolvementIn] = Field(min_length=1, max_length=100)
    charges: list[ChargeIn] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _has_arrestee(self) -> ArrestCreate:
        if not any(i.role is InvolvementRole.ARRESTEE for i in self.involvements):
            raise ValueError("an arrest needs at least one involvement with role 'arrestee'")
        return self


class ChargingDecisionCreate(_Input):
    """The DA's decision; 'modified' carries the approved charges, 'approved' may omit them."""

    outcome: ChargingOutcome
    reason: Prose | None = Field(default=None, max_length=2000)
    charges: list[ChargeIn] | None = Field(default=None, max_length=100)
    version: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="the arrest's version the decision was made on (optional): when the "
        "arrest has changed since, the decision is refused (409 `version_mismatch`)",
    )

    @model_validator(mode="after")
    def _charges_match_outcome(self) -> ChargingDecisionCreate:
        if self.outcome is ChargingOutcome.MODIFIED and not self.charges:
            raise ValueError("a 'modified' decision must list the approved charges")
        if self.outcome is ChargingOutcome.DECLINED and self.charges:
            raise ValueError("a 'declined' decision cannot carry charges")
        if self.outcome is ChargingOutcome.DECLINED and not self.reason:
            raise ValueError("a 'declined' decision needs a reason")
        return self


class BailRecommendationCreate(_Input):
    """Pretrial services' recommendation."""

    bail_type: BailType
    amount: Decimal | None = Field(default=None, ge=0, le=100_000_000, decimal_places=2)
    conditions: Prose | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _amount_matches_type(self) -> BailRecommendationCreate:
        _check_bail_amount(self.bail_type, self.amount)
        return self


class ArraignmentCreate(_Input):
    """The preliminary arraignment as the court records it."""

    arraigned_at: AwareDatetime
    magistrate: Line = Field(min_length=1, max_length=100)
    bail_type: BailType
    bail_amount: Decimal | None = Field(default=None, ge=0, le=100_000_000, decimal_places=2)
    conditions: Prose | None = Field(default=None, max_length=2000)
    preliminary_hearing_date: date | None = None
    docket_number: Line = Field(pattern=DOCKET_PATTERN, examples=["MC-51-CR-0007226-2023"])

    @model_validator(mode="after")
    def _amount_matches_type(self) -> ArraignmentCreate:
        _check_bail_amount(self.bail_type, self.bail_amount)
        return self


class CustodyCreate(_Input):
    """Release or commitment after arraignment."""

    outcome: CustodyOutcome
    at: AwareDatetime
    facility: Line | None = Field(default=None, max_length=200)


class ArrestAmend(_Input):
    """An amendment or correction of an arrest's own fields; only the fields given change."""

    change: Literal["amend", "correct"] = "amend"
    reason: Reason
    otn: Line | None = Field(default=None, pattern=OTN_PATTERN)
    incident_number: Line | None = Field(default=None, max_length=30, pattern=r"^[0-9A-Z-]{3,30}$")
    arresting_officer: Line | None = Field(default=None, min_length=1, max_length=100)
    arrested_at: AwareDatetime | None = None
    location: Line | None = Field(default=None, max_length=300)
    arrest_type: ArrestType | None = None
    narrative: Prose | None = Field(default=None, max_length=20000)


class PersonAmend(_Input):
    """An amendment or correction of a person; only the fields given change."""

    change: Literal["amend", "correct"] = "amend"
    reason: Reason
    family_name: Name | None = None
    given_name: Name | None = None
    middle_name: Line | None = Field(default=None, max_length=100)
    birth_date: date | None = None
    sex: Sex | None = None
    race: Race | None = None
    address: Line | None = Field(default=None, max_length=300)
    phone: Line | None = Field(default=None, max_length=30, pattern=r"^[0-9+() .-]{3,30}$")
    place_of_birth: Line | None = Field(default=None, max_length=100)
    citizenship: Line | None = Field(default=None, max_length=100)
    sid: Line | None = Field(default=None, pattern=SID_PATTERN)
    fbi_number: Line | None = Field(default=None, pattern=FBI_PATTERN)


class SealCreate(_Input):
    """A court order sealing or expunging an arrest record."""

    action: Literal["seal", "unseal", "expunge"]
    order_reference: Line = Field(min_length=3, max_length=100)
    reason: Reason


def _check_bail_amount(bail_type: BailType, amount: Decimal | None) -> None:
    if bail_type is BailType.MONETARY and amount is None:
        raise ValueError("monetary bail needs an amount")
    if bail_type in (BailType.ROR, BailType.NONMONETARY, BailType.DENIED) and amount:
        raise ValueError(f"bail type '{bail_type.value}' carries no amount")


# ---- output shapes -------------------------------------------------------------------------


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AliasRead(_Output):
    """An alias as returned."""

    family_name: str
    given_name: str


class PersonRead(_Output):
    """A person; fields an agreement masks or hides come back masked or absent."""

    id: int
    family_name: str | None = None
    given_name: str | None = None
    middle_name: str | None = None
    aliases: list[AliasRead] | None = None
    birth_date: date | str | None = None
    sex: str | None = None
    race: str | None = None
    address: str | None = None
    phone: str | None = None
    place_of_birth: str | None = None
    citizenship: str | None = None
    sid: str | None = None
    fbi_number: str | None = None
    version: int | None = None


class ChargeRead(_Output):
    """One charge line."""

    stage: ChargeStage
    revision: int
    sequence: int
    statute: str
    description: str
    grade: Grade
    counts: int


class InvolvementRead(_Output):
    """One role of one person in one arrest."""

    id: int
    arrest_id: int
    person_id: int
    role: InvolvementRole
    juvenile: bool | None = Field(
        description="under 18 on the arrest date; null when the birth date is unknown"
    )
    person: PersonRead | None = None


class ChargingDecisionRead(_Output):
    """A charging decision."""

    outcome: ChargingOutcome
    reason: str | None
    decided_at: datetime


class BailRecommendationRead(_Output):
    """A bail recommendation."""

    bail_type: BailType
    amount: Decimal | None
    conditions: str | None
    recommended_at: datetime


class ArraignmentRead(_Output):
    """A preliminary arraignment."""

    arraigned_at: datetime
    magistrate: str
    bail_type: BailType
    bail_amount: Decimal | None
    conditions: str | None
    preliminary_hearing_date: date | None
    docket_number: str


class CustodyRead(_Output):
    """A release or commitment."""

    outcome: CustodyOutcome
    at: datetime
    facility: str | None


class ArrestSummary(_Output):
    """An arrest in a result list."""

    id: int
    otn: str | None = None
    incident_number: str | None = None
    ori: str | None = None
    arrested_at: datetime | None = None
    arrest_type: ArrestType | None = None
    state: ArrestState | None = None
    docket_number: str | None = None
    sealed: bool = False


class ArrestRead(ArrestSummary):
    """An arrest with everything in it the caller may see."""

    report_id: str | None = None
    arresting_officer: str | None = None
    location: str | None = None
    narrative: str | None = None
    version: int | None = None
    involvements: list[InvolvementRead] = Field(default_factory=list)
    charges: list[ChargeRead] = Field(default_factory=list)
    charging_decisions: list[ChargingDecisionRead] = Field(default_factory=list)
    bail_recommendations: list[BailRecommendationRead] = Field(default_factory=list)
    arraignment: ArraignmentRead | None = None
    custody: CustodyRead | None = None


class PersonDetail(PersonRead):
    """A person with every involvement the caller may see."""

    involvements: list[InvolvementRead] = Field(default_factory=list)


class CandidateRead(BaseModel):
    """A possible existing match for a person being entered."""

    person_id: int
    family_name: str
    given_name: str
    birth_date: date | None
    score: float
    reason: str


class PersonLink(BaseModel):
    """How one involvement's person was resolved at intake."""

    index: int = Field(description="position of the involvement in the request")
    person_id: int
    matched_on: Literal["new", "person_id", "sid", "fbi_number"] = Field(
        description="'new' created a person; 'sid'/'fbi_number' linked an existing one by an "
        "exact identifier match; 'person_id' is the link intake chose"
    )


class ArrestCreated(BaseModel):
    """The result of intake: the arrest and the ids of everything created or linked."""

    arrest_id: int
    state: ArrestState
    replayed: bool = Field(description="true when the report id was seen before")
    person_ids: list[int]
    involvement_ids: list[int]
    charge_ids: list[int]
    links: list[PersonLink] = Field(
        default_factory=list,
        description="how each involvement's person was resolved (empty on a replay)",
    )


class ArrestWritten(BaseModel):
    """The result of a workflow step, amendment or sealing of an arrest."""

    arrest_id: int
    state: ArrestState
    version: int
    sealed: bool
    expunged: bool
    docket_number: str | None = None


class PersonWritten(BaseModel):
    """The result of an amendment or correction of a person."""

    person_id: int
    version: int


class VersionRead(_Output):
    """One version of a record with who changed it, when and why."""

    version: int
    change: ChangeKind
    reason: str | None
    changed_at: datetime
    changed_by_id: int | None
    snapshot: dict[str, object]
