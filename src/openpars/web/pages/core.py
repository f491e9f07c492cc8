"""What every page module uses: templates, the page edge (session cookie + CSRF), rendering.

A page route declares ``dependencies=[page()]`` (or ``page(Permission.X)``), exactly like an API
route declares ``needs(...)``: the edge authenticates the ``openpars_session`` cookie with the
logon service (idle lock, absolute end), opens the request's one transaction, and the page's
``with ctx.unit() as (session, principal)`` continues it, calling the same services and the same
enforcement point as the API. On every method but GET and HEAD the edge also checks the form's
``csrf_token`` against the token bound to the logon session, before anything is read or
written. A refused page is audited by the app's error handlers, like a refused API call, and
shown as a page (docs/web.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from openpars import __version__
from openpars.config import Settings
from openpars.errors import DomainError, Forbidden, NotAuthenticated
from openpars.identity import repository as repo
from openpars.identity.logon import (
    COOKIE_NAME,
    SESSION_PREFIX,
    Stage,
    authenticate_session,
    hash_secret,
    stage_of,
)
from openpars.identity.models import LogonSession
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.web.context import Edge, session_principal, source_ip
from openpars.web.gate import writer_gate

WEB_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
PAGE_TAG = "pages"
SAFE_METHODS = frozenset({"GET", "HEAD"})
CSRF_FIELD = "csrf_token"
# The login form's pre-session token: a random value in this cookie and in the form (the
# double-submit pattern); after logon the token is bound to the logon session instead.
LOGIN_CSRF_COOKIE = "openpars_login_csrf"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals["asset_version"] = __version__


@dataclass(frozen=True, slots=True)
class NavLink:
    """A link of the header's navigation, shown to users holding one of ``any_of`` (or all)."""

    label: str
    path: str
    any_of: frozenset[Permission] = frozenset()

    def visible_to(self, principal: Principal) -> bool:
        """Whether the link is shown to this user."""
        return not self.any_of or any(principal.can(p) for p in self.any_of)


# Page modules append their links here when imported (web/pages/__init__.py imports them all).
NAV: list[NavLink] = [NavLink("Home", "/")]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking, for the header: names only, never used to decide access."""

    username: str
    display_name: str
    agency_name: str


def csrf_token_for(session_secret: str) -> str:
    """The CSRF token of a logon session: an HMAC keyed by the session's secret.

    The secret sits only in the HttpOnly cookie, so another site can neither read nor compute
    the token; a new logon session has a new token, and the token reveals nothing of the secret.
    """
    return hmac.new(session_secret.encode(), b"openpars page form", hashlib.sha256).hexdigest()


def csrf_refused(reason: str) -> Forbidden:
    """The refusal of a form whose CSRF token is missing or wrong."""
    return Forbidden(
        f"the form was refused: {reason}. Nothing was saved. Reload the page and submit it "
        "again; if this keeps happening, log out and log in",
        code="csrf_failed",
        field=CSRF_FIELD,
    )


def check_csrf(expected: str, sent: str | None) -> None:
    """Raise Forbidden unless ``sent`` is ``expected`` (compared in constant time)."""
    if not sent:
        raise csrf_refused("its security token (csrf_token) is missing")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise csrf_refused("its security token (csrf_token) does not match your session")


@dataclass(frozen=True, slots=True)
class PageEdge(Edge):
    """The edge of a page: the session cookie authenticated, the CSRF token checked on POST.

    ``background``: an automatic refresh (htmx polling), which does not count as the user's
    activity for the idle lock.
    """

    background: bool = False

    async def __call__(self, request: Request) -> AsyncIterator[None]:
        """As the API's edge; the form is read first, so its token can be checked in it."""
        if request.method not in SAFE_METHODS:
            form = await request.form()
            request.state.form = form
            sent = form.get(CSRF_FIELD)
            request.state.csrf_sent = sent if isinstance(sent, str) else None
        async with writer_gate(request.app.state.db):
            session = await run_in_threadpool(self._open, request)
            try:
                yield
            finally:
                await run_in_threadpool(self._close, request, session)

    def credential(self, request: Request) -> str:
        """Pages accept only the logon session's cookie, never an API token."""
        secret = request.cookies.get(COOKIE_NAME, "")
        if not secret.startswith(SESSION_PREFIX):
            raise NotAuthenticated("log in to see this page", code="token_missing")
        return secret

    def admit(self, session: Session, request: Request, token: str) -> Principal:
        """The logon session's user, authorised as the API would; then the CSRF token."""
        found, user = authenticate_session(
            session, token, allow_pending=self.pending, touch=not self.background
        )
        request.state.logon_pending = stage_of(found) is not Stage.ACTIVE
        settings: Settings = request.app.state.settings
        principal = session_principal(session, found, user, settings).with_source(
            source_ip(request)
        )
        request.state.principal = principal
        request.state.viewer = Viewer(user.username, user.display_name, user.agency.name)
        self.authorise(principal)
        expected = csrf_token_for(token)
        request.state.csrf_token = expected
        if request.method not in SAFE_METHODS:
            check_csrf(expected, getattr(request.state, "csrf_sent", None))
        return principal


def area_router() -> APIRouter:
    """The router of one area of pages: its routes carry the pages tag."""
    return APIRouter(tags=[PAGE_TAG])


def page(*permissions: Permission, background: bool = False) -> Any:
    """The edge of a page open to users holding any of ``permissions`` (none: any user);
    ``background=True`` for a part a page reloads by itself (it keeps no session awake)."""
    return Depends(PageEdge(any_of=frozenset(permissions), background=background))


def logon_page() -> Any:
    """The edge of a page that finishes a logon (one-time code, enrolment, banner): a session
    still at one of those steps is admitted here, and nowhere else."""
    return Depends(PageEdge(pending=True))


def is_page_request(request: Request) -> bool:
    """Whether an answer to this request is a page (HTML) rather than the API's JSON."""
    route = request.scope.get("route")
    tags = getattr(route, "tags", None) or []
    if PAGE_TAG in tags:
        return True
    if route is not None or request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def safe_next(target: str | None) -> str:
    """A same-site path to go to after logon; anything else (another site) is home."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(ord(c) < 0x21 or c == "\\" for c in target)
    ):
        return "/"
    return target


def login_url(next_path: str | None = None, reason: str | None = None) -> str:
    """Where a visitor without a live session is sent."""
    parts = []
    if next_path and safe_next(next_path) != "/":
        parts.append("next=" + quote(next_path, safe="/"))
    if reason:
        parts.append("reason=" + quote(reason, safe=""))
    return "/login" + ("?" + "&".join(parts) if parts else "")


def new_login_csrf() -> str:
    """A fresh pre-session token for the login form."""
    return secrets.token_urlsafe(32)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """A page in the layout; the header's user, nav and CSRF token come from the edge."""
    principal: Principal | None = getattr(request.state, "principal", None)
    values: dict[str, Any] = {
        "principal": principal,
        "viewer": getattr(request.state, "viewer", None),
        # A logon not yet finished sees no navigation: nothing else is open to it.
        "nav": [
            link
            for link in NAV
            if principal
            and not getattr(request.state, "logon_pending", False)
            and link.visible_to(principal)
        ],
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "errors": {},
        "values": {},
    }
    values.update(context or {})
    return templates.TemplateResponse(request, template, values, status_code=status_code)


def session_secret(request: Request) -> str:
    """The logon session's secret this page request came with (the edge has checked it)."""
    return request.cookies.get(COOKIE_NAME, "")


def current_logon_session(session: Session, request: Request) -> LogonSession:
    """The logon session this page request came with (the edge has authenticated its cookie,
    so it exists)."""
    found = repo.logon_session_by_secret_hash(session, hash_secret(session_secret(request)))
    if found is None:  # pragma: no cover - the edge let no such request through
        raise NotAuthenticated("the session is not recognised", code="session_invalid")
    return found


Model = TypeVar("Model", bound=BaseModel)


def form_values(request: Request) -> dict[str, Any]:
    """The fields of the form a POST sent (read by the edge), without its CSRF token; a field
    sent several times (checkboxes, multiple selects) is a list."""
    form = getattr(request.state, "form", None)
    if form is None:
        return {}
    values: dict[str, Any] = {}
    for key in form:
        if key == CSRF_FIELD:
            continue
        items = [v for v in form.getlist(key) if isinstance(v, str)]
        values[key] = items if len(items) > 1 else (items[0] if items else "")
    return values


def parse_form(
    request: Request, model: type[Model], *, lists: tuple[str, ...] = ()
) -> tuple[Model | None, dict[str, str]]:
    """The form as ``model`` (the API's own body schema, so its rules and text types apply),
    or None and one message per field, for showing each error beside its field.

    Empty fields are left out, so the model's defaults apply; ``lists`` names fields that are
    lists even when sent once.
    """
    data: dict[str, Any] = {}
    for key, value in form_values(request).items():
        if key in lists and not isinstance(value, list):
            value = [value] if value != "" else []
        if value == "":
            continue
        data[key] = value
    try:
        return model.model_validate(data), {}
    except ValidationError as invalid:
        errors: dict[str, str] = {}
        for problem in invalid.errors():
            name = ".".join(str(p) for p in problem.get("loc", ())) or "form"
            errors.setdefault(name, _sentence(str(problem.get("msg", "is not valid"))))
        return None, errors


def domain_errors(refused: DomainError) -> dict[str, str]:
    """A service's refusal (InvalidInput, Conflict, ...) as the form's errors: by its field."""
    return {refused.field or "form": _sentence(refused.message)}


def _sentence(message: str) -> str:
    text = message.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text
