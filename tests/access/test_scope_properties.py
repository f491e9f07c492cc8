"""Property: whatever an agreement says, compiled policies never cross the site floor.

Random scopes (even ones the proposal check would reject, since the floor is enforced again at
query time, independently) are compiled with the default floor; then random persons are shaped
through the policy: no field outside the scope, no floor field, no floor role, no sealed rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openpars.access.enforcement import check_query_shape
from openpars.access.external import compile_grant
from openpars.access.shaping import PERSON_SCALARS, person_read
from openpars.agreements.floor import SiteFloor
from openpars.agreements.grants import Grant
from openpars.agreements.scope import PERSON_FIELDS, FieldPolicy, PurposeRule, Scope
from openpars.errors import InvalidInput
from openpars.records.enums import ArrestState, Grade, InvolvementRole
from openpars.records.models import Person

FLOOR = SiteFloor()
T0 = datetime(2025, 1, 1, tzinfo=UTC)


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    fields = {}
    for name, spec in PERSON_FIELDS.items():
        if name == "id" or not draw(st.booleans()):
            continue
        fields[name] = draw(st.sampled_from(spec.allowed_policies()))
    return Scope.model_construct(  # skip the proposal-time floor check on purpose
        roles=draw(st.frozensets(st.sampled_from(list(InvolvementRole)), min_size=1)),
        person_fields=fields,
        arrest_fields={},
        arrest_states=draw(st.frozensets(st.sampled_from(list(ArrestState)), min_size=1)),
        grades=draw(st.frozensets(st.sampled_from(list(Grade)), min_size=1)),
        exclude_juveniles=draw(st.booleans()),
        include_sealed=draw(st.booleans()),
        purposes=(PurposeRule(purpose="warrant-service"),),
        limits=Scope.model_fields["limits"].get_default(call_default_factory=True),
    )


people = st.builds(
    Person,
    id=st.integers(1, 10**6),
    family_name=st.text(min_size=1, max_size=12),
    given_name=st.text(min_size=1, max_size=12),
    birth_date=st.dates(min_value=date(1930, 1, 1), max_value=date(2010, 1, 1)),
    phone=st.from_regex(r"[0-9]{3}-[0-9]{3}-[0-9]{4}", fullmatch=True),
    place_of_birth=st.text(min_size=1, max_size=20),
    citizenship=st.text(min_size=1, max_size=20),
    sid=st.text(min_size=1, max_size=10),
    fbi_number=st.text(min_size=1, max_size=10),
    address=st.text(min_size=1, max_size=20),
)


@settings(max_examples=80, deadline=None)
@given(scope=scopes(), person=people)
def test_compiled_policy_never_crosses_the_floor(scope: Scope, person: Person) -> None:
    grant = Grant(
        agreement_id=1,
        version=1,
        content_hash="ab" * 32,
        scope=scope,
        effective_at=T0,
        expires_at=T0.replace(year=2026),
        mask_key=b"k" * 32,
    )
    policy = compile_grant(grant, FLOOR)
    assert policy.external
    assert policy.roles is not None
    assert policy.roles <= scope.roles
    assert not policy.roles & FLOOR.forbidden_roles
    assert not policy.include_sealed
    assert policy.exclude_juveniles == (scope.exclude_juveniles or FLOOR.forbid_juveniles)
    assert policy.max_results == min(scope.limits.max_results, FLOOR.max_results)
    shaped = person_read(person, policy).model_dump(exclude_unset=True)
    granted = {n for n, p in scope.person_fields.items() if p is not FieldPolicy.HIDDEN}
    for name in PERSON_SCALARS:
        if name in FLOOR.forbidden_person_fields or name not in granted:
            assert name not in shaped, name
        elif scope.person_fields[name] is FieldPolicy.VISIBLE:
            assert shaped[name] == getattr(person, name)
        elif scope.person_fields[name] is FieldPolicy.NULLIFY:
            assert shaped[name] is None
        else:
            assert_masked(scope.person_fields[name], getattr(person, name), shaped[name])


def assert_masked(rule: FieldPolicy, original: object, masked: object) -> None:
    """Each mask keeps only what its name promises."""
    if original is None:
        assert masked is None
    elif rule is FieldPolicy.REDACT:
        assert isinstance(masked, str) and len(masked) == len(str(original))
        assert all(not ch.isalnum() or ch in "xXn" for ch in masked)
    elif rule is FieldPolicy.HASH:
        assert isinstance(masked, str) and len(masked) == 64 and masked != original
    elif rule is FieldPolicy.YEAR_ONLY:
        assert masked == str(original.year)  # type: ignore[attr-defined]
    elif rule is FieldPolicy.SHOW_LAST_4:
        text = str(original)
        assert masked == "x" * max(0, len(text) - 4) + text[-4:]
    else:
        raise AssertionError(f"unexpected rule {rule}")


def test_a_lowered_floor_cap_binds_an_agreement_already_in_force() -> None:
    scope = Scope.model_validate(
        {
            "roles": ["arrestee"],
            "person_fields": {"family_name": "visible"},
            "arrest_states": ["charged"],
            "grades": ["F1"],
            "purposes": [{"purpose": "warrant-service"}],
            "limits": {"max_results": 25},
        }
    )
    grant = Grant(1, 1, "ab" * 32, scope, T0, T0.replace(year=2026), b"k" * 32)
    policy = compile_grant(grant, SiteFloor(max_results=5))
    assert policy.max_results == 5
    assert "floor: at most 5 results per query" in policy.clauses
    with pytest.raises(InvalidInput) as refused:
        check_query_shape(policy, name=None, identifiers=True, limit=20)
    assert refused.value.field == "limit"
