"""Issue 10 item 17: one error envelope everywhere, one field-path style, one code per meaning."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from tests.factories import World
from tests.records.factories import arrest_payload
from tests.records.helpers import API, submit

SRC = Path(__file__).resolve().parents[2] / "src" / "openpars"


def assert_envelope(body: object) -> dict[str, object]:
    """The body is ``{"error": {"code", "message", "field"[, "details"][, "audit_entry"]}}``."""
    assert isinstance(body, dict) and set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert {"code", "message", "field"} <= set(error) <= {
        "code", "message", "field", "details", "audit_entry"
    }  # fmt: skip
    # A refusal names the audit entry that records it, in the envelope and the header.
    assert "audit_entry" not in error or isinstance(error["audit_entry"], int)
    assert isinstance(error["code"], str) and re.fullmatch(r"[a-z_]+", error["code"])
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_unknown_route_is_404_in_the_envelope(client: TestClient, world: World) -> None:
    for path in ("/nowhere", f"{API}/arrestz", f"{API}/arrests/1/nothing"):
        response = client.get(path, headers=world.auth("reader"))
        assert response.status_code == 404
        error = assert_envelope(response.json())
        assert (error["code"], error["field"]) == ("not_found", None)
        assert path in str(error["message"])


def test_wrong_method_is_405_with_allow(client: TestClient, world: World) -> None:
    response = client.put(f"{API}/arrests", json={}, headers=world.auth("intake"))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    error = assert_envelope(response.json())
    assert error["code"] == "method_not_allowed"
    assert "allowed: GET, POST" in str(error["message"])


def test_undecodable_and_non_json_bodies(client: TestClient, world: World) -> None:
    auth = world.auth("intake")
    for raw in (b'{"report_id": ', b"\xff\xfe\x00", b"[1, 2"):
        response = client.post(
            f"{API}/arrests", content=raw, headers={**auth, "content-type": "application/json"}
        )
        assert response.status_code == 422, raw
        error = assert_envelope(response.json())
        assert (error["code"], error["field"]) == ("invalid_input", "body")
    text = client.post(
        f"{API}/arrests", content=b"report_id=1", headers={**auth, "content-type": "text/plain"}
    )
    assert text.status_code == 415
    error = assert_envelope(text.json())
    assert (error["code"], error["field"]) == ("unsupported_media_type", "body")
    assert "application/json" in str(error["message"])


def test_validation_errors_use_dotted_field_paths(client: TestClient, world: World) -> None:
    payload = arrest_payload()
    payload["involvements"][0]["person"]["family_name"] = 12
    response = client.post(f"{API}/arrests", json=payload, headers=world.auth("intake"))
    assert response.status_code == 422
    error = assert_envelope(response.json())
    assert error["field"] == "involvements.0.person.family_name"
    query = client.get(f"{API}/persons?name=ab&limit=0", headers=world.auth("reader"))
    assert assert_envelope(query.json())["field"] == "limit"


def test_domain_errors_always_carry_field(client: TestClient, world: World) -> None:
    response = client.get(f"{API}/users/me")
    assert response.status_code == 401
    assert assert_envelope(response.json())["field"] is None


def test_missing_arrest_is_one_code_on_every_path(client: TestClient, world: World) -> None:
    """Reading, stepping and amending a missing arrest or person all answer ``not_found``."""
    arrest = submit(client, world, arrest_payload()).json()
    assert arrest["arrest_id"] < 987654
    answers = [
        client.get(f"{API}/arrests/987654", headers=world.auth("reader")),
        client.get(f"{API}/arrests/987654/history", headers=world.auth("reader")),
        client.get(f"{API}/persons/987654", headers=world.auth("reader")),
        client.get(f"{API}/persons/987654/history", headers=world.auth("reader")),
        client.post(
            f"{API}/arrests/987654/charging-decision",
            json={"outcome": "approved"},
            headers=world.auth("charging"),
        ),
        client.patch(
            f"{API}/persons/987654",
            json={"reason": "typo", "given_name": "Ann"},
            headers=world.auth("intake"),
        ),
    ]
    for response in answers:
        assert response.status_code == 404, response.text
        assert assert_envelope(response.json())["code"] == "not_found"


def test_no_feature_coins_its_own_not_found_code() -> None:
    """A grep over the source: the meaning 'no such thing' has the one code ``not_found``."""
    coined = [
        f"{path.relative_to(SRC)}: {match}"
        for path in SRC.rglob("*.py")
        for match in re.findall(r'code="([a-z_]*not_found)"', path.read_text(encoding="utf-8"))
    ]
    assert coined == []
