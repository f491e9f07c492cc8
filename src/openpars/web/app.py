"""create_app(settings): the FastAPI application with every feature's router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from openpars import __version__
from openpars.access.api import router as access_router
from openpars.agreements.api import router as agreements_router
from openpars.audit.api import router as audit_router
from openpars.audit.log import publisher_lifespan
from openpars.config import Settings
from openpars.db import Database
from openpars.governance.api import router as governance_router
from openpars.governance.jobs import Ticker
from openpars.identity.api import router as identity_router
from openpars.identity.mfa_api import router as mfa_router
from openpars.identity.sessions_api import router as sessions_router
from openpars.oversight.explain_api import router as oversight_explain_router
from openpars.oversight.report_api import router as oversight_report_router
from openpars.oversight.review_api import router as oversight_review_router
from openpars.oversight.transparency_api import router as transparency_router
from openpars.oversight.whatif_api import router as oversight_whatif_router
from openpars.records.api import router as records_router
from openpars.web.audit_entries import AuditedJSONResponse, AuditEntryHeader
from openpars.web.errors import install_error_handlers
from openpars.web.limits import BodyLimit
from openpars.web.metrics import CountRequests, RequestCounts
from openpars.web.metrics import router as metrics_router
from openpars.web.openapi import install_openapi
from openpars.web.pages import router as pages_router
from openpars.web.pages.core import STATIC_DIR
from openpars.web.security import SecurityHeaders


class CachedStatic(StaticFiles):
    """The pages' static files, cached by browsers for a day (URLs carry the version)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        """The file, with a Cache-Control header."""
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response


API_PREFIX = "/api/v1"
# Every feature's API, in the order the OpenAPI document lists them.
ROUTERS: tuple[APIRouter, ...] = (
    identity_router,
    sessions_router,
    mfa_router,
    agreements_router,
    access_router,
    audit_router,
    records_router,
    governance_router,
    oversight_explain_router,
    oversight_review_router,
    transparency_router,
    oversight_whatif_router,
    oversight_report_router,
)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the application for a site; tests pass a database bound to their transaction."""
    settings = settings or Settings()
    # FastAPIOffline serves /docs and /redoc with their assets from the fastapi-offline package
    # (under /static-offline-docs), so the docs work without reaching a CDN.
    app = FastAPIOffline(
        title="openpars",
        version=__version__,
        description=(
            "Real-time arrest reporting with data-sharing agreements enforced in the data "
            "layer and a verifiable audit log. Authenticate with 'Authorization: Bearer <token>'."
        ),
        openapi_url="/openapi.json",
        lifespan=_background_jobs,
        # No validator badge: Swagger UI would send the document to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
        # Every JSON object answer names the audit entry its request wrote (web/audit_entries).
        default_response_class=AuditedJSONResponse,
    )
    app.state.settings = settings
    app.state.db = database or Database.from_settings(settings)
    install_error_handlers(app)
    # Outermost but for Starlette's own error middleware: no route reads past the limit.
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    # Outside the error handlers, so refusals (audited in their own transaction) are named too.
    app.add_middleware(AuditEntryHeader)
    # Outside even that: every answer is counted by route (GET /metrics), refusals included.
    app.state.request_counts = RequestCounts()
    app.add_middleware(CountRequests, counts=app.state.request_counts)
    # Outermost: every response, errors included, carries the security headers.
    app.add_middleware(SecurityHeaders)
    app.include_router(metrics_router)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    # The web application's pages (docs/web.md) and their stylesheet and scripts.
    app.include_router(pages_router)
    app.mount("/static", CachedStatic(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process is up."""
        return {"status": "ok", "version": __version__}

    install_openapi(app)
    return app


@asynccontextmanager
async def _background_jobs(app: FastAPI) -> AsyncIterator[None]:
    """The audit checkpoint publisher and the governance ticker run while the app serves."""
    db: Database = app.state.db
    # A Database bound to one connection (tests) cannot be shared with threads.
    ticker = (
        Ticker(db, interval=app.state.settings.governance_tick_interval_s)
        if isinstance(db.bind, Engine)
        else None
    )
    async with publisher_lifespan(app):
        if ticker is not None:
            ticker.start()
        try:
            yield
        finally:
            if ticker is not None:
                ticker.stop()
