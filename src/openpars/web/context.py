"""The per-request unit of work: authenticate, open one transaction, commit before replying."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.orm import Session

from openpars.config import Settings
from openpars.db import Database
from openpars.errors import NotAuthenticated
from openpars.identity.principal import Principal
from openpars.identity.service import authenticate_token


class RequestContext:
    """What an endpoint needs: settings, and a transaction with the authenticated caller.

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
        return self.request.client.host if self.request.client else None

    def bearer_token(self) -> str:
        """The token from ``Authorization: Bearer ...``, or NotAuthenticated."""
        header = self.request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated(
                "send an API token as 'Authorization: Bearer <token>'", code="token_missing"
            )
        return token.strip()

    @contextmanager
    def unit(self, *, external_role: bool = False) -> Iterator[tuple[Session, Principal]]:
        """One authenticated transaction; commits on success, rolls back on error.

        ``external_role``: the endpoint reads records, so an external caller's transaction runs
        logged in as the external database role on PostgreSQL (ADR 0003). The enforcement point
        refuses an external read in any other transaction, so forgetting it fails closed.
        """
        token = self.bearer_token()
        with self.db.session() as session:
            principal = authenticate_token(session, token).with_source(self.source_ip)
            self.request.state.principal = principal
            if not (external_role and principal.is_external and self.db.dialect == "postgresql"):
                yield session, principal
                return
            # This transaction only records the token's use, which a crash may lose: no need
            # to wait for a WAL flush of its own before the caller's work starts.
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        # An external caller's work, its reads and its audit entry, runs in one transaction of
        # its own, logged in as the external database role (ADR 0003); the authentication
        # above has committed (it records the token's use).
        with self.db.session(external=True) as session:
            yield session, principal

    @contextmanager
    def anonymous_unit(self) -> Iterator[Session]:
        """A transaction for public endpoints (published checkpoints, health)."""
        with self.db.session() as session:
            yield session


Ctx = Annotated[RequestContext, Depends(RequestContext)]
