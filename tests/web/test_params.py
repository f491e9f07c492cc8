"""The edge refuses control and bidirectional-override characters in query and path parameters."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import World
from tests.records.helpers import API

BAD = ["%00", "%1B", "%0A", "%E2%80%AE", "%E2%81%A6", "%C2%85"]  # NUL ESC LF RLO LRI NEL


@pytest.mark.parametrize("char", BAD)
def test_query_parameter_with_a_control_character_is_422_naming_it(
    client: TestClient, world: World, char: str
) -> None:
    for path, field in [
        (f"/persons?name=ab{char}cd", "name"),
        (f"/persons?sid=12{char}3", "sid"),
        (f"/arrests?otn=U{char}1", "otn"),
        (f"/arrests?statute=18{char}", "statute"),
        (f"/persons?name=ab&purpose=x{char}", "purpose"),
    ]:
        response = client.get(API + path, headers=world.auth("reader"))
        assert response.status_code == 422, (path, response.text)
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_input", field)
        assert "U+" in error["message"]


def test_path_parameter_with_a_control_character_is_422_naming_it(
    client: TestClient, world: World
) -> None:
    response = client.get(f"{API}/arrests/1%00", headers=world.auth("reader"))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "arrest_id"


def test_a_control_character_in_a_parameter_name_is_refused(
    client: TestClient, world: World
) -> None:
    response = client.get(f"{API}/persons?name=ab&x%00y=1", headers=world.auth("reader"))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "x?y"


def test_the_caller_is_still_checked_first(client: TestClient) -> None:
    response = client.get(f"{API}/persons?name=ab%00")
    assert response.status_code == 401


def test_ordinary_accents_and_apostrophes_pass(client: TestClient, world: World) -> None:
    response = client.get(f"{API}/persons?name=O%27Br%C3%ADen", headers=world.auth("reader"))
    assert response.status_code == 200, response.text
