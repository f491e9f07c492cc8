"""Fixtures of the governance tests."""

from __future__ import annotations

import pytest

from openpars.db import Database
from tests.factories import World
from tests.governance.helpers import Gov, build_gov


@pytest.fixture
def gov(db: Database, world: World) -> Gov:
    """The default board with one voter and key per stakeholder, and a draft ICE agreement."""
    return build_gov(db, world)
