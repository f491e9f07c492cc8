"""The request-size limit, enforced on the bytes actually received, chunked bodies included."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Set in the request scope once the limit is passed.
TOO_LARGE = "openpars.body_too_large"


def too_large_body(limit: int, received: str) -> bytes:
    """The 413 error envelope, as JSON bytes."""
    error = {
        "code": "payload_too_large",
        "message": f"the request body is {received} bytes; the limit is {limit} bytes",
        "field": "body",
    }
    return json.dumps({"error": error}).encode()


class BodyLimit:
    """Answer 413 once a body passes ``limit`` bytes, and stop reading it there.

    ``Content-Length`` alone cannot be trusted (a chunked body has none), so the counter runs on
    what the client really sends. Past the limit the application is told the client left, which
    ends its read; whatever it answers then is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a counting ``receive``; swap the answer for 413 if needed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.limit:
            # Refused before a single body byte is read.
            await _send_413(send, self.limit, str(declared))
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    # The error handlers see it and answer without touching the database.
                    scope[TOO_LARGE] = True
                    # The application sees a client that went away: it stops reading here.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _send_413(send, self.limit, f"more than {self.limit}")
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
        if exceeded and not started:
            await _send_413(send, self.limit, f"more than {self.limit}")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _send_413(send: Send, limit: int, received: str) -> None:
    body = too_large_body(limit, received)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
