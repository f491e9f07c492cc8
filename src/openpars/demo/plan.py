"""The shapes of a demo plan: arrests, the roles in them, and the generator's running state."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from openpars.demo.statutes import STATUTES
from openpars.records.enums import InvolvementRole
from openpars.records.schemas import (
    ArraignmentCreate,
    ArrestCreate,
    BailRecommendationCreate,
    ChargeIn,
    ChargingDecisionCreate,
    CustodyCreate,
    InvolvementIn,
    PersonIn,
    SealCreate,
)


@dataclass
class PlannedInvolvement:
    """One role in a planned arrest: a new person, or ``person=None`` for one seen earlier."""

    role: InvolvementRole
    key: str
    person: PersonIn | None


@dataclass
class PlannedArrest:
    """An arrest and every workflow step it will go through (None: not reached yet)."""

    index: int
    fields: dict[str, object]
    involvements: list[PlannedInvolvement]
    charges: list[ChargeIn]
    charging: ChargingDecisionCreate | None = None
    charging_at: datetime | None = None
    bail: BailRecommendationCreate | None = None
    bail_at: datetime | None = None
    arraignment: ArraignmentCreate | None = None
    custody: CustodyCreate | None = None
    seal: SealCreate | None = None
    seal_at: datetime | None = None

    @property
    def arrested_at(self) -> datetime:
        """When the arrest happened."""
        value = self.fields["arrested_at"]
        assert isinstance(value, datetime)
        return value

    def payload(self, person_ids: dict[str, int], persons: dict[str, PersonIn]) -> ArrestCreate:
        """The intake payload: earlier persons by id when known, else described again."""
        involvements = []
        for item in self.involvements:
            if item.person is None and item.key in person_ids:
                involvements.append(InvolvementIn(role=item.role, person_id=person_ids[item.key]))
            else:
                person = item.person or persons[item.key]
                involvements.append(
                    InvolvementIn(role=item.role, person=person, create_new_person=True)
                )
        return ArrestCreate.model_validate(
            {**self.fields, "involvements": involvements, "charges": self.charges}
        )


@dataclass
class PlanState:
    """Where the generator stands: its random source, the persons so far, running numbers."""

    rng: random.Random
    end: datetime
    persons: dict[str, PersonIn] = field(default_factory=dict)
    arrestees: list[str] = field(default_factory=list)
    sids: set[str] = field(default_factory=set)
    officers: list[tuple[str, str, str]] = field(default_factory=list)
    docket: int = 0
    otn_base: int = 0

    def new_key(self, person: PersonIn) -> str:
        key = f"p{len(self.persons) + 1}"
        self.persons[key] = person
        return key


@dataclass
class Plan:
    """The arrests to create and every person they mention, by key."""

    arrests: list[PlannedArrest]
    persons: dict[str, PersonIn]


def charge(citation: str, counts: int = 1) -> ChargeIn:
    """A charge line for a citation of the statute table."""
    statute = STATUTES[citation]
    return ChargeIn(
        statute=statute.citation,
        description=statute.description,
        grade=statute.grade,
        counts=counts,
    )
