"""Pydantic shapes of agreements: the canonical document, inputs, outputs, and error mapping."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from openpars.agreements.models import (
    AgreementStatus,
    EventKind,
    SuspensionTarget,
)
from openpars.agreements.scope import Scope, clause_error
from openpars.errors import InvalidInput
from openpars.ranges import RowId
from openpars.text import Document, Line, Prose


def canonical_json(document: dict[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8 (the bytes a content hash is over)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sha256_hex(document: dict[str, Any]) -> str:
    """SHA-256 hex of a document's canonical JSON."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def invalid_input(exc: ValidationError, *, prefix: str = "") -> InvalidInput:
    """Turn a pydantic error into InvalidInput whose field is the clause that failed."""
    problems: list[dict[str, Any]] = []
    for error in exc.errors():
        path = [prefix] if prefix else []
        path += [str(part) for part in error.get("loc", ())]
        context = error.get("ctx") or {}
        if "key" in context:
            path.append(str(context["key"]))
        field = ".".join(path) or "body"
        rule = str(context.get("rule", error.get("msg", "invalid")))
        problems.append({"field": field, "rule": error.get("type"), "message": f"{field}: {rule}"})
    first = problems[0]
    return InvalidInput(first["message"], field=first["field"], details={"problems": problems})


class Fee(BaseModel):
    """What the grantee pays for access."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Decimal = Field(ge=0, le=100_000_000, decimal_places=2)
    currency: Line = Field(default="USD", pattern=r"^[A-Z]{3}$")
    period: Literal["one_time", "monthly", "yearly"] = "yearly"

    @field_serializer("amount")
    def _amount(self, value: Decimal) -> str:
        return f"{value:.2f}"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _sorted_unique(value: Any, what: str) -> Any:
    if isinstance(value, list | tuple):
        if len(set(value)) != len(value):
            duplicate = next(v for v in value if list(value).count(v) > 1)
            raise clause_error("duplicate", f"{duplicate} is listed twice in {what}")
        return tuple(sorted(value))
    return value


class AgreementDocument(BaseModel):
    """The full content of one agreement version; its canonical JSON is what gets hashed."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: Line = Field(min_length=3, max_length=200)
    grantee_agency_id: RowId
    # Sub-units (agency ids) admitted; empty admits the whole agency only with all_units.
    grantee_unit_ids: tuple[RowId, ...] = Field(default=(), max_length=200)
    grantee_user_ids: tuple[RowId, ...] = Field(default=(), max_length=1000)
    all_units: bool = False
    legal_basis: Prose = Field(min_length=3, max_length=2000)
    fee: Fee | None = None
    terms: Prose = Field(default="", max_length=50_000)
    # Agency ids of the data owners party to the agreement.
    parties: tuple[RowId, ...] = Field(min_length=1, max_length=20)
    scope: Scope
    effective_at: AwareDatetime
    expires_at: AwareDatetime

    @field_validator("grantee_unit_ids", "grantee_user_ids", "parties", mode="before")
    @classmethod
    def _unique_ids(cls, value: Any) -> Any:
        return _sorted_unique(value, "this list")

    @field_validator("effective_at", "expires_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @model_validator(mode="after")
    def _coherent(self) -> AgreementDocument:
        if self.expires_at <= self.effective_at:
            raise clause_error(
                "inverted_dates",
                f"expires_at ({self.expires_at.isoformat()}) must be after effective_at "
                f"({self.effective_at.isoformat()})",
                key="expires_at",
            )
        if self.all_units and self.grantee_unit_ids:
            raise clause_error(
                "admission",
                "must be empty when all_units is true (the whole agency is admitted)",
                key="grantee_unit_ids",
            )
        if not self.all_units and not self.grantee_unit_ids and not self.grantee_user_ids:
            raise clause_error(
                "admission",
                "name at least one sub-unit or account, or set all_units to true to admit "
                "every unit of the grantee agency",
                key="grantee_unit_ids",
            )
        return self

    @field_serializer("effective_at", "expires_at")
    def _instant(self, value: datetime) -> str:
        # Microsecond-exact, always UTC, always the same spelling: the hash depends on it.
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def canonical(self) -> dict[str, Any]:
        """The JSON-ready document stored as a version's content."""
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        """SHA-256 hex of the canonical JSON of this document."""
        return sha256_hex(self.canonical())


def parse_document(content: dict[str, Any]) -> AgreementDocument:
    """Validate a stored or submitted document, raising InvalidInput naming the clause."""
    try:
        return AgreementDocument.model_validate(content)
    except ValidationError as exc:
        raise invalid_input(exc) from exc


class AgreementCreate(AgreementDocument):
    """A new agreement, created as a draft (version 1)."""


class AgreementUpdate(AgreementDocument):
    """A complete new version of an agreement, with the reason for the change."""

    reason: Prose = Field(min_length=3, max_length=2000)

    def document(self) -> AgreementDocument:
        """The document without the reason."""
        return AgreementDocument.model_validate(self.model_dump(exclude={"reason"}))


class ActInput(BaseModel):
    """A reason for an act (propose, resume)."""

    model_config = ConfigDict(extra="forbid")

    reason: Prose = Field(min_length=3, max_length=2000)


class SuspensionCreate(BaseModel):
    """A kill-switch act: cut off the agreement, one of the grantee's sub-units or accounts."""

    model_config = ConfigDict(extra="forbid")

    target: SuspensionTarget
    # The unit (agency id) or account (user id); omitted for the whole agreement.
    target_id: RowId | None = None
    reason: Prose = Field(min_length=3, max_length=2000)


class VersionRead(BaseModel):
    """One immutable version of an agreement."""

    model_config = ConfigDict(from_attributes=True)

    version: int
    content: dict[str, Any]
    content_hash: str
    created_by: str
    created_at: datetime
    reason: str


class AgreementRead(BaseModel):
    """An agreement with its stored and its effective status (time and kill switch applied)."""

    id: int
    name: str
    grantee_agency_id: int
    status: AgreementStatus
    effective_status: AgreementStatus
    current_version: int
    active_version: int | None
    in_force_from: datetime | None
    in_force_until: datetime | None
    content_hash: str
    created_at: datetime
    versions: list[VersionRead] = Field(default_factory=list)


class EventRead(BaseModel):
    """One timeline entry."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: EventKind
    from_status: AgreementStatus | None
    to_status: AgreementStatus | None
    version: int | None
    content_hash: str | None
    effective_at: datetime | None
    by: str
    reason: str | None
    details: dict[str, Any]


class SuspensionRead(BaseModel):
    """A kill-switch act and, once lifted, its resumption."""

    id: int
    agreement_id: int
    target: SuspensionTarget
    target_id: int
    reason: str
    suspended_by: str
    # The stakeholder (board member agency) that imposed it: only its accounts, or a quorum
    # 'resume' decision, may lift it. None: imposed by a site account, so only a quorum can.
    stakeholder_id: int | None = None
    suspended_at: datetime
    resumed_at: datetime | None = None
    resumed_by: str | None = None
    resume_reason: str | None = None


class FloorUpdate(BaseModel):
    """A new site floor and the reason for the change."""

    model_config = ConfigDict(extra="forbid")

    floor: Document
    reason: Prose = Field(min_length=3, max_length=2000)


class FloorRead(BaseModel):
    """The site floor in force, and which stored version it is (none: shipped defaults)."""

    floor: dict[str, Any]
    version: int | None
    content_hash: str
    changed_by: str | None
    changed_at: datetime | None
    reason: str | None
