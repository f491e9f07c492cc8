"""The scope schema: every rule refused with the clause that broke it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from openpars.agreements.schemas import AgreementDocument, invalid_input
from openpars.agreements.scope import (
    ARREST_FIELDS,
    PERSON_FIELDS,
    FieldPolicy,
    QueryLimits,
    Scope,
)
from openpars.errors import InvalidInput
from tests.agreements.helpers import scope_dict


def refusal(data: dict[str, Any]) -> InvalidInput:
    with pytest.raises(ValidationError) as caught:
        Scope.model_validate(data)
    return invalid_input(caught.value, prefix="scope")


def test_valid_scope_parses_and_is_frozen() -> None:
    scope = Scope.model_validate(scope_dict())
    assert scope.roles == frozenset({"arrestee"})
    assert scope.policy_of_person_field("family_name") is FieldPolicy.VISIBLE
    assert scope.policy_of_person_field("address") is FieldPolicy.HIDDEN  # unlisted = hidden
    assert scope.limits == QueryLimits(max_results=25)
    with pytest.raises(ValidationError):
        scope.include_sealed = True  # type: ignore[misc]


def test_unknown_person_field_names_the_clause() -> None:
    error = refusal(scope_dict(person_fields={"shoe_size": "visible"}))
    assert error.field == "scope.person_fields.shoe_size"
    assert error.message.startswith("scope.person_fields.shoe_size: unknown field; allowed: ")
    assert "family_name" in error.message


def test_id_and_nested_arrest_fields_cannot_be_named() -> None:
    assert "id" not in PERSON_FIELDS
    assert "id" not in ARREST_FIELDS
    # Arrest parts are granted whole: visible or hidden, never masked.
    assert ARREST_FIELDS["charges"].allowed_policies() == [FieldPolicy.VISIBLE, FieldPolicy.HIDDEN]
    assert refusal(scope_dict(arrest_fields={"charges": "redact"})).field.startswith(
        "scope.arrest_fields"
    )
    assert refusal(scope_dict(person_fields={"id": "visible"})).field == "scope.person_fields.id"
    error = refusal(scope_dict(arrest_fields={"involvements": "visible"}))
    assert error.field == "scope.arrest_fields.involvements"


def test_unknown_role_state_grade_and_policy() -> None:
    assert refusal(scope_dict(roles=["arrestee", "bystander"])).field.startswith("scope.roles")
    assert refusal(scope_dict(arrest_states=["lost"])).field.startswith("scope.arrest_states")
    assert refusal(scope_dict(grades=["F9"])).field.startswith("scope.grades")
    error = refusal(scope_dict(person_fields={"sid": "blur"}))
    assert error.field.startswith("scope.person_fields")


@pytest.mark.parametrize(
    ("fields", "clause"),
    [
        ({"person_fields": {"family_name": "year_only"}}, "scope.person_fields.family_name"),
        ({"person_fields": {"birth_date": "show_last_4"}}, "scope.person_fields.birth_date"),
        ({"person_fields": {"aliases": "redact"}}, "scope.person_fields.aliases"),
        ({"arrest_fields": {"state": "hash"}}, "scope.arrest_fields.state"),
        ({"arrest_fields": {"sealed": "nullify"}}, "scope.arrest_fields.sealed"),
        ({"arrest_fields": {"arrested_at": "redact"}}, "scope.arrest_fields.arrested_at"),
        # The year would come back as text, which ArrestRead.arrested_at does not accept.
        ({"arrest_fields": {"arrested_at": "year_only"}}, "scope.arrest_fields.arrested_at"),
    ],
)
def test_masks_must_fit_the_field_type(fields: dict[str, Any], clause: str) -> None:
    error = refusal(scope_dict(**fields))
    assert error.field == clause
    assert "does not fit" in error.message


def test_masks_that_fit() -> None:
    scope = Scope.model_validate(
        scope_dict(
            person_fields={
                "birth_date": "year_only",
                "phone": "show_last_4",
                "family_name": "redact",
                "fbi_number": "hash",
                "address": "nullify",
                "aliases": "visible",
            },
            arrest_fields={"sealed": "visible", "arrested_at": "nullify", "ori": "hash"},
        )
    )
    assert scope.person_fields["birth_date"] is FieldPolicy.YEAR_ONLY


@pytest.mark.parametrize("slug", ["ab", "Criminal", "1abc", "has space", "x" * 42, "under_score"])
def test_purpose_must_be_a_slug(slug: str) -> None:
    error = refusal(scope_dict(purposes=[{"purpose": slug}]))
    assert error.field == "scope.purposes.0.purpose"
    assert "slug" in error.message


def test_duplicates_are_refused() -> None:
    twice = [{"purpose": "warrant-service"}, {"purpose": "warrant-service"}]
    assert "listed twice" in refusal(scope_dict(purposes=twice)).message
    assert refusal(scope_dict(roles=["arrestee", "arrestee"])).field == "scope.roles"
    assert refusal(scope_dict(grades=["F1", "F1"])).field == "scope.grades"


def test_empty_sets_and_purposes_are_refused() -> None:
    for clause in ("roles", "arrest_states", "grades", "purposes"):
        assert refusal(scope_dict(**{clause: []})).field == f"scope.{clause}"


def test_unknown_keys_are_refused() -> None:
    assert refusal(scope_dict(on_behalf_of=True)).field == "scope.on_behalf_of"
    assert refusal(scope_dict(limits={"max_rows": 5})).field == "scope.limits.max_rows"


@pytest.mark.parametrize(
    ("limits", "clause"),
    [
        ({"max_results": 0}, "scope.limits.max_results"),
        ({"max_results": 501}, "scope.limits.max_results"),
        ({"rate_per_user_per_minute": 0}, "scope.limits.rate_per_user_per_minute"),
        ({"name_search": True}, "scope.limits.name_search"),
        ({"wildcards": True}, "scope.limits.wildcards"),
        (
            {"rate_per_user_per_minute": 400, "rate_per_agency_per_minute": 300},
            "scope.limits.rate_per_user_per_minute",
        ),
    ],
)
def test_query_limits(limits: dict[str, Any], clause: str) -> None:
    assert refusal(scope_dict(limits=limits)).field == clause


def test_name_search_needs_exact_identifiers_off() -> None:
    limits = QueryLimits(exact_identifiers_only=False, name_search=True, wildcards=True)
    assert limits.name_search


def test_serialisation_is_canonical() -> None:
    a = Scope.model_validate(scope_dict(roles=["other", "arrestee"], grades=["M1", "F1"]))
    b = Scope.model_validate(scope_dict(roles=["arrestee", "other"], grades=["F1", "M1"]))
    assert a.model_dump(mode="json") == b.model_dump(mode="json")
    assert a.model_dump(mode="json")["roles"] == ["arrestee", "other"]
    assert Scope.model_validate(a.model_dump(mode="json")) == a


def test_document_dates_and_admission() -> None:
    base: dict[str, Any] = {
        "name": "x agreement",
        "grantee_agency_id": 1,
        "all_units": True,
        "legal_basis": "statute",
        "parties": [2],
        "scope": scope_dict(),
        "effective_at": "2030-01-01T00:00:00Z",
        "expires_at": "2031-01-01T00:00:00Z",
    }
    AgreementDocument.model_validate(base)

    def field_of(**changes: Any) -> str:
        with pytest.raises(ValidationError) as caught:
            AgreementDocument.model_validate({**base, **changes})
        return invalid_input(caught.value).field or ""

    assert field_of(expires_at="2030-01-01T00:00:00Z") == "expires_at"
    assert field_of(expires_at="2029-01-01T00:00:00Z") == "expires_at"
    assert field_of(effective_at="2030-01-01T00:00:00") == "effective_at"  # naive: no zone
    assert field_of(all_units=False) == "grantee_unit_ids"
    assert field_of(grantee_unit_ids=[5]) == "grantee_unit_ids"
    assert field_of(parties=[2, 2]) == "parties"
    assert field_of(parties=[]) == "parties"
    assert field_of(fee={"amount": "-1"}) == "fee.amount"
    assert field_of(scope=scope_dict(person_fields={"x": "visible"})) == "scope.person_fields.x"
