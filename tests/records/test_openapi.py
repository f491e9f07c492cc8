"""The write-side endpoints are documented in OpenAPI with summaries and their statuses."""

from __future__ import annotations

from fastapi.testclient import TestClient

ENDPOINTS = [
    ("post", "/api/v1/arrests"),
    ("post", "/api/v1/persons/match"),
    ("post", "/api/v1/arrests/{arrest_id}/charging-decision"),
    ("post", "/api/v1/arrests/{arrest_id}/bail-recommendation"),
    ("post", "/api/v1/arrests/{arrest_id}/arraignment"),
    ("post", "/api/v1/arrests/{arrest_id}/custody"),
    ("patch", "/api/v1/arrests/{arrest_id}"),
    ("patch", "/api/v1/persons/{person_id}"),
    ("post", "/api/v1/arrests/{arrest_id}/seal"),
    ("get", "/api/v1/arrests/{arrest_id}/history"),
    ("get", "/api/v1/persons/{person_id}/history"),
]


def test_every_write_endpoint_is_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for method, path in ENDPOINTS:
        operation = spec["paths"][path][method]
        assert operation["summary"], (method, path)
        assert operation["description"], (method, path)
        assert "422" in operation["responses"], (method, path)
    intake = spec["paths"]["/api/v1/arrests"]["post"]["responses"]
    assert {"200", "201", "409"} <= set(intake)
    schema = spec["components"]["schemas"]["ChargeIn"]["properties"]["statute"]
    assert "pattern" in schema
