"""The OpenAPI document declares the bearer scheme and every error; /docs works offline."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openpars.web.errors import ErrorEnvelope
from openpars.web.openapi import PUBLIC, RATE_LIMITED
from tests.factories import World

ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
EXTERNAL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (method, path, operation) of the document."""
    return [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_and_their_assets_come_from_openpars(client: TestClient, page: str) -> None:
    """An offline browser can use the docs: every asset is served by the app, no CDN URL."""
    html = client.get(page)
    assert html.status_code == 200
    assert EXTERNAL.search(html.text) is None, EXTERNAL.search(html.text)
    assets = ASSET.findall(html.text)
    scripts = re.findall(r"<script src=", html.text)
    assert scripts, "the page loads its viewer script"
    for url in assets:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
        assert EXTERNAL.search(asset.text[:200]) is None or url.endswith(".js"), url


def test_swagger_ui_sends_the_document_nowhere(client: TestClient) -> None:
    """Swagger UI's default validator badge would post the document to a third party."""
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_bearer_scheme_is_declared(client: TestClient) -> None:
    """/docs shows 'Authorize' for an HTTP bearer token; a generator adds the header."""
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }


def test_every_operation_declares_its_security(client: TestClient) -> None:
    """Public operations require nothing; every other one requires the bearer token."""
    spec = client.get("/openapi.json").json()
    seen = set()
    for method, path, operation in operations(spec):
        seen.add((method, path))
        expected = [] if (method, path) in PUBLIC else [{"bearer": []}]
        assert operation["security"] == expected, (method, path)
    assert seen >= PUBLIC, "a public operation named in openpars.web.openapi does not exist"
    assert ("get", "/healthz") in PUBLIC
    assert ("get", "/api/v1/audit/checkpoint") in PUBLIC


def _request(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    url = re.sub(r"\{[^}]+\}", "1", path)
    return client.request(method.upper(), url, headers=headers).status_code


def test_the_declared_security_is_what_the_app_does(client: TestClient, world: World) -> None:
    """Without a token, or with a wrong one, a secured operation answers 401 before its
    parameters or body are validated, and a public one does not."""
    spec = client.get("/openapi.json").json()
    for method, path, _operation in operations(spec):
        status = _request(client, method, path, {})
        if (method, path) in PUBLIC:
            assert status != 401, (method, path)
        else:
            assert status == 401, (method, path, status)
        # A wrong token is refused the same way as none.
        if (method, path) not in PUBLIC:
            assert _request(client, method, path, {"Authorization": "Bearer nope"}) == 401


def test_every_operation_declares_its_errors(client: TestClient) -> None:
    """Each status an operation can answer is declared, every error with the one envelope."""
    spec = client.get("/openapi.json").json()
    for method, path, operation in operations(spec):
        responses = operation["responses"]
        where = (method, path)
        params = operation.get("parameters", [])
        body = "requestBody" in operation
        if where not in PUBLIC:
            assert {"401", "403", "503"} <= set(responses), where
        if method in ("post", "put", "patch", "delete") and where not in PUBLIC:
            assert "409" in responses, where
        if params or body:
            assert "422" in responses, where
        if body:
            assert "413" in responses, where
        if any(p["in"] == "path" for p in params):
            assert "404" in responses, where
        if where in RATE_LIMITED:
            assert "429" in responses, where
        for status, response in responses.items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ENVELOPE_REF}, (where, status)
                assert response["description"], (where, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_the_envelope_is_a_named_component(client: TestClient) -> None:
    """{"error": {"code", "message", "field", "details"}}, code and message always present."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["ErrorEnvelope"]["required"] == ["error"]
    body = schemas["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "field", "details", "audit_entry"}
    assert set(body["required"]) == {"code", "message"}


def test_real_error_bodies_fit_the_declared_envelope(client: TestClient, world: World) -> None:
    """401, 404 and 422 bodies the app really sends validate against the component."""
    token = {"Authorization": f"Bearer {world.tokens['admin']}"}
    answers = [
        client.get("/api/v1/users/me"),
        client.get("/api/v1/agreements/999999", headers=world.auth("agreements")),
        client.get("/api/v1/agencies?limit=-1", headers=token),
    ]
    assert [a.status_code for a in answers] == [401, 404, 422]
    for answer in answers:
        ErrorEnvelope.model_validate(answer.json(), strict=True)
