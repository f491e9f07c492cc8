"""The site floor: what no external agreement may ever grant, whatever its parties sign.

Configured by the data owners and stored as versioned site configuration; the shipped defaults
apply until someone sets it. One administrator may tighten it at once; a loosening takes effect
only by the board's quorum decision on a floor proposal (``loosenings`` decides which is which).
Checked when an agreement is proposed or decided, and compiled again at query time by the
enforcement point, independently.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)
from sqlalchemy.orm import Session

from openpars.agreements import repository as repo
from openpars.agreements.models import SiteFloorVersion
from openpars.agreements.schemas import FloorRead, invalid_input, sha256_hex
from openpars.agreements.scope import (
    ARREST_FIELDS,
    FREE_TEXT_PART_FIELDS,
    PERSON_FIELDS,
    FieldPolicy,
    Scope,
    clause_error,
)
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.errors import Forbidden, InvalidInput
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.records.enums import InvolvementRole

DEFAULT_FORBIDDEN_ROLES = frozenset(
    {
        InvolvementRole.VICTIM,
        InvolvementRole.WITNESS,
        InvolvementRole.COMPLAINANT,
        InvolvementRole.AFFIANT,
    }
)
DEFAULT_FORBIDDEN_PERSON_FIELDS = frozenset({"place_of_birth", "citizenship"})
# Free text is outside every external scope: the narrative and the location are written by
# officers for internal readers and describe complainants, victims and their homes; so do a
# DA's reasons and the conditions of bail inside the parts an agreement grants whole. Only a
# floor version the board decides by quorum can release one (docs/governance.md, "The site floor").
DEFAULT_FORBIDDEN_ARREST_FIELDS = frozenset({"narrative", "location", *FREE_TEXT_PART_FIELDS})
# What the floor may name among arrest fields: the grantable ones and the free text in parts.
FLOOR_ARREST_FIELDS = frozenset(ARREST_FIELDS) | frozenset(FREE_TEXT_PART_FIELDS)

_ROLE_PLURALS = {
    InvolvementRole.ARRESTEE: "arrestees",
    InvolvementRole.VICTIM: "victims",
    InvolvementRole.WITNESS: "witnesses",
    InvolvementRole.COMPLAINANT: "complainants",
    InvolvementRole.AFFIANT: "affiants",
    InvolvementRole.OTHER: "persons in the role 'other'",
}


class SiteFloor(BaseModel):
    """What no external agreement may grant on this site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    forbidden_roles: frozenset[InvolvementRole] = DEFAULT_FORBIDDEN_ROLES
    # These fields may only ever be hidden: not visible, not masked, not nullified.
    forbidden_person_fields: frozenset[str] = DEFAULT_FORBIDDEN_PERSON_FIELDS
    forbidden_arrest_fields: frozenset[str] = DEFAULT_FORBIDDEN_ARREST_FIELDS
    # Sealed and expunged records never leave the site; this cannot be switched off.
    forbid_sealed: Literal[True] = True
    forbid_juveniles: bool = True
    allow_wildcards: bool = False
    max_results: int = Field(default=500, ge=1, le=500)

    @field_validator("forbidden_person_fields")
    @classmethod
    def _known_person_fields(cls, value: frozenset[str]) -> frozenset[str]:
        _known(value, PERSON_FIELDS)
        return value

    @field_validator("forbidden_arrest_fields")
    @classmethod
    def _known_arrest_fields(cls, value: frozenset[str]) -> frozenset[str]:
        _known(value, FLOOR_ARREST_FIELDS)
        return value

    @field_serializer("forbidden_roles", "forbidden_person_fields", "forbidden_arrest_fields")
    def _sorted(self, value: frozenset[str]) -> list[str]:
        return sorted(str(item) for item in value)


def _known(names: frozenset[str], catalogue: Collection[str]) -> None:
    for name in sorted(names):
        if name not in catalogue:
            raise clause_error(
                "unknown_field", f"unknown field; allowed: {', '.join(sorted(catalogue))}", key=name
            )


@dataclass(frozen=True, slots=True)
class FloorViolation:
    """One clause of a scope that crosses the floor, and why."""

    field: str
    message: str


def _plural(roles: frozenset[InvolvementRole]) -> str:
    names = [_ROLE_PLURALS[role] for role in sorted(roles)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _field_violations(
    fields: dict[str, FieldPolicy], forbidden: frozenset[str], kind: str
) -> list[FloorViolation]:
    return [
        FloorViolation(
            field=f"scope.{kind}_fields.{name}",
            message=f"{name.replace('_', ' ')} may never be shared with an external agency, "
            f"not even as '{policy.value}'; it must be hidden (site floor)",
        )
        for name, policy in sorted(fields.items())
        if name in forbidden and policy is not FieldPolicy.HIDDEN
    ]


def floor_violations(scope: Scope, floor: SiteFloor) -> list[FloorViolation]:
    """Every clause of the scope that crosses the floor, in clause order (empty: above it)."""
    found: list[FloorViolation] = []
    crossing = frozenset(scope.roles) & frozenset(floor.forbidden_roles)
    if crossing:
        found.append(
            FloorViolation(
                "scope.roles",
                f"{_plural(crossing)} may never be shared with an external agency (site floor)",
            )
        )
    found += _field_violations(scope.person_fields, floor.forbidden_person_fields, "person")
    found += _field_violations(scope.arrest_fields, floor.forbidden_arrest_fields, "arrest")
    if scope.include_sealed and floor.forbid_sealed:
        found.append(
            FloorViolation(
                "scope.include_sealed",
                "sealed and expunged records may never be shared with an external agency "
                "(site floor)",
            )
        )
    if not scope.exclude_juveniles and floor.forbid_juveniles:
        found.append(
            FloorViolation(
                "scope.exclude_juveniles",
                "juvenile records may not be shared with an external agency on this site; set "
                "exclude_juveniles to true (site floor)",
            )
        )
    if scope.limits.wildcards and not floor.allow_wildcards:
        found.append(
            FloorViolation(
                "scope.limits.wildcards",
                "wildcard queries are not allowed on this site (site floor)",
            )
        )
    if scope.limits.max_results > floor.max_results:
        found.append(
            FloorViolation(
                "scope.limits.max_results",
                f"at most {floor.max_results} results per query are allowed on this site, not "
                f"{scope.limits.max_results} (site floor)",
            )
        )
    return found


def check_scope(scope: Scope, floor: SiteFloor) -> None:
    """Raise InvalidInput naming the first clause that crosses the floor (all in details)."""
    found = floor_violations(scope, floor)
    if found:
        first = found[0]
        raise InvalidInput(
            f"{first.field}: {first.message}",
            code="floor_crossed",
            field=first.field,
            details={"violations": [{"field": v.field, "message": v.message} for v in found]},
        )


def parse_floor(content: dict[str, Any]) -> SiteFloor:
    """Validate a floor document, raising InvalidInput naming the clause."""
    try:
        return SiteFloor.model_validate(content)
    except ValidationError as exc:
        raise invalid_input(exc, prefix="floor") from exc


# Parsed floors by content hash. Floor versions are append-only in the database, so a hash
# always names the same content; every read still asks which version is the newest.
_PARSED_FLOORS: dict[str, SiteFloor] = {}


def get_floor(session: Session) -> SiteFloor:
    """The site floor in force: the newest stored version, or the shipped defaults."""
    return floor_of_newest(session, repo.latest_floor_hash(session))


def floor_of_newest(session: Session, newest: str | None) -> SiteFloor:
    """The floor whose content hash the newest stored version has (read by the caller in this
    transaction), parsed once per hash; None: the shipped defaults."""
    if newest is None:
        return SiteFloor()
    parsed = _PARSED_FLOORS.get(newest)
    if parsed is None:
        row = repo.latest_floor(session)
        assert row is not None, "site floor versions are append-only"
        parsed = SiteFloor.model_validate(row.content)
        if len(_PARSED_FLOORS) >= 64:
            _PARSED_FLOORS.clear()
        _PARSED_FLOORS[row.content_hash] = parsed
    return parsed


def floor_read(session: Session) -> FloorRead:
    """The floor in force with its provenance (not audited: callers audit their own act)."""
    row = repo.latest_floor(session)
    floor = SiteFloor() if row is None else SiteFloor.model_validate(row.content)
    content = floor.model_dump(mode="json")
    return FloorRead(
        floor=content,
        version=row.version if row else None,
        content_hash=sha256_hex(content),
        changed_by=row.changed_by if row else None,
        changed_at=row.changed_at if row else None,
        reason=row.reason if row else None,
    )


def _config_event(actor: Principal, action: str, params: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        kind=AuditKind.CONFIG,
        action=action,
        user_id=actor.user_id,
        username=actor.username,
        agency_id=actor.agency_id,
        source_ip=actor.source_ip,
        params=params,
    )


def show_floor(session: Session, *, actor: Principal) -> FloorRead:
    """The floor in force, for administrators, stakeholders and auditors; audited."""
    readers = (
        Permission.AGREEMENT_MANAGE,
        Permission.AGREEMENT_SUSPEND,
        Permission.VOTE,
        Permission.AUDIT_READ,
    )
    if not any(actor.can(p) for p in readers):
        actor.require(Permission.AGREEMENT_MANAGE)
    result = floor_read(session)
    append(session, _config_event(actor, "floor.show", {"version": result.version}))
    return result


def loosenings(current: SiteFloor, proposed: SiteFloor) -> list[FloorViolation]:
    """Each clause in which the proposed floor admits more than the one in force (empty: none).

    The one comparison deciding whether a floor change needs the board's quorum; each clause
    of SiteFloor is compared here, so a new clause must be added here too (tests check that).
    """
    found: list[FloorViolation] = []
    for name in ("forbidden_roles", "forbidden_person_fields", "forbidden_arrest_fields"):
        released = frozenset(getattr(current, name)) - frozenset(getattr(proposed, name))
        if released:
            listed = ", ".join(sorted(str(item) for item in released))
            found.append(FloorViolation(f"floor.{name}", f"no longer forbids {listed}"))
    if current.forbid_sealed and not proposed.forbid_sealed:
        found.append(FloorViolation("floor.forbid_sealed", "would admit sealed records"))
    if current.forbid_juveniles and not proposed.forbid_juveniles:
        found.append(FloorViolation("floor.forbid_juveniles", "would admit juvenile records"))
    if proposed.allow_wildcards and not current.allow_wildcards:
        found.append(FloorViolation("floor.allow_wildcards", "would admit wildcard queries"))
    if proposed.max_results > current.max_results:
        found.append(
            FloorViolation(
                "floor.max_results",
                f"raises max_results from {current.max_results} to {proposed.max_results}",
            )
        )
    return found


def floor_hash(floor: SiteFloor) -> str:
    """The content hash of a floor document, as stored and as a floor proposal names it."""
    return sha256_hex(floor.model_dump(mode="json"))


def store_floor(
    session: Session,
    *,
    floor: SiteFloor,
    changed_by: str,
    changed_by_id: int | None,
    reason: str,
    at: datetime | None = None,
) -> tuple[SiteFloorVersion, dict[str, Any]]:
    """Append a floor version, unchecked and unaudited: callers decide and audit (with previous)."""
    latest = repo.latest_floor(session)
    content = floor.model_dump(mode="json")
    row = SiteFloorVersion(
        version=(latest.version + 1) if latest else 1,
        content=content,
        content_hash=sha256_hex(content),
        changed_by=changed_by,
        changed_by_id=changed_by_id,
        changed_at=at or utcnow(),
        reason=reason.strip(),
    )
    session.add(row)
    session.flush()
    previous = latest.content if latest else SiteFloor().model_dump(mode="json")
    return row, previous


def set_floor(
    session: Session, *, actor: Principal, floor: SiteFloor, reason: str, at: datetime | None = None
) -> SiteFloorVersion:
    """Tighten the floor at once (one administrator); a loosening is refused: it needs a quorum."""
    actor.require(Permission.AGREEMENT_MANAGE)
    actor.require_fresh()
    if len(reason.strip()) < 3:
        raise InvalidInput(
            "reason: say why the floor changes (at least 3 characters)", field="reason"
        )
    looser = loosenings(get_floor(session), floor)
    if looser:
        # Hiding more is always safe, so one account may do it; admitting more is the board's
        # decision (docs/governance.md, "The site floor").
        first = looser[0]
        raise Forbidden(
            f"{first.field}: the proposed floor {first.message}; one account may only tighten "
            "the site floor, a loosening takes effect only by the board's quorum decision "
            "(openpars proposal open --floor FILE, or POST /api/v1/proposals with "
            "action 'floor')",
            code="floor_needs_quorum",
            field=first.field,
            details={"loosenings": [{"field": v.field, "message": v.message} for v in looser]},
        )
    row, previous = store_floor(
        session,
        floor=floor,
        changed_by=actor.username,
        changed_by_id=actor.user_id,
        reason=reason,
        at=at,
    )
    append(
        session,
        _config_event(
            actor,
            "floor.set",
            {
                "version": row.version,
                "content_hash": row.content_hash,
                "floor": row.content,
                "previous": previous,
                "reason": row.reason,
            },
        ),
    )
    return row
