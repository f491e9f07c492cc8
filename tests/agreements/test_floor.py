"""The site floor: each clause refused, a property against a reference predicate, storage."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from openpars.agreements.floor import (
    SiteFloor,
    check_scope,
    floor_violations,
    get_floor,
    parse_floor,
    set_floor,
)
from openpars.agreements.models import SiteFloorVersion
from openpars.agreements.scope import (
    ARREST_FIELDS,
    PERSON_FIELDS,
    FieldPolicy,
    PurposeRule,
    QueryLimits,
    Scope,
)
from openpars.audit.models import AuditEntry
from openpars.db import Database
from openpars.errors import Forbidden, InvalidInput
from openpars.records.enums import ArrestState, Grade, InvolvementRole
from tests.agreements.helpers import audit_count, scope_dict
from tests.factories import World

DEFAULT = SiteFloor()


def crossing(**overrides: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        check_scope(Scope.model_validate(scope_dict(**overrides)), DEFAULT)
    return caught.value


def test_defaults() -> None:
    assert DEFAULT.forbidden_roles == {"victim", "witness", "complainant", "affiant"}
    assert DEFAULT.forbidden_person_fields == {"place_of_birth", "citizenship"}
    # Free text: outside every external scope unless the floor itself changes.
    assert DEFAULT.forbidden_arrest_fields == {
        "narrative",
        "location",
        "charging_decisions.reason",
        "bail_recommendations.conditions",
        "arraignment.conditions",
    }
    assert DEFAULT.forbid_sealed is True
    assert DEFAULT.forbid_juveniles is True
    check_scope(Scope.model_validate(scope_dict()), DEFAULT)


@pytest.mark.parametrize("role", ["victim", "witness", "complainant", "affiant"])
def test_forbidden_roles(role: str) -> None:
    error = crossing(roles=["arrestee", role])
    assert error.field == "scope.roles"
    assert error.code == "floor_crossed"
    assert error.message.endswith("may never be shared with an external agency (site floor)")


def test_victims_message_is_exact() -> None:
    error = crossing(roles=["arrestee", "victim"])
    assert error.message == (
        "scope.roles: victims may never be shared with an external agency (site floor)"
    )


@pytest.mark.parametrize("field", ["place_of_birth", "citizenship"])
@pytest.mark.parametrize("policy", ["visible", "redact", "hash", "nullify", "show_last_4"])
def test_forbidden_person_fields_must_be_hidden(field: str, policy: str) -> None:
    error = crossing(person_fields={field: policy})
    assert error.field == f"scope.person_fields.{field}"
    assert "must be hidden" in error.message


def test_forbidden_field_listed_as_hidden_is_fine() -> None:
    check_scope(Scope.model_validate(scope_dict(person_fields={"citizenship": "hidden"})), DEFAULT)


def test_sealed_juveniles_wildcards_and_result_cap() -> None:
    assert crossing(include_sealed=True).field == "scope.include_sealed"
    assert crossing(exclude_juveniles=False).field == "scope.exclude_juveniles"
    limits = {"exact_identifiers_only": False, "name_search": True, "wildcards": True}
    assert crossing(limits=limits).field == "scope.limits.wildcards"
    capped = SiteFloor(max_results=10)
    with pytest.raises(InvalidInput) as caught:
        check_scope(Scope.model_validate(scope_dict(limits={"max_results": 11})), capped)
    assert caught.value.field == "scope.limits.max_results"


def test_every_violation_is_listed_in_details() -> None:
    error = crossing(roles=["witness"], include_sealed=True, person_fields={"citizenship": "hash"})
    fields = [v["field"] for v in error.details["violations"]]
    assert fields == ["scope.roles", "scope.person_fields.citizenship", "scope.include_sealed"]


def test_a_site_may_allow_juveniles_and_wildcards_but_never_sealed() -> None:
    floor = SiteFloor(forbid_juveniles=False, allow_wildcards=True)
    limits = {"exact_identifiers_only": False, "name_search": True, "wildcards": True}
    check_scope(Scope.model_validate(scope_dict(exclude_juveniles=False, limits=limits)), floor)
    with pytest.raises(InvalidInput) as caught:
        parse_floor({"forbid_sealed": False})
    assert caught.value.field == "floor.forbid_sealed"
    with pytest.raises(InvalidInput) as caught:
        parse_floor({"forbidden_person_fields": ["shoe_size"]})
    assert caught.value.field == "floor.forbidden_person_fields.shoe_size"


# ---- property: check_scope accepts exactly the scopes above the floor -----------------------

POLICIES = list(FieldPolicy)


def _fields(catalogue: Any) -> st.SearchStrategy[dict[str, FieldPolicy]]:
    pairs = [(name, p) for name, spec in catalogue.items() for p in POLICIES if spec.allows(p)]
    return st.lists(st.sampled_from(pairs), max_size=6).map(dict)


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    exact = draw(st.booleans())
    name_search = not exact and draw(st.booleans())
    return Scope(
        roles=frozenset(draw(st.sets(st.sampled_from(InvolvementRole), min_size=1))),
        person_fields=draw(_fields(PERSON_FIELDS)),
        arrest_fields=draw(_fields(ARREST_FIELDS)),
        arrest_states=frozenset(draw(st.sets(st.sampled_from(ArrestState), min_size=1))),
        grades=frozenset(draw(st.sets(st.sampled_from(Grade), min_size=1))),
        exclude_juveniles=draw(st.booleans()),
        include_sealed=draw(st.booleans()),
        purposes=(PurposeRule(purpose="criminal-investigation"),),
        limits=QueryLimits(
            exact_identifiers_only=exact,
            name_search=name_search,
            wildcards=not exact and draw(st.booleans()),
            max_results=draw(st.integers(1, 500)),
        ),
    )


@st.composite
def floors(draw: st.DrawFn) -> SiteFloor:
    return SiteFloor(
        forbidden_roles=frozenset(draw(st.sets(st.sampled_from(InvolvementRole)))),
        forbidden_person_fields=frozenset(draw(st.sets(st.sampled_from(sorted(PERSON_FIELDS))))),
        forbidden_arrest_fields=frozenset(draw(st.sets(st.sampled_from(sorted(ARREST_FIELDS))))),
        forbid_juveniles=draw(st.booleans()),
        allow_wildcards=draw(st.booleans()),
        max_results=draw(st.integers(1, 500)),
    )


def above_floor(scope: Scope, floor: SiteFloor) -> bool:
    """The reference predicate, written out plainly."""
    for role in scope.roles:
        if role in floor.forbidden_roles:
            return False
    for name, policy in scope.person_fields.items():
        if name in floor.forbidden_person_fields and policy != FieldPolicy.HIDDEN:
            return False
    for name, policy in scope.arrest_fields.items():
        if name in floor.forbidden_arrest_fields and policy != FieldPolicy.HIDDEN:
            return False
    if scope.include_sealed:
        return False
    if floor.forbid_juveniles and not scope.exclude_juveniles:
        return False
    if scope.limits.wildcards and not floor.allow_wildcards:
        return False
    return scope.limits.max_results <= floor.max_results


@settings(max_examples=400, deadline=None)
@given(scope=scopes(), floor=st.one_of(st.just(SiteFloor()), floors()))
def test_check_scope_accepts_exactly_the_scopes_above_the_floor(
    scope: Scope, floor: SiteFloor
) -> None:
    expected = above_floor(scope, floor)
    if expected:
        check_scope(scope, floor)
        return
    with pytest.raises(InvalidInput) as caught:
        check_scope(scope, floor)
    assert caught.value.field is not None
    assert caught.value.field.startswith("scope.")
    assert caught.value.field == floor_violations(scope, floor)[0].field


# ---- storage ---------------------------------------------------------------------------------


def test_floor_is_stored_versioned_and_audited(db: Database, world: World) -> None:
    with db.session() as session:
        assert get_floor(session) == SiteFloor()
        before = audit_count(session)
        admin = world.principals["agreements"]
        set_floor(session, actor=admin, floor=SiteFloor(max_results=100), reason="pilot")
        # Each read asks which version is newest, whatever was parsed before.
        assert get_floor(session) == SiteFloor(max_results=100)
        set_floor(session, actor=admin, floor=SiteFloor(max_results=50), reason="tighter cap")
        assert get_floor(session) == SiteFloor(max_results=50)
        rows = session.scalars(select(SiteFloorVersion).order_by(SiteFloorVersion.version)).all()
        assert [(r.version, r.changed_by, r.reason) for r in rows] == [
            (1, "agreements", "pilot"),
            (2, "agreements", "tighter cap"),
        ]
        assert audit_count(session) == before + 2
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert last is not None
        assert (last.kind.value, last.action) == ("config", "floor.set")


def test_only_administrators_set_the_floor(db: Database, world: World) -> None:
    with db.session() as session, pytest.raises(Forbidden):
        set_floor(session, actor=world.principals["reader"], floor=SiteFloor(), reason="nope")
