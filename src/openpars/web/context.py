"""The per-request unit of work: authenticate first, one transaction, commit before replying.

Every API route declares its edge in its decorator (``dependencies=[needs(...)]`` or
``[public()]``). The edge runs before FastAPI validates any parameter or body, so a caller
without a valid token gets 401 and a caller without the route's permission gets 403, never a
422 that would describe the payload to a stranger. The edge opens the request's one
transaction and authenticates in it; the endpoint's ``ctx.unit()`` continues that same
transaction and commits it when its block ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from openpars.config import Settings
from openpars.db import Database
from openpars.errors import Forbidden, NotAuthenticated
from openpars.identity.logon import COOKIE_NAME, SESSION_PREFIX, authenticate_session
from openpars.identity.models import LogonSession, User
from openpars.identity.principal import Principal, Via
from openpars.identity.roles import Permission
from openpars.identity.service import authenticate_token, principal_for
from openpars.web.gate import writer_gate
from openpars.web.params import refuse_unsafe_parameters

# Where the edge leaves the open transaction for ``RequestContext.unit``.
_OPENED = "openpars_unit"


def bearer_token(request: Request) -> str:
    """The credential from ``Authorization: Bearer ...`` (an API token or a logon session's
    secret), else the logon session cookie; or NotAuthenticated."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    cookie = request.cookies.get(COOKIE_NAME, "")
    if not header and cookie.startswith(SESSION_PREFIX):
        return cookie
    raise NotAuthenticated(
        "send an API token as 'Authorization: Bearer <token>', or log on (POST /api/v1/sessions)",
        code="token_missing",
    )


def authenticate(
    session: Session, secret: str, settings: Settings, *, allow_pending: bool = False
) -> Principal:
    """The principal behind an API token or a logon session's secret.

    A session's principal carries until when it may perform privileged acts (its last proof of
    password and code plus ``reauthentication_minutes``); a token's, whether the site lets
    tokens perform them at all.
    """
    if secret.startswith(SESSION_PREFIX):
        found, user = authenticate_session(session, secret, allow_pending=allow_pending)
        return session_principal(session, found, user, settings)
    return authenticate_token(session, secret).authenticated(
        via=Via.TOKEN, tokens_privileged=settings.token_privileged_acts
    )


def session_principal(
    session: Session, found: LogonSession, user: User, settings: Settings
) -> Principal:
    """The principal of a logon session's user: until when it may act as privileged."""
    window = timedelta(minutes=settings.reauthentication_minutes)
    fresh = found.proved_at + window if found.proved_at is not None else None
    return principal_for(session, user).authenticated(via=Via.SESSION, fresh_until=fresh)


def source_ip(request: Request) -> str | None:
    """The client address, for the audit trail."""
    return request.client.host if request.client else None


@dataclass(frozen=True, slots=True)
class Edge:
    """What a route demands before anything else is read: a caller, and one of some permissions.

    ``any_of`` empty means any authenticated caller; ``public`` means no caller at all (the
    audit log's checkpoint and proofs). Query and path parameters are then checked for control
    and bidirectional-override characters.
    """

    any_of: frozenset[Permission] = frozenset()
    public: bool = False
    # Open to a logon session still at its one-time code, enrolment or banner step.
    pending: bool = False

    async def __call__(self, request: Request) -> AsyncIterator[None]:
        """Open the request's transaction, authenticate and authorise in it, then hand it on.

        On SQLite the request first passes the process's writer gate (`web/gate.py`), held until
        its transaction has ended: the write lock then never waits for a worker thread.
        """
        if self.public:
            refuse_unsafe_parameters(request)
            yield
            return
        async with writer_gate(request.app.state.db):
            session = await run_in_threadpool(self._open, request)
            try:
                yield
            finally:
                # A block the endpoint did not commit is not kept: the endpoint owns the commit.
                await run_in_threadpool(self._close, request, session)

    def _open(self, request: Request) -> Session:
        """The request's session, its caller authenticated and authorised in it."""
        db: Database = request.app.state.db
        token = self.credential(request)
        session = db.open_session()
        try:
            principal = self.admit(session, request, token)
            refuse_unsafe_parameters(request)
        except BaseException:
            session.rollback()
            session.close()
            raise
        setattr(request.state, _OPENED, (session, principal))
        return session

    @staticmethod
    def _close(request: Request, session: Session) -> None:
        try:
            session.rollback()
        finally:
            session.close()
            if hasattr(request.state, _OPENED):
                delattr(request.state, _OPENED)

    def credential(self, request: Request) -> str:
        """The secret the caller presents (pages accept only the session cookie)."""
        return bearer_token(request)

    def admit(self, session: Session, request: Request, token: str) -> Principal:
        """The caller behind the token, if it holds one of the route's permissions."""
        settings: Settings = request.app.state.settings
        principal = authenticate(session, token, settings, allow_pending=self.pending).with_source(
            source_ip(request)
        )
        request.state.principal = principal
        self.authorise(principal)
        return principal

    def authorise(self, principal: Principal) -> None:
        """Raise Forbidden unless the caller holds one of the route's permissions."""
        if self.any_of and not any(principal.can(p) for p in self.any_of):
            wanted = sorted(p.value for p in self.any_of)
            needed = wanted[0] if len(wanted) == 1 else "one of " + ", ".join(wanted)
            raise Forbidden(
                f"your account ({principal.username}) lacks the permission this request needs "
                f"({needed})",
                code="permission_denied",
                details={"permission": wanted[0] if len(wanted) == 1 else wanted},
            )

    def check_alone(self, request: Request) -> None:
        """Authenticate and authorise in a short transaction of its own (error paths only).

        Used when the body could not even be decoded, which FastAPI finds before any
        dependency runs: the caller is still checked first.
        """
        if self.public:
            return
        token = self.credential(request)
        db: Database = request.app.state.db
        with db.session() as session:
            self.admit(session, request, token)


def needs(*permissions: Permission) -> Any:
    """The edge of a route open to callers holding any of ``permissions`` (none: any caller)."""
    return Depends(Edge(any_of=frozenset(permissions)))


def logon_step() -> Any:
    """The edge of a route that finishes a logon: any caller, a pending session included."""
    return Depends(Edge(pending=True))


def public() -> Any:
    """The edge of a route that needs no caller."""
    return Depends(Edge(public=True))


def edge_of(route: object) -> Edge | None:
    """The edge a route declared, if any."""
    if not isinstance(route, APIRoute):
        return None
    for dependency in route.dependencies:
        if isinstance(dependency, DependsParam) and isinstance(dependency.dependency, Edge):
            return dependency.dependency
    return None


class RequestContext:
    """What an endpoint needs: settings, and the transaction the edge opened for it.

    The transaction commits when the ``with`` block ends, before the endpoint returns, so no
    data leaves the server unless its audit entry is durable.
    """

    def __init__(self, request: Request) -> None:
        self.request = request
        self.settings: Settings = request.app.state.settings
        self.db: Database = request.app.state.db

    @property
    def source_ip(self) -> str | None:
        """The client address, for the audit trail."""
        return source_ip(self.request)

    @contextmanager
    def unit(self, *, external_role: bool = False) -> Iterator[tuple[Session, Principal]]:
        """The authenticated transaction; commits on success, rolls back on error.

        ``external_role``: the endpoint reads records, so an external caller's work runs logged
        in as the external database role on PostgreSQL (ADR 0004): the edge's transaction, which
        only authenticated the caller and recorded the token's use, commits first, and the read
        and its audit entry run together in one transaction of their own on the external login.
        The enforcement point refuses an external read in any other transaction, so forgetting
        it fails closed.
        """
        opened: tuple[Session, Principal] | None = getattr(self.request.state, _OPENED, None)
        if opened is None:
            # A route without an edge still authenticates, only later than it should.
            with self._late_unit(external_role=external_role) as late:
                yield late
            return
        session, principal = opened
        if self._switches(external_role, principal):
            self._commit_login(session)
            with self.db.session(external=True) as external:
                yield external, principal
            return
        try:
            yield session, principal
            session.commit()
        except BaseException:
            session.rollback()
            raise

    def _switches(self, external_role: bool, principal: Principal) -> bool:
        return external_role and principal.is_external and self.db.dialect == "postgresql"

    @staticmethod
    def _commit_login(session: Session) -> None:
        # This transaction only records the token's use, which a crash may lose: no need to
        # wait for a WAL flush of its own before the caller's work starts.
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        session.commit()

    @contextmanager
    def _late_unit(self, *, external_role: bool) -> Iterator[tuple[Session, Principal]]:
        token = bearer_token(self.request)
        with self.db.session() as session:
            principal = authenticate(session, token, self.settings).with_source(self.source_ip)
            self.request.state.principal = principal
            if not self._switches(external_role, principal):
                yield session, principal
                return
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        with self.db.session(external=True) as external:
            yield external, principal

    @contextmanager
    def anonymous_unit(self) -> Iterator[Session]:
        """A transaction for public endpoints (published checkpoints, health)."""
        with self.db.session() as session:
            yield session


Ctx = Annotated[RequestContext, Depends(RequestContext)]
