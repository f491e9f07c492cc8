"""Requests by route, counted in the serving process and shown in Prometheus' text format.

The audit log records every access to records; the public log endpoints (checkpoint, proofs,
the log's public key, cosignature submission) reveal no record and are not audit entries
(auditing them would add an entry for every look at the log, so it would never settle). They
are counted here instead, with every other route: method, route template (never the path with
its ids, so the set of series stays small) and status code.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openpars.identity.roles import Permission
from openpars.web.context import needs

# Prometheus' text exposition format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRIC = "openpars_http_requests_total"
# What a request that matched no route is counted under.
UNMATCHED = "(unmatched)"

Key = tuple[str, str, str]


class RequestCounts:
    """Requests answered, by (method, route template, status code); safe across threads."""

    def __init__(self) -> None:
        self._counts: Counter[Key] = Counter()
        self._lock = threading.Lock()

    def add(self, method: str, route: str, status: int) -> None:
        """Count one answered request."""
        with self._lock:
            self._counts[(method, route, str(status))] += 1

    def snapshot(self) -> dict[Key, int]:
        """A copy of every count."""
        with self._lock:
            return dict(self._counts)

    def exposition(self) -> str:
        """The counts in Prometheus' text format, one sample per series, in a stable order."""
        lines = [
            f"# HELP {METRIC} HTTP requests answered, by method, route template and status code.",
            f"# TYPE {METRIC} counter",
        ]
        for (method, route, status), count in sorted(self.snapshot().items()):
            labels = f'method="{_escape(method)}",route="{_escape(route)}",status="{status}"'
            lines.append(f"{METRIC}{{{labels}}} {count}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class CountRequests:
    """ASGI middleware: count every HTTP request once its answer has started."""

    def __init__(self, app: ASGIApp, *, counts: RequestCounts) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count its route and status when the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def noting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            self.counts.add(scope["method"], route_template(scope), status["code"])


def route_template(scope: Scope) -> str:
    """The template of the route that answered (`/api/v1/persons/{person_id}`), never the path.

    A route of an included router knows its path below the routers' prefixes, which hold no
    parameters: the prefix is the path's leading segments the route's own path does not cover.
    """
    own = getattr(scope.get("route"), "path", None)
    if not isinstance(own, str):
        return UNMATCHED
    segments = str(scope.get("path", "")).strip("/").split("/")
    prefix = len(segments) - len(own.strip("/").split("/"))
    if prefix <= 0:
        return own
    return "/" + "/".join(segments[:prefix]) + own


def counts_of(request: Request) -> RequestCounts:
    """The application's request counts."""
    counts: RequestCounts = request.app.state.request_counts
    return counts


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Requests by route (Prometheus text format)",
    dependencies=[needs(Permission.AUDIT_READ, Permission.AGENCY_MANAGE)],
    responses={200: {"content": {CONTENT_TYPE: {}}}},
)
def metrics(counts: Annotated[RequestCounts, Depends(counts_of)]) -> PlainTextResponse:
    """Requests this server process has answered since it started, by method, route and status.

    For an auditor's or the site administrator's token (a Prometheus scrape sends it as a
    bearer token): the counts show how the site is used, though no record. The public log
    endpoints are counted here, not in the audit log.
    """
    return PlainTextResponse(counts.exposition(), media_type=CONTENT_TYPE)
