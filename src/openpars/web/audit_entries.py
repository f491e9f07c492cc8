"""Every response names the audit entries its request wrote: one header, one body field.

The ids come from `openpars.audit.recorded`: the entries whose transactions committed while the
request ran, in commit order. Nothing per endpoint: the middleware opens the collector and sets
the header, and the app's default JSON response adds the body field.

- Header ``OpenPARS-Audit-Entry``: every id, comma-separated (a batch intake writes one entry per
  arrest, in the order of the items), on any response, errors and streamed exports included.
- Body field ``audit_entry``: the first of those ids, added to every JSON object a route
  returns. No audited route answers with a bare JSON list: lists are pages or results objects
  (``openpars.pages``), so they carry the field too (``tests/web/test_receipts_in_bodies.py``
  walks the document and the routes). A refusal carries the id of its REFUSED entry inside the
  error envelope (``error.audit_entry``).

The header is a receipt handle, not an authorisation: ``GET /api/v1/audit/receipts/{id}`` still
decides who may see the entry behind it.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openpars.audit.recorded import collected, collecting

HEADER = "OpenPARS-Audit-Entry"
BODY_FIELD = "audit_entry"

HEADER_DOC: dict[str, Any] = {
    "description": (
        "the ids of the audit entries this request wrote, comma-separated (present whenever "
        "the request was audited; a batch lists one per item, in order); fetch the receipt of "
        "one at GET /api/v1/audit/receipts/{entry_id}"
    ),
    "schema": {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"},
}
FIELD_DOC: dict[str, Any] = {
    "type": "object",
    "properties": {
        BODY_FIELD: {
            "type": "integer",
            "description": (
                "the audit entry this request wrote (the first, when it wrote several: the "
                f"{HEADER} header lists them all); present whenever the request was audited"
            ),
        }
    },
}


class AuditedJSONResponse(JSONResponse):
    """A JSON response whose object body names the request's audit entry."""

    def render(self, content: Any) -> bytes:
        """Add ``audit_entry`` to an object body when the request wrote an entry."""
        ids = collected()
        if ids and isinstance(content, dict) and BODY_FIELD not in content:
            content = {**content, BODY_FIELD: ids[0]}
        return super().render(content)


class AuditEntryHeader:
    """ASGI middleware: collect the request's committed audit entries, name them in a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside a collector; add the header as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with collecting() as ids:

            async def named(message: Message) -> None:
                if message["type"] == "http.response.start" and ids:
                    headers = MutableHeaders(scope=message)
                    headers.append(HEADER, ",".join(str(i) for i in ids))
                await send(message)

            await self.app(scope, receive, named)
