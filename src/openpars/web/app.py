"""create_app(settings): the FastAPI application with every feature's router."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine

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
from openpars.records.api import router as records_router
from openpars.web.errors import install_error_handlers
from openpars.web.openapi import install_openapi

API_PREFIX = "/api/v1"


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
    )
    app.state.settings = settings
    app.state.db = database or Database.from_settings(settings)
    install_error_handlers(app)
    _install_size_limit(app, settings.max_request_bytes)
    app.include_router(identity_router, prefix=API_PREFIX)
    app.include_router(agreements_router, prefix=API_PREFIX)
    app.include_router(access_router, prefix=API_PREFIX)
    app.include_router(audit_router, prefix=API_PREFIX)
    app.include_router(records_router, prefix=API_PREFIX)
    app.include_router(governance_router, prefix=API_PREFIX)

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


def _install_size_limit(app: FastAPI, limit: int) -> None:
    """Refuse oversized payloads before they are read into memory."""

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return JSONResponse(
                status_code=413,
                content={
                    "error": {
                        "code": "payload_too_large",
                        "message": f"the request body is {declared} bytes; the limit is {limit}",
                        "field": "body",
                    }
                },
            )
        return await call_next(request)
