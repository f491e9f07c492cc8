"""Tokens: hashed at rest, revocable, expiring; accounts and agencies through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.db import Database, utcnow
from openpars.errors import NotAuthenticated
from openpars.identity import service
from openpars.identity.models import ApiToken
from openpars.identity.principal import SYSTEM
from tests.factories import World


def test_token_is_stored_hashed(db: Database, world: World) -> None:
    with db.session() as session:
        hashes = session.scalars(select(ApiToken.token_hash)).all()
    assert world.tokens["intake"] not in hashes
    assert service.hash_token(world.tokens["intake"]) in hashes


def test_whoami(client: TestClient, world: World) -> None:
    response = client.get("/api/v1/users/me", headers=world.auth("court"))
    assert response.status_code == 200
    assert response.json()["username"] == "court"
    assert response.json()["roles"] == ["court"]


def test_missing_and_bad_tokens_are_refused(client: TestClient, world: World) -> None:
    assert client.get("/api/v1/users/me").json()["error"]["code"] == "token_missing"
    response = client.get("/api/v1/users/me", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def test_revoked_token_stops_working(client: TestClient, world: World) -> None:
    me = client.get("/api/v1/users/me", headers=world.auth("admin")).json()
    issued = client.post(
        f"/api/v1/users/{me['id']}/tokens", json={"name": "laptop"}, headers=world.auth("admin")
    ).json()
    new_auth = {"Authorization": f"Bearer {issued['token']}"}
    assert client.get("/api/v1/users/me", headers=new_auth).status_code == 200
    revoked = client.delete(f"/api/v1/tokens/{issued['id']}", headers=world.auth("admin"))
    assert revoked.status_code == 200
    response = client.get("/api/v1/users/me", headers=new_auth)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"


def test_expired_token(db: Database, world: World) -> None:
    with db.session() as session:
        _, secret = service.issue_token(
            session,
            actor=SYSTEM,
            user_id=world.users["reader"],
            name="x",
            lifetime=timedelta(seconds=10),
            now=utcnow() - timedelta(seconds=11),
        )
    with db.session() as session, pytest.raises(NotAuthenticated, match="expired"):
        service.authenticate_token(session, secret)


def test_disabled_account_cannot_authenticate(db: Database, world: World) -> None:
    with db.session() as session:
        service.set_user_active(session, actor=SYSTEM, user_id=world.users["reader"], active=False)
    with db.session() as session, pytest.raises(NotAuthenticated, match="disabled"):
        service.authenticate_token(session, world.tokens["reader"])


def test_only_admin_creates_users(client: TestClient, world: World) -> None:
    body = {
        "username": "new.user",
        "display_name": "New",
        "agency_id": world.agencies["Defender Association"],
        "roles": ["reader"],
    }
    refused = client.post("/api/v1/users", json=body, headers=world.auth("reader"))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    created = client.post("/api/v1/users", json=body, headers=world.auth("admin"))
    assert created.status_code == 201, created.text


def test_external_user_cannot_get_internal_roles(client: TestClient, world: World) -> None:
    body = {
        "username": "ice.two",
        "display_name": "X",
        "agency_id": world.agencies["Immigration and Customs Enforcement"],
        "roles": ["reader"],
    }
    response = client.post("/api/v1/users", json=body, headers=world.auth("admin"))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "roles"
