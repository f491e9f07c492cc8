"""Tables of the records domain: a person exists once, involvements point at it (NIEM)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openpars.db import Base, JSONDoc, UTCDateTime, register_schema_ddl, str_enum, utcnow
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
    VersionedEntity,
)

# Name keys compare bytewise so prefix ranges use the index on PostgreSQL whatever the locale.
NameKey = String(310).with_variant(String(310, collation="C"), "postgresql")


class Person(Base):
    """One human being, however many arrests they appear in and in whatever role."""

    __tablename__ = "persons"
    __table_args__ = (
        # (name_key, id) is the order of every name search: PostgreSQL then walks the index in
        # order and stops after a page, whatever it estimates for the range (with name_key
        # alone it sorted every match of a prefix it thought rare: 100 ms at 1M persons).
        Index("ix_persons_name_key", "name_key", "id"),
        Index("ix_persons_birth_date", "birth_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    # Lower-case, accent-free "family given middle": the key of prefix search.
    name_key: Mapped[str] = mapped_column(NameKey)
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[Sex | None] = mapped_column(str_enum(Sex, 1))
    race: Mapped[Race | None] = mapped_column(str_enum(Race, 1))
    address: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(30))
    place_of_birth: Mapped[str | None] = mapped_column(String(100))
    citizenship: Mapped[str | None] = mapped_column(String(100))
    # Not unique in the database: a person known only from sealed or expunged arrests must be
    # as absent to a writer without sealed access as a person who never existed, so intake
    # gives such a writer a new person with the same SID (records.identifiers). Among the
    # records a writer sees, intake and amendments keep each identifier on one record.
    sid: Mapped[str | None] = mapped_column(String(20), index=True)
    fbi_number: Mapped[str | None] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # PostgreSQL: whether the site floor in force admits this person at all (an involvement in
    # a role the floor allows, of a known adult unless the floor admits juveniles, on an arrest
    # neither sealed nor expunged), which the external role's row-level security policy on
    # persons reads instead of proving it again for every row (access.rls). Kept by database
    # triggers in the transaction of every change it depends on and refused to any other
    # writer; the application never writes it and its own reads never filter on it (they carry
    # their own predicate, access.filters): it only copies it onto a visibility set's rows,
    # whose policy reads the copy (access.models; the database checks every copy and rewrites
    # them with the column). Deferred: no ORM read loads it. On SQLite, which has no
    # row-level security, nothing keeps or reads it (it stays false).
    floor_visible: Mapped[bool] = mapped_column(server_default=text("false"), deferred=True)

    aliases: Mapped[list[PersonAlias]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="PersonAlias.id"
    )


class PersonAlias(Base):
    """Another name a person is known by; searched like the primary name."""

    __tablename__ = "person_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    name_key: Mapped[str] = mapped_column(NameKey, index=True)


class Arrest(Base):
    """One arrest event and where it stands in the workflow."""

    __tablename__ = "arrests"
    __table_args__ = (
        # Not unique in the database: a sealed arrest's report id must answer as an unused one
        # (records.identifiers); intake keeps it one visible arrest's under the identifier lock.
        Index("ix_arrests_source_agency_id_report_id", "source_agency_id", "report_id"),
        # (arrested_at, id) is the order of arrest searches, newest first; see ix_persons_name_key.
        Index("ix_arrests_arrested_at", "arrested_at", "id"),
        Index("ix_arrests_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Not unique in the database, for the same reason as Person.sid: a sealed arrest's OTN or
    # docket number must not answer differently from one never used.
    otn: Mapped[str | None] = mapped_column(String(20), index=True)
    incident_number: Mapped[str | None] = mapped_column(String(30), index=True)
    ori: Mapped[str] = mapped_column(String(9))
    arresting_officer: Mapped[str] = mapped_column(String(100))
    arrested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    location: Mapped[str | None] = mapped_column(String(300))
    arrest_type: Mapped[ArrestType] = mapped_column(str_enum(ArrestType))
    narrative: Mapped[str | None] = mapped_column(Text)
    state: Mapped[ArrestState] = mapped_column(str_enum(ArrestState), default=ArrestState.ENTERED)
    docket_number: Mapped[str | None] = mapped_column(String(30), index=True)
    # The booking system's report id: the idempotency key of intake, one visible arrest's per
    # source agency.
    source_agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    report_id: Mapped[str | None] = mapped_column(String(100))
    # SHA-256 of the canonical intake payload: tells a harmless resend from a clashing reuse.
    intake_digest: Mapped[str | None] = mapped_column(String(64))
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expunged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    seal_order: Mapped[str | None] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    involvements: Mapped[list[Involvement]] = relationship(
        lazy="selectin", order_by="Involvement.id", back_populates="arrest"
    )
    charges: Mapped[list[Charge]] = relationship(
        lazy="selectin", order_by="(Charge.stage, Charge.revision, Charge.sequence)"
    )
    charging_decisions: Mapped[list[ChargingDecision]] = relationship(
        lazy="selectin", order_by="ChargingDecision.id"
    )
    bail_recommendations: Mapped[list[BailRecommendation]] = relationship(
        lazy="selectin", order_by="BailRecommendation.id"
    )
    arraignment: Mapped[Arraignment | None] = relationship(lazy="selectin")
    custody: Mapped[CustodyEvent | None] = relationship(lazy="selectin")

    @property
    def is_sealed(self) -> bool:
        """Sealed or expunged records are out of every ordinary view."""
        return self.sealed_at is not None or self.expunged_at is not None


class Involvement(Base):
    """A person's role in an arrest; one person may hold several roles across arrests."""

    __tablename__ = "involvements"
    __table_args__ = (
        UniqueConstraint("arrest_id", "person_id", "role"),
        # Covers the visibility probe of every enforced read (person, role, juvenile, arrest),
        # so the probe never reads the table row.
        Index("ix_involvements_person_visibility", "person_id", "role", "juvenile", "arrest_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arrest_id: Mapped[int] = mapped_column(ForeignKey("arrests.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    role: Mapped[InvolvementRole] = mapped_column(str_enum(InvolvementRole))
    # Derived from the person's birth date and the arrest date; kept current on amendment so
    # scopes can exclude juveniles in SQL. NULL: the age is unknown (no birth date). Internal
    # readers are told exactly that; external readers see only known adults (IS FALSE), so an
    # unknown age counts as juvenile for them.
    juvenile: Mapped[bool | None] = mapped_column(default=None)

    arrest: Mapped[Arrest] = relationship(back_populates="involvements")
    person: Mapped[Person] = relationship(lazy="joined")


class Charge(Base):
    """One charge line; police-recommended and DA-approved sets are separate versions."""

    __tablename__ = "charges"
    __table_args__ = (
        UniqueConstraint("arrest_id", "stage", "revision", "sequence"),
        # Covers the grade condition of agreement scopes (a current charge of the arrest in a
        # grade; the unique (arrest, stage, revision, sequence) index finds the latest revision).
        Index("ix_charges_arrest_grade", "arrest_id", "grade"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arrest_id: Mapped[int] = mapped_column(ForeignKey("arrests.id"))
    stage: Mapped[ChargeStage] = mapped_column(str_enum(ChargeStage))
    # Each new set of charges at a stage is a new revision; earlier revisions stay.
    revision: Mapped[int] = mapped_column(default=1)
    sequence: Mapped[int] = mapped_column()
    statute: Mapped[str] = mapped_column(String(40), index=True)
    description: Mapped[str] = mapped_column(String(200))
    grade: Mapped[Grade] = mapped_column(str_enum(Grade, 2))
    counts: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ChargingDecision(Base):
    """The DA's decision on the recommended charges."""

    __tablename__ = "charging_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arrest_id: Mapped[int] = mapped_column(ForeignKey("arrests.id"), index=True)
    outcome: Mapped[ChargingOutcome] = mapped_column(str_enum(ChargingOutcome))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class BailRecommendation(Base):
    """Pretrial services' bail recommendation."""

    __tablename__ = "bail_recommendations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arrest_id: Mapped[int] = mapped_column(ForeignKey("arrests.id"), index=True)
    bail_type: Mapped[BailType] = mapped_column(str_enum(BailType))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    conditions: Mapped[str | None] = mapped_column(Text)
    recommended_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recommended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Arraignment(Base):
    """The preliminary arraignment: bail set, hearing date, Municipal Court docket."""

    __tablename__ = "arraignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arrest_id: Mapped[int] = mapped_column(ForeignKey("arrests.id"), unique=True)
    arraigned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    magistrate: Mapped[str] = mapped_column(String(100))
    bail_type: Mapped[BailType] = mapped_column(str_enum(BailType))
    bail_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    conditions: Mapped[str | None] = mapped_column(Text)
    preliminary_hearing_date: Mapped[date | None] = mapped_column(Date)
    docket_number: Mapped[str] = mapped_column(String(30))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CustodyEvent(Base):
    """Release or commitment after arraignment."""

    __tablename__ = "custody_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arrest_id: Mapped[int] = mapped_column(ForeignKey("arrests.id"), unique=True)
    outcome: Mapped[CustodyOutcome] = mapped_column(str_enum(CustodyOutcome))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    facility: Mapped[str | None] = mapped_column(String(200))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RecordVersion(Base):
    """Every version of a person or arrest, with who changed it, when and why. Append-only."""

    __tablename__ = "record_versions"
    __table_args__ = (UniqueConstraint("entity", "entity_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[VersionedEntity] = mapped_column(str_enum(VersionedEntity))
    entity_id: Mapped[int] = mapped_column()
    version: Mapped[int] = mapped_column()
    change: Mapped[ChangeKind] = mapped_column(str_enum(ChangeKind, 30))
    reason: Mapped[str | None] = mapped_column(Text)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


def _name_statistics_ddl(dialect: str) -> list[str]:
    # Name keys are nearly unique, so PostgreSQL's default histogram (100 buckets) spans
    # thousands of names per bucket and guesses a prefix range from its endpoints: at 1M
    # persons it put 'sha' at 18 rows (4,127 match), chose to fetch and sort every match (30 ms)
    # instead of walking ix_persons_name_key in order and stopping after a page (0.7 ms).
    # A histogram of 1,000 buckets fixes the estimate (every prefix of the benchmark then walks
    # the index) while planning stays under 1 ms; 10,000 buckets made planning cost 5 ms.
    if dialect != "postgresql":
        return []
    return [
        "ALTER TABLE persons ALTER COLUMN name_key SET STATISTICS 1000",
        "ALTER TABLE person_aliases ALTER COLUMN name_key SET STATISTICS 1000",
    ]


register_schema_ddl(_name_statistics_ddl)
