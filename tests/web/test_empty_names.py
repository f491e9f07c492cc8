"""Issue 10 item 10: a name with no letters left after normalisation is a 422 naming ``name``.

``--``, ``!!``, two emoji, two zero-width spaces and two combining accents each normalise to
nothing; before, the prefix search then indexed an empty string (500 IndexError at the API, a
traceback at the console).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from openpars.cli import app
from openpars.db import Database
from tests.factories import World, build_world
from tests.records.helpers import API

EMPTY_NAMES = ["--", "!!", "\U0001f600\U0001f600", "\u200b\u200b", "\u0301\u0301", "-- !!"]


@pytest.mark.parametrize("name", EMPTY_NAMES)
def test_api_refuses_a_name_without_letters(client: TestClient, world: World, name: str) -> None:
    response = client.get(f"{API}/persons", params={"name": name}, headers=world.auth("reader"))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_input", "name")
    assert "no letters or digits" in error["message"]


def test_console_refuses_it_the_same_way(fresh_db: Database) -> None:
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as session:
        build_world(session)
    runner = CliRunner()
    for name in EMPTY_NAMES:
        result = runner.invoke(
            app, ["search", "persons", "--as", "reader", f"--name={name}", "--db", url]
        )
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "no letters or digits" in result.stderr
        assert "(field: name)" in result.stderr
