"""bench/pages.py's route discovery: every page route is measured or listed as skipped.

The bench is not a test (its figures are not asserted), but what it measures must be every page
there is: a page added by another area tomorrow, under a prefix or a nested router, is found
without changing the bench, and a route it cannot fill is named in its output with the reason,
never silently left out.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from sqlalchemy import Connection

from openpars.config import Settings
from openpars.db import Database
from openpars.web.app import create_app
from openpars.web.pages import AREAS
from openpars.web.pages import router as pages_router
from tests.factories import World

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pages.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """bench/pages.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_pages", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_pages"] = module
    spec.loader.exec_module(module)
    return module


def _html() -> HTMLResponse:
    return HTMLResponse("")


def test_every_get_page_route_of_the_app_is_discovered(bench: ModuleType) -> None:
    """The bench finds exactly the GET routes of every area, counted independently here."""
    expected = {
        route.path
        for area in AREAS
        for route in area.routes
        if isinstance(route, APIRoute) and "GET" in route.methods
    }
    found = {r.path for r in bench.page_routes()}
    assert found == expected
    assert {"/", "/login", "/login/next"} <= found
    assert "/logout" not in found  # POST only: the bench never sends a form but the logon's


def test_a_new_area_nested_and_prefixed_is_discovered(bench: ModuleType) -> None:
    """An area added later, with a prefix and a router of its own inside, needs no bench change."""
    inner = APIRouter()
    inner.get("/charges/{charge_id}")(_html)
    area = APIRouter()
    area.get("/arrests/{arrest_id}")(_html)
    area.post("/arrests/{arrest_id}/amend")(_html)
    area.get("/things/{thing_id}")(_html)
    area.include_router(inner, prefix="/inner")
    root = APIRouter()
    root.include_router(pages_router)
    root.include_router(area, prefix="/records")
    paths = {r.path for r in bench.page_routes(root)}
    assert {
        "/records/arrests/{arrest_id}",
        "/records/things/{thing_id}",
        "/records/inner/charges/{charge_id}",
        "/",
    } <= paths
    assert "/records/arrests/{arrest_id}/amend" not in paths  # POST only


def test_every_route_is_measured_or_skipped_with_its_reason(bench: ModuleType) -> None:
    """plan() partitions the routes: filled by parameter name, or skipped naming the parameter."""
    routes = [
        bench.PageRoute("/", "home"),
        bench.PageRoute("/arrests/{arrest_id}", "arrest"),
        bench.PageRoute("/persons/{person_id}/arrests/{arrest_id}", "both"),
        bench.PageRoute("/things/{thing_id}", "thing"),
        bench.PageRoute("/proposals/{proposal_id}", "proposal"),
        bench.PageRoute("/agreements/{agreement_id:int}", "converted"),
    ]
    values = {"arrest_id": "7", "person_id": "3", "agreement_id": "2"}
    api = frozenset({"/api/v1/arrests/{arrest_id}"})
    targets, skipped = bench.plan(routes, values, api)
    measured = {t.route for t in targets}
    left_out = {s.route for s in skipped}
    assert measured | left_out == {r.path for r in routes}
    assert not measured & left_out
    by_route = {t.route: t for t in targets}
    assert by_route["/arrests/{arrest_id}"].url == "/arrests/7"
    assert by_route["/arrests/{arrest_id}"].baseline == "/api/v1/arrests/7"
    assert by_route["/persons/{person_id}/arrests/{arrest_id}"].url == "/persons/3/arrests/7"
    assert by_route["/persons/{person_id}/arrests/{arrest_id}"].baseline is None
    assert by_route["/agreements/{agreement_id:int}"].url == "/agreements/2"
    assert by_route["/"].baseline == "/api/v1/users/me"
    reasons = {s.route: s.reason for s in skipped}
    assert "thing_id" in reasons["/things/{thing_id}"]
    assert "unknown" in reasons["/things/{thing_id}"]
    assert "proposal_id" in reasons["/proposals/{proposal_id}"]
    assert "no value on the demo data" in reasons["/proposals/{proposal_id}"]


def test_the_baseline_is_the_api_route_at_the_same_path(bench: ModuleType) -> None:
    """The API baselines are found among the app's real GET routes."""
    app = create_app(Settings(database_url="sqlite://"))
    api = bench.api_get_paths(app)
    assert "/api/v1/users/me" in api
    assert all(p.startswith("/api/v1/") for p in api)
    assert not any(p.startswith("/login") or p == "/" for p in api)


def test_values_come_from_the_database_and_a_missing_table_leaves_only_its_name_out(
    bench: ModuleType, db: Database, world: World
) -> None:
    """On both backends: a query on a table this build lacks does not abort the other fills."""
    assert isinstance(db.bind, Connection)
    fills = {
        "agency_id": "SELECT min(id) FROM agencies",
        "later_id": "SELECT min(id) FROM a_table_no_branch_has_added",
        "user_id": "SELECT max(id) FROM users",
        "empty_id": "SELECT min(id) FROM agencies WHERE id < 0",
    }
    values = bench.demo_values(db.bind, fills)
    assert values == {
        "agency_id": str(min(world.agencies.values())),
        "user_id": str(max(world.users.values())),
    }
    every = bench.demo_values(db.bind)
    assert set(every) <= set(bench.FILLS)
    assert every["agency_id"] == str(min(world.agencies.values()))


def test_a_logon_step_form_is_read_as_a_browser_would_submit_it(bench: ModuleType) -> None:
    """The step after the password: its own form, not the logout form beside it or before it."""
    html = """
    <form method="post" action="/logout" class="inline">
      <input type="hidden" name="csrf_token" value="t1"><button>Log out</button></form>
    <form method="get" action="/search"><input name="q" value=""></form>
    <form method="post" action="/login/code" novalidate>
      <input type="hidden" name="csrf_token" value="t2">
      <input type="hidden" name="next" value="/arrests/4">
      <input id="code" name="code" type="text" value=""
        autocomplete="one-time-code" pattern="[0-9]*" maxlength="6">
      <input type="checkbox" name="acknowledge">
      <input type="submit">
    </form>"""
    step = bench._post_form(html, "/login/next")
    assert step == (
        "/login/code",
        {"csrf_token": "t2", "next": "/arrests/4", "code": "", "acknowledge": "on"},
    )
    assert bench._post_form('<form method="post" action="/logout"></form>', "/x") is None
    assert "code" in bench.OTP_NAMES
    assert "totp_secret" in bench.OTP_SECRET_KEYS  # the demo's credentials file (issue 14 MFA)


def test_a_page_needing_a_query_gets_it_and_its_own_record(bench: ModuleType) -> None:
    """The outside agency's pages get its declaration and a record of their own; a proof page
    gets the entry; a query value the demo lacks skips the page, naming it."""
    routes = [
        bench.PageRoute("/external/persons/{person_id}", "person"),
        bench.PageRoute("/audit/proof", "proof"),
    ]
    values = {"person_id": "3", "external_person_id": "9", "entry_id": "42"}
    targets, skipped = bench.plan(routes, values, frozenset())
    assert not skipped
    urls = {t.route: t.url for t in targets}
    assert urls["/external/persons/{person_id}"] == "/external/persons/9?" + bench.DECLARED
    assert urls["/audit/proof"] == "/audit/proof?entry_id=42"
    targets, skipped = bench.plan(routes[1:], {}, frozenset())
    assert not targets and "entry_id" in skipped[0].reason
