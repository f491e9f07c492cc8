"""Differential property: SQL-filtered reads equal a straightforward per-record reference check.

Random people, arrests and involvements, a random policy; every read path (person search and
its total, person by id with involvements, arrest search and its total, arrest by id with
involvements) must return exactly what a plain Python predicate over the same rows says.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from openpars.access import repository as repo
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import ArrestQuery, PersonQuery
from openpars.access.visibility import ensure_set
from openpars.identity.models import Agency
from openpars.identity.roles import AgencyKind
from openpars.records.enums import ArrestState, Grade, InvolvementRole
from openpars.records.models import PersonAlias
from openpars.records.validation import name_key
from tests.access import data


@dataclass(frozen=True)
class Inv:
    person: int
    role: InvolvementRole
    juvenile: bool


@dataclass(frozen=True)
class ArrestSpec:
    state: ArrestState
    grades: tuple[Grade, ...]
    sealed: bool
    involvements: tuple[Inv, ...]


N_PEOPLE = 6
roles = st.sampled_from(list(InvolvementRole))
arrest_specs = st.builds(
    ArrestSpec,
    state=st.sampled_from(list(ArrestState)),
    grades=st.lists(st.sampled_from(list(Grade)), min_size=1, max_size=3).map(tuple),
    sealed=st.booleans(),
    involvements=st.lists(
        st.builds(Inv, person=st.integers(0, N_PEOPLE - 1), role=roles, juvenile=st.booleans()),
        min_size=1,
        max_size=4,
        unique_by=lambda i: (i.person, i.role),
    ).map(tuple),
)
policies = st.builds(
    ReadPolicy,
    external=st.booleans(),
    roles=st.none() | st.frozensets(roles),
    include_sealed=st.booleans(),
    exclude_juveniles=st.booleans(),
    arrest_states=st.none() | st.frozensets(st.sampled_from(list(ArrestState))),
    grades=st.none() | st.frozensets(st.sampled_from(list(Grade))),
)


def inv_ok(policy: ReadPolicy, inv: Inv) -> bool:
    return (policy.roles is None or inv.role in policy.roles) and not (
        policy.exclude_juveniles and inv.juvenile
    )


def arrest_row_ok(policy: ReadPolicy, spec: ArrestSpec) -> bool:
    return (
        (policy.include_sealed or not spec.sealed)
        and (policy.arrest_states is None or spec.state in policy.arrest_states)
        and (policy.grades is None or any(g in policy.grades for g in spec.grades))
    )


def arrest_ok(policy: ReadPolicy, spec: ArrestSpec, invs: list[Inv]) -> bool:
    return arrest_row_ok(policy, spec) and any(inv_ok(policy, i) for i in invs)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=st.lists(arrest_specs, min_size=1, max_size=6),
    policy=policies,
    visibility_set=st.sampled_from(["none", "before", "after"]),
)
def test_sql_filter_equals_reference(
    engine: Engine, specs: list[ArrestSpec], policy: ReadPolicy, visibility_set: str
) -> None:
    """`visibility_set`: for an external policy, whether its set is built before the data is
    written (kept by the triggers), after it, or not at all (searched with probes)."""
    with engine.connect() as conn, conn.begin() as outer:
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        agency = Agency(name="Police", kind=AgencyKind.POLICE, ori="PAPEP0000")
        session.add(agency)
        session.flush()
        if policy.external and visibility_set == "before":
            ensure_set(session, policy)
        # The last person is found by an alias only, so both name branches are exercised.
        people = [data.person(session, "Doe", f"P{i}") for i in range(N_PEOPLE - 1)]
        people.append(data.person(session, "Roe", "Alias"))
        session.add(
            PersonAlias(
                person_id=people[-1].id,
                family_name="Doe",
                given_name="Alias",
                name_key=name_key("Doe", "Alias"),
            )
        )
        arrest_ids = []
        for spec in specs:
            juveniles = frozenset(people[i.person].id for i in spec.involvements if i.juvenile)
            # The builder sets juvenile per person within this arrest.
            row = data.arrest(
                session,
                agency_id=agency.id,
                people=[(people[i.person], i.role) for i in spec.involvements],
                state=spec.state,
                grades=spec.grades,
                sealed=spec.sealed,
                juvenile=juveniles,
            )
            arrest_ids.append(row.id)
        if policy.external and visibility_set == "after":
            ensure_set(session, policy)
        # Reference: involvements as stored (juvenile is per person within an arrest).
        stored = [
            (
                aid,
                spec,
                Inv(
                    i.person,
                    i.role,
                    any(j.person == i.person and j.juvenile for j in spec.involvements),
                ),
            )
            for aid, spec in zip(arrest_ids, specs, strict=True)
            for i in spec.involvements
        ]
        expected_people = sorted(
            {
                people[inv.person].id
                for _, spec, inv in stored
                if inv_ok(policy, inv) and arrest_row_ok(policy, spec)
            }
        )
        found = repo.search_persons(session, policy, PersonQuery(name="doe", count=True), limit=100)
        assert sorted(r["id"] for r in found.rows) == expected_people
        assert found.total == len(expected_people) and found.total_is_exact
        assert not found.has_more
        # Small pages, merged from both name branches, walk the same persons once each.
        walked: list[int] = []
        for offset in range(0, len(expected_people) + 2, 2):
            page = repo.search_persons(
                session, policy, PersonQuery(name="doe", offset=offset), limit=2
            )
            walked += [r["id"] for r in page.rows]
            assert page.has_more == (offset + 2 < len(expected_people))
        assert sorted(walked) == expected_people and len(walked) == len(set(walked))
        for index, person in enumerate(people):
            visible = repo.visible_person(session, policy, person.id)
            assert (visible is not None) == (person.id in expected_people)
            invs = repo.visible_involvements_of_person(session, policy, person.id)
            assert sorted((i.arrest_id, i.role) for i in invs) == sorted(
                (aid, inv.role)
                for aid, spec, inv in stored
                if inv.person == index and inv_ok(policy, inv) and arrest_row_ok(policy, spec)
            )
        invs_of = {aid: [inv for a, _, inv in stored if a == aid] for aid in arrest_ids}
        expected_arrests = sorted(
            a for a, s in zip(arrest_ids, specs, strict=True) if arrest_ok(policy, s, invs_of[a])
        )
        query = ArrestQuery(statute="18 § 2701")
        found_arrests = repo.search_arrests(session, policy, query, limit=100)
        assert sorted(r["id"] for r in found_arrests.rows) == expected_arrests
        counted = repo.search_arrests(
            session, policy, ArrestQuery(statute="18 § 2701", count=True), limit=1
        )
        assert counted.total == len(expected_arrests) and counted.total_is_exact
        for aid, spec in zip(arrest_ids, specs, strict=True):
            visible_arrest = repo.visible_arrest(session, policy, aid)
            assert (visible_arrest is not None) == arrest_ok(policy, spec, invs_of[aid])
        session.close()
        outer.rollback()
