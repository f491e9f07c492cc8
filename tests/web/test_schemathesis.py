"""Schemathesis over the whole OpenAPI document, as every kind of caller, on a demo site.

Each role gets its own freshly seeded demo database (a run as admin revokes tokens and files
agreements; it must not change what the next role sees) and the real app over it, with its
lifespan. For every operation, Schemathesis generates valid and invalid requests from the
document and sends them with the role's token; a response fails the test when it is a 5xx, has
a status the operation does not declare, or a body outside the declared schema. Without a token,
every operation the document secures must answer 401.

Bounded by OPENPARS_SCHEMATHESIS_EXAMPLES (examples per operation and role; 8 by default on
SQLite, about two minutes; 4 on PostgreSQL; 0 skips the run).
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from openpars.config import Settings
from openpars.db import Database
from openpars.demo.cli import build_demo
from openpars.demo.seed import workflow_principals
from openpars.records.amendments import seal_arrest
from openpars.records.schemas import SealCreate
from openpars.web.app import create_app
from openpars.web.openapi import PUBLIC
from tests.conftest import BACKEND, new_database_url

# PostgreSQL runs it too, with fewer examples: it is where engine-specific failures live (an id
# past 2**31 - 1, a NUL character), which SQLite cannot show; the generated requests are the same.
EXAMPLES = int(
    os.environ.get("OPENPARS_SCHEMATHESIS_EXAMPLES", "8" if BACKEND == "sqlite" else "4")
)
ARRESTS = 40

# booking, charging, court, reader and clerk (sealed access) are the internal kinds; fbi is an
# external agency with an agreement in force; admin runs the site; None sends no token at all.
ROLES: tuple[str | None, ...] = (
    "booking",
    "charging",
    "court",
    "reader",
    "clerk",
    "fbi",
    "admin",
    None,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class TraceCatcher(logging.Handler):
    """Keeps the traceback the app logs for a 500, so a finding can be told by its cause."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.trace = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.trace += logging.Formatter().formatException(record.exc_info)


REQUEST_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def catcher() -> Iterator[TraceCatcher]:
    """Attach the catcher to the app's logger for the module."""
    handler = TraceCatcher()
    logger = logging.getLogger("openpars.web")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@dataclass
class Site:
    """A demo site for one role: the app over its own database, and the role's token."""

    app: FastAPI
    token: str | None


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str | None], Site]]:
    """Build each role's demo site on first use; drop the databases at the end."""
    built: dict[str | None, Site] = {}
    cleanups: list[Callable[[], None]] = []

    def site(role: str | None) -> Site:
        if role not in built:
            url, drop = new_database_url(Path(tmp_path_factory.mktemp("site")))
            # The governance ticker would keep stepping each site in the background until the
            # process ends (the client keeps every app's lifespan open); once an hour is enough.
            config = Settings(database_url=url, governance_tick_interval_s=3600)
            credentials, _ = build_demo(config, arrests=ARRESTS, seed=1)
            _seal_one(config)
            tokens = {c.username: c.token for c in credentials}
            app = create_app(config)
            cleanups.append(app.state.db.bind.dispose)
            cleanups.append(drop)
            built[role] = Site(app=app, token=tokens[role] if role else None)
        return built[role]

    yield site
    for cleanup in cleanups:
        cleanup()


def _seal_one(config: Settings) -> None:
    """Seal arrest 3 by court order: the demo seals none, and sealed records are half the story."""
    database = Database.from_settings(config)
    try:
        with database.session() as session:
            court = workflow_principals(session)["court"]
            order = SealCreate(
                action="seal",
                order_reference="CP-51-MD-0000123-2025",
                reason="petition granted",
            )
            seal_arrest(session, actor=court, arrest_id=3, data=order)
    finally:
        database.bind.dispose()


def _operations() -> list[tuple[str, str]]:
    """Every operation of the document, read from the app itself (no database is touched)."""
    app = create_app(Settings(database_url="sqlite:///:memory:"))
    return [
        (method, path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]


OPERATIONS = _operations()


@pytest.mark.skipif(EXAMPLES <= 0, reason="OPENPARS_SCHEMATHESIS_EXAMPLES=0")
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "no-token")
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms(
    role: str | None,
    method: str,
    path: str,
    sites: Callable[[str | None], Site],
    catcher: TraceCatcher,
) -> None:
    """No 5xx, no undeclared status, no body outside the schema; no token means 401."""
    site = sites(role)
    schema = schemathesis.openapi.from_asgi("/openapi.json", site.app)
    operation = schema[path][method.upper()]
    headers = {"Authorization": f"Bearer {site.token}"} if site.token else {}
    secured = (method, path) not in PUBLIC

    # Valid requests and invalid ones (wrong types, missing fields, out-of-range values), half
    # and half: both must be answered within the document.
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        catcher.trace = ""
        try:
            # In-process calls have a wall-clock ceiling (schemathesis: 10 s by default); on a
            # 2-core machine running both suites at once a request now and then passed it
            # (FlakyFailure, fine on re-run). 60 s still catches a request that hangs.
            response = case.call(headers=headers, timeout=REQUEST_TIMEOUT_S)
        except Exception as exc:
            # The in-process client re-raises what the app's 500 handler logged.
            raise AssertionError(
                f"{method.upper()} {path} crashed:\n" + "".join(traceback.format_exception(exc))
            ) from exc
        status = response.status_code
        assert status < 500, f"{method.upper()} {path} answered {status}:\n{catcher.trace}"
        case.validate_response(response, checks=CHECKS)
        if site.token is None and secured:
            # A body past the size limit is refused before anything reads it or the token
            # (web/limits.py, the outermost layer); everything else without a token is 401.
            too_large = status == 413 and response.json()["error"]["code"] == "payload_too_large"
            assert status == 401 or too_large, (
                f"{method.upper()} {path} without a token answered {status}"
            )

    run()


def test_every_role_has_its_demo_account() -> None:
    """The roles above are demo accounts (a renamed account must not silently drop a role)."""
    from openpars.demo.seed import USERS

    names = {username for username, *_ in USERS}
    assert {r for r in ROLES if r} <= names
    assert BACKEND in ("sqlite", "postgresql")
