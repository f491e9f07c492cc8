"""Differential property: SQL-filtered reads equal a straightforward per-record reference check.

Random people, arrests (with recommended charges, approved revisions, declines) and
involvements (of adults, juveniles and persons of unknown age), a random policy; every read
path (person search and its total, person by id with involvements, arrest search by statute
and its total, arrest by id with involvements and the charges it shows) must return exactly
what a plain Python predicate over the same rows says. The reference spells out the rule of
``records.charges`` on its own: visibility and statute matches are decided on the current
charges (none when declined, else the latest approved revision, else the recommended ones).
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
from openpars.access.shaping import shown_charges
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
    # None: the age is unknown (no birth date).
    juvenile: bool | None


Line = tuple[Grade, str]


@dataclass(frozen=True)
class ArrestSpec:
    state: ArrestState
    grades: tuple[Grade, ...]
    sealed: bool
    involvements: tuple[Inv, ...]
    # The statute of each recommended charge, and the DA's approved revisions, oldest first.
    statutes: tuple[str, ...] = ()
    approved: tuple[tuple[Line, ...], ...] = ()

    def lines(self) -> tuple[Line, ...]:
        """The recommended charges as (grade, statute)."""
        laws = self.statutes or ("18 § 2701",) * len(self.grades)
        return tuple(zip(self.grades, laws, strict=True))

    def current(self) -> tuple[Line, ...]:
        """The reference rule: no charge when declined, else the latest approved revision,
        else the recommended charges."""
        if self.state is ArrestState.DECLINED:
            return ()
        return self.approved[-1] if self.approved else self.lines()

    def every(self) -> tuple[Line, ...]:
        """Every charge of every revision."""
        return self.lines() + tuple(line for rev in self.approved for line in rev)


N_PEOPLE = 6
STATUTE = "18 § 2701"
roles = st.sampled_from(list(InvolvementRole))
grade_lists = st.lists(st.sampled_from(list(Grade)), min_size=1, max_size=3)
lines = st.tuples(st.sampled_from(list(Grade)), st.sampled_from([STATUTE, "18 § 3502"]))
arrest_specs = grade_lists.flatmap(
    lambda grades: st.builds(
        ArrestSpec,
        state=st.sampled_from(list(ArrestState)),
        grades=st.just(tuple(grades)),
        sealed=st.booleans(),
        involvements=st.lists(
            st.builds(
                Inv,
                person=st.integers(0, N_PEOPLE - 1),
                role=roles,
                juvenile=st.sampled_from([True, False, None]),
            ),
            min_size=1,
            max_size=4,
            unique_by=lambda i: (i.person, i.role),
        ).map(tuple),
        statutes=st.lists(
            st.sampled_from([STATUTE, "18 § 3502"]), min_size=len(grades), max_size=len(grades)
        ).map(tuple),
        approved=st.lists(st.lists(lines, min_size=1, max_size=3).map(tuple), max_size=2).map(
            tuple
        ),
    )
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
    # Excluding juveniles admits known adults only: an unknown age counts as juvenile.
    return (policy.roles is None or inv.role in policy.roles) and not (
        policy.exclude_juveniles and inv.juvenile is not False
    )


def shown_lines(policy: ReadPolicy, spec: ArrestSpec) -> list[Line]:
    """The charges the caller is shown: all without a grades limit, else the current ones in
    its grades."""
    if policy.grades is None:
        return list(spec.every())
    return [line for line in spec.current() if line[0] in policy.grades]


def arrest_row_ok(policy: ReadPolicy, spec: ArrestSpec) -> bool:
    return (
        (policy.include_sealed or not spec.sealed)
        and (policy.arrest_states is None or spec.state in policy.arrest_states)
        and (policy.grades is None or bool(shown_lines(policy, spec)))
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
            unknown = frozenset(
                people[i.person].id for i in spec.involvements if i.juvenile is None
            )
            # The builder sets juvenile per person within this arrest.
            row = data.arrest(
                session,
                agency_id=agency.id,
                people=[(people[i.person], i.role) for i in spec.involvements],
                state=spec.state,
                grades=spec.grades,
                sealed=spec.sealed,
                juvenile=juveniles,
                unknown_age=unknown,
                statutes=spec.statutes or None,
                approved=spec.approved,
            )
            arrest_ids.append(row.id)
        if policy.external and visibility_set == "after":
            ensure_set(session, policy)

        # Reference: involvements as stored (juvenile is per person within an arrest, and an
        # unknown age wins, as in the builder).
        def stored_flag(spec: ArrestSpec, person: int) -> bool | None:
            flags = [j.juvenile for j in spec.involvements if j.person == person]
            return None if None in flags else any(flags)

        stored = [
            (aid, spec, Inv(i.person, i.role, stored_flag(spec, i.person)))
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
            a
            for a, s in zip(arrest_ids, specs, strict=True)
            if arrest_ok(policy, s, invs_of[a])
            and any(statute == STATUTE for _, statute in shown_lines(policy, s))
        )
        query = ArrestQuery(statute=STATUTE)
        found_arrests = repo.search_arrests(session, policy, query, limit=100)
        assert sorted(r["id"] for r in found_arrests.rows) == expected_arrests
        counted = repo.search_arrests(
            session, policy, ArrestQuery(statute=STATUTE, count=True), limit=1
        )
        assert counted.total == len(expected_arrests) and counted.total_is_exact
        for aid, spec in zip(arrest_ids, specs, strict=True):
            visible_arrest = repo.visible_arrest(session, policy, aid)
            assert (visible_arrest is not None) == arrest_ok(policy, spec, invs_of[aid])
            if visible_arrest is not None:
                # The charges it shows: the same rule in Python as the SQL above.
                shown = [(c.grade, c.statute) for c in shown_charges(visible_arrest, policy)]
                assert sorted(shown) == sorted(shown_lines(policy, spec))
        session.close()
        outer.rollback()
