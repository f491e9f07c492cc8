"""The demo tests use the command-line fixtures: a real database per test."""

from tests.cli.conftest import db_url, empty_url, runner

__all__ = ["db_url", "empty_url", "runner"]
