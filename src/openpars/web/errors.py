"""One error handler for the API: domain errors and payload validation, each naming the field."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.service import append
from openpars.db import Database
from openpars.errors import DomainError, NotAuthenticated, TooManyRequests
from openpars.identity.principal import Principal

log = logging.getLogger("openpars.web")


# The one error envelope, as the OpenAPI document declares it for every error status. The
# handlers below build the same shape as plain dicts; tests/web/test_openapi.py checks that the
# bodies the app really sends validate against this schema.
class ErrorBody(BaseModel):
    """What went wrong: a stable code, a sentence for a person, the field at fault."""

    code: str = Field(description="stable, machine-readable code, e.g. not_found")
    message: str = Field(description="what went wrong and which rule, for a person")
    field: str | None = Field(default=None, description="the field at fault, when there is one")
    details: dict[str, Any] | None = Field(
        default=None, description="more about the error, e.g. every problem of a payload"
    )


class ErrorEnvelope(BaseModel):
    """The body of every error response: ``{"error": {...}}``."""

    error: ErrorBody


def _field_of(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _record_refusal(request: Request, exc: DomainError) -> None:
    """Log every refused request in its own transaction: the request's own was rolled back."""
    db: Database = request.app.state.db
    principal: Principal | None = getattr(request.state, "principal", None)
    kind = AuditKind.LOGIN_FAILED if isinstance(exc, NotAuthenticated) else AuditKind.REFUSED
    event = AuditEvent(
        kind=kind,
        action=f"{request.method} {request.url.path}",
        outcome=Outcome.REFUSED,
        user_id=principal.user_id if principal else None,
        username=principal.username if principal else None,
        agency_id=principal.agency_id if principal else None,
        source_ip=request.client.host if request.client else None,
        params={"query": dict(request.query_params), "status": exc.status},
        error_code=exc.code,
    )
    try:
        with db.session() as session:
            append(session, event)
    except Exception:  # the refusal still goes out; losing its log entry is reported loudly
        log.exception("could not write the audit entry of a refused request (%s)", exc.code)


async def domain_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Render a DomainError as JSON with its status, after auditing the refusal."""
    assert isinstance(exc, DomainError)
    _record_refusal(request, exc)
    headers = {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(status_code=exc.status, content={"error": exc.to_dict()}, headers=headers)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 for payload validation, listing each field and the rule it broke."""
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            # A JSON syntax error is located by character offset; the field is the body.
            "field": "body"
            if err.get("type") == "json_invalid"
            else _field_of(tuple(err.get("loc", ()))),
            "rule": err.get("type"),
            "message": err.get("msg"),
        }
        for err in exc.errors()
    ]
    first = problems[0] if problems else {"field": "body", "message": "invalid"}
    body = {
        "error": {
            "code": "invalid_input",
            "message": f"{first['field']}: {first['message']}",
            "field": first["field"],
            "details": {"problems": problems},
        }
    }
    return JSONResponse(status_code=422, content=body)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """500 with a reference an operator can find in the log; no internals leak to the caller."""
    reference = uuid.uuid4().hex[:12]
    log.error(
        "unexpected error %s on %s %s", reference, request.method, request.url.path, exc_info=exc
    )
    body = {
        "error": {
            "code": "internal_error",
            "message": f"an unexpected error occurred and nothing was saved; reference {reference}",
            "details": {"reference": reference},
        }
    }
    return JSONResponse(status_code=500, content=body)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on the app."""
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
