"""The demo tests use the command-line fixtures: a real database per test."""

from pathlib import Path

import pytest

from tests.cli.conftest import db_url, empty_url, runner

__all__ = ["db_url", "empty_url", "runner"]


@pytest.fixture(autouse=True)
def mfa_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo's MFA key in the test's directory, whatever the database."""
    path = tmp_path / "mfa.key"
    monkeypatch.setenv("OPENPARS_MFA_KEY_PATH", str(path))
    return path
