"""Enumerations of the records domain (states, roles, grades, bail types)."""

from __future__ import annotations

from enum import StrEnum


class ArrestState(StrEnum):
    """Where an arrest stands in the workflow; each step is owned by one agency kind."""

    ENTERED = "entered"
    CHARGED = "charged"
    DECLINED = "declined"
    ARRAIGNED = "arraigned"
    RELEASED = "released"
    COMMITTED = "committed"


class InvolvementRole(StrEnum):
    """A person's role in one arrest (NIEM: ArrestSubject, Victim, Witness, ...)."""

    ARRESTEE = "arrestee"
    VICTIM = "victim"
    WITNESS = "witness"
    COMPLAINANT = "complainant"
    AFFIANT = "affiant"
    OTHER = "other"


class ArrestType(StrEnum):
    """How the arrest came about."""

    ON_VIEW = "on_view"
    WARRANT = "warrant"
    SUMMONS = "summons"


class Grade(StrEnum):
    """Pennsylvania offence grades."""

    F1 = "F1"
    F2 = "F2"
    F3 = "F3"
    M1 = "M1"
    M2 = "M2"
    M3 = "M3"
    S = "S"


class ChargeStage(StrEnum):
    """Which version of the charges: police-recommended or DA-approved."""

    RECOMMENDED = "recommended"
    APPROVED = "approved"


class ChargingOutcome(StrEnum):
    """The DA charging unit's decision."""

    APPROVED = "approved"
    DECLINED = "declined"
    MODIFIED = "modified"


class BailType(StrEnum):
    """Bail types of Pa.R.Crim.P. 524."""

    ROR = "ror"
    UNSECURED = "unsecured"
    NONMONETARY = "nonmonetary"
    MONETARY = "monetary"
    DENIED = "denied"


class CustodyOutcome(StrEnum):
    """What happened after arraignment."""

    RELEASED = "released"
    COMMITTED = "committed"


class Sex(StrEnum):
    """Sex as recorded at booking (NIBRS codes)."""

    MALE = "M"
    FEMALE = "F"
    UNKNOWN = "U"


class Race(StrEnum):
    """Race as recorded at booking (NIBRS codes)."""

    WHITE = "W"
    BLACK = "B"
    AMERICAN_INDIAN = "I"
    ASIAN = "A"
    PACIFIC_ISLANDER = "P"
    UNKNOWN = "U"


class VersionedEntity(StrEnum):
    """Kinds of record whose every version is kept."""

    PERSON = "person"
    ARREST = "arrest"


class ChangeKind(StrEnum):
    """Why a new version of a record was written."""

    CREATE = "create"
    AMEND = "amend"
    CORRECT = "correct"
    CHARGING = "charging"
    BAIL_RECOMMENDATION = "bail_recommendation"
    ARRAIGNMENT = "arraignment"
    CUSTODY = "custody"
    SEAL = "seal"
    UNSEAL = "unseal"
    EXPUNGE = "expunge"
    LINK = "link"
