"""``openpars serve``: run the HTTP API with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from openpars.console import DbOption, reports_errors, run_server, settings_for

HostOption = Annotated[str, typer.Option("--host", help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")]


@reports_errors
def serve(host: HostOption = "127.0.0.1", port: PortOption = 8000, db: DbOption = None) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, interactive docs at /docs)."""
    run_server(settings_for(db), host=host, port=port)
