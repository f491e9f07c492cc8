"""Helpers of the records tests: row counts, audit trail, extra users, driving the workflow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from openpars.audit.models import AuditEntry
from openpars.db import Database
from openpars.identity.roles import Role
from tests import factories
from tests.factories import World

API = "/api/v1"
TABLES = ("persons", "person_aliases", "arrests", "involvements", "charges", "record_versions")
WORKFLOW_TABLES = ("charging_decisions", "bail_recommendations", "arraignments", "custody_events")


def row_counts(db: Database, tables: tuple[str, ...] = TABLES + WORKFLOW_TABLES) -> dict[str, int]:
    """How many rows each records table holds."""
    with db.session() as session:
        return {t: session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def last_audit_id(db: Database) -> int:
    """The id of the newest audit entry (0 if none)."""
    with db.session() as session:
        return session.scalar(select(func.max(AuditEntry.id))) or 0


def audit_since(db: Database, after_id: int) -> list[tuple[str, str, str]]:
    """(kind, action, outcome) of every audit entry newer than ``after_id``."""
    with db.session() as session:
        rows = session.execute(
            select(AuditEntry.kind, AuditEntry.action, AuditEntry.outcome)
            .where(AuditEntry.id > after_id)
            .order_by(AuditEntry.id)
        ).all()
    return [(k.value, a, o.value) for k, a, o in rows]


def add_user(db: Database, world: World, username: str, agency: str, roles: list[Role]) -> None:
    """Create one more user with a token and register it in the world."""
    with db.session() as session:
        factories.add_user(session, world, username, agency, roles)


def charging(outcome: str = "approved", **extra: Any) -> dict[str, Any]:
    """A charging decision body."""
    return {"outcome": outcome, **extra}


def bail(**extra: Any) -> dict[str, Any]:
    """A bail recommendation body."""
    return {"bail_type": "monetary", "amount": "5000.00", "conditions": "stay away order", **extra}


def arraignment(docket: str = "MC-51-CR-0007226-2025", **extra: Any) -> dict[str, Any]:
    """An arraignment body, a few hours after the factory's latest possible arrest time."""
    return {
        "arraigned_at": (datetime(2026, 3, 20, 14, 0, tzinfo=UTC)).isoformat(),
        "magistrate": "Arraignment Court Magistrate F. Rigmaiden-DeLeon",
        "bail_type": "monetary",
        "bail_amount": "25000.00",
        "conditions": "no contact with complainant",
        "preliminary_hearing_date": "2026-04-02",
        "docket_number": docket,
        **extra,
    }


def custody(outcome: str = "released", **extra: Any) -> dict[str, Any]:
    """A release or commitment body."""
    return {
        "outcome": outcome,
        "at": datetime(2026, 3, 20, 18, 30, tzinfo=UTC).isoformat(),
        "facility": None if outcome == "released" else "Curran-Fromhold Correctional Facility",
        **extra,
    }


def submit(client: TestClient, world: World, payload: dict[str, Any], user: str = "intake") -> Any:
    """POST an arrest and return the response."""
    return client.post(f"{API}/arrests", json=payload, headers=world.auth(user))


def step(client: TestClient, world: World, arrest_id: int, path: str, body: Any, user: str) -> Any:
    """POST one workflow step."""
    return client.post(f"{API}/arrests/{arrest_id}/{path}", json=body, headers=world.auth(user))
