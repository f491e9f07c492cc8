"""The generated CLI reference is current; ``openpars db`` upgrades and detects drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from openpars.cli import app
from openpars.config import Settings
from openpars.console import migrations_present
from openpars.db import make_engine

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_command_is_documented() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for command in ("db upgrade", "db check", "serve", "agency create", "agency list",
                    "user create", "user list", "user disable", "user enable", "token issue",
                    "token list", "token revoke", "import", "demo"):  # fmt: skip
        assert f"## `openpars {command}`" in reference


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"`OPENPARS_{name.upper()}`" in readme, name


def test_db_check_passes_on_the_models_and_fails_on_drift(runner: CliRunner, db_url: str) -> None:
    result = runner.invoke(app, ["db", "check", "--db", db_url])
    assert result.exit_code == 0, result.stderr
    assert "no drift" in result.stdout
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE stray_table (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    result = runner.invoke(app, ["db", "check", "--db", db_url])
    assert result.exit_code == 1
    assert "stray_table" in result.stderr
    assert "(field: schema)" in result.stderr


@pytest.mark.skipif(not migrations_present(), reason="the migrations are not generated yet")
def test_db_upgrade_then_check(runner: CliRunner, empty_url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--db", empty_url])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["db", "check", "--db", empty_url])
    assert result.exit_code == 0, result.stderr
