"""Every page of the web application on the demo data, p50/p95 per route (issue 14: under 100 ms).

    .venv/bin/python bench/pages.py [--quick] [--backend sqlite|postgresql|both] [--requests N]
                                    [--arrests N]

What runs, per backend:

- the demo site, built by the code `openpars demo` runs (`demo.cli.build_demo`, same seed),
  its credentials file written and read back as a person would (passwords and tokens);
- the app served as `openpars serve` serves it (uvicorn, one process, loopback) in a child
  process, so the client's CPU is not the server's GIL;
- every demo person with a password logs on through the real login form (its CSRF cookie and
  token; a one-time code computed with pyotp from the credentials file's secret if the logon
  asks for one; any further step form, such as a system-use banner, submitted as it is);
- every GET route of `openpars.web.pages.router`, discovered from the router (a page added
  tomorrow is measured without touching this file), its path parameters filled from the demo
  data by name (`arrest_id`, `person_id`, `agreement_id`, ...; the biggest arrest and person,
  the ones whose pages have the most to show), and the query string a page answers only with
  (`QUERIES`: the outside agency's declaration, the entry a proof is for; `ROUTE_FILLS`: the
  outside agency's pages read a person and an arrest its own reads were answered with); a
  route whose parameter has no known value is listed in `skipped`, never silently left out;
- each route as every person for whom it answers (status below 400; with `--quick`, only the
  first such person, so fewer people log on) once as a warm-up; then
  N rounds, each requesting every (route, person) once and, right after each page, the API
  JSON request behind the same data with that person's token where one exists (the same path
  under /api/v1, or the table `BASELINES`), and `/healthz` (the floor: the app with no work).
  Page, baseline and floor are timed side by side, interleaved, in the same process.

Figures, per backend: per route the worst p50/p95 over the persons it was measured as (and for
whom), the baseline's p50/p95; `pages_worst_p95_ms`, `pages_over_100ms` (the routes whose p95 is
above 100 ms as anyone), `skipped` and `unanswered` (routes no demo person could open). The last
line of output is one JSON object with every figure; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from openpars.config import Settings
from openpars.db import make_engine, make_unpooled_engine

PG_URL = os.environ.get(
    "OPENPARS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TARGET_MS = 100.0
SEED = 1  # the demo's default seed: the data a person trying the demo sees
API_PREFIX = "/api/v1"
SESSION_COOKIE = "openpars_session"
# Pages whose data is not at the same path under /api/v1: the API request behind them.
BASELINES: dict[str, str] = {"/": "/api/v1/users/me"}
# Pages that are part of logging on, measured as a visitor with no session.
ANONYMOUS = frozenset({"/login"})

# Path parameter name -> the query giving its value on the demo data (first row's first column).
# The biggest arrest and person: the pages with the most to render.
FILLS: dict[str, str] = {
    "arrest_id": (
        "SELECT arrest_id FROM involvements GROUP BY arrest_id "
        "ORDER BY count(*) DESC, arrest_id LIMIT 1"
    ),
    "person_id": (
        "SELECT person_id FROM involvements GROUP BY person_id "
        "ORDER BY count(*) DESC, person_id LIMIT 1"
    ),
    "charge_id": "SELECT min(id) FROM charges",
    "agreement_id": "SELECT min(id) FROM agreements",
    "version": "SELECT max(version) FROM agreement_versions",
    "proposal_id": "SELECT min(id) FROM governance_proposals",
    "agency_id": "SELECT min(id) FROM agencies",
    "user_id": "SELECT min(id) FROM users",
    "session_id": "SELECT max(id) FROM logon_sessions",
    "token_id": "SELECT max(id) FROM api_tokens",
    "case_id": "SELECT min(id) FROM oversight_cases",
    "flag_id": "SELECT min(id) FROM oversight_flags",
    "canary_id": "SELECT min(id) FROM oversight_canaries",
    "seq": "SELECT max(seq) FROM audit_entries",
    "entry_seq": "SELECT max(seq) FROM audit_entries",
    "checkpoint_id": "SELECT max(id) FROM audit_checkpoints",
    "witness_id": "SELECT min(id) FROM audit_witnesses",
    "key_id": "SELECT min(id) FROM governance_keys",
    # The newest entry made by an account: some demo person's own (its receipt and proof).
    "entry_id": "SELECT max(id) FROM audit_entries WHERE user_id IS NOT NULL",
    # A person and an arrest the outside agency's own reads were answered with (the demo's).
    "external_person_id": ("SELECT min(s.person_id) FROM @external_person_id@ s"),
    "external_sid": (
        "SELECT p.sid FROM persons p JOIN @external_person_id@ s ON s.person_id = p.id "
        "WHERE p.sid IS NOT NULL ORDER BY p.id LIMIT 1"
    ),
    "external_arrest_id": ("SELECT min(s.arrest_id) FROM @external_arrest_id@ s"),
}

# Pages that answer only with a query string (the outside agency's declaration of purpose and
# on whose behalf; the entry a proof is for): route -> query, its {names} filled like a path's.
# The outside agency's record pages read a person and an arrest its own demo reads were answered
# with (if its agreement no longer shows them: listed as unanswered, never dropped).
DECLARED = "purpose=fugitive-apprehension&on_behalf_of=bench"
QUERIES: dict[str, str] = {
    "/external": "sid={external_sid}&" + DECLARED,
    "/external/persons/{person_id}": DECLARED,
    "/external/arrests/{arrest_id}": DECLARED,
    "/audit/proof": "entry_id={entry_id}",
}
# Path parameters of one route only, where the area-wide value would not fit (queries as FILLS).
ROUTE_FILLS: dict[str, dict[str, str]] = {
    "/external/persons/{person_id}": {"person_id": "external_person_id"},
    "/external/arrests/{arrest_id}": {"arrest_id": "external_arrest_id"},
}

_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


# --- which pages: discovered from the router ------------------------------------------------


@dataclass(frozen=True)
class PageRoute:
    """One GET route of the pages router, with its full path and its path parameters."""

    path: str
    name: str

    @property
    def params(self) -> tuple[str, ...]:
        """The path parameters' names, in order."""
        return tuple(_PARAM.findall(self.path))


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute under `routes` with its full path, through included routers.

    FastAPI keeps an included router as one route object holding the original router and the
    include's prefix (recent versions) or copies its routes with the prefix applied (older ones);
    both are walked.
    """
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
            continue
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(inner.routes, prefix + str(getattr(context, "prefix", "") or ""))


def page_routes(router: APIRouter | None = None) -> list[PageRoute]:
    """Every GET route of the pages router (default: the app's, `openpars.web.pages.router`)."""
    if router is None:
        from openpars.web.pages import router as pages_router

        router = pages_router
    found = {
        path: PageRoute(path, route.name)
        for path, route in _walk(router.routes)
        if "GET" in (route.methods or ())
    }
    return [found[p] for p in sorted(found)]


def api_get_paths(app: FastAPI) -> frozenset[str]:
    """The API's GET paths (under /api/v1), as written in the routes."""
    return frozenset(
        path
        for path, route in _walk(app.routes)
        if "GET" in (route.methods or ()) and path.startswith(API_PREFIX + "/")
    )


@dataclass(frozen=True)
class Target:
    """A page route with its parameters filled: what is requested, and its API baseline."""

    route: str
    url: str
    baseline: str | None


@dataclass(frozen=True)
class Skipped:
    """A page route the bench cannot request, and why."""

    route: str
    reason: str


def _filled(template: str, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: values[m.group(1)], template)


def plan(
    routes: list[PageRoute], values: dict[str, str], api_paths: frozenset[str]
) -> tuple[list[Target], list[Skipped]]:
    """Each route either becomes a target (parameters filled by name) or is skipped, with why."""
    targets: list[Target] = []
    skipped: list[Skipped] = []
    for route in routes:
        renamed = ROUTE_FILLS.get(route.path, {})
        mine = values | {p: values[v] for p, v in renamed.items() if v in values}
        query = QUERIES.get(route.path, "")
        wanted = [*route.params, *_PARAM.findall(query)]
        missing = [p for p in wanted if p not in mine]
        if missing:
            known = "no value on the demo data" if all(p in FILLS for p in missing) else "unknown"
            skipped.append(Skipped(route.path, f"parameter {', '.join(missing)}: {known}"))
            continue
        url = _filled(route.path, mine) + ("?" + _filled(query, mine) if query else "")
        baseline = BASELINES.get(route.path)
        if baseline is None and API_PREFIX + route.path in api_paths:
            baseline = API_PREFIX + url
        targets.append(Target(route.path, url, baseline))
    return targets, skipped


def _external_subjects(conn: Connection, column: str) -> str:
    """FROM item: (entry_id, column) of every person or arrest an answered external read
    named, from the ids its entry carries (audit_entries.person_ids / arrest_ids)."""
    if conn.dialect.name == "sqlite":
        each = (
            f"CAST(s.value AS INTEGER) AS {column} FROM audit_entries e, json_each(e.{column}s) s"
        )
    else:
        each = f"unnest(e.{column}s) AS {column} FROM audit_entries e"
    return (
        f"(SELECT e.id AS entry_id, {each} WHERE e.agreement_id IS NOT NULL AND e.outcome = 'ok')"
    )


def demo_values(conn: Connection, fills: dict[str, str] | None = None) -> dict[str, str]:
    """The path parameter values of the demo data, by name (a name with no row is left out).

    Each query runs in its own savepoint: a table this build does not have yet (another area's)
    leaves its name out without aborting the others (PostgreSQL aborts the whole transaction).
    """
    values: dict[str, str] = {}
    for name, query in (FILLS if fills is None else fills).items():
        for column in ("person_id", "arrest_id"):
            query = query.replace(f"@external_{column}@", _external_subjects(conn, column))
        try:
            with conn.begin_nested():
                value = conn.execute(text(query)).scalar()
        except DBAPIError:  # a table or column this build does not have
            continue
        if value is not None:
            values[name] = str(value)
    return values


# --- the demo database and the server ------------------------------------------------------


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    """A new, empty database for the demo; dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="openpars-bench-pages-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'demo.db'}"
        return
    name = f"openpars_bench_pages_{os.getpid()}"
    admin = make_unpooled_engine(PG_URL)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            # The schema made this database's own external role (access/rls.py).
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}_external"')
        admin.dispose()


def settings_for(url: str, key: Path) -> Settings:
    """The site's settings: its database, and its key files in the bench's own folder.

    The audit log key is `key`; the key of the authenticator secrets (when this build has one:
    `mfa_key_path`) lies beside it, never in the working directory.
    """
    settings = Settings(database_url=url, log_key_path=key)
    if "mfa_key_path" in Settings.model_fields:
        settings = settings.model_copy(update={"mfa_key_path": key.with_name("mfa.key")})
    return settings


def build(url: str, key: Path, credentials_file: Path, arrests: int) -> list[dict[str, Any]]:
    """The demo, as `openpars demo --no-serve` builds it; the accounts from its credentials file."""
    from openpars.demo.cli import build_demo, write_credentials

    settings = settings_for(url, key)
    credentials, _summary = build_demo(settings, arrests=arrests, seed=SEED)
    write_credentials(credentials_file, "http://127.0.0.1", credentials)
    users: list[dict[str, Any]] = json.loads(credentials_file.read_text("utf-8"))["users"]
    return users


def serve(url: str, port: int, key: Path) -> None:
    """The child process: the app as `openpars serve` runs it."""
    import uvicorn

    from openpars.web.app import create_app

    settings = settings_for(url, key)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(url: str, key: Path) -> Iterator[str]:
    """A child process serving the app; yields its base URL once /healthz answers."""
    port = _free_port()
    command = [sys.executable, __file__, "--serve", url, "--port", str(port), "--key", str(key)]
    child = subprocess.Popen(command)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.1)
        yield base
    finally:
        child.terminate()
        child.wait(timeout=30)


# --- logging on through the form -----------------------------------------------------------


class Browser:
    """One person's HTTP client with its own cookies.

    The session cookie is `Secure`: a browser sends it to 127.0.0.1 over plain HTTP, httpx2's
    cookie jar does not, so cookies are kept here and sent as a `Cookie` header, as a browser
    on loopback would.
    """

    def __init__(self, base: str) -> None:
        self.http = httpx2.Client(base_url=base, timeout=60, follow_redirects=False)
        self.cookies: dict[str, str] = {}

    def close(self) -> None:
        """Close the connection."""
        self.http.close()

    def _remember(self, response: httpx2.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                expired = morsel["max-age"] == "0" or (
                    morsel["expires"] and "1970" in str(morsel["expires"])
                )
                if expired or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def _headers(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def get(self, url: str) -> httpx2.Response:
        """GET with this person's cookies."""
        self.http.cookies.clear()
        response = self.http.get(url, headers=self._headers())
        self._remember(response)
        return response

    def post(self, url: str, data: dict[str, str]) -> httpx2.Response:
        """POST a form with this person's cookies."""
        self.http.cookies.clear()
        response = self.http.post(url, data=data, headers=self._headers())
        self._remember(response)
        return response


_FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)
_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r'([a-zA-Z_:-]+)="([^"]*)"')
OTP_NAMES = ("code", "otp", "totp", "one_time_code", "mfa_code")
OTP_SECRET_KEYS = ("totp_secret", "mfa_secret", "otp_secret", "totp")


def _post_form(html: str, page_url: str) -> tuple[str, dict[str, str]] | None:
    """The page's first POST form other than logout: its action and its inputs' values."""
    for form in _FORM.findall(html):
        head = dict(_ATTR.findall(form[: form.index(">") + 1]))
        action = head.get("action", page_url)
        if head.get("method", "get").lower() != "post" or action.endswith("/logout"):
            continue
        fields: dict[str, str] = {}
        for tag in _INPUT.findall(form):
            attrs = dict(_ATTR.findall(tag))
            if "name" not in attrs:
                continue
            kind = attrs.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                fields[attrs["name"]] = attrs.get("value", "on")  # acknowledge / accept
            else:
                fields[attrs["name"]] = attrs.get("value", "")
        return urljoin(page_url, action), fields
    return None


def _one_time_code(user: dict[str, Any]) -> str:
    secret = next((user[k] for k in OTP_SECRET_KEYS if user.get(k)), None)
    if secret is None:
        raise RuntimeError(
            f"the logon of {user['username']!r} asks for a one-time code, but the credentials "
            f"file has no secret for it (looked for {', '.join(OTP_SECRET_KEYS)})"
        )
    import pyotp  # type: ignore[import-not-found,unused-ignore]  # only needed once the logon asks for a code (issue 14's MFA)

    return str(pyotp.TOTP(secret).now())


def log_on(base: str, user: dict[str, Any]) -> Browser:
    """Log `user` on through the login form and every further step; a client holding its session."""
    browser = Browser(base)
    form = browser.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if form.status_code != 200 or match is None:
        raise RuntimeError(f"GET /login answered {form.status_code} without a CSRF token")
    response = browser.post(
        "/login",
        data={
            "username": user["username"],
            "password": user["password"],
            "csrf_token": match.group(1),
            "next": "/",
        },
    )
    url = "/login"
    for _step in range(10):
        if response.status_code in (301, 302, 303, 307, 308):
            url = urljoin(url, response.headers["location"])
            response = browser.get(urlsplit(url)._replace(scheme="", netloc="").geturl())
            continue
        if response.status_code >= 400:
            raise RuntimeError(
                f"logging on as {user['username']!r}: {url} answered {response.status_code}"
            )
        path = urlsplit(url).path
        if path == "/" and SESSION_COOKIE in browser.cookies:
            return browser
        step = _post_form(response.text, path)
        if step is None:
            raise RuntimeError(f"logging on as {user['username']!r}: {path} has no form to submit")
        action, fields = step
        for name in fields:
            if name in OTP_NAMES:
                fields[name] = _one_time_code(user)
        url = urlsplit(action).path
        response = browser.post(url, data=fields)
    raise RuntimeError(f"logging on as {user['username']!r} did not reach the home page")


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Timings:
    """Latencies (ms) of one request as one person, and the statuses it answered."""

    samples: list[float] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)

    def add(self, response: httpx2.Response, elapsed_ms: float) -> None:
        """One sample."""
        self.samples.append(elapsed_ms)
        self.statuses.add(response.status_code)

    def figures(self) -> dict[str, float]:
        """p50 and p95 in ms."""
        ordered = sorted(self.samples)
        return {"p50_ms": round(_pct(ordered, 0.5), 2), "p95_ms": round(_pct(ordered, 0.95), 2)}


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _timed(send: Any, url: str, timings: Timings, **kwargs: Any) -> None:
    started = time.perf_counter()
    response = send(url, **kwargs)
    timings.add(response, (time.perf_counter() - started) * 1000)


class People:
    """The demo's persons, each logged on through the form the first time they are needed."""

    def __init__(self, base: str, users: list[dict[str, Any]]) -> None:
        self.base = base
        self.users = {u["username"]: u for u in users if u.get("password")}
        self.tokens = {u["username"]: u["token"] for u in users}
        self.browsers: dict[str, Browser] = {"": Browser(base)}  # "": no session

    def names(self) -> list[str]:
        """Every person who logs on in a browser, in the credentials file's order."""
        return list(self.users)

    def __getitem__(self, name: str) -> Browser:
        if name not in self.browsers:
            self.browsers[name] = log_on(self.base, self.users[name])
        return self.browsers[name]

    def close(self) -> None:
        """Close every connection."""
        for browser in self.browsers.values():
            browser.close()


def measure(people: People, targets: list[Target], requests: int, quick: bool) -> dict[str, Any]:
    """Probe every (page, person), then time pages, baselines and the floor, interleaved.

    `quick`: each page as the first person who may open it (fewer logons, fewer pairs).
    """
    api = httpx2.Client(base_url=people.base, timeout=60, follow_redirects=False)
    pairs: list[tuple[Target, str]] = []  # (page, person); "" is the visitor with no session
    unanswered: dict[str, dict[str, int]] = {}
    for target in targets:
        who = [""] if target.route in ANONYMOUS else people.names()
        statuses = {}
        for name in who:
            status = people[name].get(target.url).status_code
            statuses[name or "(no session)"] = status
            if status < 400:
                pairs.append((target, name))
                if quick:
                    break
        if all(s >= 400 for s in statuses.values()):
            unanswered[target.route] = statuses
    _progress(f"measuring {len(pairs)} (page, person) pairs x {requests}")
    pages = {p: Timings() for p in [(t.route, n) for t, n in pairs]}
    baselines = {p: Timings() for p in pages}
    floor = Timings()
    for _round in range(requests):
        for target, name in pairs:
            key = (target.route, name)
            _timed(people[name].get, target.url, pages[key])
            if target.baseline and name:
                auth = {"authorization": f"Bearer {people.tokens[name]}"}
                _timed(api.get, target.baseline, baselines[key], headers=auth)
            _timed(api.get, "/healthz", floor)
    api.close()
    return summarise(targets, pages, baselines, floor, unanswered)


def summarise(
    targets: list[Target],
    pages: dict[tuple[str, str], Timings],
    baselines: dict[tuple[str, str], Timings],
    floor: Timings,
    unanswered: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """Per route the worst person's figures; the worst p95 over all routes; routes over 100 ms."""
    routes: dict[str, Any] = {}
    for target in targets:
        mine = {name: t for (route, name), t in pages.items() if route == target.route}
        if not mine:
            continue
        worst = max(mine, key=lambda n: mine[n].figures()["p95_ms"])
        row: dict[str, Any] = {
            "url": target.url,
            "worst_as": worst or "(no session)",
            **mine[worst].figures(),
            "p95_ms_by_person": {
                n or "(no session)": t.figures()["p95_ms"] for n, t in mine.items()
            },
            "statuses": sorted({s for t in mine.values() for s in t.statuses}),
        }
        base = baselines[(target.route, worst)]
        if target.baseline and base.samples:
            row["api"] = {
                "url": target.baseline,
                **base.figures(),
                "statuses": sorted(base.statuses),
            }
        routes[target.route] = row
    worst_route = max(routes, key=lambda r: routes[r]["p95_ms"], default=None)
    return {
        "pages_worst_p95_ms": routes[worst_route]["p95_ms"] if worst_route else None,
        "pages_worst_route": worst_route,
        "pages_over_100ms": sorted(r for r in routes if routes[r]["p95_ms"] > TARGET_MS),
        "healthz": floor.figures(),
        "routes": routes,
        "unanswered": unanswered,
        "samples_per_pair": len(next(iter(pages.values())).samples) if pages else 0,
    }


def run_backend(backend: str, arrests: int, requests: int, quick: bool) -> dict[str, Any]:
    """Build the demo on a new database, serve it, measure every page."""
    from openpars.models import load_all_models
    from openpars.web.app import create_app

    load_all_models()
    with database(backend) as url, tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "log.key"
        started = time.perf_counter()
        users = build(url, key, Path(tmp) / "credentials.json", arrests)
        _progress(f"{backend}: demo built in {time.perf_counter() - started:.1f}s")
        with server(url, key) as base:
            people = People(base, users)
            people[people.names()[0]]  # one logon first: its session is demo data too
            engine = make_engine(url)
            with engine.connect() as conn:
                values = demo_values(conn)
            engine.dispose()
            app = create_app(settings_for(url, key))
            targets, skipped = plan(page_routes(), values, api_get_paths(app))
            try:
                result = measure(people, targets, requests, quick)
            finally:
                people.close()
    result["skipped"] = {s.route: s.reason for s in skipped}
    result["backend"] = backend
    _progress(
        f"{backend}: worst p95 {result['pages_worst_p95_ms']} ms ({result['pages_worst_route']}),"
        f" over 100 ms: {result['pages_over_100ms']}"
    )
    return result


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    """Parse the arguments; serve (child) or build, serve and measure, and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="50 arrests, 20 requests, one person a page"
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--requests", type=int, default=None, help="timed requests per pair")
    parser.add_argument("--arrests", type=int, default=None, help="demo arrests (default 500)")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--key", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        from openpars.models import load_all_models

        load_all_models()
        serve(args.serve, args.port, args.key)
        return
    arrests = args.arrests if args.arrests is not None else (50 if args.quick else 500)
    requests = args.requests or (20 if args.quick else 200)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    figures: dict[str, Any] = {
        "arrests": arrests,
        "requests_per_pair": requests,
        "quick": args.quick,
        "target_p95_ms": TARGET_MS,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    for backend in backends:
        figures[backend] = run_backend(backend, arrests, requests, args.quick)
    measured = [figures[b] for b in backends if figures[b]["pages_worst_p95_ms"] is not None]
    figures["pages_worst_p95_ms"] = max((m["pages_worst_p95_ms"] for m in measured), default=None)
    figures["pages_over_100ms"] = sorted(
        {f"{m['backend']} {r}" for m in measured for r in m["pages_over_100ms"]}
    )
    figures["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
