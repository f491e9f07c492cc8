"""The web application's pages: one router per area, mounted at ``/`` (docs/web.md).

Each area is a module of this package with its own ``router``; add it to ``AREAS``. Every page
route carries the ``pages`` tag (so errors on it are answered as pages) and ``page(...)`` as its
edge; ``tests/web/test_pages.py`` checks both for every route.
"""

from __future__ import annotations

from fastapi import APIRouter

from openpars.web.pages import (
    account,
    admin,
    admin_acts,
    agreements,
    audit,
    auth,
    charging,
    court,
    external,
    home,
    intake,
    logon_steps,
    oversight,
    records,
)
from openpars.web.pages.core import PAGE_TAG

AREAS: tuple[APIRouter, ...] = (
    auth.router,
    logon_steps.router,
    home.router,
    external.router,
    agreements.router,
    court.router,
    records.router,
    audit.router,
    admin.router,
    admin_acts.router,
    oversight.router,
    intake.router,
    charging.router,
    account.router,
)

router = APIRouter(include_in_schema=False, tags=[PAGE_TAG])
for area in AREAS:
    router.include_router(area)
