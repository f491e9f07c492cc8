"""The OpenAPI document: the bearer scheme, each operation's security and every error status.

FastAPI documents only what a route declares, and openpars authenticates inside the request's
unit of work (``ctx.unit()``) rather than through a security dependency, so the document would
otherwise say nothing about tokens and list 422 as the only error. The few public operations are
named here once; every other operation needs a token. ``tests/web/test_openapi.py`` holds the
document to the app's real behaviour (a public operation answers without a token, every other
one answers 401), and the Schemathesis run checks every status the app sends is declared.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from openpars.web.audit_entries import FIELD_DOC, HEADER, HEADER_DOC
from openpars.web.errors import ErrorEnvelope

BEARER = "bearer"

# Operations anyone may call: liveness and the audit log's public face (signed checkpoints,
# proofs, witness cosignatures) carry no personal data and need no token.
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {
        ("get", "/healthz"),
        ("get", "/api/v1/audit/checkpoint"),
        ("get", "/api/v1/audit/key"),
        ("get", "/api/v1/audit/proof/inclusion"),
        ("get", "/api/v1/audit/proof/consistency"),
        ("post", "/api/v1/audit/checkpoints/{size}/cosignatures"),
        # The published transparency reports: noisy counts and their privacy budget only.
        ("get", "/api/v1/transparency/releases"),
        ("get", "/api/v1/transparency/releases/{month}"),
        # Logon: a username and password are the credential (docs/accounts.md).
        ("post", "/api/v1/sessions"),
    }
)

# Reads that go through the enforcement point, which applies the agreements' rate limits.
RATE_LIMITED: frozenset[tuple[str, str]] = frozenset(
    {
        ("get", "/api/v1/persons"),
        ("get", "/api/v1/persons/{person_id}"),
        ("get", "/api/v1/arrests"),
        ("get", "/api/v1/arrests/{arrest_id}"),
    }
)

# What a public operation can answer besides payload errors: the audit log's face answers 404
# before the first checkpoint (or for a size never published), and a cosignature from a key
# that is not a registered witness is refused.
PUBLIC_ERRORS: dict[tuple[str, str], frozenset[str]] = {
    ("get", "/api/v1/audit/checkpoint"): frozenset({"404"}),
    ("get", "/api/v1/audit/key"): frozenset({"404"}),
    ("get", "/api/v1/audit/proof/inclusion"): frozenset({"404"}),
    ("get", "/api/v1/audit/proof/consistency"): frozenset({"404"}),
    ("post", "/api/v1/audit/checkpoints/{size}/cosignatures"): frozenset({"403", "404"}),
    ("get", "/api/v1/transparency/releases"): frozenset(),
    ("get", "/api/v1/transparency/releases/{month}"): frozenset({"404"}),
    # A refused logon, the same for an unknown user, a wrong password and a locked account.
    ("post", "/api/v1/sessions"): frozenset({"401"}),
}

# Answers whose body is a document in a format of its own (an openpars-receipt/v1), kept
# without the audit_entry field; the header still names the read's own entry.
BARE_BODIES: frozenset[tuple[str, str]] = frozenset({("get", "/api/v1/audit/receipts/{entry_id}")})

WRITES = frozenset({"post", "put", "patch", "delete"})

ERROR_TEXT: dict[str, str] = {
    "401": "no token, or a token that is unknown, expired or revoked",
    "403": "the token's account or agency may not do this",
    "404": "no such record, or one the caller may not see (the two answer alike)",
    "409": "the request clashes with the current state (out-of-order step, duplicate)",
    "413": "the request body is larger than the site's limit",
    "422": "the payload or a parameter breaks a rule; error.field names the field",
    "429": "a rate limit of the caller's agreement was reached; Retry-After says when to retry",
    "503": "the audit entry could not be written, so nothing was done or returned",
}


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> set[str]:
    """The error statuses an operation can answer, from what it takes and whether it is public."""
    public = (method, path) in PUBLIC
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    statuses: set[str] = set()
    if parameters or has_body:
        statuses.add("422")
    if has_body:
        statuses.add("413")
    # A record named in the path, the body or an ``*_id`` filter may not exist (or be hidden).
    if has_body or any(p.get("in") == "path" or p["name"].endswith("_id") for p in parameters):
        statuses.add("404")
    statuses |= PUBLIC_ERRORS.get((method, path), frozenset())
    if not public:
        # Every authenticated access is audited in its own transaction: no entry, no answer.
        statuses |= {"401", "403", "503"}
        if method in WRITES:
            statuses.add("409")
    if (method, path) in RATE_LIMITED:
        statuses.add("429")
    return statuses


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the bearer scheme, each operation's security and its error responses to a document."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "an openpars API token ('openpars token issue', or POST /api/v1/users/{id}/tokens), "
            "sent as 'Authorization: Bearer <token>'"
        ),
    }
    envelope = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = components.setdefault("schemas", {})
    schemas.update(envelope.pop("$defs", {}))
    schemas["ErrorEnvelope"] = envelope
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            operation["security"] = [] if (method, path) in PUBLIC else [{BEARER: []}]
            responses = operation.setdefault("responses", {})
            # What a route declares itself (its own error statuses) is kept, with the envelope.
            declared = {s for s in responses if str(s)[0] in "45"}
            for status in sorted(error_statuses(method, path, operation) | declared):
                described = responses.get(status, {}).get("description")
                # A route's own description is more precise; FastAPI's generic one is not.
                if described in (None, "Validation Error"):
                    described = ERROR_TEXT.get(status, "an error; error.code says which")
                responses[status] = {"description": described, "content": error_content}
            _document_audit_entry(
                responses, public=(method, path) in PUBLIC, bare=(method, path) in BARE_BODIES
            )
    # FastAPI's own validation schemas are no longer referenced: openpars answers 422 with the
    # envelope, never with FastAPI's {"detail": [...]}.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return schema


def _document_audit_entry(responses: dict[str, Any], *, public: bool, bare: bool) -> None:
    """Declare the audit entry header, and the body field of JSON object answers.

    Refusals are audited on every operation; the answers of a public one are not (its
    checkpoints and proofs would otherwise feed the log they describe).
    """
    for status, response in responses.items():
        if public and str(status)[0] not in "45":
            continue
        response.setdefault("headers", {})[HEADER] = HEADER_DOC
        if str(status)[0] != "2" or bare:
            continue
        media = response.get("content", {}).get("application/json")
        schema = media.get("schema") if media else None
        # Every audited JSON answer is an object (a list comes as a page): it gains the field.
        if schema and schema.get("type") != "array":
            media["schema"] = {"allOf": [schema, FIELD_DOC]}


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at the app's openapi_url, built once on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
