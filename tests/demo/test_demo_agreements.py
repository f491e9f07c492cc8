"""The demo's sharing: the FBI reads arrestees under an agreement in force; ICE gets nothing."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openpars.config import Settings
from openpars.web.app import create_app
from tests.demo.test_demo import run_demo


def test_demo_external_accounts(runner: CliRunner, empty_url: str, tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    assert run_demo(runner, empty_url, path).exit_code == 0
    tokens = {u["username"]: u["token"] for u in json.loads(path.read_text())["users"]}

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[user]}"}

    application = create_app(Settings(database_url=empty_url))
    with TestClient(application) as client:
        arrests = client.get(
            "/api/v1/arrests", params={"state": "arraigned", "limit": 50}, headers=auth("reader")
        ).json()["items"]
        assert arrests, "the demo has arraigned arrests"
        params = {"purpose": "fugitive-apprehension"}
        seen_roles: set[str] = set()
        for arrest in arrests[:10]:
            internal = client.get(f"/api/v1/arrests/{arrest['id']}", headers=auth("reader"))
            external = client.get(
                f"/api/v1/arrests/{arrest['id']}", params=params, headers=auth("fbi")
            )
            assert internal.status_code == 200
            if external.status_code == 200:
                body = external.json()["arrest"]
                seen_roles |= {i["role"] for i in body["involvements"]}
                assert all(i["person"]["place_of_birth"] is None for i in body["involvements"])
            else:
                assert external.status_code == 404
        assert seen_roles == {"arrestee"}
        refused = client.get(
            "/api/v1/arrests", params={"state": "arraigned", **params}, headers=auth("ice")
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "no_agreement_in_force"
    application.state.db.bind.dispose()
