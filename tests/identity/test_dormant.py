"""Accounts unused for 90 days are disabled by the governance ticker (CJIS AC-2(3))."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from openpars.audit.models import AuditEntry
from openpars.db import Database, utcnow
from openpars.errors import NotAuthenticated
from openpars.governance.jobs import Ticker
from openpars.identity import logon, service
from openpars.identity.models import ApiToken, User
from openpars.identity.principal import SYSTEM
from tests.factories import World


def age(db: Database, world: World, username: str, days: int) -> None:
    with db.session() as session:
        user = session.get(User, world.users[username])
        assert user is not None
        user.created_at = utcnow() - timedelta(days=days)


def test_the_ticker_disables_an_unused_account_and_its_token_stops(
    db: Database, world: World
) -> None:
    age(db, world, "reader", 100)
    events = Ticker(db, interval=60).step()
    assert [e.detail for e in events if e.kind == "account.disabled"] == [
        "reader unused for 90 days"
    ]
    with db.session() as session, pytest.raises(NotAuthenticated, match="disabled"):
        service.authenticate_token(session, world.tokens["reader"])
    with db.session() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert last is not None
        assert last.action == "account.disable.dormant"
    # Nothing else dormant: the next step does nothing and writes no account entry.
    assert [e for e in Ticker(db, interval=60).step() if e.kind == "account.disabled"] == []


def test_recent_logon_token_use_or_enable_keeps_an_account(db: Database, world: World) -> None:
    later = utcnow() + timedelta(days=91)
    with db.session() as session:
        court = session.get(User, world.users["court"])
        assert court is not None
        court.last_logon_at = later - timedelta(days=10)
        token = session.scalars(
            select(ApiToken).where(ApiToken.user_id == world.users["clerk"])
        ).one()
        token.last_used_at = later - timedelta(days=89)
        disabled = {u.username for u in logon.disable_dormant(session, now=later)}
    assert "court" not in disabled
    assert "clerk" not in disabled
    assert {"reader", "intake", "admin"} <= disabled


def test_an_administrator_reenabling_restarts_the_clock(db: Database, world: World) -> None:
    age(db, world, "reader", 100)
    with db.session() as session:
        assert [u.username for u in logon.disable_dormant(session, now=utcnow())] == ["reader"]
        service.set_user_active(session, actor=SYSTEM, user_id=world.users["reader"], active=True)
    with db.session() as session:
        assert logon.disable_dormant(session, now=utcnow()) == []
