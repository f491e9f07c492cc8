"""Logging on through the API as a person does: password, one-time code (enrolling first if
need be), banner. Shared by the logon, MFA and re-authentication tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from openpars.db import Database, utcnow
from openpars.identity import mfa_crypto as crypto
from openpars.identity import service
from openpars.identity.models import User
from openpars.identity.principal import SYSTEM
from tests.factories import World

PASSWORD = "correct horse battery staple"


@dataclass
class Logon:
    """A finished logon: its secret, the account's TOTP secret and its recovery codes."""

    token: str
    totp: str
    recovery_codes: list[str]

    @property
    def auth(self) -> dict[str, str]:
        """Request headers carrying the session."""
        return {"Authorization": f"Bearer {self.token}"}


def give_password(db: Database, world: World, username: str, *, force: bool = False) -> None:
    """Set a known password on a world account (the console, no forced change by default)."""
    with db.session() as session:
        service.set_password(
            session,
            actor=SYSTEM,
            user_id=world.users[username],
            new_password=PASSWORD,
            force_change=force,
        )


def bearer(token: str) -> dict[str, str]:
    """Headers sending a session or token as a bearer."""
    return {"Authorization": f"Bearer {token}"}


def current_code(secret: str) -> str:
    """The code an authenticator app shows now."""
    return crypto.code_at(secret, utcnow())


def forget_last_code(db: Database, world: World, username: str) -> None:
    """Let the next code of this 30-second step be accepted (tests log on several times in
    one step; a real person waits for the next code)."""
    with db.session() as session:
        session.execute(
            update(User).where(User.id == world.users[username]).values(mfa_last_step=None)
        )


def post(client: TestClient, path: str, token: str, body: Any = None) -> Any:
    """POST with the session as bearer; the response."""
    return client.post(f"/api/v1{path}", json=body, headers=bearer(token))


def enrol(client: TestClient, token: str) -> tuple[str, list[str]]:
    """Enrol an authenticator in a pending or fresh session: its secret and recovery codes."""
    started = post(client, "/sessions/current/mfa/enrolment", token)
    assert started.status_code == 201, started.text
    secret = started.json()["secret"]
    done = post(
        client, "/sessions/current/mfa/enrolment/confirm", token, {"code": current_code(secret)}
    )
    assert done.status_code == 200, done.text
    return secret, done.json()["recovery_codes"]


def full_logon(
    client: TestClient,
    db: Database,
    world: World,
    username: str,
    *,
    totp: str | None = None,
    password: str = PASSWORD,
) -> Logon:
    """Log on all the way to an active session (enrolling when the account has no MFA)."""
    opened = client.post("/api/v1/sessions", json={"username": username, "password": password})
    assert opened.status_code == 201, opened.text
    token = opened.json()["token"]
    codes: list[str] = []
    if opened.json()["stage"] == "mfa_enrolment":
        totp, codes = enrol(client, token)
    else:
        assert totp is not None, f"{username} is enrolled: pass its TOTP secret"
        forget_last_code(db, world, username)
        proved = post(client, "/sessions/current/mfa", token, {"code": current_code(totp)})
        assert proved.status_code == 200, proved.text
    banner = post(client, "/sessions/current/banner", token)
    assert banner.status_code == 200, banner.text
    assert banner.json()["stage"] == "active"
    return Logon(token=token, totp=totp, recovery_codes=codes)


def age_proof(db: Database, token: str, minutes: float) -> None:
    """Move the session's last proof of password and code ``minutes`` into the past."""
    from openpars.identity import logon
    from openpars.identity.models import LogonSession

    with db.session() as session:
        session.execute(
            update(LogonSession)
            .where(LogonSession.secret_hash == logon.hash_secret(token))
            .values(proved_at=utcnow() - timedelta(minutes=minutes))
        )
