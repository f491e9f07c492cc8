"""Control, bidirectional-override and invisible characters are refused in every request body.

The walk over the OpenAPI document is what keeps a new body field from forgetting the rule:
every string property of every model a request body can hold must refuse a NUL.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import func, select

import openpars
from openpars.config import Settings
from openpars.db import Database
from openpars.records.models import Person
from openpars.text import check_line, check_prose, forbidden_character
from openpars.web.app import create_app
from tests.factories import World
from tests.records.factories import arrest_payload

API = "/api/v1"
NUL = "Smi\x00th"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"].rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _body_components(document: dict[str, Any]) -> set[str]:
    """Every component schema a request body can hold, directly or nested."""
    schemas = document["components"]["schemas"]
    todo = [
        name
        for operations in document["paths"].values()
        for operation in operations.values()
        for name in _refs(operation.get("requestBody", {}))
    ]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _refs(schemas[name])
    return seen


def _holds_string(schema: dict[str, Any]) -> bool:
    """Whether a property's JSON schema admits a free string (not an enum or a $ref)."""
    if schema.get("type") == "string" and "enum" not in schema and "const" not in schema:
        return True
    if schema.get("type") == "array":
        return _holds_string(schema.get("items", {}))
    if schema.get("type") == "object" and schema.get("additionalProperties") in (True, None):
        return "properties" not in schema  # a free-form document
    return any(_holds_string(option) for option in schema.get("anyOf", []))


def _sample(schema: dict[str, Any]) -> Any:
    """A value of the property's shape with a NUL in its string."""
    if schema.get("type") == "array":
        return [_sample(schema.get("items", {}))]
    if schema.get("type") == "object":
        return {"key": NUL}
    for option in schema.get("anyOf", []):
        if _holds_string(option):
            return _sample(option)
    return NUL


def _models() -> dict[str, type[BaseModel]]:
    """Every pydantic model of openpars by name (a body model's name is its component name)."""
    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.walk_packages(openpars.__path__, "openpars."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and (value.__module__.startswith("openpars."))
            ):
                found.setdefault(value.__name__, value)
    return found


def _string_fields() -> list[tuple[str, str, dict[str, Any]]]:
    app = create_app(Settings(database_url="sqlite:///:memory:"))
    document = app.openapi()
    schemas = document["components"]["schemas"]
    fields = []
    for name in sorted(_body_components(document)):
        for prop, schema in schemas[name].get("properties", {}).items():
            if _holds_string(schema):
                # A model also used in a response is split into "X-Input" and "X-Output".
                fields.append((name.removesuffix("-Input"), prop, schema))
    return fields


STRING_FIELDS = _string_fields()


def test_the_walk_finds_the_body_fields() -> None:
    names = {(model, prop) for model, prop, _ in STRING_FIELDS}
    # A few fields of each feature, so the walk itself cannot silently find nothing.
    for expected in [
        ("PersonIn", "family_name"),
        ("ArrestCreate", "narrative"),
        ("AgencyCreate", "name"),
        ("AgreementCreate", "terms"),
        ("FloorUpdate", "floor"),
        ("SignedVote", "rationale"),
        ("WitnessProposalCreate", "add"),
    ]:
        assert expected in names
    assert len(names) > 60


@pytest.mark.parametrize(
    ("model", "prop", "schema"), STRING_FIELDS, ids=[f"{m}.{p}" for m, p, _ in STRING_FIELDS]
)
def test_every_body_string_field_refuses_nul(model: str, prop: str, schema: dict[str, Any]) -> None:
    cls = _models()[model]
    # The property is the field's alias where it has one ("from" for ``from_``).
    field = next(f for name, f in cls.model_fields.items() if (f.alias or name) == prop)
    # The field's type with its constraints, as the model validates it.
    annotation = field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]  # type: ignore[assignment]
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    with pytest.raises(ValidationError):
        adapter.validate_python(_sample(schema))


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x1b", "\x7f", "\x85", "\u202e", "\u2066", "\u200b", "\ufeff", "\u2028", "\ud800"],
)
def test_refused_characters(char: str) -> None:
    for check in (check_line, check_prose):
        with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}"):
            check(f"Gar{char}cia")


def test_allowed_text() -> None:
    # Accents, other scripts and the joiners some scripts need are names, not attacks.
    for name in ["José María Núñez-O'Brien", "Nguyễn Thị Minh", "مهر\u200cناز", "Ωμέγα"]:
        assert forbidden_character(name) is None
    assert check_prose("line one\nline two\tindented\r\n") == "line one\nline two\tindented\r\n"
    with pytest.raises(ValueError, match="U\\+000A"):
        check_line("two\nlines")


@pytest.mark.parametrize(
    ("where", "value", "field"),
    [
        ("family_name", "Smi\x00th", "involvements.0.person.family_name"),
        ("family_name", "\u202eHtims", "involvements.0.person.family_name"),
        ("narrative", "struck the\x00 complainant", "narrative"),
        ("arresting_officer", "P/O Ke\u2066lly", "arresting_officer"),
    ],
)
def test_api_refuses_control_characters_naming_the_field(
    client: TestClient, world: World, db: Database, where: str, value: str, field: str
) -> None:
    payload = arrest_payload()
    if where == "family_name":
        payload["involvements"][0]["person"]["family_name"] = value
    else:
        payload[where] = value
    with db.session() as session:
        before = session.scalar(select(func.count()).select_from(Person))
    response = client.post(f"{API}/arrests", json=payload, headers=world.auth("intake"))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"].replace("[", ".").replace("]", "") == field
    assert "U+" in error["message"]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == before


def test_api_keeps_line_breaks_in_a_narrative(client: TestClient, world: World) -> None:
    payload = arrest_payload(narrative="Stopped at 02:40.\n\tComplainant identified him.")
    response = client.post(f"{API}/arrests", json=payload, headers=world.auth("intake"))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/agencies", {"name": "Fake\u202eDPP", "kind": "police"}, "name"),
        (
            "/users",
            {"username": "x1", "display_name": "Ad\x00min", "agency_id": 1, "roles": ["reader"]},
            "display_name",
        ),
    ],
)
def test_other_features_refuse_them_too(
    client: TestClient, world: World, path: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(f"{API}{path}", json=body, headers=world.auth("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"].endswith(field)
