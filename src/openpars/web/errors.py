"""The API's error handlers: every error, whatever raised it, in one envelope naming the field."""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from openpars.access.enforcement import count_refused
from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.service import append
from openpars.db import Database, utcnow
from openpars.errors import DomainError, NotAuthenticated, TooManyRequests
from openpars.identity.principal import Principal
from openpars.web.context import edge_of
from openpars.web.gate import writer_gate
from openpars.web.limits import TOO_LARGE
from openpars.web.pages.core import is_page_request, login_url, render

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
    audit_entry: int | None = Field(
        default=None,
        description="the audit entry that records this refusal (absent when none was written)",
    )


class ErrorEnvelope(BaseModel):
    """The body of every error response: ``{"error": {...}}``."""

    error: ErrorBody


def field_path(location: tuple[Any, ...]) -> str:
    """The one field-path style of every error: dotted, list items by index.

    ``("body", "involvements", 0, "person", "family_name")`` is
    ``involvements.0.person.family_name``; a query or path parameter is its name.
    """
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def envelope(
    code: str, message: str, field: str | None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The one error body: ``{"error": {"code", "message", "field"}}`` (and details if any)."""
    error: dict[str, Any] = {"code": code, "message": message, "field": field}
    if details:
        error["details"] = details
    return {"error": error}


def _record_refusal(request: Request, exc: DomainError) -> int | None:
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
            entry_id = append(session, event).id
            if principal is not None:
                count_refused(session, principal, at=utcnow())
            return entry_id
    except Exception:  # the refusal still goes out; losing its log entry is reported loudly
        log.exception("could not write the audit entry of a refused request (%s)", exc.code)
        return None


def record_refusal(request: Request, exc: DomainError) -> int | None:
    """Audit a service's refusal that a page shows in its form (beside the field) rather than
    as an error page: the same entry the API's refusal gets; its id, or None if not written."""
    return _record_refusal(request, exc)


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    """Render a DomainError as JSON with its status, after auditing the refusal.

    A page request is answered as a page: a visitor without a live session is sent to the login
    page with the reason; any other refusal is a page in the layout saying why.
    """
    assert isinstance(exc, DomainError)
    entry_id: int | None = None
    edge = edge_of(request.scope.get("route"))
    if edge is None or not edge.public:
        # A refused look at the public log (checkpoint, proofs, key) is counted by route
        # (GET /metrics), not audited: strangers could otherwise write to the log at will.
        # Behind the writer gate and on a worker thread: the event loop never waits for
        # SQLite's write lock, which the request holding the gate may need the loop to release.
        async with writer_gate(request.app.state.db):
            entry_id = await run_in_threadpool(_record_refusal, request, exc)
    headers = {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if is_page_request(request):
        if isinstance(exc, NotAuthenticated):
            return RedirectResponse(_logon_redirect(request, exc), status_code=303)
        return error_page(request, exc.status, exc.message, audit_entry=entry_id)
    error = exc.to_dict()
    if entry_id is not None:
        error["audit_entry"] = entry_id
    return JSONResponse(status_code=exc.status, content={"error": error}, headers=headers)


def _logon_redirect(request: Request, exc: NotAuthenticated) -> str:
    """Where a page refused for want of a (finished, recent) logon sends the browser: the
    logon's next step, the re-authentication page, or the login page saying why."""
    back = _path_and_query(request)
    if exc.code == "logon_incomplete":
        return "/login/next" + ("?next=" + quote(back, safe="/") if back else "")
    if exc.code == "reauthentication_required":
        return "/reauthenticate" + ("?next=" + quote(back, safe="/") if back else "")
    return login_url(back, reason=exc.code)


def _path_and_query(request: Request) -> str | None:
    """Where a visitor sent to log in was headed (GET only: a form is not sent again)."""
    if request.method != "GET":
        return None
    query = request.url.query
    return request.url.path + ("?" + query if query else "")


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """422 for payload validation, listing each field and the rule it broke.

    A body that is not JSON at all is told so (415 when it was sent as another media type);
    the caller is still checked first when FastAPI found that before the edge could run.
    """
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if is_page_request(request):
        # A page's own forms show each error beside its field; this is what no form sends.
        first = errors[0] if errors else {}
        where = field_path(tuple(first.get("loc", ()))) if first else "the request"
        return error_page(
            request, 422, f"the request could not be read: {where}: {first.get('msg', 'invalid')}"
        )
    if any(err.get("type") == "json_invalid" for err in errors):
        return await _undecodable_body(request)
    if isinstance(exc.body, bytes | bytearray) and exc.body:
        return JSONResponse(
            status_code=415,
            content=envelope(
                "unsupported_media_type",
                "body: send the body as JSON with the header 'Content-Type: application/json'",
                "body",
            ),
        )
    problems = [
        {
            "field": field_path(tuple(err.get("loc", ()))),
            "rule": err.get("type"),
            "message": err.get("msg"),
        }
        for err in errors
    ]
    first = problems[0] if problems else {"field": "body", "message": "invalid"}
    return JSONResponse(
        status_code=422,
        content=envelope(
            "invalid_input",
            f"{first['field']}: {first['message']}",
            str(first["field"]),
            {"problems": problems},
        ),
    )


async def _undecodable_body(request: Request) -> Response:
    """A body that does not parse as JSON (or UTF-8): 422, after the caller is checked."""
    edge = edge_of(request.scope.get("route"))
    if edge is not None and getattr(request.state, "principal", None) is None:
        try:
            async with writer_gate(request.app.state.db):
                await run_in_threadpool(edge.check_alone, request)
        except DomainError as refused:
            return await domain_error_handler(request, refused)
    problem = {"field": "body", "rule": "json_invalid", "message": "the body is not valid JSON"}
    return JSONResponse(
        status_code=422,
        content=envelope(
            "invalid_input",
            "body: the body is not valid JSON (UTF-8); check quotes, commas and brackets",
            "body",
            {"problems": [problem]},
        ),
    )


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on the request's path."""
    routes = request.app.router.routes
    return [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Routing and protocol errors (unknown path, wrong method) in the same envelope."""
    assert isinstance(exc, StarletteHTTPException)
    if is_page_request(request) and exc.status_code in (404, 405):
        message = (
            f"there is no page at {request.url.path}"
            if exc.status_code == 404
            else f"{request.method} is not allowed on {request.url.path}"
        )
        return error_page(request, exc.status_code, message)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        body = envelope(
            "not_found",
            f"no endpoint at {request.url.path}; the API is under /api/v1 (see /docs)",
            None,
        )
    elif exc.status_code == 405:
        # Starlette names the methods of the first route on the path only; the methods of a
        # path can sit in two feature routers (GET /arrests reads, POST /arrests is intake).
        allowed = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
        headers["Allow"] = allowed
        body = envelope(
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}",
            None,
        )
    elif exc.status_code == 400 and request.scope.get(TOO_LARGE):
        # Replaced by the 413 on its way out (web/limits.py).
        return JSONResponse(status_code=413, content=envelope("payload_too_large", "", "body"))
    elif exc.status_code == 400:
        # FastAPI's only 400: the body could not be read as text (bad UTF-8, a torn stream).
        return await _undecodable_body(request)
    else:
        body = envelope("http_error", str(exc.detail), None)
    return JSONResponse(status_code=exc.status_code, content=body, headers=headers)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """500 with a reference an operator can find in the log; no internals leak to the caller."""
    reference = uuid.uuid4().hex[:12]
    log.error(
        "unexpected error %s on %s %s", reference, request.method, request.url.path, exc_info=exc
    )
    if is_page_request(request):
        return error_page(
            request,
            500,
            "an unexpected error occurred and nothing was saved; tell an administrator the "
            "reference below",
            reference=reference,
        )
    body = envelope(
        "internal_error",
        f"an unexpected error occurred and nothing was saved; reference {reference}",
        None,
        {"reference": reference},
    )
    return JSONResponse(status_code=500, content=body)


HEADINGS = {
    401: "Please log in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    409: "Conflict",
    422: "Could not be read",
    429: "Too many requests",
    500: "Something went wrong",
}


def error_page(
    request: Request,
    status: int,
    message: str,
    *,
    audit_entry: int | None = None,
    reference: str | None = None,
) -> Response:
    """An error as a page in the layout: what went wrong, in words; no internals."""
    return render(
        request,
        "error.html",
        {
            "heading": HEADINGS.get(status, "Request refused"),
            "message": message[:1:].upper() + message[1:],
            "audit_entry": audit_entry,
            "reference": reference,
        },
        status_code=status,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on the app."""
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
