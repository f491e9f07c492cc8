"""Visibility sets (access.models, access.visibility): derived data that can only ever hide.

The property: after any sequence of writes, before anything recomputes, a set holds no person
the probe predicate (``person_visible``, itself checked against a reference in
test_policy_differential) would not show; once recomputed, it holds exactly those persons, and
a search through the set returns what the probes return.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from openpars.access import repository as repo
from openpars.access.external import compile_grant
from openpars.access.filters import person_visible
from openpars.access.models import VisibilityPending, VisibilitySet, VisiblePerson
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import PersonQuery
from openpars.access.visibility import ensure_set, mark_written, refresh, row_key, set_exists
from openpars.agreements.floor import SiteFloor
from openpars.agreements.grants import Grant
from openpars.agreements.scope import Scope
from openpars.db import Database
from openpars.governance.decisions import tick
from openpars.identity.models import Agency
from openpars.identity.roles import AgencyKind
from openpars.records.enums import ArrestState, ChargeStage, Grade, InvolvementRole
from openpars.records.models import Arrest, Charge, Involvement, Person
from openpars.records.validation import name_key
from tests.access import data
from tests.access.agreements import EXPIRES, activate, default_scope
from tests.access.test_policy_differential import ArrestSpec, arrest_specs
from tests.conftest import BACKEND
from tests.factories import World

N_PEOPLE = 6
# An external filter that shows every arrestee (any state, any grade).
ARRESTEES = ReadPolicy(
    external=True,
    roles=frozenset({InvolvementRole.ARRESTEE}),
    arrest_states=frozenset(ArrestState),
    grades=frozenset(Grade),
)
external_policies = st.builds(
    ReadPolicy,
    external=st.just(True),
    roles=st.frozensets(st.sampled_from(list(InvolvementRole)), min_size=1),
    include_sealed=st.booleans(),
    exclude_juveniles=st.booleans(),
    arrest_states=st.frozensets(st.sampled_from(list(ArrestState)), min_size=1),
    grades=st.frozensets(st.sampled_from(list(Grade)), min_size=1),
)
# (what, which arrest/involvement/person, a value): every kind of write the triggers watch.
mutations = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "seal",
                "unseal",
                "expunge",
                "state",
                "regrade",
                "add_charge",
                "downgrade",
                "decline",
                "drop_charge",
                "role",
                "juvenile",
                "move",
                "drop_involvement",
                "rename",
            ]
        ),
        st.integers(0, 20),
        st.integers(0, 20),
    ),
    max_size=8,
)


def members(session: Session, policy: ReadPolicy) -> set[int]:
    """The persons in the policy's set, as stored now (nothing recomputed)."""
    stmt = (
        select(VisiblePerson.person_id)
        .join(VisibilitySet, VisibilitySet.id == VisiblePerson.set_id)
        .where(VisibilitySet.row_key == row_key(policy))
    )
    return set(session.scalars(stmt))


def probed(session: Session, policy: ReadPolicy) -> set[int]:
    """The persons the probe predicate shows."""
    return set(session.scalars(select(Person.id).where(person_visible(policy))))


def _mutate(session: Session, what: str, a: int, b: int) -> None:
    arrests = list(session.scalars(select(Arrest).order_by(Arrest.id)))
    involvements = list(session.scalars(select(Involvement).order_by(Involvement.id)))
    persons = list(session.scalars(select(Person).order_by(Person.id)))
    arrest = arrests[a % len(arrests)]
    charges = list(session.scalars(select(Charge).where(Charge.arrest_id == arrest.id)))
    moment = datetime(2025, 6, 1, tzinfo=UTC)
    if what == "seal":
        arrest.sealed_at = moment
    elif what == "unseal":
        arrest.sealed_at = None
    elif what == "expunge":
        arrest.expunged_at = moment
    elif what == "state":
        arrest.state = list(ArrestState)[b % len(ArrestState)]
    elif what in ("regrade", "drop_charge"):
        if charges and what == "regrade":
            charges[b % len(charges)].grade = list(Grade)[b % len(Grade)]
        elif charges:
            session.delete(charges[b % len(charges)])
    elif what == "add_charge":
        session.add(
            Charge(
                arrest_id=arrest.id,
                stage=ChargeStage.APPROVED,
                sequence=1000 + max((c.sequence for c in charges), default=0),
                statute="18 § 3502",
                description="Burglary",
                grade=list(Grade)[b % len(Grade)],
            )
        )
    elif what == "downgrade":
        # The DA's new approved revision supersedes whatever was current (an INSERT only).
        latest = max((c.revision for c in charges if c.stage is ChargeStage.APPROVED), default=0)
        session.add(
            Charge(
                arrest_id=arrest.id,
                stage=ChargeStage.APPROVED,
                revision=latest + 1,
                sequence=1,
                statute="18 § 2701",
                description="Simple assault",
                grade=list(Grade)[b % len(Grade)],
            )
        )
    elif what == "decline":
        arrest.state = ArrestState.DECLINED
    elif what == "rename":
        person = persons[a % len(persons)]
        person.family_name = f"Doe{b}"
        person.name_key = name_key(person.family_name, person.given_name)
    elif involvements:
        involvement = involvements[a % len(involvements)]
        taken = {(i.arrest_id, i.person_id, i.role) for i in involvements}
        role = list(InvolvementRole)[b % len(InvolvementRole)]
        person_id = persons[b % len(persons)].id
        if what == "role" and (involvement.arrest_id, involvement.person_id, role) not in taken:
            involvement.role = role
        elif what == "juvenile":
            # Adult -> juvenile -> unknown -> adult: each step may narrow what is visible.
            cycle: dict[bool | None, bool | None] = {False: True, True: None, None: False}
            involvement.juvenile = cycle[involvement.juvenile]
        elif what == "move" and (involvement.arrest_id, person_id, involvement.role) not in taken:
            involvement.person_id = person_id
        elif what == "drop_involvement":
            session.delete(involvement)
    session.flush()


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=st.lists(arrest_specs, min_size=1, max_size=5),
    policy=external_policies,
    changes=mutations,
    built_first=st.booleans(),
)
def test_a_set_never_shows_more_than_the_probes_and_matches_them_once_refreshed(
    engine: Engine,
    specs: list[ArrestSpec],
    policy: ReadPolicy,
    changes: list[tuple[str, int, int]],
    built_first: bool,
) -> None:
    with engine.connect() as conn, conn.begin() as outer:
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        agency = Agency(name="Police", kind=AgencyKind.POLICE, ori="PAPEP0000")
        session.add(agency)
        session.flush()
        if built_first:
            ensure_set(session, policy)
        people = [data.person(session, "Doe", f"P{i}") for i in range(N_PEOPLE)]
        for spec in specs:
            data.arrest(
                session,
                agency_id=agency.id,
                people=[(people[i.person], i.role) for i in spec.involvements],
                state=spec.state,
                grades=spec.grades,
                sealed=spec.sealed,
                juvenile=frozenset(people[i.person].id for i in spec.involvements if i.juvenile),
                unknown_age=frozenset(
                    people[i.person].id for i in spec.involvements if i.juvenile is None
                ),
                statutes=spec.statutes or None,
                approved=spec.approved,
            )
        if not built_first:
            ensure_set(session, policy)
        refresh(session)
        assert members(session, policy) == probed(session, policy)
        for what, a, b in changes:
            _mutate(session, what, a, b)
            # Not yet recomputed: the triggers alone must never leave a person shown.
            assert members(session, policy) <= probed(session, policy), what
        refresh(session)
        expected = probed(session, policy)
        assert members(session, policy) == expected
        assert session.scalar(select(VisibilityPending.person_id)) is None
        # A search through the set returns what the probes return, in the same order.
        query = PersonQuery(name="doe", count=True)
        found = repo.search_persons(session, policy, query, limit=100)
        assert set_exists(session, row_key(policy))
        assert {r["id"] for r in found.rows} == expected and found.total == len(expected)
        session.close()
        outer.rollback()


def test_a_search_without_a_set_is_answered_with_probes(db: Database, world: World) -> None:
    policy = ARRESTEES
    with db.session() as session:
        person = data.person(session, "Quist", "Ann")
        data.arrest(
            session,
            agency_id=world.agencies["Philadelphia Police Department"],
            people=[(person, InvolvementRole.ARRESTEE)],
        )
        assert not set_exists(session, row_key(policy))
        found = repo.search_persons(session, policy, PersonQuery(name="quist"), limit=10)
        assert [r["id"] for r in found.rows] == [person.id]
        nothing = repo.search_persons(session, policy, PersonQuery(name="zzz"), limit=10)
        assert nothing.rows == [] and nothing.total == 0


def agreement_policy(session: Session, world: World) -> ReadPolicy:
    """Adopt the standard test agreement; the policy its version compiles to."""
    agreement = activate(session, world)
    version = session.scalar(
        text("SELECT content_hash FROM agreement_versions WHERE agreement_id = :a"),
        {"a": agreement.id},
    )
    now = datetime.now(UTC)
    grant = Grant(
        agreement.id, 1, version, Scope.model_validate(default_scope()), now, now, b"k" * 32
    )
    return compile_grant(grant, SiteFloor())


def test_adopting_an_agreement_builds_its_set_and_intake_keeps_it(
    db: Database, world: World
) -> None:
    with db.session() as session:
        policy = agreement_policy(session, world)
        assert set_exists(session, row_key(policy))
        person = data.person(session, "Intaken", "Ida")
        data.arrest(
            session,
            agency_id=world.agencies["Philadelphia Police Department"],
            people=[
                (person, InvolvementRole.ARRESTEE),
                (data.person(session, "V", "V"), InvolvementRole.VICTIM),
            ],
            state=ArrestState.CHARGED,
            grades=(Grade.F1,),
        )
    with db.session() as session:
        # The commit recomputed the new persons: the arrestee is in, the victim never.
        assert members(session, policy) == probed(session, policy)
        assert person.id in members(session, policy)
        assert session.scalar(select(VisibilityPending.person_id)) is None
        # Sealing removes at once, in the writing transaction.
        session.execute(
            update(Arrest)
            .where(
                Arrest.id.in_(
                    select(Involvement.arrest_id).where(Involvement.person_id == person.id)
                )
            )
            .values(sealed_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        assert person.id not in members(session, policy)
    with db.session() as session:
        # An UPDATE statement through the session is noticed like an ORM change: recomputed
        # before its commit, nothing left pending.
        assert session.scalar(select(VisibilityPending.person_id)) is None
        assert members(session, policy) == probed(session, policy)


def test_the_tick_recomputes_what_a_writer_left_and_drops_sets_no_one_uses(
    db: Database, world: World
) -> None:
    with db.session() as session:
        policy = agreement_policy(session, world)
        # A set no version in force uses (built by hand here).
        ensure_set(session, ARRESTEES)
        person = data.person(session, "Late", "Lou")
        arrest_id = data.arrest(
            session,
            agency_id=world.agencies["Philadelphia Police Department"],
            people=[(person, InvolvementRole.WITNESS)],
            state=ArrestState.CHARGED,
            grades=(Grade.F1,),
        ).id
    with db.session() as session:
        assert person.id not in members(session, policy)
        # A writer outside the ORM that never says it wrote: only the trigger runs.
        session.connection().execute(
            update(Involvement).where(Involvement.arrest_id == arrest_id).values(role="arrestee")
        )
    with db.session() as session:
        assert person.id not in members(session, policy)
        assert session.scalar(select(VisibilityPending.person_id)) == person.id
        tick(session, now=datetime.now(UTC))
    with db.session() as session:
        assert person.id in members(session, policy)
        assert set_exists(session, row_key(policy))
        assert not set_exists(session, row_key(ARRESTEES))
        # Once the agreement has expired, its set goes too; searches would use probes.
        tick(session, now=EXPIRES + timedelta(days=1))
        assert not set_exists(session, row_key(policy))
        assert session.scalar(select(VisiblePerson.person_id)) is None


@pytest.mark.skipif(BACKEND != "postgresql", reason="concurrent writers need PostgreSQL")
def test_concurrent_writers_to_one_person_never_leave_a_stale_entry(fresh_db: Database) -> None:
    """One transaction seals the only arrest that shows a person while another renames the
    person. Recomputed from a snapshot without the seal, the rename would put the person
    back; the triggers' person locks make it wait and recompute after the seal commits."""
    policy = ARRESTEES
    with fresh_db.session() as session:
        agency = Agency(name="Police", kind=AgencyKind.POLICE, ori="PAPEP0000")
        session.add(agency)
        session.flush()
        ensure_set(session, policy)
        person = data.person(session, "Race", "Rita")
        person_id = person.id
        arrest_id = data.arrest(
            session, agency_id=agency.id, people=[(person, InvolvementRole.ARRESTEE)]
        ).id
    with fresh_db.session() as session:
        assert person_id in members(session, policy)
    renamed = threading.Event()
    errors: list[BaseException] = []

    def rename() -> None:
        try:
            with fresh_db.session() as other:
                other.execute(
                    update(Person)
                    .where(Person.id == person_id)
                    .values(family_name="Raced", name_key=name_key("Raced", "Rita"))
                )
                mark_written(other)
            renamed.set()
        except BaseException as exc:
            errors.append(exc)

    with fresh_db.session() as session:
        session.execute(
            update(Arrest).where(Arrest.id == arrest_id).values(sealed_at=datetime.now(UTC))
        )
        worker = threading.Thread(target=rename)
        worker.start()
        # The rename waits for this transaction's lock on the person.
        assert not renamed.wait(0.5)
    worker.join(10)
    assert not errors and renamed.is_set()
    with fresh_db.session() as session:
        assert person_id not in members(session, policy)
        assert members(session, policy) == probed(session, policy)
