"""Issue 11's rule for every audited answer: the receipt is in the header and in the body.

A bare JSON array has nowhere to put ``audit_entry``, so no audited 200 may be one: the
OpenAPI document is walked, and so are the app's routes (a route the document left out, or a
response model the document rendered differently, would escape a check of the document alone).
"""

from __future__ import annotations

import typing
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from openpars.web.openapi import BARE_BODIES, PUBLIC
from tests.factories import World


def _is_array(schema: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether a response schema is (or resolves to, or combines into) a JSON array."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _is_array(spec["components"]["schemas"][name], spec)
    if schema.get("type") == "array":
        return True
    parts = schema.get("allOf", []) + schema.get("anyOf", []) + schema.get("oneOf", [])
    return any(_is_array(part, spec) for part in parts)


def test_no_audited_answer_in_the_document_is_a_bare_array(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    bare = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if (method, path) in PUBLIC or (method, path) in BARE_BODIES:
                continue
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json")
                if str(status).startswith("2") and media and _is_array(media["schema"], spec):
                    bare.append((method, path, status))
    assert bare == []


def test_no_api_route_declares_a_list_response(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    # Routers are included lazily: walk them as the app resolves them, with their full paths.
    routes = [
        (c.path, c.route)
        for c in iter_route_contexts(app.routes)
        if isinstance(c.route, APIRoute) and c.path.startswith("/api/")
    ]
    assert len(routes) > 50  # the walk saw the API, not an empty app
    lists = []
    for path, route in routes:
        if typing.get_origin(route.response_model) in (list, tuple, set, frozenset):
            lists.append((sorted(route.methods), path))
    assert lists == []


def test_a_former_list_answers_with_its_receipt_in_the_body(
    client: TestClient, world: World
) -> None:
    for path, who in (
        ("/api/v1/agencies", "admin"),
        ("/api/v1/proposals", "agreements"),
        ("/api/v1/keys", "agreements"),
    ):
        answer = client.get(path, headers=world.auth(who))
        assert answer.status_code == 200, (path, answer.text)
        body = answer.json()
        assert set(body) == {"items", "total", "offset", "limit", "audit_entry"}, path
        assert answer.headers["OpenPARS-Audit-Entry"] == str(body["audit_entry"])
    page = client.get(
        "/api/v1/agencies", params={"offset": 1, "limit": 2}, headers=world.auth("admin")
    ).json()
    everything = client.get("/api/v1/agencies", headers=world.auth("admin")).json()
    assert page["items"] == everything["items"][1:3]
    assert page["total"] == everything["total"] == len(everything["items"]) > 3
